"""A bulk message from audience to outbox, in a real browser against a real server: the records
officer builds a segment (the VIP members of one store) and sees who it reaches before saving
it, writes an SMS template and sends herself a test (with the 【签名】 and the 回T退订 footer),
creates the campaign, confirms the recipients and SMS it makes, sends it and finds the messages
in the outbox.

The server's task queue runs inline (immediate mode under pytest) and a live-server request
commits, so pressing Send queues and dispatches the campaign within that request.

Elements are found by stable attributes (name, id, action, data-testid), never by visible text.
"""

import os
import re

import pytest

from kefu.accounts.tests.factories import StoreFactory, UserFactory
from kefu.campaigns.models import Campaign, MessageTemplate, OutboxMessage, Segment
from kefu.customers.tests.factories import make_customer

try:
    from playwright.sync_api import expect
except ImportError:  # pragma: no cover - the e2e fixtures say why
    if os.environ.get("KEFU_E2E_REQUIRED") == "1":
        raise
    pytest.skip("the playwright package is not installed", allow_module_level=True)

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

expect.set_options(timeout=10_000)


def test_records_officer_sends_a_campaign_to_a_store_s_vips(page, log_in, shot, settings):
    # given: the SMS signature, two stores, VIP members of both, and a normal customer
    settings.CAMPAIGN_SIGNATURES = {"sms": "康宁大药房"}
    UserFactory(username="dangan", role="records_officer", display_name="档案刘")
    renmin = StoreFactory(code="S001", name="人民路店")
    jiefang = StoreFactory(code="S002", name="解放路店")
    wang = make_customer(name="王芳", level="vip", store=renmin, phone="13812345678")
    li = make_customer(name="李强", level="vip", store=renmin, phone="13912345678")
    make_customer(name="赵敏", level="vip", store=jiefang, phone="13712345678")
    make_customer(name="普通客户", level="normal", store=renmin, phone="13612345678")
    log_in(page, "dangan")

    # 1. the segment: VIPs of 人民路店, previewed live before saving
    page.goto("/campaigns/segments/new/")
    preview = page.get_by_test_id("segment-preview")
    expect(page.get_by_test_id("preview-count")).to_have_text("4")  # everyone, on load
    page.fill("#segment-form input[name=name]", "人民路店VIP")
    page.check("#segment-form input[name=levels][value=vip]")
    expect(page.get_by_test_id("preview-count")).to_have_text("3")
    page.check(f"#segment-form input[name=stores][value='{renmin.pk}']")
    expect(page.get_by_test_id("preview-count")).to_have_text("2")
    expect(preview).to_contain_text("王芳")
    expect(preview).to_contain_text("李强")
    expect(preview).not_to_contain_text("赵敏")
    expect(preview).to_contain_text("138****5678")
    expect(preview).not_to_contain_text("13812345678")
    shot(page, "campaign-1-segment-preview")
    with page.expect_navigation(url=re.compile(r"/campaigns/segments/$")):
        page.get_by_test_id("segment-save").click()
    segment = Segment.objects.get()
    assert segment.filters == {"levels": ["vip"], "stores": [renmin.pk]}

    # 2. the SMS template, and a test sent to herself
    page.goto("/campaigns/templates/new/")
    page.fill("#template-form input[name=name]", "会员日短信")
    page.select_option("#template-form select[name=gateway]", "sms")
    page.select_option("#template-form select[name=purpose]", "promotion")
    page.fill("#template-form textarea[name=body]", "{name}您好，{store}本周六会员日，全场9折。")
    with page.expect_navigation(url=re.compile(r"/campaigns/templates/\d+/$")):
        page.get_by_test_id("template-save").click()
    template = MessageTemplate.objects.get()
    panel = page.get_by_test_id("test-send-panel")
    panel.locator("input[name=to]").fill("13800138000")
    panel.locator("button[type=submit]").click()
    expect(page.get_by_test_id("test-sent")).to_contain_text("+8613800138000")
    expect(page.get_by_test_id("test-body")).to_have_text(
        re.compile(r"^【康宁大药房】\[测试\].*回T退订$")
    )
    shot(page, "campaign-2-template-test-sent")

    # 3. the campaign, with the message previewed for a customer of the segment
    page.goto(f"/campaigns/new/?segment={segment.pk}")
    page.fill("#campaign-form input[name=name]", "六月会员日")
    page.select_option("#campaign-form select[name=template]", str(template.pk))
    expect(page.locator("#campaign-form select[name=segment]")).to_have_value(str(segment.pk))
    with page.expect_navigation(url=re.compile(r"/campaigns/\d+/$")):
        page.get_by_test_id("campaign-save").click()
    campaign = Campaign.objects.get()
    expect(page.get_by_test_id("sample-body")).to_have_text(
        "【康宁大药房】王芳您好，人民路店本周六会员日，全场9折。回T退订"
    )

    # 4. send it: she confirms 2 recipients and 2 SMS; the page comes back with the counts of a
    # finished campaign
    launch = page.get_by_test_id("launch-panel")
    expect(launch.get_by_test_id("estimate-recipients")).to_have_text("2")
    expect(launch.get_by_test_id("estimate-segments")).to_contain_text("2")
    page.get_by_test_id("campaign-launch").click()  # not without the tick
    assert Campaign.objects.get().status == Campaign.Status.DRAFT
    launch.locator("input[name=confirmed]").check()
    with page.expect_navigation(url=re.compile(rf"/campaigns/{campaign.pk}/$")):
        page.get_by_test_id("campaign-launch").click()
    counts = page.get_by_test_id("campaign-counts")
    expect(counts).to_have_attribute("data-status", "done")
    expect(counts.locator("[data-count=sent]")).to_have_text("2")
    expect(counts.locator("[data-count=total]")).to_have_text("2")
    expect(page.get_by_test_id("recipient-table")).to_contain_text("139****5678")
    shot(page, "campaign-3-sent")
    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.DONE

    # 5. the outbox shows the two messages (and the test), newest first
    page.goto("/campaigns/outbox/")
    table = page.get_by_test_id("outbox-table")
    expect(table.locator("tbody tr")).to_have_count(3)
    expect(table).to_contain_text("【康宁大药房】李强您好，人民路店本周六会员日，全场9折。回T退订")
    expect(table).to_contain_text("王芳")
    expect(table).not_to_contain_text("赵敏")
    shot(page, "campaign-4-outbox")
    sent_to = sorted(
        OutboxMessage.objects.filter(customer__isnull=False).values_list("customer", flat=True)
    )
    assert sent_to == sorted([wang.pk, li.pk])
