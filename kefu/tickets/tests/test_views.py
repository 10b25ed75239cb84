"""Ticket pages: who may open which page and run which action, one complaint through the pages,
the HTMX fragments and the list's constant query count."""

import datetime as dt

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from kefu.accounts.models import User
from kefu.accounts.tests.factories import UserFactory
from kefu.customers.models import Customer
from kefu.customers.tests.factories import make_customer
from kefu.followups.models import FollowUp
from kefu.tickets import services
from kefu.tickets.models import Ticket, TicketEvent, TicketHandoff
from kefu.tickets.views import ACTIONS, PAGE_SIZE

pytestmark = pytest.mark.django_db

HX = {"HX-Request": "true"}
ACTION_URLS = sorted(ACTIONS)


def client_for(user, language: str = "en") -> Client:
    client = Client(headers={"accept-language": language})
    if user is not None:
        client.force_login(user)
    return client


def open_ticket(actor, customer, **extra) -> Ticket:
    data = {
        "type": "complaint",
        "channel": "phone",
        "subject": "买到过期的维生素",
        "description": "顾客称在人民路店买到的维生素C已过期。",
        "customer": customer.pk,
        **extra,
    }
    return services.ticket_create(actor=actor, data=data, now=timezone.now())


def hand_off(actor, ticket, department) -> TicketHandoff:
    return services.ticket_hand_off(
        actor=actor,
        ticket_id=ticket.pk,
        department_id=department.pk,
        instructions="请核查该批次维生素C的效期",
        now=timezone.now(),
    )


@pytest.fixture
def ticket(agent, customer, complaint_specialist):
    return open_ticket(agent, customer)


@pytest.fixture
def nobody(db):
    """A member of staff without a role: no module at all."""
    return User.objects.create_user(username="nobody", password="pw-kefu-123")


# --- Pages ------------------------------------------------------------------------------------

PAGES = {
    "list": ("tickets:ticket_list", False),
    "create": ("tickets:ticket_create", False),
    "detail": ("tickets:ticket_detail", True),
    "handoffs": ("tickets:handoff_list", False),
}
PAGE_STATUS = {
    # role: list, create, detail (of a ticket not handed to anyone), department queue
    "agent": {"list": 200, "create": 200, "detail": 200, "handoffs": 403},
    "complaint_specialist": {"list": 200, "create": 200, "detail": 200, "handoffs": 403},
    "records_officer": {"list": 200, "create": 403, "detail": 200, "handoffs": 403},
    "handler": {"list": 200, "create": 403, "detail": 404, "handoffs": 200},
    "store_manager": {"list": 200, "create": 200, "detail": 404, "handoffs": 403},
    "administrator": {"list": 200, "create": 403, "detail": 200, "handoffs": 403},
    "nobody": {"list": 403, "create": 403, "detail": 403, "handoffs": 403},
}


@pytest.mark.parametrize("page", sorted(PAGES))
@pytest.mark.parametrize("role", ["anonymous", *sorted(PAGE_STATUS)])
def test_ticket_page_permission_matrix(request, page, role, ticket):
    """Anonymous users go to the login; each role gets its page or 403, and a ticket the user
    may not see is not found."""
    name, needs_ticket = PAGES[page]
    user = None if role == "anonymous" else request.getfixturevalue(role)
    url = reverse(name, kwargs={"pk": ticket.pk} if needs_ticket else {})
    response = client_for(user).get(url)
    if role == "anonymous":
        assert response.status_code == 302
        assert response["Location"].startswith(reverse("accounts:login"))
    else:
        assert response.status_code == PAGE_STATUS[role][page]


def test_store_manager_sees_only_their_stores_tickets(
    agent, store_manager, store, other_store, complaint_specialist
):
    own = open_ticket(agent, make_customer(name="本店顾客", store=store))
    other = open_ticket(agent, make_customer(name="外店顾客", store=other_store))
    client = client_for(store_manager)
    html = client.get(reverse("tickets:ticket_list"), {"tab": "all"}).content.decode()
    assert own.number in html
    assert other.number not in html
    assert client.get(own.get_absolute_url()).status_code == 200
    assert client.get(other.get_absolute_url()).status_code == 404


def test_handler_sees_only_tickets_handed_to_their_department(
    agent, handler, customer, quality_department, complaint_specialist
):
    handed = open_ticket(agent, customer, subject="交给质量部")
    hand_off(agent, handed, quality_department)
    other = open_ticket(agent, customer, subject="没有交办")
    client = client_for(handler)
    html = client.get(reverse("tickets:ticket_list"), {"tab": "all"}).content.decode()
    assert handed.number in html
    assert other.number not in html
    assert client.get(handed.get_absolute_url()).status_code == 200
    assert client.get(other.get_absolute_url()).status_code == 404
    queue = client.get(reverse("tickets:handoff_list")).content.decode()
    assert handed.number in queue


# --- Actions: who may run them ----------------------------------------------------------------


@pytest.mark.parametrize("action", ACTION_URLS)
def test_anonymous_actions_go_to_login(action, ticket):
    response = client_for(None).post(reverse(f"tickets:ticket_{action}", args=[ticket.pk]), {})
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("accounts:login"))


@pytest.mark.parametrize("role", ["records_officer", "store_manager"])
@pytest.mark.parametrize("action", ACTION_URLS)
def test_read_only_roles_get_403_on_every_action(request, role, action, agent, store, ticket):
    """Records officers and store managers read tickets; every action refuses them."""
    Ticket.objects.filter(pk=ticket.pk).update(store=store)
    before = list(ticket.events.values_list("pk", flat=True))
    response = client_for(request.getfixturevalue(role)).post(
        reverse(f"tickets:ticket_{action}", args=[ticket.pk]), {"body": "x", "reason": "x"}
    )
    assert response.status_code == 403
    assert list(ticket.events.values_list("pk", flat=True)) == before


@pytest.mark.parametrize("action", [a for a in ACTION_URLS if a != "handoff_answer"])
def test_handler_can_only_answer_the_handoff(action, agent, handler, ticket, quality_department):
    hand_off(agent, ticket, quality_department)
    response = client_for(handler).post(
        reverse(f"tickets:ticket_{action}", args=[ticket.pk]), {"body": "x", "reason": "x"}
    )
    assert response.status_code == 403


def test_handler_of_another_department_cannot_answer(agent, ticket, quality_department):
    from kefu.tickets.models import Department

    logistics = Department.objects.create(name="物流部")
    outsider = UserFactory(username="logistics", role="department_handler")
    logistics.handlers.add(outsider)
    hand_off(agent, ticket, quality_department)
    url = reverse("tickets:ticket_handoff_answer", args=[ticket.pk])
    # not handed to their department: they cannot even see the ticket
    assert client_for(outsider).post(url, {"answer": "已核查"}).status_code == 404
    ticket.refresh_from_db()
    assert ticket.status == Ticket.Status.WAITING_DEPARTMENT


def test_agent_cannot_close_a_complaint(agent, ticket, root_cause):
    """The close panel is not offered to an agent, and posting it anyway changes nothing."""
    services.ticket_resolve(
        actor=agent,
        ticket_id=ticket.pk,
        data={
            "resolution_type": "refund",
            "resolution_summary": "退款",
            "resolution_cost": "20",
            "root_cause": root_cause.pk,
        },
        now=timezone.now(),
    )
    services.ticket_record_acceptance(
        actor=agent, ticket_id=ticket.pk, accepted=True, now=timezone.now()
    )
    client = client_for(agent)
    html = client.get(ticket.get_absolute_url()).content.decode()
    assert 'id="close-panel"' not in html
    response = client.post(reverse("tickets:ticket_close", args=[ticket.pk]), headers=HX)
    assert response.status_code == 403
    ticket.refresh_from_db()
    assert ticket.status == Ticket.Status.RESOLVED


def test_disallowed_transition_shows_the_message_in_the_panel(agent, ticket):
    """Resuming a ticket that is not waiting: the panel says why (HTMX), or a message (page)."""
    url = reverse("tickets:ticket_resume", args=[ticket.pk])
    response = client_for(agent).post(url, headers=HX)
    html = response.content.decode()
    assert response.status_code == 200
    assert html.lstrip().startswith('<details class="panel" id="resume-panel"')
    assert 'role="alert"' in html
    response = client_for(agent).post(url, follow=True)
    assert response.redirect_chain[-1][0] == ticket.get_absolute_url()
    assert 'class="error"' in response.content.decode()


# --- One complaint through the pages ----------------------------------------------------------


def test_complaint_through_the_pages(
    agent, supervisor, complaint_specialist, handler, quality_department, root_cause
):
    """An agent opens a complaint for an unknown caller, the supervisor assigns it, the agent
    hands it to the quality department, whose handler answers with the resolution; the customer
    accepts by phone and the complaint specialist closes it."""
    # given: an unknown caller
    agent_client = client_for(agent)
    assert agent_client.get(reverse("tickets:ticket_create")).status_code == 200

    # when: the agent opens a complaint with the caller's phone
    response = agent_client.post(
        reverse("tickets:ticket_create"),
        {
            "phone": "13700001111",
            "caller_name": "王五",
            "type": "complaint",
            "channel": "phone",
            "severity": "normal",
            "subject": "药品包装破损",
            "description": "收到的药盒被压坏。",
            "tags": "包装, 物流",
        },
        headers=HX,
    )
    # then: the caller became a prospect and the page goes to the ticket
    ticket = Ticket.objects.get(subject="药品包装破损")
    assert response.status_code == 200
    assert response["HX-Redirect"] == ticket.get_absolute_url()
    assert ticket.customer.name == "王五"
    assert ticket.customer.status == Customer.Status.PROSPECT
    assert sorted(ticket.tags.values_list("name", flat=True)) == ["包装", "物流"]

    # the supervisor assigns it to the agent
    response = client_for(supervisor).post(
        reverse("tickets:ticket_assign", args=[ticket.pk]), {"assignee": agent.pk, "note": ""}
    )
    assert response.status_code == 302
    ticket.refresh_from_db()
    assert ticket.assignee == agent

    # the agent hands it to the quality department
    response = agent_client.post(
        reverse("tickets:ticket_hand_off", args=[ticket.pk]),
        {"department": quality_department.pk, "instructions": "请核查包装批次"},
    )
    assert response.status_code == 302
    ticket.refresh_from_db()
    assert ticket.status == Ticket.Status.WAITING_DEPARTMENT

    # the handler finds it in the department queue and answers with the resolution
    handler_client = client_for(handler)
    assert ticket.number in handler_client.get(reverse("tickets:handoff_list")).content.decode()
    detail = handler_client.get(ticket.get_absolute_url()).content.decode()
    assert 'id="handoff-answer-panel"' in detail
    assert 'id="resolve-panel"' not in detail
    response = handler_client.post(
        reverse("tickets:ticket_handoff_answer", args=[ticket.pk]),
        {
            "answer": "批次已核查，同意退款",
            "resolves": "on",
            "resolution_type": "refund",
            "resolution_cost": "35.50",
            "root_cause": root_cause.pk,
        },
        headers=HX,
    )
    assert response.status_code == 200
    assert response["HX-Redirect"] == ticket.get_absolute_url()
    ticket.refresh_from_db()
    assert ticket.status == Ticket.Status.RESOLVED
    assert str(ticket.resolution_cost) == "35.50"

    # the customer accepts by phone
    response = agent_client.post(
        reverse("tickets:ticket_acceptance", args=[ticket.pk]), {"accepted": "yes", "note": "满意"}
    )
    assert response.status_code == 302
    ticket.refresh_from_db()
    assert ticket.acceptance == Ticket.Acceptance.ACCEPTED

    # the complaint specialist closes it
    specialist_client = client_for(complaint_specialist)
    assert 'id="close-panel"' in specialist_client.get(ticket.get_absolute_url()).content.decode()
    response = specialist_client.post(reverse("tickets:ticket_close", args=[ticket.pk]))
    assert response.status_code == 302
    ticket.refresh_from_db()
    assert ticket.status == Ticket.Status.CLOSED
    assert FollowUp.objects.filter(ticket=ticket, purpose="complaint_aftercare").exists()

    # the timeline tells the story in words
    html = specialist_client.get(ticket.get_absolute_url()).content.decode()
    assert "Waiting on department → In progress" not in html  # resolved straight from waiting
    assert "Waiting on department → Resolved" in html
    assert "质量管理部" in html
    assert "批次已核查，同意退款" in html


def test_new_ticket_for_a_known_customer_from_the_profile(agent, customer, complaint_specialist):
    client = client_for(agent)
    html = client.get(reverse("tickets:ticket_create"), {"customer": customer.pk}).content.decode()
    assert f'value="{customer.pk}"' in html
    assert customer.number in html
    response = client.post(
        reverse("tickets:ticket_create"),
        {
            "customer": customer.pk,
            "type": "consultation",
            "channel": "phone",
            "severity": "normal",
            "subject": "咨询营业时间",
            "callback_due_at": (timezone.localtime() + dt.timedelta(hours=2)).strftime(
                "%Y-%m-%dT%H:%M"
            ),
        },
    )
    ticket = Ticket.objects.get(subject="咨询营业时间")
    assert response.status_code == 302
    assert ticket.customer == customer
    assert FollowUp.objects.filter(ticket=ticket, purpose="promised_callback").exists()


def test_new_ticket_without_customer_or_phone_names_the_fields(agent):
    response = client_for(agent).post(
        reverse("tickets:ticket_create"), {"type": "complaint", "channel": "phone"}, headers=HX
    )
    html = response.content.decode()
    assert response.status_code == 200
    assert html.lstrip().startswith('<form id="ticket-form"')
    assert 'id="id_subject_error"' in html
    assert not Ticket.objects.exists()


def test_customer_picker_searches_visible_customers(agent, customer):
    response = client_for(agent).get(
        reverse("tickets:ticket_customer_search"), {"customer_q": "zs"}, headers=HX
    )
    html = response.content.decode()
    assert f'data-customer-id="{customer.pk}"' in html
    assert "138****1234" in html
    assert "13812341234" not in html


def test_detail_shows_masked_phone_sla_and_status_link(
    agent, customer, ticket, sla_policies, settings
):
    settings.SERVED_URL = settings.BASE_URL = "http://testserver"  # where the client opens it
    ticket = open_ticket(agent, customer)
    html = client_for(agent).get(ticket.get_absolute_url()).content.decode()
    assert "138****1234" in html
    assert "13812341234" not in html
    assert 'data-metric="first_response"' in html
    assert 'data-testid="status-url"' in html


def test_reply_with_empty_body_shows_inline_error_in_the_panel(agent, ticket):
    """HTMX: an invalid action re-renders only its panel, with 200 and the error inline."""
    response = client_for(agent).post(
        reverse("tickets:ticket_reply", args=[ticket.pk]),
        {"body": "", "channel": "phone"},
        headers=HX,
    )
    html = response.content.decode()
    assert response.status_code == 200
    assert html.lstrip().startswith('<details class="panel" id="reply-panel" open>')
    assert "<html" not in html
    assert "Write what the customer was told." in html
    assert not ticket.events.filter(kind=TicketEvent.Kind.REPLIED).exists()


def test_action_success_redirects_htmx_to_the_ticket(agent, ticket):
    response = client_for(agent).post(
        reverse("tickets:ticket_note", args=[ticket.pk]), {"body": "已致电顾客"}, headers=HX
    )
    assert response.status_code == 200
    assert response["HX-Redirect"] == ticket.get_absolute_url()
    assert ticket.events.filter(kind=TicketEvent.Kind.NOTE).count() == 1


def test_edit_and_wait_and_resume_and_callback(agent, ticket):
    client = client_for(agent)
    client.post(reverse("tickets:ticket_start", args=[ticket.pk]))
    client.post(
        reverse("tickets:ticket_edit", args=[ticket.pk]),
        {
            "type": "complaint",
            "channel": "phone",
            "severity": "urgent",
            "subject": "买到过期的维生素C",
            "tags": "过期",
        },
    )
    ticket.refresh_from_db()
    assert ticket.severity == Ticket.Severity.URGENT
    assert ticket.subject == "买到过期的维生素C"
    client.post(reverse("tickets:ticket_wait_customer", args=[ticket.pk]), {"reason": "等发票"})
    ticket.refresh_from_db()
    assert ticket.status == Ticket.Status.WAITING_CUSTOMER
    client.post(reverse("tickets:ticket_resume", args=[ticket.pk]))
    due = (timezone.localtime() + dt.timedelta(days=1)).strftime("%Y-%m-%dT%H:%M")
    client.post(reverse("tickets:ticket_callback", args=[ticket.pk]), {"due_at": due})
    ticket.refresh_from_db()
    assert ticket.status == Ticket.Status.IN_PROGRESS
    assert ticket.followups.filter(purpose="promised_callback").exists()


def test_external_escalation_watches_the_ticket(agent, ticket, manager):
    response = client_for(agent).post(
        reverse("tickets:ticket_escalate_external", args=[ticket.pk]),
        {"body": "consumer_association", "reported_on": timezone.localdate().isoformat()},
    )
    assert response.status_code == 302
    ticket.refresh_from_db()
    assert ticket.is_impact_watched
    html = client_for(agent).get(reverse("tickets:ticket_list"), {"tab": "watched"})
    assert ticket.number in html.content.decode()


# --- Timeline in words -----------------------------------------------------------------------


EVENT_DATA = {
    "status_changed": {"from": "assigned", "to": "in_progress", "reason": ""},
    "assigned": {"from": "", "to": "客诉专员", "note": ""},
    "urged": {"department": "质量管理部", "count": 2, "overdue": True},
    "escalated": {"level": 1, "reason": "handoff", "detail": "质量管理部", "to": ["主管"]},
    "sla_breached": {"metric": "first_response", "due_at": "2026-11-24T12:00:00+08:00"},
    "resolved": {"resolution_type": "refund", "summary": "退款", "cost": "20.00", "root_cause": ""},
    "acceptance": {"accepted": False, "note": "不满意", "via": "phone"},
    "replied": {"body": "已告知顾客", "channel": "phone"},
}


@pytest.mark.parametrize("kind", TicketEvent.Kind.values)
def test_every_timeline_event_reads_in_words(kind):
    from django.utils import translation

    from kefu.tickets.display import event_line

    event = TicketEvent(kind=kind, data=EVENT_DATA.get(kind, {}))
    with translation.override("en"):
        line = event_line(event)
        label = str(TicketEvent.Kind(kind).label)
    assert line.title == label
    expected = {
        "status_changed": "Assigned → In progress",
        "urged": "Urge no. 2: 质量管理部 · answer overdue",
        "sla_breached": "First response due 2026-11-24 12:00",
        "resolved": "Refund · cost 20.00 yuan",
        "acceptance": "objected · by phone",
    }
    if kind in expected:
        assert line.summary == expected[kind]
    if kind == "replied":
        assert line.body == "已告知顾客"


# --- List -------------------------------------------------------------------------------------


def test_list_fragment_for_htmx_filters(agent, customer, complaint_specialist):
    complaint = open_ticket(agent, customer, subject="投诉一")
    consultation = open_ticket(agent, customer, type="consultation", subject="咨询一")
    response = client_for(agent).get(
        reverse("tickets:ticket_list"), {"tab": "open", "type": "consultation"}, headers=HX
    )
    html = response.content.decode()
    assert html.lstrip().startswith('<div id="results">')
    assert consultation.number in html
    assert complaint.number not in html


def test_list_tabs(agent, customer, complaint_specialist):
    mine = open_ticket(agent, customer, type="consultation", subject="我的", assignee=agent.pk)
    unassigned = open_ticket(agent, customer, type="consultation", subject="没人管")
    client = client_for(agent)

    def numbers(**params):
        return client.get(reverse("tickets:ticket_list"), params).content.decode()

    assert mine.number in numbers(tab="mine")
    assert unassigned.number not in numbers(tab="mine")
    assert unassigned.number in numbers(tab="unassigned")
    assert mine.number not in numbers(tab="unassigned")
    assert mine.number in numbers(assignee="mine", tab="all")
    assert mine.number in numbers(assignee=str(agent.pk), tab="all")
    assert unassigned.number not in numbers(assignee=str(agent.pk), tab="all")
    assert unassigned.number in numbers(assignee="none", tab="all")
    assert unassigned.number in numbers(q=unassigned.number)
    assert mine.number not in numbers(q=unassigned.number)
    assert mine.number in numbers(q="张三")  # the customer's name


def test_list_breaching_tab(agent, customer, sla_policies, complaint_specialist):
    late = open_ticket(agent, customer, subject="超时")
    on_time = open_ticket(agent, customer, subject="未超时")
    Ticket.objects.filter(pk=late.pk).update(
        first_response_due_at=timezone.now() - dt.timedelta(minutes=5)
    )
    html = client_for(agent).get(reverse("tickets:ticket_list"), {"tab": "breaching"})
    html = html.content.decode()
    assert late.number in html
    assert on_time.number not in html
    assert "sla-breached" in html


@pytest.mark.parametrize(
    "params",
    [
        {"assignee": "someone"},
        {"created_from": "yesterday"},
        {"category": "99999999999999999999999"},
        {"assignee": "99999999999999999999999"},
        {"page": "many"},
        {"tab": "nonsense"},
    ],
)
def test_list_survives_bad_filters(agent, ticket, params):
    """Bad filter values name the problem or match nothing; never a server error."""
    response = client_for(agent).get(reverse("tickets:ticket_list"), params, headers=HX)
    assert response.status_code == 200
    assert response.content.decode().lstrip().startswith('<div id="results">')


def test_list_pages_without_counting(agent, customer):
    for i in range(PAGE_SIZE + 2):
        open_ticket(agent, customer, type="consultation", subject=f"咨询{i}")
    client = client_for(agent)
    with CaptureQueriesContext(connection) as queries:
        first = client.get(reverse("tickets:ticket_list")).content.decode()
    ticket_sql = [
        q["sql"].upper() for q in queries.captured_queries if "TICKETS_TICKET" in q["sql"].upper()
    ]
    assert ticket_sql
    assert not any("COUNT(" in sql for sql in ticket_sql)
    assert 'rel="next"' in first
    assert 'rel="prev"' not in first
    second = client.get(reverse("tickets:ticket_list"), {"page": 2}).content.decode()
    assert 'rel="prev"' in second
    assert 'rel="next"' not in second
    assert "咨询0<" in second  # the oldest is last


def test_list_query_count_is_constant(
    agent, customer, store, sla_policies, complaint_specialist, django_assert_max_num_queries
):
    client = client_for(agent)
    url = reverse("tickets:ticket_list")
    open_ticket(agent, customer, store=store.pk)
    client.get(url)  # warm caches (content types, permissions)
    with CaptureQueriesContext(connection) as few:
        client.get(url)
    for i in range(PAGE_SIZE):
        open_ticket(agent, make_customer(name=f"顾客{i}"), store=store.pk, assignee=agent.pk)
    with django_assert_max_num_queries(len(few.captured_queries)):
        response = client.get(url)
    assert response.content.decode().count("data-ticket=") == PAGE_SIZE


# --- Attachments ------------------------------------------------------------------------------


def test_attachment_upload_and_download_permissions(
    settings, tmp_path, agent, handler, store_manager, ticket
):
    settings.MEDIA_ROOT = tmp_path
    upload = SimpleUploadedFile("receipt.pdf", b"%PDF-1.4 receipt", content_type="application/pdf")
    response = client_for(agent).post(
        reverse("tickets:ticket_attach", args=[ticket.pk]), {"file": upload}
    )
    assert response.status_code == 302
    attachment = ticket.attachments.get()
    url = reverse("tickets:ticket_attachment", args=[ticket.pk, attachment.pk])
    assert url in client_for(agent).get(ticket.get_absolute_url()).content.decode()

    response = client_for(agent).get(url)
    assert response.status_code == 200
    assert b"".join(response.streaming_content) == b"%PDF-1.4 receipt"
    assert client_for(handler).get(url).status_code == 404  # not handed to their department
    assert client_for(store_manager).get(url).status_code == 404  # not their store
    assert client_for(None).get(url).status_code == 302
    other = reverse("tickets:ticket_attachment", args=[ticket.pk, attachment.pk + 1])
    assert client_for(agent).get(other).status_code == 404


def test_attachment_of_a_forbidden_type_shows_the_error(settings, tmp_path, agent, ticket):
    settings.MEDIA_ROOT = tmp_path
    upload = SimpleUploadedFile("run.exe", b"MZ", content_type="application/octet-stream")
    response = client_for(agent).post(
        reverse("tickets:ticket_attach", args=[ticket.pk]), {"file": upload}, headers=HX
    )
    assert response.status_code == 200
    assert ".exe" in response.content.decode()
    assert not ticket.attachments.exists()


def test_an_svg_stored_before_the_type_list_is_downloaded_not_shown(
    settings, tmp_path, agent, ticket
):
    """An image/svg+xml file can run script when opened: it comes as a download, never sniffed."""
    from django.core.files.base import ContentFile

    from kefu.tickets.models import TicketAttachment

    settings.MEDIA_ROOT = tmp_path
    attachment = TicketAttachment(
        ticket=ticket, name="logo.svg", size=24, content_type="image/svg+xml", uploaded_by=agent
    )
    attachment.file.save("logo.svg", ContentFile(b"<svg onload='alert(1)'/>"), save=False)
    attachment.save()
    # when
    response = client_for(agent).get(
        reverse("tickets:ticket_attachment", args=[ticket.pk, attachment.pk])
    )
    # then
    assert response["Content-Disposition"].startswith("attachment")
    assert response["Content-Type"] == "application/octet-stream"
    assert response["X-Content-Type-Options"] == "nosniff"


# --- Navigation -------------------------------------------------------------------------------


def test_navigation_shows_tickets_follow_ups_and_department_queue(agent, handler):
    agent_html = client_for(agent).get(reverse("tickets:ticket_list")).content.decode()
    assert reverse("followups:followup_list") in agent_html
    assert reverse("tickets:handoff_list") not in agent_html
    handler_html = client_for(handler).get(reverse("tickets:handoff_list")).content.decode()
    assert reverse("tickets:handoff_list") in handler_html
    assert reverse("followups:followup_list") not in handler_html


def test_agent_goes_off_and_on_duty_from_the_list(client, agent):
    from kefu.tickets.models import Queue, QueueMember

    member = QueueMember.objects.create(queue=Queue.objects.create(name="客服组"), user=agent)
    client.force_login(agent)
    assert b"duty-form" in client.get("/tickets/").content
    response = client.post("/tickets/duty/", {"on_duty": "0"})
    assert response.status_code == 302
    member.refresh_from_db()
    assert not member.is_on_duty
    client.post("/tickets/duty/", {"on_duty": "1"})
    member.refresh_from_db()
    assert member.is_on_duty


def test_duty_needs_login_and_post(client, agent):
    assert client.post("/tickets/duty/", {"on_duty": "0"}).status_code == 302  # to login
    client.force_login(agent)
    assert client.get("/tickets/duty/").status_code == 405


def test_customer_profile_shows_the_tickets_on_its_timeline(client, agent, customer):
    """The customer's timeline lists the ticket with a link, and offers a new ticket for them."""
    from kefu.tickets import services

    ticket = services.ticket_create(
        actor=agent, data={"type": "complaint", "subject": "买到过期药品", "customer": customer.pk}
    )
    client.force_login(agent)
    page = client.get(customer.get_absolute_url()).content.decode()
    assert f'href="{ticket.get_absolute_url()}"' in page
    assert ticket.number in page
    assert f"/tickets/new/?customer={customer.pk}" in page


# --- Calling the customer (issue 10 point 11) ----------------------------------------------------


def test_the_assignee_calls_the_customer_from_the_ticket(agent, customer, ticket):
    """The ticket page shows the phone masked and a call button; pressing it gives the full
    number as a tel: link in its place, audited as a reveal for this ticket."""
    from kefu.audit.models import AuditEntry

    Ticket.objects.filter(pk=ticket.pk).update(assignee=agent)
    client = client_for(agent)
    page = client.get(reverse("tickets:ticket_detail", args=[ticket.pk])).content.decode()
    call_url = reverse("tickets:ticket_call", args=[ticket.pk])
    assert "138****1234" in page
    assert "13812341234" not in page
    assert f'hx-post="{call_url}"' in page
    response = client.post(call_url, headers=HX)
    html = response.content.decode()
    assert response.status_code == 200
    assert 'href="tel:+8613812341234"' in html
    assert "<html" not in html
    entry = AuditEntry.objects.get(action="customer.contact_revealed")
    assert (entry.actor, entry.target_id) == (agent, str(customer.pk))
    assert entry.changes["call_for"] == {"type": "ticket", "id": ticket.pk, "number": ticket.number}
    # without HTMX: a page with the link and the way back
    full = client.post(call_url).content.decode()
    assert 'href="tel:+8613812341234"' in full
    assert ticket.get_absolute_url() in full


@pytest.mark.parametrize(
    ("role", "button", "status"),
    [("other_agent", False, 403), ("supervisor", True, 200), ("records_officer", False, 403)],
)
def test_who_may_call_from_a_ticket(request, agent, customer, ticket, role, button, status):
    """Not the assignee: no button and a refusal, nothing revealed or audited; a supervisor
    may call about any ticket."""
    from kefu.audit.models import AuditEntry

    Ticket.objects.filter(pk=ticket.pk).update(assignee=agent)
    user = (
        UserFactory(username="other-agent", role="agent")
        if role == "other_agent"
        else request.getfixturevalue(role)
    )
    client = client_for(user)
    call_url = reverse("tickets:ticket_call", args=[ticket.pk])
    page = client.get(reverse("tickets:ticket_detail", args=[ticket.pk])).content.decode()
    assert (call_url in page) is button
    response = client.post(call_url, headers=HX)
    assert response.status_code == status
    assert ("13812341234" in response.content.decode()) is (status == 200)
    revealed = AuditEntry.objects.filter(action="customer.contact_revealed").count()
    assert revealed == (1 if status == 200 else 0)
