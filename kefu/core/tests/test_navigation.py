"""The app shell's navigation is made of the entries each app registers (kefu.core.navigation):
every role sees the modules it may open, in one order, and lands on its start page."""

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.urls import reverse
from django.utils import translation

from kefu.accounts.models import User
from kefu.accounts.tests.factories import UserFactory
from kefu.core import navigation
from kefu.core.navigation import NavEntry, nav_register
from kefu.notifications.tests.factories import NotificationFactory

pytestmark = pytest.mark.django_db

# What each role's navigation held when core listed the modules itself (before issue 11).
NAV_BY_ROLE = {
    "agent": "home inbox customers tickets calls appointments followups notifications api",
    "complaint_specialist": (
        "home inbox customers tickets reports calls followups notifications jobs api"
    ),
    "records_officer": "home customers import tickets campaigns followups notifications jobs api",
    "vip_specialist": "home inbox customers tickets calls appointments followups notifications api",
    "supervisor": (
        "home inbox customers tickets reports calls appointments followups notifications jobs api"
    ),
    "manager": (
        "home inbox customers import tickets reports calls appointments campaigns followups"
        " notifications jobs api"
    ),
    "director": (
        "home inbox customers import tickets reports calls followups notifications jobs api"
    ),
    "store_manager": "home customers tickets appointments notifications api",
    "department_handler": "home tickets handoffs notifications api",
    "administrator": "home customers tickets notifications jobs tokens admin api",
}


@pytest.mark.parametrize(("role", "keys"), NAV_BY_ROLE.items())
def test_each_role_sees_its_modules_in_order(client, role, keys):
    # given
    client.force_login(UserFactory(username=f"u-{role}", role=role))

    # when
    response = client.get(reverse("notifications:notification_list"))

    # then
    assert [item["key"] for item in response.context["nav_items"]] == keys.split()


def test_a_superuser_sees_every_module_with_its_label_and_address(client):
    client.force_login(UserFactory(username="root", is_superuser=True, is_staff=True))

    response = client.get(reverse("notifications:notification_list"))

    with translation.override("en"):
        items = [(i["key"], str(i["label"]), i["url"]) for i in response.context["nav_items"]]
    assert items == [
        ("home", "Home", "/"),
        ("inbox", "Inbox", "/inbox/"),
        ("customers", "Customers", "/customers/"),
        ("import", "Import", "/customers/import/"),
        ("tickets", "Tickets", "/tickets/"),
        ("handoffs", "Department queue", "/tickets/handoffs/"),
        ("reports", "Complaint summaries", "/tickets/reports/complaints/"),
        ("calls", "Calls", "/consultations/calls/"),
        ("appointments", "Appointments", "/appointments/"),
        ("campaigns", "Bulk messages", "/campaigns/"),
        ("followups", "Follow-ups", "/followups/"),
        ("notifications", "Notifications", "/notifications/"),
        ("jobs", "Background jobs", "/jobs/"),
        ("tokens", "API tokens", "/accounts/tokens/"),
        ("admin", "Administration", "/admin/"),
        ("api", "API docs", "/api/v1/docs"),
    ]


def test_the_notifications_entry_counts_the_unread_ones(client, agent):
    # given two unread notifications and a read one
    NotificationFactory.create_batch(2, recipient=agent)
    NotificationFactory(recipient=agent, read_at="2026-03-01T08:00:00Z")
    client.force_login(agent)

    # when
    response = client.get(reverse("customers:customer_list"))

    # then the badge and {{ unread_notifications }} say 2; no other entry has a count
    badges = {item["key"]: item["badge"] for item in response.context["nav_items"]}
    assert badges.pop("notifications") == 2
    assert set(badges.values()) == {None}
    assert response.context["unread_notifications"] == 2
    assert 'data-testid="unread-notifications">2<' in response.content.decode()


@pytest.mark.parametrize(
    ("role", "start"),
    [
        ("agent", "/customers/"),
        ("store_manager", "/customers/"),
        ("department_handler", "/tickets/handoffs/"),
        ("administrator", "/customers/"),
    ],
)
def test_home_sends_each_role_to_its_start_page(client, role, start):
    client.force_login(UserFactory(username=f"u-{role}", role=role))

    response = client.get(reverse("core:home"))

    assert response.status_code == 302
    assert response.headers["Location"] == start


def test_home_sends_a_ticket_reader_without_customers_to_the_tickets(client):
    # given a user who may read tickets but neither customers nor the department queue
    user = User.objects.create_user(username="reader", password="pw-kefu-123")
    user.user_permissions.add(_permission("tickets", "view_ticket"))
    client.force_login(user)

    response = client.get(reverse("core:home"))

    assert response.headers["Location"] == "/tickets/"


def test_home_without_any_start_page_is_a_page_of_its_own(client):
    client.force_login(User.objects.create_user(username="nobody", password="pw-kefu-123"))

    response = client.get(reverse("core:home"))

    assert response.status_code == 200
    assert [item["key"] for item in response.context["nav_items"]] == [
        "home",
        "notifications",
        "api",
    ]
    assert response.context["active_nav"] == "home"


def test_an_app_adds_an_entry_where_its_order_puts_it(client, agent, monkeypatch):
    # given an app registering a module between the tickets and the calls, for agents only
    monkeypatch.setattr(navigation, "_entries", dict(navigation._entries))
    nav_register(
        NavEntry(
            "kb",
            "Knowledge base",
            "/kb/",
            order=450,
            permissions=("tickets.view_ticket",),
            badge=lambda user: 3,
        )
    )
    client.force_login(agent)

    # when
    response = client.get(reverse("notifications:notification_list"))

    # then
    items = response.context["nav_items"]
    keys = [item["key"] for item in items]
    assert keys[keys.index("tickets") + 1] == "kb"
    assert items[keys.index("kb")] == {
        "label": "Knowledge base",
        "url": "/kb/",
        "key": "kb",
        "badge": 3,
    }
    assert 'data-testid="unread-kb">3<' in response.content.decode()


def test_two_modules_cannot_claim_one_key(monkeypatch):
    monkeypatch.setattr(navigation, "_entries", dict(navigation._entries))

    with pytest.raises(ImproperlyConfigured, match="'tickets' is taken"):
        nav_register(NavEntry("tickets", "Tickets", "/elsewhere/", order=1))

    # registering the same entry again (ready() running twice) is allowed
    nav_register(NavEntry("tickets", "Tickets", "tickets:ticket_list", order=400))


def _permission(app_label: str, codename: str):
    from django.contrib.auth.models import Permission

    return Permission.objects.get(content_type__app_label=app_label, codename=codename)
