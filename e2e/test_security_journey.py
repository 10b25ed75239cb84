"""The pages under their Content-Security-Policy, in a real browser: no violation on the staff
pages, the administration site, the chat page and the status page, and the behaviours that used
to be inline handlers (language switch, confirm dialogs, the reveal button, the customer picker,
the status link, the assignee filter) still work from kefu/static/kefu/app.js.

Violations are caught twice: the `securitypolicyviolation` events of each document and the
browser's console ("Refused to ...", htmx's evalDisallowedError).
"""

import os
import re

import pytest
from django.core.management import call_command
from django.utils import timezone

from kefu.accounts.models import User
from kefu.accounts.tests.factories import UserFactory
from kefu.audit.models import AuditEntry
from kefu.conversations.models import Channel, Conversation, QuickReply
from kefu.customers.models import ContactPoint
from kefu.customers.tests.factories import make_customer
from kefu.followups.models import FollowUp
from kefu.followups.services import followup_create
from kefu.tickets.models import Ticket
from kefu.tickets.status_links import status_path_for

try:
    from playwright.sync_api import expect
except ImportError:  # pragma: no cover - the e2e fixtures say why
    if os.environ.get("KEFU_E2E_REQUIRED") == "1":
        raise
    pytest.skip("the playwright package is not installed", allow_module_level=True)

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

expect.set_options(timeout=10_000)

WATCH = """
window.__kefuViolations = [];
document.addEventListener("securitypolicyviolation", function (e) {
  window.__kefuViolations.push(
    e.violatedDirective + " blocked " + (e.blockedURI || "inline") + " at " +
    (e.sourceFile || document.location.pathname) + ":" + e.lineNumber);
});
"""
CONSOLE = re.compile(r"Content Security Policy|Refused to|evalDisallowed", re.IGNORECASE)


class Violations:
    """What the browser refused, page by page."""

    def __init__(self, page):
        self.page = page
        self.found: list[str] = []
        page.add_init_script(WATCH)
        page.on("console", self._console)

    def _console(self, message) -> None:
        if CONSOLE.search(message.text):
            self.found.append(f"{self.page.url}: console: {message.text}")

    def collect(self) -> None:
        """The events of the document on screen (call before leaving it)."""
        try:
            events = self.page.evaluate("window.__kefuViolations || []")
        except Exception:  # a page in the middle of navigating has none to give
            return
        self.found += [f"{self.page.url}: {event}" for event in events]

    def visit(self, path: str, *, settle_ms: int = 400) -> None:
        self.collect()
        response = self.page.goto(path)
        assert response is not None
        assert response.status < 400, f"{path}: HTTP {response.status}"
        assert "script-src 'self' 'nonce-" in (
            response.headers.get("content-security-policy") or ""
        )
        self.page.wait_for_timeout(settle_ms)  # htmx's polling, deferred scripts
        self.collect()


@pytest.fixture
def violations(page) -> Violations:
    return Violations(page)


def _log_in(page, username: str, password: str) -> None:
    page.goto("/accounts/login/")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", password)
    with page.expect_navigation():
        page.click("main form button[type=submit]")


def test_the_demo_departments_pages_raise_no_violation(page, violations, shot):
    """Every main page of every module, as the people who use them, on the demo department."""
    # given
    call_command("demo", customers=120, tickets=20, verbosity=0)
    ticket = Ticket.objects.order_by("pk").first()
    conversation = Conversation.objects.order_by("pk").first()
    customer = ticket.customer
    tours = {
        "supervisor1": [
            "/",
            "/inbox/",
            "/inbox/?view=all",
            conversation.get_absolute_url(),
            "/customers/",
            customer.get_absolute_url(),
            "/tickets/",
            "/tickets/new/",
            ticket.get_absolute_url(),
            "/tickets/reports/complaints/",
            "/followups/",
            "/followups/?scope=all",
            "/consultations/calls/",
            "/consultations/quick-replies/",
            "/appointments/",
            "/appointments/book/",
            "/appointments/funnel/",
            "/notifications/",
        ],
        "records": ["/campaigns/", "/followups/lists/", "/customers/import/"],
        "admin": [
            "/admin/",
            "/admin/accounts/user/",
            f"/admin/accounts/user/{User.objects.get(username='agent01').pk}/change/",
            f"/admin/conversations/channel/{Channel.objects.get(code='wechat').pk}/change/",
            "/admin/tickets/category/",
            "/accounts/tokens/",
            "/api/v1/docs",
        ],
    }
    # when
    for username, paths in tours.items():
        page.context.clear_cookies()
        _log_in(page, username, "kefu-demo")
        for path in paths:
            violations.visit(path)
    page.context.clear_cookies()
    violations.visit("/accounts/login/")
    violations.visit(status_path_for(ticket))
    violations.visit("/chat/site/", settle_ms=1500)  # the widget's page opens its socket
    shot(page, "security-chat-page")
    # then
    assert violations.found == []


def test_the_behaviours_that_were_inline_handlers_still_work(
    page, violations, shot, live_server, settings
):
    # given (the live server is where status links point)
    settings.SERVED_URL = settings.BASE_URL = live_server.url
    supervisor = UserFactory(username="lead", role="supervisor")
    customer = make_customer(name="张三", phone="13812341234")
    spare = ContactPoint.objects.create(
        customer=customer, kind=ContactPoint.Kind.EMAIL, value="zs@example.cn"
    )
    reply = QuickReply.objects.create(shortcut="hours", title="营业时间", body="每天 9:00-21:00")
    followup_create(
        actor=None,
        customer=customer,
        purpose=FollowUp.Purpose.values[0],
        due_at=timezone.now(),
        assignee=supervisor,
    )
    _log_in(page, "lead", "pw-kefu-123")

    # the language switch: choosing English reloads the page in English, and back
    violations.visit("/customers/")
    with page.expect_navigation():
        page.select_option("select[name=language]", "en")
    expect(page.locator("html")).to_have_attribute("lang", "en")
    with page.expect_navigation():
        page.select_option("select[name=language]", "zh-hans")
    expect(page.locator("html")).to_have_attribute("lang", "zh-hans")

    # the reveal button: the full number replaces the masked one, the button goes, it is audited
    violations.visit(customer.get_absolute_url())
    phone = customer.contacts.get(kind=ContactPoint.Kind.PHONE)
    value = page.locator(f"#contacts-panel #contact-{phone.pk}")
    expect(value).to_have_text("138****1234")
    with page.expect_response(lambda r: "/reveal" in r.url):
        page.click(f"#contacts-panel li:has(#contact-{phone.pk}) [data-remove-on-success]")
    expect(value).to_have_text("13812341234")
    expect(
        page.locator(f"#contacts-panel li:has(#contact-{phone.pk}) [data-remove-on-success]")
    ).to_have_count(0)
    assert AuditEntry.objects.filter(actor=supervisor, target_id=str(customer.pk)).exists()
    shot(page, "security-revealed")

    # the confirm dialog: "cancel" keeps the contact, "OK" removes it
    remove = f"#contacts-panel li:has(#contact-{spare.pk}) form[data-confirm] button"
    page.once("dialog", lambda dialog: dialog.dismiss())
    page.click(remove)
    page.wait_for_timeout(300)
    assert ContactPoint.objects.filter(pk=spare.pk).exists()
    page.once("dialog", lambda dialog: dialog.accept())
    with page.expect_navigation():
        page.click(remove)
    assert not ContactPoint.objects.filter(pk=spare.pk).exists()

    # the quick reply's delete asks too
    violations.visit("/consultations/quick-replies/")
    messages: list[str] = []
    page.once("dialog", lambda dialog: (messages.append(dialog.message), dialog.accept()))
    with page.expect_navigation():
        page.click("form[data-confirm] button[type=submit]")
    assert messages
    assert not QuickReply.objects.filter(pk=reply.pk).exists()

    # the ticket form's customer picker fills the hidden field; Enter in the search does not
    # submit the form
    violations.visit("/tickets/new/")
    with page.expect_response(lambda r: "customer" in r.url and "q=" in r.url):
        page.fill("#customer-search", "张三")
    page.press("#customer-search", "Enter")
    page.click(f"#customer-matches [data-pick-value='{customer.pk}']")
    expect(page.locator("#id_customer")).to_have_value(str(customer.pk))
    expect(page.locator("#customer-chosen")).to_contain_text(customer.number)
    expect(page.locator("#customer-matches li")).to_have_count(0)
    assert not Ticket.objects.exists()

    # the status link selects itself on a click, ready to copy
    page.select_option("select[name=type]", "complaint")
    page.fill("input[name=subject]", "买到过期的维生素")
    page.fill("textarea[name=description]", "顾客称维生素C已过期。")
    with page.expect_navigation(url=re.compile(r"/tickets/\d+/$")):
        page.click("#ticket-form button[type=submit]")
    violations.collect()
    assert Ticket.objects.get().customer == customer
    page.locator("[data-testid=status-url]").click()
    assert page.evaluate(
        "() => { const i = document.querySelector('[data-testid=status-url]');"
        " return i.selectionStart === 0 && i.selectionEnd === i.value.length; }"
    )

    # the follow-up list's assignee filter submits on change
    violations.visit("/followups/?scope=all")
    with page.expect_navigation():
        page.select_option("select[name=assignee]", str(supervisor.pk))
    assert f"assignee={supervisor.pk}" in page.url
    violations.collect()
    shot(page, "security-followups")
    # then
    assert violations.found == []
