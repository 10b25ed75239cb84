"""Thin tests of the API and the pages: own rows only, one happy path each, the refusals."""

import pytest
from django.test import Client
from django.urls import reverse

from kefu.accounts.services import api_token_create
from kefu.notifications.models import Notification
from kefu.notifications.tests.factories import NotificationFactory

pytestmark = pytest.mark.django_db

BASE = "/api/v1/notifications"


def api_client(user) -> Client:
    """A client authenticating with a bearer token, as an integration does."""
    if user is None:
        return Client()
    _token, key = api_token_create(user=user, name="test", actor=None)
    return Client(headers={"authorization": f"Bearer {key}"})


def page_client(user) -> Client:
    client = Client()
    if user is not None:
        client.force_login(user)
    return client


# --- API ------------------------------------------------------------------------------------


def test_api_lists_only_own_notifications(agent, manager):
    # given
    read = NotificationFactory(recipient=agent, read_at="2026-03-01T08:00:00Z")
    unread = NotificationFactory(recipient=agent, title="SLA 即将超时", url="/tickets/7/")
    NotificationFactory(recipient=manager)

    # when
    response = api_client(agent).get(BASE)

    # then
    assert response.status_code == 200
    data = response.json()
    assert data["count"] == 2
    assert [n["id"] for n in data["results"]] == [unread.pk, read.pk]
    first = data["results"][0]
    assert set(first) == {"id", "kind", "title", "body", "url", "created_at", "read_at"}
    assert first["title"] == "SLA 即将超时"
    assert first["url"] == "/tickets/7/"
    assert first["read_at"] is None


def test_api_lists_unread_only_and_pages(agent):
    NotificationFactory(recipient=agent, read_at="2026-03-01T08:00:00Z")
    unread = NotificationFactory.create_batch(3, recipient=agent)
    client = api_client(agent)

    data = client.get(BASE, {"unread": "true", "page_size": 2}).json()
    assert data["count"] == 3
    assert [n["id"] for n in data["results"]] == [unread[2].pk, unread[1].pk]
    data = client.get(BASE, {"unread": "true", "page_size": 2, "page": 2}).json()
    assert [n["id"] for n in data["results"]] == [unread[0].pk]


def test_api_marks_one_read(agent):
    notification = NotificationFactory(recipient=agent)

    response = api_client(agent).post(f"{BASE}/{notification.pk}/read")

    assert response.status_code == 200
    assert response.json()["read_at"] is not None
    notification.refresh_from_db()
    assert notification.read_at is not None


def test_api_refuses_another_users_notification_with_404(agent, manager):
    theirs = NotificationFactory(recipient=manager)

    response = api_client(agent).post(f"{BASE}/{theirs.pk}/read")

    assert response.status_code == 404
    assert response.json()["code"] == "notification_not_found"
    theirs.refresh_from_db()
    assert theirs.read_at is None


def test_api_read_all_returns_the_count(agent, manager):
    NotificationFactory.create_batch(2, recipient=agent)
    NotificationFactory(recipient=agent, read_at="2026-03-01T08:00:00Z")
    NotificationFactory(recipient=manager)

    response = api_client(agent).post(f"{BASE}/read-all")

    assert response.status_code == 200
    assert response.json() == {"count": 2}
    assert Notification.objects.filter(recipient=manager, read_at__isnull=True).count() == 1


def test_api_works_with_the_session_too(agent):
    NotificationFactory(recipient=agent)
    response = page_client(agent).get(BASE)
    assert response.status_code == 200
    assert response.json()["count"] == 1


@pytest.mark.parametrize(
    ("method", "path"),
    [("get", ""), ("post", "/read-all"), ("post", "/1/read")],
)
def test_api_refuses_anonymous(method, path):
    response = getattr(Client(), method)(BASE + path)
    assert response.status_code == 401
    assert response.json()["code"] == "not_authenticated"


# --- Pages ----------------------------------------------------------------------------------


def test_list_page_shows_own_notifications_with_unread_highlighted(agent, manager):
    # given
    unread = NotificationFactory(recipient=agent, title="新工单待处理")
    read = NotificationFactory(
        recipient=agent, title="已处理的提醒", read_at="2026-03-01T08:00:00Z"
    )
    NotificationFactory(recipient=manager, title="别人的通知")

    # when
    response = page_client(agent).get(reverse("notifications:notification_list"))

    # then
    assert response.status_code == 200
    html = response.content.decode()
    assert "新工单待处理" in html
    assert "已处理的提醒" in html
    assert "别人的通知" not in html
    assert f'class="unread" data-testid="notification-{unread.pk}"' in html
    assert f'class="read" data-testid="notification-{read.pk}"' in html
    assert reverse("notifications:notification_open", args=[unread.pk]) in html
    assert reverse("notifications:notification_read_all") in html
    assert 'data-testid="unread-notifications">1<' in html  # the nav badge
    assert response.context["unread_notifications"] == 1


def test_list_page_needs_login():
    response = Client().get(reverse("notifications:notification_list"))
    assert response.status_code == 302
    assert "/login" in response["Location"]


def test_open_marks_read_and_redirects_to_the_record(agent):
    notification = NotificationFactory(recipient=agent, url="/customers/5/")

    response = page_client(agent).get(
        reverse("notifications:notification_open", args=[notification.pk])
    )

    assert response.status_code == 302
    assert response["Location"] == "/customers/5/"
    notification.refresh_from_db()
    assert notification.read_at is not None


def test_open_without_url_goes_back_to_the_list(agent):
    notification = NotificationFactory(recipient=agent, url="")
    response = page_client(agent).get(
        reverse("notifications:notification_open", args=[notification.pk])
    )
    assert response["Location"] == reverse("notifications:notification_list")


def test_open_another_users_notification_is_404(agent, manager):
    theirs = NotificationFactory(recipient=manager)

    response = page_client(agent).get(reverse("notifications:notification_open", args=[theirs.pk]))

    assert response.status_code == 404
    theirs.refresh_from_db()
    assert theirs.read_at is None


def test_read_all_marks_own_and_redirects(agent, manager):
    NotificationFactory.create_batch(2, recipient=agent)
    theirs = NotificationFactory(recipient=manager)
    client = page_client(agent)

    assert client.get(reverse("notifications:notification_read_all")).status_code == 405
    response = client.post(reverse("notifications:notification_read_all"))

    assert response.status_code == 302
    assert response["Location"] == reverse("notifications:notification_list")
    assert not Notification.objects.filter(recipient=agent, read_at__isnull=True).exists()
    theirs.refresh_from_db()
    assert theirs.read_at is None


def test_read_all_needs_the_csrf_token(agent):
    NotificationFactory(recipient=agent)
    client = Client(enforce_csrf_checks=True)
    client.force_login(agent)

    response = client.post(reverse("notifications:notification_read_all"))

    assert response.status_code == 403
    assert Notification.objects.filter(recipient=agent, read_at__isnull=True).exists()
