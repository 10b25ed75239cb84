"""Notification endpoints under /api/v1/notifications: the caller's own notifications only."""

import datetime as dt

from django.http import HttpRequest
from django.utils import timezone
from ninja import Field, Query, Router, Schema

from kefu.core.bounds import PageNumber
from kefu.notifications import services
from kefu.notifications.models import Notification
from kefu.notifications.selectors import notification_list_for

router = Router(tags=["notifications"])


class NotificationOut(Schema):
    id: int
    kind: str
    title: str
    body: str
    url: str = Field(description="Site-relative path of the record the notification is about.")
    created_at: dt.datetime
    read_at: dt.datetime | None


class NotificationPage(Schema):
    count: int
    page: int
    page_size: int
    results: list[NotificationOut]


class NotificationFilters(Schema):
    unread: bool = Field(False, description="Only unread notifications.")
    page: PageNumber = 1
    page_size: int = Field(25, ge=1, le=200)


class ReadAllOut(Schema):
    count: int = Field(description="How many notifications were marked read.")


def _out(notification: Notification) -> NotificationOut:
    return NotificationOut(
        id=notification.pk,
        kind=notification.kind,
        title=notification.title,
        body=notification.body,
        url=notification.url,
        created_at=notification.created_at,
        read_at=notification.read_at,
    )


@router.get("", response=NotificationPage, summary="My notifications, newest first")
def notification_list_api(request: HttpRequest, filters: Query[NotificationFilters]):
    notifications = notification_list_for(user=request.auth, unread_only=filters.unread)
    page, page_size = filters.page, filters.page_size
    rows = notifications[(page - 1) * page_size : page * page_size]
    return NotificationPage(
        count=notifications.count(),
        page=page,
        page_size=page_size,
        results=[_out(n) for n in rows],
    )


@router.post("/read-all", response=ReadAllOut, summary="Mark all my notifications read")
def notification_read_all_api(request: HttpRequest):
    count = services.notification_mark_read(actor=request.auth, now=timezone.now())
    return ReadAllOut(count=count)


@router.post("/{notification_id}/read", response=NotificationOut, summary="Mark one read")
def notification_read_api(request: HttpRequest, notification_id: int):
    notification = services.notification_read(
        actor=request.auth, notification_id=notification_id, now=timezone.now()
    )
    return _out(notification)
