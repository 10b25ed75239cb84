"""The /api/v1/campaigns endpoints: who may call them, field-named errors, the segment preview,
launching a campaign into the outbox, recipients, opt-outs and benefits."""

import pytest
from django.test import Client

from kefu.accounts.services import api_token_create
from kefu.campaigns import services
from kefu.campaigns.models import (
    Campaign,
    MemberBenefit,
    MessageTemplate,
    OptOut,
    OutboxMessage,
    Segment,
)
from kefu.campaigns.tests.factories import launch_confirmed
from kefu.customers.tests.factories import make_customer

pytestmark = pytest.mark.django_db

BASE = "/api/v1/campaigns"


def api_client(user) -> Client:
    """A client authenticating with a bearer token, as an integration does."""
    if user is None:
        return Client()
    _token, key = api_token_create(user=user, name="test", actor=None)
    return Client(headers={"authorization": f"Bearer {key}"})


def call(client: Client, method: str, url: str, body=None):
    if method == "get":
        return client.get(url)
    return getattr(client, method)(url, body or {}, content_type="application/json")


@pytest.fixture(autouse=True)
def _no_rate_limit(settings):
    settings.CAMPAIGN_RATES = {"sms": 0, "email": 0, "wechat": 0}


@pytest.fixture
def sms_template(db):
    return MessageTemplate.objects.create(
        name="会员日短信", gateway="sms", body="{name}您好，本周六会员日全场9折。"
    )


@pytest.fixture
def vip_segment(records_officer):
    return services.segment_save(actor=records_officer, name="VIP", filters={"levels": ["vip"]})


@pytest.fixture
def campaign(records_officer, sms_template, vip_segment):
    return services.campaign_create(
        actor=records_officer,
        data={"name": "六月会员日", "template": sms_template.pk, "segment": vip_segment.pk},
    )


RUNS = {"agent": 403, "records_officer": 200, "manager": 200, "handler": 403}
CREATES = {"agent": 403, "records_officer": 201, "manager": 201, "handler": 403}
CARES = {"agent": 201, "records_officer": 201, "manager": 201, "handler": 403}
GIVES = {"agent": 201, "records_officer": 201, "manager": 201, "handler": 403}
# Only managers decide on large campaigns (409 here: the campaign is a draft, not awaiting).
DECIDES = {"agent": 403, "records_officer": 403, "manager": 409, "handler": 403}
SEES_BENEFITS = {"agent": 200, "records_officer": 200, "manager": 200, "handler": 403}

# name: (method, url template, body, {role: status}); 401 for anonymous everywhere.
MATRIX = {
    "segment_list": ("get", "/segments", None, RUNS),
    "segment_create": ("post", "/segments", {"name": "新客", "filters": {}}, CREATES),
    "segment_update": ("put", "/segments/{segment}", {"name": "改名", "filters": {}}, RUNS),
    "segment_preview": ("post", "/segments/preview", {"filters": {"levels": ["vip"]}}, RUNS),
    "template_list": ("get", "/templates", None, RUNS),
    "template_create": (
        "post",
        "/templates",
        {"name": "提醒", "gateway": "sms", "body": "{name}您好"},
        CREATES,
    ),
    "test_send": ("post", "/templates/{template}/test-send", {"to": "13800138000"}, RUNS),
    "campaign_list": ("get", "", None, RUNS),
    "campaign_create": (
        "post",
        "",
        {"name": "促销", "template_id": "{template}", "segment_id": "{segment}"},
        CREATES,
    ),
    "campaign_detail": ("get", "/{campaign}", None, RUNS),
    "campaign_estimate": ("get", "/{campaign}/estimate", None, RUNS),
    "campaign_launch": ("post", "/{campaign}/launch", {"confirm_count": 1}, RUNS),
    "campaign_approve": ("post", "/{campaign}/approve", None, DECIDES),
    "campaign_refuse": ("post", "/{campaign}/refuse", {"reason": "人数太多"}, DECIDES),
    "campaign_events": ("get", "/{campaign}/events", None, RUNS),
    "campaign_cancel": ("post", "/{campaign}/cancel", None, RUNS),
    "campaign_recipients": ("get", "/{campaign}/recipients", None, RUNS),
    "optout_create": (
        "post",
        "/opt-outs",
        {"customer_id": "{customer}", "channel": "sms", "source": "回复TD"},
        CARES,
    ),
    "benefit_create": (
        "post",
        "/benefits",
        {"customer_id": "{customer}", "kind": "birthday", "occasion": "2026"},
        GIVES,
    ),
    "benefit_list": ("get", "/benefits", None, SEES_BENEFITS),
}


@pytest.mark.parametrize("name", sorted(MATRIX))
@pytest.mark.parametrize("role", ["anonymous", "agent", "records_officer", "manager", "handler"])
def test_permission_matrix(name, role, request, campaign, sms_template, vip_segment):
    """Campaigns, segments and templates are the records officer's and managers'; opt-outs
    anyone caring for customers; benefits the front line; anonymous callers get 401."""
    # given
    user = None if role == "anonymous" else request.getfixturevalue(role)
    customer = make_customer(name="王芳", level="vip")  # the campaign's one recipient
    ids = {
        "campaign": campaign.pk,
        "template": sms_template.pk,
        "segment": vip_segment.pk,
        "customer": customer.pk,
    }
    method, path, body, expected = MATRIX[name]
    if body:
        body = {k: ids.get(str(v).strip("{}"), v) for k, v in body.items()}
    # when
    response = call(api_client(user), method, BASE + path.format(**ids), body)
    # then
    want = 401 if role == "anonymous" else expected[role]
    assert response.status_code == want, response.content[:300]
    if want in (401, 403):
        assert response.json()["code"] in ("not_authenticated", "permission_denied")


def test_segment_create_names_bad_filters(records_officer):
    response = call(
        api_client(records_officer),
        "post",
        BASE + "/segments",
        {"name": "", "filters": {"levels": ["gold"], "birthday_within_days": 0, "colour": 1}},
    )
    body = response.json()
    assert response.status_code == 422
    assert body["code"] == "invalid"
    assert set(body["errors"]) == {"name", "levels", "birthday_within_days", "colour"}
    assert not Segment.objects.exists()


def test_segment_preview_counts_and_masks(records_officer, store):
    """The preview answers how many match today and the first of them, phones masked, and
    saves nothing."""
    # given
    make_customer(name="王芳", level="vip", store=store, phone="13812345678")
    make_customer(name="李强", level="normal", store=store)
    # when
    response = call(
        api_client(records_officer),
        "post",
        BASE + "/segments/preview",
        {"filters": {"levels": ["vip"], "stores": [store.pk]}},
    )
    # then
    body = response.json()
    assert response.status_code == 200
    assert body["count"] == 1
    assert [(c["name"], c["phone"], c["store"]) for c in body["sample"]] == [
        ("王芳", "138****5678", "人民路店")
    ]
    assert not Segment.objects.exists()


def test_segment_preview_names_bad_filters(records_officer):
    response = call(
        api_client(records_officer),
        "post",
        BASE + "/segments/preview",
        {"filters": {"last_purchase_within_days": "soon"}},
    )
    assert response.status_code == 422
    assert list(response.json()["errors"]) == ["last_purchase_within_days"]


def test_template_create_names_fields(records_officer):
    response = call(
        api_client(records_officer),
        "post",
        BASE + "/templates",
        {"name": "邮件", "gateway": "email", "body": "{nmae}您好"},
    )
    assert response.status_code == 422
    assert set(response.json()["errors"]) == {"subject", "body"}


def test_test_send_records_in_the_outbox(records_officer, sms_template):
    # when
    response = call(
        api_client(records_officer),
        "post",
        BASE + f"/templates/{sms_template.pk}/test-send",
        {"to": "138 0013 8000"},
    )
    # then
    message = OutboxMessage.objects.get()
    assert response.status_code == 200
    assert response.json() == {
        "to": "+8613800138000",
        "gateway": "sms",
        "provider_id": f"outbox-{message.pk}",
        "body": message.body,
        "segments": 1,
    }


def test_test_send_names_a_bad_address(records_officer, sms_template):
    response = call(
        api_client(records_officer),
        "post",
        BASE + f"/templates/{sms_template.pk}/test-send",
        {"to": ""},
    )
    assert response.status_code == 422
    assert list(response.json()["errors"]) == ["to"]


def test_campaign_create_names_fields(records_officer):
    response = call(
        api_client(records_officer),
        "post",
        BASE,
        {"name": "", "template_id": 999, "scheduled_at": "tomorrow"},
    )
    body = response.json()
    assert response.status_code == 422
    assert "scheduled_at" in body["errors"]
    # the schema checks the date's shape; the rest is checked by the service once it parses
    response = call(api_client(records_officer), "post", BASE, {"name": "", "template_id": 999})
    assert set(response.json()["errors"]) == {"name", "template_id", "segment_id"}


def test_launch_sends_to_the_outbox_and_detail_counts(
    records_officer, campaign, django_capture_on_commit_callbacks
):
    """Launching queues and (inline here) sends; the detail counts who got it."""
    # given
    wang = make_customer(name="王芳", level="vip")
    make_customer(name="无电话", level="vip", phone=None)
    client = api_client(records_officer)
    # when
    with django_capture_on_commit_callbacks(execute=True):
        launched = call(client, "post", BASE + f"/{campaign.pk}/launch", {"confirm_count": 1})
    detail = call(client, "get", BASE + f"/{campaign.pk}")
    again = call(client, "post", BASE + f"/{campaign.pk}/launch", {"confirm_count": 1})
    # then
    assert launched.status_code == 200
    assert detail.json()["status"] == "done"
    assert detail.json()["total"] == 2
    assert detail.json()["counts"]["sent"] == 1
    assert detail.json()["counts"]["no_address"] == 1
    assert list(OutboxMessage.objects.values_list("customer", flat=True)) == [wang.pk]
    assert again.status_code == 409
    assert again.json()["code"] == "campaign_launched"


def test_launch_needs_the_count_the_estimate_gives(records_officer, campaign, settings):
    """An integration reads /estimate (recipients, SMS segments) and confirms that count."""
    settings.CAMPAIGN_SIGNATURES = {"sms": "康宁大药房"}
    make_customer(name="王芳", level="vip")
    make_customer(name="李强", level="vip")
    client = api_client(records_officer)
    # when
    estimate = call(client, "get", BASE + f"/{campaign.pk}/estimate")
    missing = call(client, "post", BASE + f"/{campaign.pk}/launch", {})
    stale = call(client, "post", BASE + f"/{campaign.pk}/launch", {"confirm_count": 5})
    launched = call(client, "post", BASE + f"/{campaign.pk}/launch", {"confirm_count": 2})
    # then
    assert estimate.status_code == 200
    assert estimate.json() | {"quiet_until": None} == {
        "recipients": 2,
        "opted_out": 0,
        "no_address": 0,
        "segments": 2,
        "longest": 27,
        "longest_segments": 1,
        "is_marketing": True,
        "quiet_hours": "",
        "quiet_until": None,
        "signature": "【康宁大药房】",
        "approval_threshold": 1000,
        "needs_approval": False,
    }
    assert missing.status_code == 422
    assert list(missing.json()["errors"]) == ["confirm_count"]
    assert stale.status_code == 422
    assert "2" in stale.json()["errors"]["confirm_count"][0]
    assert launched.status_code == 200
    assert launched.json()["confirmed_count"] == 2
    assert launched.json()["estimated_segments"] == 2
    assert launched.json()["launched_by"] == str(records_officer)


def test_a_manager_approves_a_large_campaign_through_the_api(
    records_officer, manager, campaign, settings
):
    settings.CAMPAIGN_APPROVAL_THRESHOLD = 1
    make_customer(name="王芳", level="vip")
    make_customer(name="李强", level="vip")
    launched = call(
        api_client(records_officer), "post", BASE + f"/{campaign.pk}/launch", {"confirm_count": 2}
    )
    boss = api_client(manager)
    blank = call(boss, "post", BASE + f"/{campaign.pk}/refuse", {"reason": ""})
    approved = call(boss, "post", BASE + f"/{campaign.pk}/approve")
    events = call(boss, "get", BASE + f"/{campaign.pk}/events")
    assert launched.json()["status"] == "awaiting_approval"
    assert blank.status_code == 422
    assert list(blank.json()["errors"]) == ["reason"]
    assert approved.json()["status"] in ("queued", "done")
    assert approved.json()["approved_by"] == str(manager)
    assert [e["kind"] for e in events.json()][:4] == [
        "created",
        "launched",
        "approval_requested",
        "approved",
    ]
    assert events.json()[3]["actor"] == str(manager)


def test_scheduled_launch_waits(records_officer, sms_template, vip_segment):
    make_customer(name="王芳", level="vip")
    created = call(
        api_client(records_officer),
        "post",
        BASE,
        {
            "name": "国庆",
            "template_id": sms_template.pk,
            "segment_id": vip_segment.pk,
            "scheduled_at": "2099-10-01T09:00:00+08:00",
        },
    )
    campaign_id = created.json()["id"]
    launched = call(
        api_client(records_officer), "post", BASE + f"/{campaign_id}/launch", {"confirm_count": 1}
    )
    assert created.status_code == 201
    assert launched.json()["status"] == "scheduled"
    assert Campaign.objects.get(pk=campaign_id).recipients.count() == 0


def test_recipients_page_with_masked_addresses(
    records_officer, campaign, django_capture_on_commit_callbacks
):
    # given
    for i in range(3):
        make_customer(name=f"客户{i}", level="vip", phone=f"1390000000{i}")
    with django_capture_on_commit_callbacks(execute=True):
        launch_confirmed(records_officer, campaign)
    client = api_client(records_officer)
    # when
    first = call(client, "get", BASE + f"/{campaign.pk}/recipients?limit=2")
    rest = call(client, "get", BASE + f"/{campaign.pk}/recipients?limit=2&offset=2")
    bad = call(client, "get", BASE + f"/{campaign.pk}/recipients?status=lost")
    # then
    page = first.json()
    assert [r["address"] for r in page["results"]] == ["139****0000", "139****0001"]
    assert page["has_more"]
    assert page["next"] == 2
    assert [r["customer"]["name"] for r in rest.json()["results"]] == ["客户2"]
    assert not rest.json()["has_more"]
    assert bad.status_code == 422
    assert list(bad.json()["errors"]) == ["status"]


def test_cancel_a_finished_campaign_is_a_conflict(records_officer, campaign):
    client = api_client(records_officer)
    assert call(client, "post", BASE + f"/{campaign.pk}/cancel").json()["status"] == "cancelled"
    assert call(client, "post", BASE + f"/{campaign.pk}/cancel").status_code == 409


def test_optout_names_a_bad_channel_and_hides_other_stores(store_manager, other_store):
    elsewhere = make_customer(name="别店客户", store=other_store)
    own = make_customer(name="本店客户", store=store_manager.store)
    client = api_client(store_manager)
    bad = call(client, "post", BASE + "/opt-outs", {"customer_id": own.pk, "channel": "fax"})
    hidden = call(
        client, "post", BASE + "/opt-outs", {"customer_id": elsewhere.pk, "channel": "sms"}
    )
    assert bad.status_code == 422
    assert list(bad.json()["errors"]) == ["channel"]
    assert hidden.status_code == 404
    assert not OptOut.objects.exists()


def test_benefit_once_per_occasion_and_listed(agent):
    wang, li = make_customer(name="王芳"), make_customer(name="李强")
    client = api_client(agent)
    body = {"customer_id": wang.pk, "kind": "holiday", "occasion": "2026 中秋节"}
    # when
    first = call(client, "post", BASE + "/benefits", body)
    again = call(client, "post", BASE + "/benefits", body)
    call(
        client,
        "post",
        BASE + "/benefits",
        {"customer_id": li.pk, "kind": "birthday", "occasion": "2026"},
    )
    missing = call(client, "post", BASE + "/benefits", {"customer_id": li.pk, "kind": "gift"})
    listed = call(client, "get", BASE + "/benefits?occasion=中秋")
    # then
    assert first.status_code == 201
    assert first.json()["given_by"] == str(agent)
    assert again.status_code == 409
    assert again.json()["code"] == "benefit_given"
    assert missing.status_code == 422
    assert set(missing.json()["errors"]) == {"kind", "occasion"}
    assert [b["customer"]["name"] for b in listed.json()["results"]] == ["王芳"]
    assert MemberBenefit.objects.count() == 2
