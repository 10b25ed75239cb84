"""Bulk-message and member-care pages: who may open them, the segment preview, templates and
their test send, launching a campaign into the outbox, opt-outs and benefits."""

import pytest
from django.contrib.auth.models import Permission
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from kefu.accounts.models import User
from kefu.accounts.tests.factories import UserFactory
from kefu.campaigns import services
from kefu.campaigns.models import (
    Campaign,
    CampaignRecipient,
    MemberBenefit,
    MessageTemplate,
    OptOut,
    OutboxMessage,
    Segment,
)
from kefu.customers.tests.factories import make_customer

pytestmark = pytest.mark.django_db

HX = {"HX-Request": "true"}


def client_for(user) -> Client:
    client = Client()
    if user is not None:
        client.force_login(user)
    return client


@pytest.fixture(autouse=True)
def _no_rate_limit(settings):
    """Dispatching never waits for the gateway's rate in these tests."""
    settings.CAMPAIGN_RATES = {"sms": 0, "email": 0, "wechat": 0}


@pytest.fixture
def sms_template(db):
    return MessageTemplate.objects.create(
        name="会员日短信",
        gateway="sms",
        purpose=MessageTemplate.Purpose.PROMOTION,
        body="{name}您好，{store}本周六会员日全场9折。",
    )


@pytest.fixture
def vip_segment(records_officer, store):
    return services.segment_save(
        actor=records_officer, name="人民路店VIP", filters={"levels": ["vip"], "stores": [store.pk]}
    )


@pytest.fixture
def campaign(records_officer, sms_template, vip_segment):
    return services.campaign_create(
        actor=records_officer,
        data={"name": "六月会员日", "template": sms_template.pk, "segment": vip_segment.pk},
    )


# page: (method, url name, kwargs builder, data, {role: expected status})
PAGES = {
    "campaign_list": ("get", "campaigns:campaign_list", lambda o: {}, None),
    "campaign_create": ("get", "campaigns:campaign_create", lambda o: {}, None),
    "campaign_detail": ("get", "campaigns:campaign_detail", lambda o: {"pk": o["c"].pk}, None),
    "campaign_launch": ("post", "campaigns:campaign_launch", lambda o: {"pk": o["c"].pk}, {}),
    "campaign_approve": ("post", "campaigns:campaign_approve", lambda o: {"pk": o["c"].pk}, {}),
    "campaign_refuse": (
        "post",
        "campaigns:campaign_refuse",
        lambda o: {"pk": o["c"].pk},
        {"reason": "人数太多"},
    ),
    "segment_list": ("get", "campaigns:segment_list", lambda o: {}, None),
    "segment_create": ("get", "campaigns:segment_create", lambda o: {}, None),
    "segment_preview": ("post", "campaigns:segment_create", lambda o: {}, {"preview": "1"}),
    "template_list": ("get", "campaigns:template_list", lambda o: {}, None),
    "template_edit": ("get", "campaigns:template_edit", lambda o: {"pk": o["t"].pk}, None),
    "outbox": ("get", "campaigns:outbox_list", lambda o: {}, None),
    "optout_form": ("get", "campaigns:optout_create", lambda o: {}, None),
    "optout_list": ("get", "campaigns:optout_list", lambda o: {}, None),
    "benefit_form": ("get", "campaigns:benefit_create", lambda o: {}, None),
    "benefit_list": ("get", "campaigns:benefit_list", lambda o: {}, None),
}
RUNS_CAMPAIGNS = {"agent": 403, "records_officer": 200, "manager": 200, "store_manager": 403}
CARES = {"agent": 200, "records_officer": 200, "manager": 200, "store_manager": 200}
GIVES_BENEFITS = {"agent": 200, "records_officer": 200, "manager": 200, "store_manager": 200}
EXPECTED = {
    "campaign_list": RUNS_CAMPAIGNS,
    "campaign_create": RUNS_CAMPAIGNS,
    "campaign_detail": RUNS_CAMPAIGNS,
    "campaign_launch": {**RUNS_CAMPAIGNS, "records_officer": 302, "manager": 302},
    # Only managers decide on large campaigns (a draft: back to its page with an error).
    "campaign_approve": {"manager": 302},
    "campaign_refuse": {"manager": 302},
    "segment_list": RUNS_CAMPAIGNS,
    "segment_create": RUNS_CAMPAIGNS,
    "segment_preview": RUNS_CAMPAIGNS,
    "template_list": RUNS_CAMPAIGNS,
    "template_edit": RUNS_CAMPAIGNS,
    "outbox": RUNS_CAMPAIGNS,
    "optout_form": CARES,
    "optout_list": CARES,
    "benefit_form": GIVES_BENEFITS,
    "benefit_list": GIVES_BENEFITS,
}


@pytest.mark.parametrize("page", sorted(PAGES))
@pytest.mark.parametrize(
    "role", ["anonymous", "agent", "records_officer", "manager", "store_manager", "handler"]
)
def test_page_permission_matrix(page, role, request, campaign, sms_template):
    """Campaign pages are the records officer's and managers'; opt-outs anyone caring for
    customers; benefits the front line. Anonymous users go to the login page."""
    # given
    user = None if role == "anonymous" else request.getfixturevalue(role)
    method, name, kwargs, data = PAGES[page]
    url = reverse(name, kwargs=kwargs({"c": campaign, "t": sms_template}))
    # when
    response = getattr(client_for(user), method)(url, data or {})
    # then
    if role == "anonymous":
        assert response.status_code == 302
        assert "/accounts/login/" in response["Location"]
    else:
        assert response.status_code == EXPECTED[page].get(role, 403), response.content[:300]


# --- Segments -------------------------------------------------------------------------------------


def test_segment_preview_fragment_counts_and_masks_phones(records_officer, store):
    """The HTMX preview answers with the fragment only: how many match and the first of them,
    phones masked; nothing is saved."""
    # given
    make_customer(name="王芳", level="vip", store=store, phone="13812345678")
    make_customer(name="李强", level="vip", store=store)
    make_customer(name="普通客户", level="normal", store=store)
    # when
    response = client_for(records_officer).post(
        reverse("campaigns:segment_create"),
        {"preview": "1", "levels": ["vip"], "stores": [store.pk]},
        headers=HX,
    )
    # then
    body = response.content.decode()
    assert response.status_code == 200
    assert "<html" not in body
    assert 'id="segment-preview"' in body
    assert 'data-testid="preview-count">2<' in body
    assert "王芳" in body
    assert "李强" in body
    assert "普通客户" not in body
    assert "138****5678" in body
    assert "13812345678" not in body
    assert not Segment.objects.exists()


def test_segment_preview_names_bad_filters(records_officer):
    """A bad filter shows in the preview with its label instead of a count."""
    # when
    response = client_for(records_officer).post(
        reverse("campaigns:segment_create"),
        {"preview": "1", "birthday_within_days": "400"},
        headers=HX,
    )
    # then
    body = response.content.decode()
    assert response.status_code == 200
    assert 'role="alert"' in body
    assert "preview-count" not in body
    assert 'data-field="birthday_within_days"' in body


def test_segment_saved_from_the_form(records_officer, store):
    """Saving keeps the filters as segment_customers reads them and goes back to the list."""
    # when
    response = client_for(records_officer).post(
        reverse("campaigns:segment_create"),
        {
            "name": "慢病会员",
            "statuses": ["member"],
            "stores": [store.pk],
            "tags": "慢病， 高血压",
            "last_purchase_before_days": "90",
            "churn_risk": "on",
        },
    )
    # then
    assert response.status_code == 302
    assert response["Location"] == reverse("campaigns:segment_list")
    segment = Segment.objects.get()
    assert segment.filters == {
        "statuses": ["member"],
        "stores": [store.pk],
        "tags": ["慢病", "高血压"],
        "last_purchase_before_days": 90,
        "churn_risk": True,
    }
    assert segment.created_by == records_officer


def test_segment_form_errors_name_the_fields(records_officer, vip_segment):
    """A missing name, a taken name or days out of range re-render the form (200) with each
    error on its field."""
    client = client_for(records_officer)
    # when: no name and a birthday window too wide
    first = client.post(
        reverse("campaigns:segment_create"), {"name": "", "birthday_within_days": "999"}
    )
    # and: the name of another segment
    second = client.post(reverse("campaigns:segment_create"), {"name": vip_segment.name})
    # then
    assert first.status_code == 200
    assert set(first.context["form"].errors) == {"name", "birthday_within_days"}
    assert second.status_code == 200
    assert "name" in second.context["form"].errors
    assert Segment.objects.count() == 1


def test_segment_edit_shows_its_filters_and_saves_changes(records_officer, vip_segment, store):
    client = client_for(records_officer)
    url = reverse("campaigns:segment_edit", args=[vip_segment.pk])
    # when
    page = client.get(url)
    response = client.post(url, {"name": "人民路店大客户", "levels": ["key_account"]})
    # then
    assert page.status_code == 200
    assert page.context["form"].initial["levels"] == ["vip"]
    assert response.status_code == 302
    vip_segment.refresh_from_db()
    assert vip_segment.name == "人民路店大客户"
    assert vip_segment.filters == {"levels": ["key_account"]}


# --- Templates ------------------------------------------------------------------------------------


def test_template_created_and_errors_named(records_officer):
    client = client_for(records_officer)
    # when: an unknown variable, an e-mail without subject
    bad = client.post(
        reverse("campaigns:template_create"),
        {"name": "健康提示", "gateway": "email", "purpose": "health_tip", "body": "{nmae}您好"},
    )
    good = client.post(
        reverse("campaigns:template_create"),
        {
            "name": "健康提示",
            "gateway": "email",
            "purpose": "health_tip",
            "subject": "夏季用药提示",
            "body": "{name}您好，夏季请注意防暑。",
            "is_active": "on",
        },
    )
    # then
    assert bad.status_code == 200
    assert set(bad.context["form"].errors) == {"subject", "body"}
    template = MessageTemplate.objects.get()
    assert good.status_code == 302
    assert good["Location"] == reverse("campaigns:template_edit", args=[template.pk])
    assert template.subject == "夏季用药提示"
    assert template.is_active


def test_test_send_goes_to_the_outbox_and_says_where(records_officer, sms_template):
    """The test message is recorded in the outbox for the phone given, normalized; the panel
    says where it went."""
    # when
    response = client_for(records_officer).post(
        reverse("campaigns:template_test_send", args=[sms_template.pk]),
        {"to": "138 0013 8000"},
        headers=HX,
    )
    # then
    body = response.content.decode()
    message = OutboxMessage.objects.get()
    assert response.status_code == 200
    assert 'data-testid="test-sent"' in body
    assert f"outbox-{message.pk}" in body
    assert message.to == "+8613800138000"
    assert message.subject.startswith("[")
    assert message.customer is None


def test_test_send_refuses_a_bad_phone(records_officer, sms_template):
    response = client_for(records_officer).post(
        reverse("campaigns:template_test_send", args=[sms_template.pk]),
        {"to": "12345"},
        headers=HX,
    )
    assert response.status_code == 200
    assert 'data-field="to"' in response.content.decode()
    assert not OutboxMessage.objects.exists()


def test_test_send_needs_the_send_permission(agent, sms_template):
    response = client_for(agent).post(
        reverse("campaigns:template_test_send", args=[sms_template.pk]), {"to": "13800138000"}
    )
    assert response.status_code == 403
    assert not OutboxMessage.objects.exists()


# --- Campaigns ------------------------------------------------------------------------------------


def test_campaign_created_from_the_form(records_officer, sms_template, vip_segment):
    # when
    response = client_for(records_officer).post(
        reverse("campaigns:campaign_create"),
        {"name": "六月会员日", "template": sms_template.pk, "segment": vip_segment.pk},
    )
    # then
    campaign = Campaign.objects.get()
    assert response.status_code == 302
    assert response["Location"] == reverse("campaigns:campaign_detail", args=[campaign.pk])
    assert campaign.status == Campaign.Status.DRAFT
    assert campaign.created_by == records_officer


def test_campaign_form_errors_name_the_fields(records_officer, sms_template):
    """A missing segment and a missing name are named on their fields."""
    response = client_for(records_officer).post(
        reverse("campaigns:campaign_create"),
        {"name": "", "template": sms_template.pk, "scheduled_at": "not a date"},
    )
    assert response.status_code == 200
    assert set(response.context["form"].errors) == {"segment", "scheduled_at"}
    assert not Campaign.objects.exists()


def test_campaign_detail_previews_the_message_for_a_segment_customer(
    records_officer, campaign, store
):
    make_customer(name="王芳", level="vip", store=store)
    response = client_for(records_officer).get(campaign.get_absolute_url())
    body = response.content.decode()
    assert response.status_code == 200
    assert "王芳您好，人民路店本周六会员日全场9折。" in body
    assert 'data-testid="campaign-launch"' in body


def test_launching_from_the_page_sends_to_the_outbox_and_shows_counts(
    records_officer, campaign, store, django_capture_on_commit_callbacks
):
    """Send now queues the audience and the worker (inline here) sends each reachable customer
    one message; the counts show who got it and who was skipped, and stop refreshing."""
    # given: two reachable VIPs, one opted out, one without a phone, one of another level
    wang = make_customer(name="王芳", level="vip", store=store)
    li = make_customer(name="李强", level="vip", store=store)
    refuses = make_customer(name="赵敏", level="vip", store=store)
    services.optout_record(actor=None, customer_id=refuses.pk, channel="all", source="回复TD")
    make_customer(name="无电话", level="vip", store=store, phone=None)
    make_customer(name="普通", level="normal", store=store)
    client = client_for(records_officer)
    panel = client.get(campaign.get_absolute_url()).content.decode()
    # when
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            reverse("campaigns:campaign_launch", args=[campaign.pk]),
            {"confirm_count": 2, "confirmed": "on"},
        )
    page = client.get(campaign.get_absolute_url())
    counts = client.get(campaign.get_absolute_url(), headers=HX)
    # then: the page asked to confirm 2 recipients before sending
    assert 'data-testid="estimate-recipients">2<' in panel
    assert 'name="confirm_count" value="2"' in panel
    assert response.status_code == 302
    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.DONE
    assert sorted(OutboxMessage.objects.values_list("customer", flat=True)) == sorted(
        [wang.pk, li.pk]
    )
    body = counts.content.decode()
    assert "<html" not in body
    assert 'data-count="sent">2<' in body
    assert 'data-count="opted_out">1<' in body
    assert 'data-count="no_address">1<' in body
    assert 'data-count="total">4<' in body
    assert "hx-trigger" not in body
    assert 'data-testid="campaign-launch"' not in page.content.decode()


def test_counts_poll_while_the_campaign_sends(records_officer, campaign):
    """A campaign being sent refreshes its counts by polling every few seconds."""
    Campaign.objects.filter(pk=campaign.pk).update(status=Campaign.Status.SENDING)
    response = client_for(records_officer).get(campaign.get_absolute_url(), headers=HX)
    body = response.content.decode()
    assert 'hx-trigger="every 3s"' in body
    assert 'data-status="sending"' in body


def test_launching_twice_shows_an_error_not_a_crash(records_officer, campaign, store):
    make_customer(name="王芳", level="vip", store=store)
    client = client_for(records_officer)
    url = reverse("campaigns:campaign_launch", args=[campaign.pk])
    client.post(url, {"confirm_count": 1, "confirmed": "on"})
    response = client.post(url, {"confirm_count": 1, "confirmed": "on"}, follow=True)
    assert response.status_code == 200
    errors = [str(m) for m in response.context["messages"] if m.level_tag == "error"]
    assert errors == ["该群发任务已启动。"]
    assert Campaign.objects.get(pk=campaign.pk).events.filter(kind="launched").count() == 1


def _errors(response) -> list[str]:
    return [str(m) for m in response.context["messages"] if m.level_tag == "error"]


def test_the_launch_panel_shows_what_goes_out_and_needs_a_confirmation(
    records_officer, campaign, store, settings
):
    """Before anything is sent the page shows the recipients, the SMS they make (signature and
    footer counted) and the quiet hours, and sending needs the tick and the shown count."""
    settings.CAMPAIGN_SIGNATURES = {"sms": "康宁大药房"}
    settings.SMS_QUIET_HOURS = "21:00-08:00"
    make_customer(name="王芳", level="vip", store=store)
    make_customer(name="李强", level="vip", store=store)
    make_customer(name="无电话", level="vip", store=store, phone=None)
    client = client_for(records_officer)
    url = reverse("campaigns:campaign_launch", args=[campaign.pk])
    # when
    page = client.get(campaign.get_absolute_url()).content.decode()
    unticked = client.post(url, {"confirm_count": 2}, follow=True)
    stale = client.post(url, {"confirm_count": 3, "confirmed": "on"}, follow=True)
    # then
    assert 'data-testid="estimate-recipients">2<' in page
    assert "1 位无联系方式" in page
    assert 'data-testid="estimate-segments">约 2 条短信' in page
    assert "【康宁大药房】" in page
    assert "21:00–08:00" in page
    assert "【康宁大药房】王芳您好，人民路店本周六会员日全场9折。回T退订" in page
    assert _errors(unticked) == ["请勾选确认收件人和短信内容。"]
    assert _errors(stale) == ["该群发现有 2 位收件人，而非 3 位：请核对后重新确认。"]
    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.DRAFT


def test_a_manager_approves_a_large_campaign_from_its_page(
    records_officer, manager, campaign, store, settings, django_capture_on_commit_callbacks
):
    settings.CAMPAIGN_APPROVAL_THRESHOLD = 1
    make_customer(name="王芳", level="vip", store=store)
    make_customer(name="李强", level="vip", store=store)
    officer = client_for(records_officer)
    # when: the records officer sends it
    launched = officer.post(
        reverse("campaigns:campaign_launch", args=[campaign.pk]),
        {"confirm_count": 2, "confirmed": "on"},
        follow=True,
    )
    # then: it waits for a manager; she cannot approve it herself
    body = launched.content.decode()
    assert 'data-testid="approval-panel"' in body
    assert 'data-testid="approve-form"' not in body
    assert (
        officer.post(reverse("campaigns:campaign_approve", args=[campaign.pk])).status_code == 403
    )
    # when: the manager opens it from the notification and approves it
    boss = client_for(manager)
    page = boss.get(campaign.get_absolute_url()).content.decode()
    with django_capture_on_commit_callbacks(execute=True):
        approved = boss.post(reverse("campaigns:campaign_approve", args=[campaign.pk]))
    # then
    assert 'data-testid="approve-form"' in page
    assert 'data-testid="refuse-form"' in page
    assert approved.status_code == 302
    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.DONE
    assert OutboxMessage.objects.count() == 2
    history = boss.get(campaign.get_absolute_url()).content.decode()
    assert 'data-event="approval_requested"' in history
    assert 'data-event="approved"' in history


def test_refusing_from_the_page_needs_a_reason(records_officer, manager, campaign, store, settings):
    settings.CAMPAIGN_APPROVAL_THRESHOLD = 1
    make_customer(name="王芳", level="vip", store=store)
    make_customer(name="李强", level="vip", store=store)
    client_for(records_officer).post(
        reverse("campaigns:campaign_launch", args=[campaign.pk]),
        {"confirm_count": 2, "confirmed": "on"},
    )
    boss = client_for(manager)
    url = reverse("campaigns:campaign_refuse", args=[campaign.pk])
    # when
    blank = boss.post(url, {"reason": ""}, follow=True)
    refused = boss.post(url, {"reason": "下周再发"}, follow=True)
    # then
    assert _errors(blank) == ["请填写原因，告知发起人。"]
    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.DRAFT
    assert "下周再发" in refused.content.decode()


def test_cancel_from_the_page(records_officer, campaign):
    response = client_for(records_officer).post(
        reverse("campaigns:campaign_cancel", args=[campaign.pk]), headers=HX
    )
    campaign.refresh_from_db()
    assert response.status_code == 200
    assert response["HX-Redirect"] == campaign.get_absolute_url()
    assert campaign.status == Campaign.Status.CANCELLED


def test_campaign_list_shows_counts_by_status(records_officer, campaign, store):
    # given
    wang = make_customer(name="王芳", level="vip", store=store)
    CampaignRecipient.objects.create(campaign=campaign, customer=wang, status="sent")
    # when
    response = client_for(records_officer).get(reverse("campaigns:campaign_list"))
    # then
    rows = response.context["rows"]
    assert response.status_code == 200
    assert [(c.pk, counts["sent"], total) for c, counts, total in rows] == [(campaign.pk, 1, 1)]


def _recipients(campaign: Campaign, store, count: int) -> None:
    for i in range(count):
        customer = make_customer(name=f"客户{i}", level="vip", store=store)
        CampaignRecipient.objects.create(
            campaign=campaign, customer=customer, address=f"+86139000{i:05d}", status="sent"
        )


def test_recipient_list_runs_a_fixed_number_of_queries(records_officer, campaign, store):
    """The detail page's queries do not grow with the recipients shown; addresses are masked."""
    client = client_for(records_officer)
    Campaign.objects.filter(pk=campaign.pk).update(status=Campaign.Status.DONE)
    _recipients(campaign, store, 2)
    client.get(campaign.get_absolute_url())  # warm the session and the content types
    with CaptureQueriesContext(connection) as few:
        client.get(campaign.get_absolute_url())
    # when
    _recipients(campaign, store, 20)
    with CaptureQueriesContext(connection) as many:
        response = client.get(campaign.get_absolute_url())
    # then
    body = response.content.decode()
    assert len(response.context["rows"]) == 22
    assert len(many) == len(few)
    assert "139****0001" in body
    assert "+8613900000001" not in body


def test_recipient_list_pages_and_filters(records_officer, campaign, store):
    Campaign.objects.filter(pk=campaign.pk).update(status=Campaign.Status.DONE)
    _recipients(campaign, store, 27)
    CampaignRecipient.objects.filter(pk=CampaignRecipient.objects.order_by("id").first().pk).update(
        status="failed", error="网关拒绝"
    )
    client = client_for(records_officer)
    second = client.get(campaign.get_absolute_url() + "?page=2")
    failed = client.get(campaign.get_absolute_url() + "?status=failed")
    assert len(second.context["rows"]) == 2
    assert second.context["has_previous"]
    assert not second.context["has_next"]
    assert [r.error for r, _address in failed.context["rows"]] == ["网关拒绝"]


# --- Outbox ---------------------------------------------------------------------------------------


def _outbox_reader() -> User:
    user = UserFactory(username="outbox-reader", role="agent")
    user.user_permissions.add(Permission.objects.get(codename="view_outboxmessage"))
    return User.objects.get(pk=user.pk)


def test_outbox_lists_newest_first_and_masks_for_roles_without_full_contact(records_officer):
    # given
    OutboxMessage.objects.create(gateway="sms", to="+8613812345678", body="第一条")
    OutboxMessage.objects.create(gateway="email", to="wang@example.com", subject="提示", body="二")
    # when
    full = client_for(records_officer).get(reverse("campaigns:outbox_list"))
    masked = client_for(_outbox_reader()).get(reverse("campaigns:outbox_list"))
    sms_only = client_for(records_officer).get(reverse("campaigns:outbox_list") + "?gateway=sms")
    # then
    assert [m.body for m, _to in full.context["rows"]] == ["二", "第一条"]
    assert "13812345678" in full.content.decode()
    masked_body = masked.content.decode()
    assert "138****5678" in masked_body
    assert "13812345678" not in masked_body
    assert "w***@example.com" in masked_body
    assert [m.body for m, _to in sms_only.context["rows"]] == ["第一条"]


# --- Opt-outs and benefits ------------------------------------------------------------------------


def test_opt_out_recorded_from_the_customer(agent):
    """Reached from a customer (?customer=<id>), the form records the opt-out and goes back to
    the customer's profile."""
    customer = make_customer(name="王芳")
    client = client_for(agent)
    # when
    form = client.get(reverse("campaigns:optout_create") + f"?customer={customer.pk}")
    response = client.post(
        reverse("campaigns:optout_create"),
        {"customer": customer.pk, "channel": "sms", "source": "电话里要求"},
    )
    # then
    assert form.status_code == 200
    assert "王芳" in form.content.decode()
    assert response.status_code == 302
    assert response["Location"] == customer.get_absolute_url()
    optout = OptOut.objects.get()
    assert (optout.customer, optout.channel, optout.recorded_by) == (customer, "sms", agent)


def test_opt_out_form_names_the_customer_a_store_manager_cannot_see(store_manager, other_store):
    """Another store's customer is 'no such customer' for a store manager: an error on the
    field, nothing recorded."""
    elsewhere = make_customer(name="别店客户", store=other_store)
    response = client_for(store_manager).post(
        reverse("campaigns:optout_create"),
        {"customer": elsewhere.pk, "channel": "all"},
    )
    assert response.status_code == 200
    assert response.context["form"].errors["customer"]
    assert not OptOut.objects.exists()


def test_opt_out_list_filters_by_channel(agent):
    wang, li = make_customer(name="王芳"), make_customer(name="李强")
    services.optout_record(actor=agent, customer_id=wang.pk, channel="sms")
    services.optout_record(actor=agent, customer_id=li.pk, channel="email")
    response = client_for(agent).get(reverse("campaigns:optout_list") + "?channel=email")
    assert [o.customer for o in response.context["rows"]] == [li]


def test_benefit_recorded_once_per_occasion(store_manager, store):
    """The store manager records a birthday gift; the same occasion again is refused on the
    form, not a crash."""
    customer = make_customer(name="王芳", status="member", store=store)
    client = client_for(store_manager)
    data = {
        "customer": customer.pk,
        "kind": "birthday",
        "occasion": "2026",
        "description": "保温杯",
    }
    # when
    first = client.post(reverse("campaigns:benefit_create"), data)
    again = client.post(reverse("campaigns:benefit_create"), data)
    # then
    assert first.status_code == 302
    benefit = MemberBenefit.objects.get()
    assert (benefit.given_by, benefit.store, benefit.description) == (
        store_manager,
        store,
        "保温杯",
    )
    assert again.status_code == 200
    assert again.context["form"].non_field_errors()
    assert MemberBenefit.objects.count() == 1


def test_benefit_form_names_a_missing_occasion(agent):
    customer = make_customer(name="王芳")
    response = client_for(agent).post(
        reverse("campaigns:benefit_create"), {"customer": customer.pk, "kind": "holiday"}
    )
    assert response.status_code == 200
    assert response.context["form"].errors["occasion"]


def test_benefit_list_filters_by_occasion(agent):
    wang, li = make_customer(name="王芳"), make_customer(name="李强")
    services.benefit_record(
        actor=agent, customer_id=wang.pk, kind="holiday", occasion="2026 中秋节"
    )
    services.benefit_record(actor=agent, customer_id=li.pk, kind="birthday", occasion="2026")
    response = client_for(agent).get(reverse("campaigns:benefit_list") + "?occasion=中秋")
    assert [b.customer for b in response.context["rows"]] == [wang]
