"""Hand-offs and urges reach a department's shared mailbox over a real SMTP exchange."""

import pytest

from kefu.tickets import services
from kefu.tickets.tests.fixtures import at

pytestmark = pytest.mark.django_db


def test_department_mailbox_gets_the_hand_off_and_each_urge_once(
    agent, customer, quality_department, smtp_server, django_capture_on_commit_callbacks
):
    # given a department that works from its shared mailbox
    quality_department.email = "quality@example.com"
    quality_department.save()
    ticket = services.ticket_create(
        actor=agent,
        data={"type": "complaint", "subject": "过期药品", "customer": customer.pk},
        now=at(2026, 11, 24, 10),
    )
    # when the ticket is handed over and then urged twice (the second pass repeats a moment)
    with django_capture_on_commit_callbacks(execute=True):
        services.ticket_hand_off(
            actor=agent,
            ticket_id=ticket.pk,
            department_id=quality_department.pk,
            instructions="请核查批次效期",
            now=at(2026, 11, 24, 10, 30),
        )
    with django_capture_on_commit_callbacks(execute=True):
        services.ticket_timers_run(now=at(2026, 11, 24, 14))
    with django_capture_on_commit_callbacks(execute=True):
        services.ticket_timers_run(now=at(2026, 11, 24, 14))
    # then the mailbox has the hand-off and one urge, with the instructions and the link
    mails = [m for m in smtp_server.received if "quality@example.com" in m.recipients]
    assert len(mails) == 2
    assert ticket.number in mails[0].message["Subject"]
    assert "请核查批次效期" in mails[0].message.get_content()
    assert f"/tickets/{ticket.pk}/" in mails[0].message.get_content()
    assert "1" in mails[1].message["Subject"]
