"""The administrator role manages every setting the README places at /admin/."""

import re
from pathlib import Path

import pytest
from django.conf import settings
from django.test import Client
from django.urls import reverse

from kefu.demo import data as demo_data

pytestmark = pytest.mark.django_db

# What the README says administrators manage at /admin/, and the admin model behind each.
README_SETTINGS = {
    "staff": "accounts.user",
    "stores": "accounts.store",
    "teams": "accounts.team",
    "tags": "customers.tag",
    "custom fields": "customers.customfielddefinition",
    "categories": "tickets.category",
    "root causes": "tickets.rootcause",
    "departments and their handlers": "tickets.department",
    "queues": "tickets.queue",
    "SLA policies": "tickets.slapolicy",
    "ticket settings": "tickets.ticketconfig",
    "Channels": "conversations.channel",
    "inbox queues": "conversations.inboxqueue",
    "agents' capacity": "conversations.agentstatus",
    "quick replies": "conversations.quickreply",
    "opening hours": "appointments.openinghours",
    "appointment slots": "appointments.storeschedule",
    "follow-up rules": "followups.followuprule",
    "periodic plans": "followups.followupplan",
    "business hours": "businesstime.businessschedule",
    "holiday calendar": "businesstime.calendarday",
}


@pytest.fixture
def demo_admin(db):
    """The `admin` login of the demo department, as `kefu demo` creates it."""
    return demo_data.department_create()["admin"]


def test_the_readme_names_these_settings_at_admin():
    """The list below follows the README: a setting added there is added here too."""
    readme = (Path(settings.BASE_DIR) / "README.md").read_text()
    said = " ".join(p for p in readme.split("\n\n") if "/admin/" in p)
    said = re.sub(r"\s+", " ", said)
    for words in README_SETTINGS:
        assert words.lower() in said.lower(), words


@pytest.mark.parametrize(("setting", "model"), list(README_SETTINGS.items()))
def test_demo_admin_opens_every_setting_the_readme_names(demo_admin, setting, model):
    """The demo `admin` opens the list of each setting and, where records are added there, the
    form to add one (ticket settings are one record, API tokens are made on their own page)."""
    client = Client()
    client.force_login(demo_admin)
    app_label, model_name = model.split(".")
    listing = client.get(reverse(f"admin:{app_label}_{model_name}_changelist"))
    assert listing.status_code == 200, setting
    add = client.get(reverse(f"admin:{app_label}_{model_name}_add"))
    assert add.status_code == 200, setting
    index = client.get(reverse("admin:index"))
    assert reverse(f"admin:{app_label}_{model_name}_changelist") in index.content.decode()


def test_demo_admin_changes_a_store(demo_admin):
    """Managing is more than reading: the administrator renames a store."""
    from kefu.accounts.models import Store

    store = Store.objects.get(code="S01")
    client = Client()
    client.force_login(demo_admin)
    response = client.post(
        reverse("admin:accounts_store_change", args=[store.pk]),
        {
            "code": "S01",
            "name": "康宁大药房·人民路旗舰店",
            "address": store.address,
            "phone": store.phone,
            "is_active": "on",
        },
    )
    assert response.status_code == 302, response.content.decode()[:1500]
    store.refresh_from_db()
    assert store.name == "康宁大药房·人民路旗舰店"


def test_the_holiday_banner_links_to_a_page_the_admin_opens(demo_admin):
    """The notice about a year without holidays points the administrator at a page it opens."""
    from kefu.businesstime.models import CalendarDay

    CalendarDay.objects.all().delete()
    client = Client()
    client.force_login(demo_admin)
    page = client.get(reverse("core:home"), follow=True).content.decode()
    match = re.search(r'data-testid="calendar-missing".*?href="([^"]+)"', page, re.S)
    assert match, "the notice links to the calendar"
    assert client.get(match.group(1)).status_code == 200
