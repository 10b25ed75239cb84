"""An agent's day with the customer archive, in a real browser against a real server.

Elements are found by stable attributes (name, href, id, data-testid, hx-*), never by visible
text: the UI is Chinese by default and its wording may change.
"""

import os
import re

import pytest

from kefu.accounts.tests.factories import UserFactory
from kefu.audit.models import AuditEntry
from kefu.customers.models import Customer
from kefu.customers.tests.factories import make_customer

try:
    from playwright.sync_api import expect
except ImportError:  # pragma: no cover - the e2e fixtures say why
    if os.environ.get("KEFU_E2E_REQUIRED") == "1":
        raise
    pytest.skip("the playwright package is not installed", allow_module_level=True)

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

expect.set_options(timeout=10_000)

PHONE_WIDTH = {"width": 390, "height": 844}


def _htmx_search(page, query: str):
    """Type into the search box and wait for the list fragment htmx fetches for it."""
    with page.expect_response(
        lambda r: "/customers/?" in r.url and f"q={query}" in r.url
    ) as response_info:
        page.fill("input[name=q]", query)
    response = response_info.value
    assert response.ok
    assert response.request.headers.get("hx-request") == "true", "not an htmx request"
    return response


def _row(page, customer):
    return page.locator(f"#results tbody tr:has(a[href='{customer.get_absolute_url()}'])")


def test_agent_finds_a_customer_and_opens_a_new_one(page, log_in, shot):
    """An agent logs in, finds a customer by pinyin initials and by phone tail (the phone shown
    masked), opens the profile, then creates a customer, fixing an invalid phone on the way."""
    # given
    UserFactory(username="xiaoli", role="agent")
    zhang = make_customer(name="张三", phone="13812341234", tags=["慢病"])
    li = make_customer(name="李四", phone="13900005678")
    make_customer(name="王五", phone="13700002222", level="vip")

    # the login page, with its stylesheet and htmx served by the live server
    page.goto("/accounts/login/")
    assert page.evaluate("typeof htmx") == "object", "htmx did not load"
    assert page.evaluate(
        """() => [...document.styleSheets].some(
            s => s.href && s.href.endsWith('/static/kefu/app.css') && s.cssRules.length > 0)"""
    ), "app.css did not load"
    shot(page, "01-login")

    # when: the agent logs in through the form
    log_in(page, "xiaoli")

    # then: the customer list, with every customer and no full phone number
    expect(page).to_have_url(re.compile(r"/customers/$"))
    assert page.evaluate("typeof htmx") == "object"
    expect(page.locator("#results tbody tr")).to_have_count(3)
    expect(_row(page, zhang)).to_contain_text("138****1234")
    assert "13812341234" not in page.content()
    shot(page, "02-customer-list")

    # when: searching by pinyin initials, the list updates over htmx
    _htmx_search(page, "zs")
    # then
    expect(_row(page, zhang)).to_have_count(1)
    expect(_row(page, li)).to_have_count(0)
    expect(_row(page, zhang)).to_contain_text("138****1234")
    expect(page).to_have_url(re.compile(r"[?&]q=zs"))

    # when: searching by the last four digits of the phone
    _htmx_search(page, "1234")
    # then
    expect(_row(page, zhang)).to_have_count(1)
    expect(_row(page, li)).to_have_count(0)
    expect(_row(page, zhang)).to_contain_text("138****1234")
    assert "13812341234" not in page.content()
    shot(page, "03-customer-list-search")
    page.set_viewport_size(PHONE_WIDTH)
    shot(page, "03b-customer-list-phone")
    page.set_viewport_size({"width": 1280, "height": 860})

    # when: opening the customer
    _row(page, zhang).locator("a").first.click()
    # then: the profile, phone masked, nothing to reveal for an agent
    expect(page).to_have_url(re.compile(rf"{zhang.get_absolute_url()}$"))
    expect(page.get_by_test_id("customer-number")).to_have_text(zhang.number)
    expect(page.locator("#contacts-panel")).to_contain_text("138****1234")
    expect(page.locator("button[hx-post$='/reveal/']")).to_have_count(0)
    assert "13812341234" not in page.content()
    shot(page, "04-customer-profile")

    # when: the agent opens a new customer with an invalid phone
    page.click("header a[href='/customers/']")
    page.click("a[href='/customers/new/']")
    expect(page).to_have_url(re.compile(r"/customers/new/$"))
    page.fill("#customer-form [name=name]", "赵小明")
    page.fill("#customer-form [name=phone]", "12345")
    with page.expect_response(lambda r: r.url.endswith("/customers/new/")) as response_info:
        page.click("#customer-form button[type=submit]")
    assert response_info.value.status == 200
    # then: the form stays, with the error next to the phone field, and nothing is created
    phone_input = page.locator("#customer-form [name=phone]")
    phone_field = page.locator("#customer-form .field:has([name=phone])")
    expect(phone_field.locator("[role=alert]")).to_be_visible()
    expect(phone_input).to_have_attribute("aria-invalid", "true")
    error_id = phone_input.get_attribute("aria-describedby")
    expect(phone_field.locator(f"#{error_id} [role=alert]")).to_be_visible()
    expect(page.locator("#customer-form [role=alert]")).to_have_count(1)
    expect(page.locator("#customer-form [name=name]")).to_have_value("赵小明")
    expect(phone_input).to_have_value("12345")
    expect(page).to_have_url(re.compile(r"/customers/new/$"))
    assert not Customer.objects.filter(name="赵小明").exists()
    shot(page, "05-customer-form-errors")

    # when: the phone is fixed and the form sent again
    page.fill("#customer-form [name=phone]", "137 0000 1111")
    page.click("#customer-form button[type=submit]")
    # then: the new profile, with its number and the phone masked
    expect(page).to_have_url(re.compile(r"/customers/\d+/$"))
    number = page.get_by_test_id("customer-number")
    expect(number).to_have_text(re.compile(r"^KH\d+$"))
    expect(page.locator("h1")).to_contain_text("赵小明")
    expect(page.locator("#contacts-panel")).to_contain_text("137****1111")
    expect(page.locator(".messages")).to_contain_text(number.inner_text())
    created = Customer.objects.get(name="赵小明")
    assert created.number == number.inner_text()
    assert page.url.endswith(created.get_absolute_url())
    assert created.contacts.get().value == "+8613700001111"
    shot(page, "06-new-customer-profile")


def test_records_officer_reveals_a_phone_and_it_is_audited(page, log_in, shot):
    """A records officer clicks "Show" by a masked phone: the full number appears in place and
    the reveal is written to the audit log."""
    # given
    officer = UserFactory(username="dangan", role="records_officer")
    zhang = make_customer(name="张三", phone="13812341234", tags=["慢病", "会员日"])
    contact = zhang.contacts.get()
    log_in(page, "dangan")
    page.goto(zhang.get_absolute_url())
    value = page.locator(f"#contact-{contact.pk}")
    expect(value).to_have_text("138****1234")
    assert "13812341234" not in page.content()

    # when
    with page.expect_response(lambda r: r.url.endswith("/reveal/")) as response_info:
        page.click(f"#contacts-panel li:has(#contact-{contact.pk}) button[hx-post$='/reveal/']")
    assert response_info.value.status == 200

    # then
    expect(value.locator(".revealed")).to_have_text("13812341234")
    entry = AuditEntry.objects.get(action="customer.contact_revealed")
    assert entry.actor == officer
    assert (entry.target_type, entry.target_id) == ("customer", str(zhang.pk))
    assert entry.changes["contact"] == "138****1234"
    shot(page, "07-contact-revealed")
    page.set_viewport_size(PHONE_WIDTH)
    shot(page, "07b-profile-phone")


def test_records_officer_imports_a_sheet_through_its_jobs(page, log_in, shot, settings, tmp_path):
    """A records officer uploads a sheet: the check runs as a background job whose page shows
    the counts and the row problems; confirming starts the import job, whose page shows the
    customers imported. Both are listed under the officer's background jobs."""
    # given
    settings.MEDIA_ROOT = tmp_path / "media"
    UserFactory(username="dangan", role="records_officer")
    sheet = tmp_path / "会员名单.csv"
    sheet.write_text("姓名,手机\n张三,13812345678\n李四,12345\n王五,13900001111\n", "utf-8-sig")
    log_in(page, "dangan")

    # when: the sheet is uploaded on the import page
    page.goto("/customers/import/")
    page.set_input_files("#import-panel input[type=file]", str(sheet))
    page.click("#import-panel button[type=submit]")

    # then: the check job's page, finished, with nothing saved yet
    expect(page).to_have_url(re.compile(r"/jobs/\d+/$"))
    panel = page.get_by_test_id("job-panel")
    expect(panel).to_have_attribute("data-status", "succeeded")
    expect(page.get_by_test_id("rows-valid")).to_have_text("2")
    expect(page.get_by_test_id("rows-invalid")).to_have_text("1")
    assert not Customer.objects.exists()
    shot(page, "08-import-checked")
    with page.expect_download() as download_info:
        page.get_by_test_id("import-report").click()
    assert download_info.value.suggested_filename == "会员名单-errors.csv"

    # when: the officer imports the valid rows
    page.get_by_test_id("import-confirm").click()

    # then: the import job's page, done, and the customers are in the archive
    expect(page.get_by_test_id("import-summary")).to_be_visible()
    expect(page.get_by_test_id("job-panel")).to_have_attribute("data-status", "succeeded")
    assert sorted(Customer.objects.values_list("name", flat=True)) == ["张三", "王五"]
    shot(page, "09-import-done")
    page.click("header a[href='/jobs/']")
    expect(page.locator("table tbody tr")).to_have_count(2)
    shot(page, "10-background-jobs")
