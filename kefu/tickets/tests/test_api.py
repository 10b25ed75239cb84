"""The ticket API: who may call what, one complaint from opening to closing, and the shape of
refusals. The workflow rules themselves are tested in test_services.py."""

import datetime as dt

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from kefu.accounts.services import api_token_create
from kefu.customers.models import Customer
from kefu.customers.tests.factories import make_customer
from kefu.tickets import services
from kefu.tickets.models import Category, Queue, Ticket, TicketAttachment, TicketEvent
from kefu.tickets.tests.fixtures import at

pytestmark = pytest.mark.django_db

BASE = "/api/v1/tickets"
ROLES = [
    "anonymous",
    "agent",
    "records_officer",
    "handler",
    "store_manager",
    "complaint_specialist",
]


def api_client(user) -> Client:
    """A client authenticating with a bearer token, as an integration does."""
    if user is None:
        return Client()
    _token, key = api_token_create(user=user, name="test", actor=None)
    return Client(headers={"authorization": f"Bearer {key}"})


def call(client: Client, method: str, url: str, body=None):
    if method == "get":
        return client.get(url, body or {})
    return getattr(client, method)(url, body or {}, content_type="application/json")


@pytest.fixture
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    return tmp_path


@pytest.fixture
def shop_customer(store):
    """A customer of the store the store manager runs."""
    return make_customer(name="李四", phone="13811112222", store=store.pk)


@pytest.fixture
def make_ticket(agent, shop_customer, store, quality_department, root_cause):
    """A ticket of the store in the asked state, worked by the agent."""

    def make(state="in_progress", *, type="consultation", **data):
        ticket = services.ticket_create(
            actor=agent,
            data={
                "type": type,
                "subject": "维生素C效期咨询",
                "customer": shop_customer.pk,
                "store": store.pk,
                **data,
            },
        )
        if state == "new":
            return ticket
        services.ticket_start(actor=agent, ticket_id=ticket.pk)
        if state == "waiting_customer":
            services.ticket_wait_customer(actor=agent, ticket_id=ticket.pk, reason="等小票")
        elif state == "waiting_department":
            services.ticket_hand_off(
                actor=agent,
                ticket_id=ticket.pk,
                department_id=quality_department.pk,
                instructions="请核查批次",
            )
        elif state in ("resolved", "accepted"):
            services.ticket_resolve(
                actor=agent,
                ticket_id=ticket.pk,
                data={
                    "resolution_type": "explanation",
                    "resolution_summary": "已解释",
                    "resolution_cost": "0",
                    "root_cause": root_cause.pk,
                },
            )
            if state == "accepted":
                services.ticket_record_acceptance(
                    actor=agent, ticket_id=ticket.pk, accepted=True, note="满意"
                )
        ticket.refresh_from_db()
        return ticket

    return make


def _all(status: int, **overrides: int) -> dict[str, int]:
    expected = dict.fromkeys(ROLES, status)
    expected["anonymous"] = 401
    expected.update(overrides)
    return expected


# Reads are open to everyone who sees the ticket; the handler sees only what was handed to
# their department (404 otherwise); working a ticket needs tickets.change_ticket (403).
WORK = {"records_officer": 403, "handler": 404, "store_manager": 403}

MATRIX = {
    # name: (method, url, body, ticket state, ticket type, {role: status})
    "list": ("get", "", None, "in_progress", "consultation", _all(200)),
    "handoffs": ("get", "/handoffs", None, None, None, _all(200)),
    "categories": ("get", "/categories", None, None, None, _all(200)),
    "departments": ("get", "/departments", None, None, None, _all(200)),
    "root_causes": ("get", "/root-causes", None, None, None, _all(200)),
    "queues": ("get", "/queues", None, None, None, _all(200)),
    "create": (
        "post",
        "",
        {"type": "consultation", "subject": "营业时间", "customer_id": "{customer}"},
        None,
        None,
        _all(201, records_officer=403, handler=403),
    ),
    "read": ("get", "/{id}", None, "in_progress", "consultation", _all(200, handler=404)),
    "read_handed": (
        "get",
        "/{id}",
        None,
        "waiting_department",
        "consultation",
        _all(200),
    ),
    "events": ("get", "/{id}/events", None, "in_progress", "consultation", _all(200, handler=404)),
    "update": (
        "patch",
        "/{id}",
        {"severity": "urgent"},
        "in_progress",
        "consultation",
        _all(200, **WORK),
    ),
    "assign_self": (
        "post",
        "/{id}/assign",
        {"assignee_id": "{me}", "note": "我来"},
        "in_progress",
        "consultation",
        _all(200, **WORK),
    ),
    "start": ("post", "/{id}/start", None, "new", "consultation", _all(200, **WORK)),
    "reply": (
        "post",
        "/{id}/reply",
        {"body": "已为您登记", "channel": "phone"},
        "in_progress",
        "consultation",
        _all(201, **WORK),
    ),
    # Notes and files: those who work the ticket, and handlers of a department it was handed to.
    "notes": (
        "post",
        "/{id}/notes",
        {"body": "备注"},
        "in_progress",
        "consultation",
        _all(201, **WORK),
    ),
    "notes_handed": (
        "post",
        "/{id}/notes",
        {"body": "质量部备注"},
        "waiting_department",
        "consultation",
        _all(201, records_officer=403, store_manager=403),
    ),
    "wait_customer": (
        "post",
        "/{id}/wait-customer",
        {"reason": "等顾客提供小票"},
        "in_progress",
        "consultation",
        _all(200, **WORK),
    ),
    "resume": ("post", "/{id}/resume", None, "waiting_customer", "consultation", _all(200, **WORK)),
    "hand_off": (
        "post",
        "/{id}/hand-off",
        {"department_id": "{department}", "instructions": "请核查批次"},
        "in_progress",
        "consultation",
        _all(201, **WORK),
    ),
    # Handlers of the department answer, and those who assign tickets; not agents.
    "handoff_answer": (
        "post",
        "/{id}/handoff/answer",
        {"answer": "批次正常"},
        "waiting_department",
        "consultation",
        _all(403, handler=200, complaint_specialist=200),
    ),
    "handoff_cancel": (
        "post",
        "/{id}/handoff/cancel",
        {"reason": "顾客已撤回"},
        "waiting_department",
        "consultation",
        _all(200, records_officer=403, handler=403, store_manager=403),
    ),
    "resolve": (
        "post",
        "/{id}/resolve",
        {"resolution_type": "explanation", "resolution_summary": "已解释"},
        "in_progress",
        "consultation",
        _all(200, **WORK),
    ),
    # A handler resolves a ticket handed to them (through their answer)...
    "resolve_handed": (
        "post",
        "/{id}/resolve",
        {"resolution_type": "explanation", "resolution_summary": "批次正常，已解释"},
        "waiting_department",
        "consultation",
        _all(200, records_officer=403, store_manager=403, agent=403),
    ),
    "acceptance": (
        "post",
        "/{id}/acceptance",
        {"accepted": True, "note": "满意"},
        "resolved",
        "consultation",
        _all(200, **WORK),
    ),
    "close": ("post", "/{id}/close", None, "resolved", "consultation", _all(200, **WORK)),
    # ...but only complaint specialists close complaints.
    "close_complaint": (
        "post",
        "/{id}/close",
        None,
        "accepted",
        "complaint",
        _all(403, handler=404, complaint_specialist=200, anonymous=401),
    ),
    "reopen": (
        "post",
        "/{id}/reopen",
        {"reason": "顾客不认可"},
        "resolved",
        "consultation",
        _all(200, **WORK),
    ),
    "callbacks": (
        "post",
        "/{id}/callbacks",
        {"due_at": "{tomorrow}", "note": "回电告知结果"},
        "in_progress",
        "consultation",
        _all(201, **WORK),
    ),
    "external_escalations": (
        "post",
        "/{id}/external-escalations",
        {"body": "consumer_association", "reported_on": "{today}", "reference": "XH-1"},
        "in_progress",
        "complaint",
        _all(201, **WORK),
    ),
    "attachments": (
        "upload",
        "/{id}/attachments",
        None,
        "in_progress",
        "consultation",
        _all(201, **WORK),
    ),
    "attachments_handed": (
        "upload",
        "/{id}/attachments",
        None,
        "waiting_department",
        "consultation",
        _all(201, records_officer=403, store_manager=403),
    ),
    "attachment_download": (
        "get",
        "/{id}/attachments/{attachment}",
        None,
        "in_progress",
        "consultation",
        _all(200, handler=404),
    ),
}


def _fill(value, context):
    if isinstance(value, str) and value.startswith("{") and value.endswith("}"):
        return context[value[1:-1]]
    return value


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("endpoint", sorted(MATRIX))
def test_ticket_api_permission_matrix(
    request, endpoint, role, make_ticket, shop_customer, quality_department, media
):
    method, path, body, state, ticket_type, expected = MATRIX[endpoint]
    request.getfixturevalue("complaint_specialist")  # complaints are routed to them
    user = None if role == "anonymous" else request.getfixturevalue(role)
    ticket = make_ticket(state, type=ticket_type) if state else None
    context = {
        "id": ticket.pk if ticket else None,
        "me": user.pk if user else None,
        "customer": shop_customer.pk,
        "department": quality_department.pk,
        "today": timezone.localdate().isoformat(),
        "tomorrow": (timezone.now() + dt.timedelta(days=1)).isoformat(),
    }
    if endpoint == "attachment_download":
        upload = SimpleUploadedFile("receipt.txt", b"receipt", content_type="text/plain")
        context["attachment"] = services.ticket_attach(
            actor=None, ticket_id=ticket.pk, upload=upload
        ).pk
    url = BASE + path.format(**context)
    body = {k: _fill(v, context) for k, v in body.items()} if body else None
    client = api_client(user)
    events_before = TicketEvent.objects.count()
    tickets_before = Ticket.objects.count()

    if method == "upload":
        upload = SimpleUploadedFile("photo.jpg", b"\xff\xd8jpeg", content_type="image/jpeg")
        response = client.post(url, {"file": upload})
    else:
        response = call(client, method, url, body)

    assert response.status_code == expected[role], response.content
    if expected[role] >= 400:
        body = response.json()
        assert set(body) >= {"code", "message", "errors"}
        assert body["code"] in ("not_authenticated", "permission_denied", "ticket_not_found")
        # a refused call writes nothing
        assert TicketEvent.objects.count() == events_before
        assert Ticket.objects.count() == tickets_before


def test_session_auth_serves_the_pages_javascript(agent, make_ticket):
    ticket = make_ticket("in_progress")
    client = Client(enforce_csrf_checks=True)
    client.force_login(agent)
    assert client.get(f"{BASE}/{ticket.pk}").status_code == 200
    response = client.post(f"{BASE}/{ticket.pk}/notes", {"body": "x"}, "application/json")
    assert response.status_code == 403  # no CSRF token


def test_complaint_through_the_api_from_opening_to_closing(
    agent,
    handler,
    complaint_specialist,
    shop_customer,
    quality_department,
    root_cause,
    sla_policies,
    media,
    django_capture_on_commit_callbacks,
    settings,
):
    """An agent opens a complaint and hands it to the quality department; the handler answers
    with the resolution; the customer accepts on the phone and the complaint specialist closes."""
    # given
    settings.SERVED_URL = settings.BASE_URL = "http://testserver"  # where the client calls
    agent_api, handler_api, specialist_api = (
        api_client(u) for u in (agent, handler, complaint_specialist)
    )

    # when: the agent opens the complaint
    response = agent_api.post(
        BASE,
        {
            "type": "complaint",
            "channel": "phone",
            "subject": "买到过期的维生素",
            "description": "顾客称在人民路店买到的维生素C已过期。",
            "customer_id": shop_customer.pk,
            "severity": "urgent",
            "order_ref": "SO-2026-001",
            "tags": ["效期", "维生素"],
        },
        content_type="application/json",
    )
    # then
    assert response.status_code == 201, response.content
    ticket = response.json()
    ticket_id = ticket["id"]
    assert ticket["number"].startswith("GD")
    assert ticket["status"] == "assigned"
    assert ticket["assignee"] == {"id": complaint_specialist.pk, "name": str(complaint_specialist)}
    assert ticket["customer"] == {
        "id": shop_customer.pk,
        "number": shop_customer.number,
        "name": "李四",
    }
    assert ticket["tags"] == ["效期", "维生素"]
    assert ticket["sla"]["state"] == "ok"
    assert ticket["sla"]["metric"] == "first_response"
    assert {m["metric"]: m["state"] for m in ticket["sla_metrics"]} == {
        "first_response": "ok",
        "next_response": "none",
        "resolution": "ok",
    }
    assert ticket["first_response_due_at"]
    assert ticket["resolution_due_at"]

    # when: the agent hands it to the quality department
    response = agent_api.post(
        f"{BASE}/{ticket_id}/hand-off",
        {"department_id": quality_department.pk, "instructions": "请核查该批次效期"},
        content_type="application/json",
    )
    assert response.status_code == 201, response.content
    assert response.json()["department"]["name"] == "质量管理部"
    # the handler finds it in their department queue
    queue = handler_api.get(f"{BASE}/handoffs").json()
    assert [h["ticket"]["id"] for h in queue] == [ticket_id]
    assert queue[0]["instructions"] == "请核查该批次效期"
    assert [t["id"] for t in handler_api.get(BASE).json()["results"]] == [ticket_id]

    # when: the handler answers with the resolution
    response = handler_api.post(
        f"{BASE}/{ticket_id}/handoff/answer",
        {
            "answer": "该批次已下架，为顾客退款",
            "resolution": {
                "resolution_type": "refund",
                "resolution_summary": "退款并赠送50元代金券",
                "resolution_cost": "78.50",
                "root_cause_id": root_cause.pk,
            },
        },
        content_type="application/json",
    )
    assert response.status_code == 200, response.content
    ticket = response.json()
    assert ticket["status"] == "resolved"
    assert ticket["resolution_type"] == "refund"
    assert ticket["resolution_cost"] == "78.50"
    assert ticket["root_cause"] == {"id": root_cause.pk, "name": "产品质量"}
    assert [(h["status"], h["answer"]) for h in ticket["handoffs"]] == [
        ("answered", "该批次已下架，为顾客退款")
    ]
    assert handler_api.get(f"{BASE}/handoffs").json() == []

    # the complaint cannot close before the customer accepts
    response = specialist_api.post(f"{BASE}/{ticket_id}/close")
    assert response.status_code == 422
    assert "acceptance" in response.json()["errors"]

    # when: the customer accepts on the phone, the specialist closes
    response = agent_api.post(
        f"{BASE}/{ticket_id}/acceptance",
        {"accepted": True, "note": "顾客表示满意"},
        content_type="application/json",
    )
    assert response.json()["acceptance"] == "accepted"
    with django_capture_on_commit_callbacks(execute=True):
        response = specialist_api.post(f"{BASE}/{ticket_id}/close")

    # then
    assert response.status_code == 200, response.content
    ticket = response.json()
    assert ticket["status"] == "closed"
    assert ticket["closed_at"]
    assert ticket["sla"]["state"] == "met"
    assert ticket["status_url"].startswith("http")
    events = agent_api.get(f"{BASE}/{ticket_id}/events").json()
    kinds = [e["kind"] for e in events]
    assert kinds[0] == "created"
    assert {"handed_off", "handoff_answered", "resolved", "acceptance", "closed"} <= set(kinds)
    answered = next(e for e in events if e["kind"] == "handoff_answered")
    assert answered["actor"] == {"id": handler.pk, "name": str(handler)}
    assert answered["is_public"] is False
    # the aftercare follow-up is on the specialist's list
    followups = api_client(complaint_specialist).get("/api/v1/followups").json()["results"]
    assert [(f["purpose"], f["ticket"]["id"]) for f in followups] == [
        ("complaint_aftercare", ticket_id)
    ]


def test_detail_shows_handoffs_escalations_files_and_status_link(
    agent, make_ticket, quality_department, settings, media
):
    settings.BASE_URL = "https://kefu.example.cn"
    ticket = make_ticket("in_progress", type="complaint")
    client = api_client(agent)
    client.post(
        f"{BASE}/{ticket.pk}/external-escalations",
        {"body": "media", "reported_on": timezone.localdate().isoformat(), "notes": "记者来电"},
        content_type="application/json",
    )
    client.post(
        f"{BASE}/{ticket.pk}/attachments",
        {"file": SimpleUploadedFile("小票.pdf", b"%PDF-1.4", content_type="application/pdf")},
    )
    client.post(
        f"{BASE}/{ticket.pk}/hand-off",
        {"department_id": quality_department.pk, "instructions": "请核查"},
        content_type="application/json",
    )

    body = client.get(f"{BASE}/{ticket.pk}").json()

    assert body["status"] == "waiting_department"
    assert body["department"] == {"id": quality_department.pk, "name": "质量管理部"}
    assert [(h["department"]["name"], h["status"]) for h in body["handoffs"]] == [
        ("质量管理部", "open")
    ]
    assert [(e["body"], e["notes"]) for e in body["external_escalations"]] == [
        ("media", "记者来电")
    ]
    assert body["is_impact_watched"] is True
    [attachment] = body["attachments"]
    assert (attachment["name"], attachment["size"]) == ("小票.pdf", 8)
    assert body["status_url"] is None or body["status_url"].startswith("https://kefu.example.cn/")
    download = client.get(f"{BASE}/{ticket.pk}/attachments/{attachment['id']}")
    assert download.status_code == 200
    assert b"".join(download.streaming_content) == b"%PDF-1.4"


# --- Refusals ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "fields"),
    [
        ({"type": "nonsense", "subject": "x", "customer_id": "{customer}"}, {"type"}),
        ({"type": "consultation", "customer_id": "{customer}"}, {"subject"}),
        ({"type": "consultation", "subject": "x", "phone": "123"}, {"phone"}),
        ({"type": "consultation", "subject": "x"}, {"customer_id"}),
        (
            {"type": "consultation", "subject": "x", "customer_id": "{customer}", "category_id": 9},
            {"category_id"},
        ),
        (
            {"type": "complaint", "subject": "x", "severity": "huge", "customer_id": "{customer}"},
            {"severity"},
        ),
        ({"type": "consultation", "subject": "x" * 201, "customer_id": "{customer}"}, {"subject"}),
    ],
)
def test_create_refuses_bad_input_naming_the_fields(agent, shop_customer, body, fields):
    customers_before = Customer.objects.count()
    body = {k: shop_customer.pk if v == "{customer}" else v for k, v in body.items()}

    response = api_client(agent).post(BASE, body, content_type="application/json")

    assert response.status_code == 422, response.content
    payload = response.json()
    assert payload["code"] == "invalid"
    assert set(payload["errors"]) == fields
    assert all(payload["errors"][f] for f in fields)
    assert not Ticket.objects.exists()
    assert Customer.objects.count() == customers_before


def test_create_for_an_unknown_caller_makes_a_prospect(agent):
    response = api_client(agent).post(
        BASE,
        {"type": "consultation", "subject": "咨询营业时间", "phone": "139 0000 1111"},
        content_type="application/json",
    )
    assert response.status_code == 201, response.content
    customer = Customer.objects.get(pk=response.json()["customer"]["id"])
    assert customer.status == "prospect"


def test_transition_not_allowed_is_a_409_with_the_action_and_status(agent, make_ticket):
    ticket = make_ticket("new")

    response = api_client(agent).post(f"{BASE}/{ticket.pk}/close")

    assert response.status_code == 409
    body = response.json()
    assert body["code"] == "transition_not_allowed"
    assert body["message"]
    assert body["errors"] == {}
    assert body["ticket_status"]
    assert body["action"]
    ticket.refresh_from_db()
    assert ticket.status == Ticket.Status.NEW


def test_resolution_errors_name_the_api_fields(agent, make_ticket, handler):
    ticket = make_ticket("in_progress", type="complaint")
    response = api_client(agent).post(
        f"{BASE}/{ticket.pk}/resolve",
        {"resolution_type": "refund", "resolution_summary": "退款"},
        content_type="application/json",
    )
    assert response.status_code == 422
    assert set(response.json()["errors"]) == {"resolution_cost", "root_cause_id"}

    handed = make_ticket("waiting_department", type="complaint")
    response = api_client(handler).post(
        f"{BASE}/{handed.pk}/handoff/answer",
        {
            "answer": "已处理",
            "resolution": {"resolution_type": "refund", "resolution_summary": "退款"},
        },
        content_type="application/json",
    )
    assert response.status_code == 422
    assert set(response.json()["errors"]) == {
        "resolution.resolution_cost",
        "resolution.root_cause_id",
    }
    handed.refresh_from_db()
    assert handed.status == Ticket.Status.WAITING_DEPARTMENT


def test_unknown_ticket_is_404(agent):
    response = api_client(agent).get(f"{BASE}/999999")
    assert response.status_code == 404
    assert response.json()["code"] == "ticket_not_found"


def test_attachment_size_and_type_are_limited(agent, make_ticket, settings, media):
    settings.ATTACHMENT_MAX_BYTES = 16
    ticket = make_ticket("in_progress")
    client = api_client(agent)
    url = f"{BASE}/{ticket.pk}/attachments"

    too_big = client.post(url, {"file": SimpleUploadedFile("photo.jpg", b"x" * 17)})
    wrong_type = client.post(url, {"file": SimpleUploadedFile("setup.exe", b"MZ")})
    missing = client.post(url, {})
    fits = client.post(url, {"file": SimpleUploadedFile("photo.jpg", b"x" * 16)})

    for response in (too_big, wrong_type, missing):
        assert response.status_code == 422, response.content
        assert list(response.json()["errors"]) == ["file"]
    assert fits.status_code == 201
    assert TicketAttachment.objects.filter(ticket=ticket).count() == 1


# --- The list ---------------------------------------------------------------------------------


@pytest.fixture
def listed(agent, complaint_specialist, shop_customer, customer, store, other_store, root_cause):
    """Tickets of every kind, opened at known moments."""
    parent = Category.objects.create(name="药品质量")
    child = Category.objects.create(name="过期药品", parent=parent)
    queue = Queue.objects.create(name="投诉组", ticket_types=["complaint"], mode="manual")

    def open_(when, actor=agent, **data):
        data = {"subject": "咨询", "type": "consultation", "customer": shop_customer.pk, **data}
        return services.ticket_create(actor=actor, data=data, now=when)

    tickets = {
        "complaint": open_(
            at(2026, 11, 20, 9),
            actor=complaint_specialist,
            type="complaint",
            subject="过期维生素",
            category=child.pk,
            assignee=complaint_specialist.pk,
        ),
        "urgent": open_(at(2026, 11, 21, 9), severity="urgent", assignee=agent.pk),
        "other_store": open_(
            at(2026, 11, 22, 9), customer=customer.pk, store=other_store.pk, subject="退货流程"
        ),
        "suggestion": open_(at(2026, 11, 23, 9), type="suggestion", subject="建议延长营业时间"),
    }
    services.ticket_start(actor=agent, ticket_id=tickets["urgent"].pk)
    Ticket.objects.filter(pk=tickets["urgent"].pk).update(
        first_response_due_at=timezone.now() - dt.timedelta(hours=1)
    )
    tickets["queue"], tickets["parent"] = queue, parent
    return tickets


def _ids(response) -> list[int]:
    assert response.status_code == 200, response.content
    return [row["id"] for row in response.json()["results"]]


def test_list_filters(agent, complaint_specialist, listed, shop_customer, store, other_store):
    client = api_client(agent)
    t = {k: v.pk for k, v in listed.items() if isinstance(v, Ticket)}

    assert _ids(client.get(BASE)) == [
        t["suggestion"],
        t["other_store"],
        t["urgent"],
        t["complaint"],
    ]
    assert _ids(client.get(BASE, {"type": "complaint"})) == [t["complaint"]]
    assert _ids(client.get(BASE, {"severity": "urgent"})) == [t["urgent"]]
    assert _ids(client.get(BASE, {"status": "in_progress"})) == [t["urgent"]]
    assert len(_ids(client.get(BASE, {"status": "open"}))) == 4
    assert _ids(client.get(BASE, {"assignee": "me"})) == [t["urgent"]]
    assert _ids(client.get(BASE, {"assignee": str(complaint_specialist.pk)})) == [t["complaint"]]
    assert _ids(client.get(BASE, {"assignee": "none"})) == [
        t["suggestion"],
        t["other_store"],
    ]
    assert _ids(client.get(BASE, {"queue": listed["queue"].pk})) == [t["complaint"]]
    # a category matches its subcategories
    assert _ids(client.get(BASE, {"category": listed["parent"].pk})) == [t["complaint"]]
    assert _ids(client.get(BASE, {"store": other_store.pk})) == [t["other_store"]]
    assert t["other_store"] not in _ids(client.get(BASE, {"customer": shop_customer.pk}))
    assert _ids(client.get(BASE, {"breaching": "true"})) == [t["urgent"]]
    assert _ids(client.get(BASE, {"q": "维生素"})) == [t["complaint"]]
    number = listed["suggestion"].number
    assert _ids(client.get(BASE, {"q": number.lower()})) == [t["suggestion"]]

    row = client.get(BASE, {"type": "complaint"}).json()["results"][0]
    assert row["customer"] == {
        "id": shop_customer.pk,
        "number": shop_customer.number,
        "name": "李四",
    }
    assert row["assignee"] == {"id": complaint_specialist.pk, "name": str(complaint_specialist)}
    assert row["queue"] == {"id": listed["queue"].pk, "name": "投诉组"}
    assert row["category"]["name"] == "过期药品"
    assert row["sla"] == {"state": "none", "metric": None, "due_at": None}
    urgent = client.get(BASE, {"severity": "urgent"}).json()["results"][0]
    assert urgent["sla"]["state"] == "breached"
    assert urgent["sla"]["metric"] == "first_response"


def test_list_refuses_bad_filters(agent):
    client = api_client(agent)
    for params, field in (
        ({"status": "lost"}, "status"),
        ({"assignee": "someone"}, "assignee"),
        ({"cursor": "not-a-cursor"}, "cursor"),
        ({"limit": 0}, "limit"),
    ):
        response = client.get(BASE, params)
        assert response.status_code == 422, (params, response.content)
        assert field in response.json()["errors"]


def test_store_manager_and_handler_see_only_their_tickets(
    store_manager, handler, listed, make_ticket
):
    handed = make_ticket("waiting_department")
    store_ids = _ids(api_client(store_manager).get(BASE))
    assert listed["other_store"].pk not in store_ids
    assert listed["suggestion"].pk in store_ids
    assert _ids(api_client(handler).get(BASE)) == [handed.pk]
    response = api_client(store_manager).get(f"{BASE}/{listed['other_store'].pk}")
    assert response.status_code == 404


def test_list_pages_by_cursor_without_gaps_or_repeats(agent, shop_customer):
    """Tickets opened in the same instant still page in a stable order."""
    same_moment = at(2026, 11, 24, 10)
    opened = [
        services.ticket_create(
            actor=agent,
            data={"type": "consultation", "subject": f"咨询{i}", "customer": shop_customer.pk},
            now=same_moment if i % 2 else at(2026, 11, 24, 9, i),
        )
        for i in range(7)
    ]
    client = api_client(agent)
    seen, cursor, pages = [], None, 0
    while True:
        params = {"limit": 3, **({"cursor": cursor} if cursor else {})}
        page = client.get(BASE, params).json()
        seen += [row["id"] for row in page["results"]]
        pages += 1
        if not page["has_more"]:
            assert page["next"] is None
            break
        cursor = page["next"]
    expected = sorted(opened, key=lambda t: (t.created_at, t.pk), reverse=True)
    assert seen == [t.pk for t in expected]
    assert pages == 3


def test_list_runs_a_constant_number_of_queries(
    agent, shop_customer, store, root_cause, sla_policies, django_assert_max_num_queries
):
    client = api_client(agent)
    category = Category.objects.create(name="服务态度")

    def open_many(n):
        for i in range(n):
            services.ticket_create(
                actor=agent,
                data={
                    "type": "complaint",
                    "subject": f"投诉{i}",
                    "customer": shop_customer.pk,
                    "category": category.pk,
                    "store": store.pk,
                    "assignee": agent.pk,
                },
            )

    def count_queries() -> int:
        with CaptureQueriesContext(connection) as queries:
            assert client.get(BASE, {"limit": 50}).status_code == 200
        return len(queries)

    open_many(2)
    client.get(BASE)  # the token's last-used stamp
    few = count_queries()
    open_many(10)
    assert count_queries() == few
    # token, the user's permissions (2), the category choice and its subtree, the page's ids,
    # the page's rows with their relations
    with django_assert_max_num_queries(7):
        client.get(BASE, {"status": "open", "category": category.pk, "breaching": "false"})


# --- Configuration lists ----------------------------------------------------------------------


def test_configuration_lists(agent, quality_department, root_cause):
    parent = Category.objects.create(name="药品质量")
    Category.objects.create(name="过期药品", parent=parent)
    Category.objects.create(name="停用", is_active=False)
    Queue.objects.create(name="投诉组", ticket_types=["complaint"])
    client = api_client(agent)

    categories = client.get(f"{BASE}/categories").json()
    departments = client.get(f"{BASE}/departments").json()
    causes = client.get(f"{BASE}/root-causes").json()
    queues = client.get(f"{BASE}/queues").json()

    assert [(c["path"], c["parent_id"]) for c in categories] == [
        ("药品质量", None),
        ("药品质量 › 过期药品", parent.pk),
    ]
    assert departments == [{"id": quality_department.pk, "name": "质量管理部"}]
    assert causes == [{"id": root_cause.pk, "name": "产品质量"}]
    assert [(q["name"], q["ticket_types"]) for q in queues] == [("投诉组", ["complaint"])]


def test_call_gives_the_assignee_the_number_and_audits_it(agent, make_ticket, shop_customer):
    from kefu.audit.models import AuditEntry
    from kefu.tickets.models import Ticket

    ticket = make_ticket("in_progress")
    Ticket.objects.filter(pk=ticket.pk).update(assignee=agent)
    response = api_client(agent).post(f"/api/v1/tickets/{ticket.pk}/call")
    assert response.status_code == 200, response.content
    body = response.json()
    assert (body["ticket_id"], body["phone"], body["tel"]) == (
        ticket.pk,
        "+8613811112222",
        "tel:+8613811112222",
    )
    entry = AuditEntry.objects.get(action="customer.contact_revealed")
    assert entry.actor == agent
    assert entry.changes["call_for"]["number"] == ticket.number
    # the ticket itself stays masked
    detail = api_client(agent).get(f"/api/v1/tickets/{ticket.pk}").content.decode()
    assert "13811112222" not in detail


def test_call_about_someone_elses_ticket_is_refused(agent, make_ticket):
    from kefu.accounts.tests.factories import UserFactory
    from kefu.audit.models import AuditEntry
    from kefu.tickets.models import Ticket

    ticket = make_ticket("in_progress")
    Ticket.objects.filter(pk=ticket.pk).update(assignee=agent)
    other = UserFactory(username="other-agent", role="agent")
    response = api_client(other).post(f"/api/v1/tickets/{ticket.pk}/call")
    assert response.status_code == 403
    assert response.json()["code"] == "permission_denied"
    assert not AuditEntry.objects.filter(action="customer.contact_revealed").exists()
