"""Notification e-mails over a real SMTP exchange with a server on loopback (aiosmtpd)."""

import pytest
from django.test import override_settings

from kefu.notifications import services
from kefu.notifications.models import Notification
from kefu.notifications.tasks import notification_email_task

pytestmark = pytest.mark.django_db


def test_notify_emails_the_recipient_over_smtp_once(
    agent, manager, smtp_server, django_capture_on_commit_callbacks
):
    # given
    agent.email = "agent@example.com"
    agent.save()
    manager.email = ""  # no address: stays in the app only
    manager.save()

    # when
    with django_capture_on_commit_callbacks(execute=True):
        (created, _other) = services.notify(
            [agent, manager],
            kind="ticket_assigned",
            title="工单 #5 已分派给你",
            body="客户张三来电投诉配送延迟。",
            url="/tickets/5/",
        )

    # then
    assert len(smtp_server.received) == 1
    received = smtp_server.received[0]
    assert received.sender == "kefu@example.com"
    assert received.recipients == ["agent@example.com"]
    assert received.message["To"] == "agent@example.com"
    assert received.message["Subject"] == "[客服] 工单 #5 已分派给你"
    text = received.message.get_body(preferencelist=("plain",)).get_content()
    assert "客户张三来电投诉配送延迟。" in text
    assert "https://kefu.example.com/tickets/5/" in text
    created.refresh_from_db()
    assert created.emailed_at is not None
    assert Notification.objects.get(recipient=manager).emailed_at is None

    # when the task runs again (a retry, a duplicate enqueue)
    notification_email_task([created.pk])

    # then nothing more is sent
    assert len(smtp_server.received) == 1


def test_a_batch_goes_over_one_connection(smtp_server, django_capture_on_commit_callbacks):
    from kefu.accounts.tests.factories import UserFactory

    users = [UserFactory(email=f"staff{i}@example.com") for i in range(3)]

    with django_capture_on_commit_callbacks(execute=True):
        services.notify(users, kind="sla_breached", title="SLA 已超时", url="/tickets/9/")

    assert sorted(r.recipients[0] for r in smtp_server.received) == sorted(u.email for u in users)
    assert len({r.peer for r in smtp_server.received}) == 1
    assert not Notification.objects.filter(emailed_at__isnull=True).exists()


def test_nothing_is_sent_when_smtp_is_off(agent, smtp_server, django_capture_on_commit_callbacks):
    """With SMTP_ENABLED False notifications stay in the app: nothing enqueued, nothing sent."""
    agent.email = "agent@example.com"
    agent.save()

    with (
        override_settings(SMTP_ENABLED=False),
        django_capture_on_commit_callbacks(execute=True) as callbacks,
    ):
        services.notify([agent], kind="handoff_urged", title="请尽快接手", url="/tickets/3/")

    assert callbacks == []
    assert smtp_server.received == []
    assert Notification.objects.get(recipient=agent).emailed_at is None
