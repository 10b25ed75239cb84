import datetime as dt
from unittest.mock import patch

import pytest
from django.db import transaction
from django.test import override_settings

from kefu.accounts.tests.factories import UserFactory
from kefu.notifications import services
from kefu.notifications.exceptions import NotificationNotFound
from kefu.notifications.models import Notification
from kefu.notifications.selectors import (
    notification_get_for,
    notification_list_for,
    notification_unread_count,
)
from kefu.notifications.tests.factories import NotificationFactory

pytestmark = pytest.mark.django_db

NOW = dt.datetime(2026, 3, 2, 9, 30, tzinfo=dt.UTC)


def test_notify_creates_one_row_per_active_recipient(agent, manager):
    """None, duplicates and inactive users are skipped; each active user gets exactly one row."""
    # given
    inactive = UserFactory(is_active=False)

    # when
    created = services.notify(
        [agent, None, manager, agent, inactive],
        kind="ticket_assigned",
        title="工单 #5 已分派给你",
        body="请尽快处理。",
        url="/tickets/5/",
    )

    # then
    assert sorted(n.recipient_id for n in created) == sorted([agent.pk, manager.pk])
    assert all(n.pk for n in created)
    row = Notification.objects.get(recipient=agent)
    assert (row.kind, row.title, row.body, row.url) == (
        "ticket_assigned",
        "工单 #5 已分派给你",
        "请尽快处理。",
        "/tickets/5/",
    )
    assert row.read_at is None
    assert row.emailed_at is None
    assert not Notification.objects.filter(recipient=inactive).exists()


def test_notify_with_nobody_to_tell_writes_nothing():
    assert services.notify([None], kind="sla_breached", title="超时") == []
    assert not Notification.objects.exists()


def test_notify_accepts_a_queryset_and_a_generator(agent, manager):
    from kefu.accounts.models import User

    services.notify(User.objects.filter(pk=agent.pk), kind="k", title="t")
    services.notify((u for u in [manager]), kind="k", title="t")
    assert Notification.objects.count() == 2


def test_notify_cuts_a_long_title_to_fit(agent):
    """Titles quoting a customer's subject never make the caller's transaction fail."""
    (created,) = services.notify([agent], kind="k", title="长" * 300 + "\n尾")
    created.refresh_from_db()
    assert len(created.title) == 200
    assert created.title.endswith("…")


def test_notify_refuses_an_absolute_url(agent):
    with pytest.raises(ValueError, match="site-relative"):
        services.notify([agent], kind="k", title="t", url="https://evil.example/")
    with pytest.raises(ValueError, match="site-relative"):
        services.notify([agent], kind="k", title="t", url="//evil.example/")


def test_notify_rolls_back_with_the_callers_transaction(agent, django_capture_on_commit_callbacks):
    """Called inside another service's atomic block: a rollback leaves no row and no e-mail."""
    # given
    agent.email = "agent@example.com"
    agent.save()

    @transaction.atomic
    def caller_service():
        services.notify([agent], kind="k", title="t")
        raise RuntimeError("the caller failed")

    # when
    with (
        override_settings(SMTP_ENABLED=True),
        patch("kefu.notifications.services.notification_email_task") as email_task,
        django_capture_on_commit_callbacks(execute=True) as callbacks,
        pytest.raises(RuntimeError),
    ):
        caller_service()

    # then
    assert not Notification.objects.exists()
    assert callbacks == []
    email_task.assert_not_called()


def test_notify_enqueues_email_only_for_recipients_with_an_address(
    agent, manager, django_capture_on_commit_callbacks
):
    # given
    agent.email = "agent@example.com"
    agent.save()
    manager.email = ""
    manager.save()

    # when
    with (
        override_settings(SMTP_ENABLED=True),
        patch("kefu.notifications.services.notification_email_task") as email_task,
        django_capture_on_commit_callbacks(execute=True),
    ):
        services.notify([agent, manager], kind="k", title="t")

    # then
    agent_row = Notification.objects.get(recipient=agent)
    email_task.assert_called_once_with([agent_row.pk])


@pytest.mark.parametrize(
    ("smtp_enabled", "email"),
    [(False, True), (True, False)],
    ids=["smtp-off", "email-false"],
)
def test_notify_enqueues_no_email(agent, smtp_enabled, email, django_capture_on_commit_callbacks):
    agent.email = "agent@example.com"
    agent.save()
    with (
        override_settings(SMTP_ENABLED=smtp_enabled),
        patch("kefu.notifications.services.notification_email_task") as email_task,
        django_capture_on_commit_callbacks(execute=True) as callbacks,
    ):
        services.notify([agent], kind="k", title="t", email=email)
    assert callbacks == []
    email_task.assert_not_called()
    assert Notification.objects.filter(recipient=agent).exists()


def test_mark_read_all_touches_only_the_actors_unread_rows(agent, manager):
    # given
    mine = NotificationFactory.create_batch(2, recipient=agent)
    already = NotificationFactory(recipient=agent, read_at=NOW - dt.timedelta(days=1))
    theirs = NotificationFactory(recipient=manager)

    # when
    count = services.notification_mark_read(actor=agent, now=NOW)

    # then
    assert count == 2
    for n in mine:
        n.refresh_from_db()
        assert n.read_at == NOW
    already.refresh_from_db()
    assert already.read_at == NOW - dt.timedelta(days=1)
    theirs.refresh_from_db()
    assert theirs.read_at is None


def test_mark_read_by_ids_ignores_other_users_ids(agent, manager):
    # given
    mine, other_mine = NotificationFactory.create_batch(2, recipient=agent)
    theirs = NotificationFactory(recipient=manager)

    # when
    count = services.notification_mark_read(
        actor=agent, notification_ids=[mine.pk, theirs.pk], now=NOW
    )

    # then
    assert count == 1
    assert Notification.objects.get(pk=mine.pk).read_at == NOW
    assert Notification.objects.get(pk=other_mine.pk).read_at is None
    assert Notification.objects.get(pk=theirs.pk).read_at is None


def test_mark_read_with_no_ids_changes_nothing(agent):
    NotificationFactory(recipient=agent)
    assert services.notification_mark_read(actor=agent, notification_ids=[], now=NOW) == 0
    assert notification_unread_count(user=agent) == 1


def test_notification_read_marks_one_and_keeps_the_first_read_time(agent):
    notification = NotificationFactory(recipient=agent)
    services.notification_read(actor=agent, notification_id=notification.pk, now=NOW)
    later = NOW + dt.timedelta(hours=1)
    read = services.notification_read(actor=agent, notification_id=notification.pk, now=later)
    assert read.read_at == NOW


def test_notification_read_refuses_another_users_notification(agent, manager):
    theirs = NotificationFactory(recipient=manager)
    with pytest.raises(NotificationNotFound) as excinfo:
        services.notification_read(actor=agent, notification_id=theirs.pk, now=NOW)
    assert excinfo.value.code == "notification_not_found"
    assert excinfo.value.status == 404
    theirs.refresh_from_db()
    assert theirs.read_at is None


def test_selectors_see_only_the_users_own_notifications(agent, manager):
    # given
    read = NotificationFactory(recipient=agent, read_at=NOW)
    unread = NotificationFactory(recipient=agent)
    theirs = NotificationFactory(recipient=manager)

    # then
    assert list(notification_list_for(user=agent)) == [unread, read]  # newest first
    assert list(notification_list_for(user=agent, unread_only=True)) == [unread]
    assert notification_unread_count(user=agent) == 1
    assert notification_unread_count(user=manager) == 1
    with pytest.raises(NotificationNotFound):
        notification_get_for(user=agent, notification_id=theirs.pk)


def test_unread_count_is_one_query(agent, django_assert_num_queries):
    NotificationFactory.create_batch(3, recipient=agent)
    with django_assert_num_queries(1):
        assert notification_unread_count(user=agent) == 3
