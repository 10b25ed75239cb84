"""The customer's status page behind a signed link: what it shows, what it hides, what the
customer may do there, and what a bad or old link gets."""

import datetime as dt
import re

import pytest
from django.core import signing
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from kefu.tickets import services
from kefu.tickets.models import Ticket, TicketConfig, TicketEvent
from kefu.tickets.status_links import SALT, status_path_for
from kefu.tickets.tests.fixtures import at

pytestmark = pytest.mark.django_db

OPENED = at(2026, 11, 24, 10)
RESOLUTION = {
    "resolution_type": "refund",
    "resolution_summary": "已为您办理退款，款项三个工作日内到账",
    "resolution_cost": "88.00",
}


@pytest.fixture
def frozen(time_machine):
    """The services called by the page take the clock's time: Tuesday 24 November 2026."""
    time_machine.move_to(at(2026, 11, 24, 10, 30), tick=False)
    return time_machine


@pytest.fixture
def browser() -> Client:
    """The customer's phone; English, so the page's own words can be checked."""
    return Client(headers={"accept-language": "en"})


@pytest.fixture
def complaint(frozen, agent, customer, complaint_specialist):
    ticket = services.ticket_create(
        actor=agent,
        data={
            "type": "complaint",
            "subject": "买到过期的维生素",
            "description": "顾客称在人民路店买到的维生素C已过期。",
            "customer": customer.pk,
        },
        now=OPENED,
    )
    services.ticket_start(actor=complaint_specialist, ticket_id=ticket.pk, now=OPENED)
    return ticket


@pytest.fixture
def resolved(complaint, complaint_specialist, root_cause):
    services.ticket_resolve(
        actor=complaint_specialist,
        ticket_id=complaint.pk,
        data={**RESOLUTION, "root_cause": root_cause.pk},
        now=at(2026, 11, 24, 10, 20),
    )
    complaint.refresh_from_db()
    return complaint


def events(ticket, kind):
    return TicketEvent.objects.filter(ticket=ticket, kind=kind)


# --- Showing --------------------------------------------------------------------------------


def test_a_valid_link_shows_the_ticket_and_its_public_timeline(
    browser, complaint, complaint_specialist
):
    """Number, subject, type, status in plain words, the reply to the customer, and the staff
    member by display name only; the internal note, the description and the phone never."""
    # given
    services.ticket_reply(
        actor=complaint_specialist,
        ticket_id=complaint.pk,
        body="您好，我们已联系门店核实批次",
        now=at(2026, 11, 24, 10, 10),
    )
    services.ticket_note(
        actor=complaint_specialist,
        ticket_id=complaint.pk,
        body="内部：门店店长态度差，需约谈",
        now=at(2026, 11, 24, 10, 11),
    )

    # when
    response = browser.get(status_path_for(complaint))

    # then
    assert response.status_code == 200
    page = response.content.decode()
    assert complaint.number in page
    assert "买到过期的维生素" in page
    assert "Complaint" in page  # the type
    assert "Being handled" in page  # in_progress, in the customer's words
    assert "2026-11-24" in page
    assert "您好，我们已联系门店核实批次" in page
    assert "客诉专员" in page  # the display name
    assert "内部：门店店长态度差" not in page
    assert "顾客称在人民路店" not in page  # the description is the staff's record
    assert complaint_specialist.username not in page
    assert "13812341234" not in page
    assert "1234" not in page.replace(complaint.number, "")
    assert "topbar" not in page  # not the staff shell


def test_the_page_is_private_and_sets_the_csrf_cookie(browser, complaint):
    response = browser.get(status_path_for(complaint))
    assert response["Referrer-Policy"] == "same-origin"
    assert response["Cache-Control"] == "no-store"
    assert "csrftoken" in response.cookies
    assert 'name="csrfmiddlewaretoken"' in response.content.decode()


def test_a_resolved_ticket_shows_the_resolution_but_not_its_cost_or_root_cause(browser, resolved):
    page = browser.get(status_path_for(resolved)).content.decode()
    assert "Refund" in page
    assert RESOLUTION["resolution_summary"] in page
    # The cost (88.00) appears nowhere in the text (a random CSRF token or CSP nonce may hold "88").
    text = re.sub(r'name="csrfmiddlewaretoken" value="[^"]*"|nonce="[^"]*"', "", page)
    assert "88" not in text
    assert "产品质量" not in page  # the root cause is for the monthly analysis
    assert 'data-testid="accept-form"' in page
    assert 'data-testid="reject-form"' in page
    assert 'data-testid="add-information"' not in page


# --- Bad links ------------------------------------------------------------------------------


def _assert_not_found(response):
    assert response.status_code == 404
    assert 'data-testid="status-link-invalid"' in response.content.decode()
    assert response["Referrer-Policy"] == "same-origin"
    assert response["Cache-Control"] == "no-store"


def test_a_tampered_token_gets_the_friendly_404(browser, complaint):
    path = status_path_for(complaint)
    token = path.rstrip("/").rsplit("/", 1)[1]
    tampered = token[:-3] + ("aaa" if not token.endswith("aaa") else "bbb")
    _assert_not_found(browser.get(f"/s/t/{tampered}/"))
    _assert_not_found(browser.get("/s/t/not-a-token/"))
    _assert_not_found(browser.post("/s/t/not-a-token/", {"action": "message", "body": "x"}))


def test_a_token_signed_for_another_ticket_or_purpose_opens_nothing(
    browser, complaint, agent, customer
):
    other = services.ticket_create(
        actor=agent,
        data={"type": "consultation", "subject": "营业时间", "customer": customer.pk},
        now=OPENED,
    )
    # the other ticket's id with this ticket's number
    mixed = signing.dumps({"t": other.pk, "n": complaint.number}, salt=SALT, compress=True)
    _assert_not_found(browser.get(f"/s/t/{mixed}/"))
    # a genuine signature for another purpose (another salt)
    foreign = signing.dumps({"t": complaint.pk, "n": complaint.number}, salt="other", compress=True)
    _assert_not_found(browser.get(f"/s/t/{foreign}/"))
    # and the other ticket's own link shows the other ticket, not this one
    page = browser.get(status_path_for(other)).content.decode()
    assert other.number in page
    assert complaint.number not in page


def test_a_link_expires_after_the_configured_days(browser, complaint, frozen):
    TicketConfig.objects.update_or_create(pk=1, defaults={"status_link_days": 2})
    path = status_path_for(complaint)

    frozen.move_to(at(2026, 11, 26, 10), tick=False)  # 47.5 hours later
    assert browser.get(path).status_code == 200

    frozen.move_to(at(2026, 11, 26, 11), tick=False)  # 48.5 hours later
    _assert_not_found(browser.get(path))


# --- Adding information ---------------------------------------------------------------------


def test_a_message_resumes_a_ticket_waiting_on_the_customer(
    browser, complaint, complaint_specialist
):
    # given
    services.ticket_wait_customer(
        actor=complaint_specialist,
        ticket_id=complaint.pk,
        reason="请提供购药小票照片",
        now=at(2026, 11, 24, 10, 15),
    )
    path = status_path_for(complaint)
    assert "请提供购药小票照片" in browser.get(path).content.decode()  # what we wait for

    # when
    response = browser.post(path, {"action": "message", "body": "小票在家，明天补拍"})

    # then: back to the page (PRG), the ticket is worked on again
    assert response.status_code == 302
    assert response["Location"] == path
    assert response["Referrer-Policy"] == "same-origin"
    complaint.refresh_from_db()
    assert complaint.status == Ticket.Status.IN_PROGRESS
    message = events(complaint, TicketEvent.Kind.CUSTOMER_MESSAGE).get()
    assert message.data["body"] == "小票在家，明天补拍"
    assert message.actor is None
    page = browser.get(path).content.decode()
    assert "小票在家，明天补拍" in page
    assert "Your message has been passed on" in page


def test_an_empty_message_is_an_inline_error(browser, complaint):
    response = browser.post(status_path_for(complaint), {"action": "message", "body": "  "})
    assert response.status_code == 200
    assert "Write your message." in response.content.decode()
    assert not events(complaint, TicketEvent.Kind.CUSTOMER_MESSAGE).exists()


def test_a_too_long_message_is_refused_by_the_service(browser, complaint):
    response = browser.post(status_path_for(complaint), {"action": "message", "body": "长" * 5001})
    assert response.status_code == 200
    assert "At most 5000 characters." in response.content.decode()
    assert not events(complaint, TicketEvent.Kind.CUSTOMER_MESSAGE).exists()


def test_a_photo_is_kept_and_an_exe_refused(browser, complaint, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    path = status_path_for(complaint)

    refused = browser.post(
        path,
        {"action": "file", "file": SimpleUploadedFile("invoice.exe", b"MZ\x90\x00", "image/jpeg")},
    )
    assert refused.status_code == 200
    assert "invoice.exe: files of type .exe are not accepted." in refused.content.decode()
    assert not complaint.attachments.exists()

    kept = browser.post(
        path,
        {"action": "file", "file": SimpleUploadedFile("小票.jpg", b"\xff\xd8\xff", "image/jpeg")},
    )
    assert kept.status_code == 302
    attachment = complaint.attachments.get()
    assert attachment.is_from_customer
    assert attachment.uploaded_by is None
    assert "小票.jpg" in browser.get(path).content.decode()


def test_a_closed_ticket_takes_no_more_messages(browser, resolved, complaint_specialist, frozen):
    services.ticket_record_acceptance(
        actor=None, ticket_id=resolved.pk, accepted=True, via="status_page"
    )
    services.ticket_close(actor=complaint_specialist, ticket_id=resolved.pk)
    path = status_path_for(resolved)
    page = browser.get(path).content.decode()
    assert 'data-testid="add-information"' not in page
    assert "Completed" in page

    response = browser.post(path, {"action": "message", "body": "还有问题"})
    assert response.status_code == 200
    assert 'data-testid="problem"' in response.content.decode()
    assert not events(resolved, TicketEvent.Kind.CUSTOMER_MESSAGE).exists()


# --- Accepting or objecting -----------------------------------------------------------------


def test_accepting_records_the_answer(browser, resolved):
    path = status_path_for(resolved)
    response = browser.post(path, {"action": "acceptance", "decision": "accept"})
    assert response.status_code == 302
    resolved.refresh_from_db()
    assert resolved.acceptance == Ticket.Acceptance.ACCEPTED
    assert resolved.status == Ticket.Status.RESOLVED
    answer = events(resolved, TicketEvent.Kind.ACCEPTANCE).get()
    assert answer.data == {"accepted": True, "note": "", "via": "status_page"}
    page = browser.get(path).content.decode()
    assert 'data-testid="accept-form"' not in page  # asked once
    assert "You have accepted this resolution." in page


def test_objecting_with_a_note_reopens_the_ticket(browser, resolved):
    response = browser.post(
        status_path_for(resolved),
        {"action": "acceptance", "decision": "reject", "note": "退款金额不对"},
    )
    assert response.status_code == 302
    resolved.refresh_from_db()
    assert resolved.status == Ticket.Status.IN_PROGRESS
    assert resolved.reopened_count == 1
    assert events(resolved, TicketEvent.Kind.ACCEPTANCE).get().data["note"] == "退款金额不对"
    assert events(resolved, TicketEvent.Kind.REOPENED).exists()


def test_objecting_without_a_note_changes_nothing(browser, resolved):
    response = browser.post(
        status_path_for(resolved), {"action": "acceptance", "decision": "reject", "note": ""}
    )
    assert response.status_code == 200
    page = response.content.decode()
    assert "Say what the customer objects to." in page
    assert "<details open>" in page  # the objection form stays open with its error
    resolved.refresh_from_db()
    assert resolved.status == Ticket.Status.RESOLVED
    assert resolved.acceptance == Ticket.Acceptance.PENDING
    assert not events(resolved, TicketEvent.Kind.ACCEPTANCE).exists()


def test_objecting_after_the_window_asks_to_call_the_hotline(browser, resolved, frozen):
    frozen.move_to(at(2026, 11, 24, 10, 20) + dt.timedelta(days=8), tick=False)
    response = browser.post(
        status_path_for(resolved),
        {"action": "acceptance", "decision": "reject", "note": "还是不满意"},
    )
    assert response.status_code == 200
    assert "please call the hotline" in response.content.decode()
    resolved.refresh_from_db()
    assert resolved.status == Ticket.Status.RESOLVED
    assert resolved.acceptance == Ticket.Acceptance.PENDING
    assert not events(resolved, TicketEvent.Kind.ACCEPTANCE).exists()


def test_posts_need_the_csrf_token(complaint):
    browser = Client(enforce_csrf_checks=True)
    path = status_path_for(complaint)
    assert browser.post(path, {"action": "message", "body": "你好"}).status_code == 403

    token = browser.get(path).cookies["csrftoken"].value
    response = browser.post(
        path, {"action": "message", "body": "你好", "csrfmiddlewaretoken": token}
    )
    assert response.status_code == 302
    assert events(complaint, TicketEvent.Kind.CUSTOMER_MESSAGE).count() == 1
