import io

import pytest
from django.contrib.auth.models import Group
from django.core.management import call_command
from django.test import Client, override_settings
from django.urls import reverse

from kefu.accounts.models import ApiToken
from kefu.accounts.roles import ROLE_PERMISSIONS, Role, role_group_name
from kefu.accounts.services import user_create
from kefu.audit.models import AuditEntry
from kefu.core.exceptions import ValidationFailed

pytestmark = pytest.mark.django_db


def test_every_role_has_a_group_with_its_permissions():
    for role in Role.values:
        group = Group.objects.get(name=role_group_name(role))
        perms = {
            f"{p.content_type.app_label}.{p.codename}"
            for p in group.permissions.select_related("content_type")
        }
        assert perms == set(ROLE_PERMISSIONS[role]), role


def test_user_create_puts_user_in_one_role(store):
    user = user_create(
        username="li",
        password="pw-secret-1",
        role="store_manager",
        store=store,
        employee_no="KF100",
    )
    assert [g.name for g in user.groups.all()] == ["role:store_manager"]
    assert user.has_perm("customers.view_full_contact")
    assert not user.has_perm("customers.view_all_customers")
    with pytest.raises(ValidationFailed) as exc:
        user_create(username="li2", password="x", role="agent", employee_no="KF100")
    assert "employee_no" in exc.value.errors


def test_login_and_logout(agent):
    client = Client()
    response = client.post(
        reverse("accounts:login"), {"username": "agent", "password": "pw-kefu-123"}
    )
    assert response.status_code == 302
    assert client.get(reverse("customers:customer_list")).status_code == 200
    client.post(reverse("accounts:logout"))
    assert client.get(reverse("customers:customer_list")).status_code == 302


@override_settings(LOGIN_MAX_FAILURES=3)
def test_repeated_failed_logins_are_throttled(agent):
    client = Client()
    for _ in range(3):
        response = client.post(
            reverse("accounts:login"), {"username": "agent", "password": "wrong"}
        )
        assert response.status_code == 200
    # the right password is refused too while the lock lasts
    response = client.post(
        reverse("accounts:login"), {"username": "agent", "password": "pw-kefu-123"}
    )
    assert response.status_code == 200
    assert "_auth_user_id" not in client.session
    assert AuditEntry.objects.filter(action="login.failed").count() == 3


def test_a_successful_login_resets_the_failure_count(agent):
    client = Client()
    for _ in range(4):
        client.post(reverse("accounts:login"), {"username": "agent", "password": "wrong"})
    assert (
        client.post(
            reverse("accounts:login"), {"username": "agent", "password": "pw-kefu-123"}
        ).status_code
        == 302
    )
    client.post(reverse("accounts:logout"))
    for _ in range(4):
        client.post(reverse("accounts:login"), {"username": "agent", "password": "wrong"})
    assert (
        client.post(
            reverse("accounts:login"), {"username": "agent", "password": "pw-kefu-123"}
        ).status_code
        == 302
    )


@pytest.mark.parametrize(
    ("role", "status"), [("agent", 403), ("manager", 403), ("administrator", 200)]
)
def test_token_page_is_for_administrators(request, role, status):
    client = Client()
    client.force_login(request.getfixturevalue(role))
    assert client.get(reverse("accounts:token_list")).status_code == status


def test_administrator_creates_token_in_app_and_it_works(administrator, records_officer):
    client = Client()
    client.force_login(administrator)
    response = client.post(
        reverse("accounts:token_list"), {"name": "ERP 同步", "user": records_officer.pk}
    )
    html = response.content.decode()
    token = ApiToken.objects.get(name="ERP 同步")
    key = html.split('<code class="key">')[1].split("</code>")[0]
    assert ApiToken.hash_key(key) == token.key_hash
    api = Client(headers={"authorization": f"Bearer {key}"})
    assert api.get("/api/v1/accounts/me").json()["username"] == records_officer.username
    client.post(reverse("accounts:token_revoke", kwargs={"pk": token.pk}))
    assert api.get("/api/v1/accounts/me").status_code == 401


def test_token_command(agent):
    out, err = io.StringIO(), io.StringIO()
    call_command("token", "create", "agent", "call center", stdout=out, stderr=err)
    key = out.getvalue().strip()
    assert (
        Client(headers={"authorization": f"Bearer {key}"}).get("/api/v1/accounts/me").status_code
        == 200
    )
    listing = io.StringIO()
    call_command("token", "list", stdout=listing)
    assert "call center" in listing.getvalue()


def test_administrator_manages_users_in_the_admin_site(administrator, agent):
    client = Client()
    client.force_login(administrator)
    assert client.get("/admin/accounts/user/").status_code == 200
    response = client.post(
        f"/admin/accounts/user/{agent.pk}/change/",
        {
            "username": "agent",
            "display_name": "王芳",
            "role": "supervisor",
            "is_active": "on",
            "last_login_0": "",
            "date_joined_0": "2026-01-01",
            "date_joined_1": "08:00:00",
        },
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    agent.refresh_from_db()
    assert agent.role == "supervisor"
    assert [g.name for g in agent.groups.all()] == ["role:supervisor"]
    assert AuditEntry.objects.filter(action="user.role_changed", actor=administrator).exists()


def test_agents_cannot_open_the_admin_site(agent):
    client = Client()
    client.force_login(agent)
    assert client.get("/admin/accounts/user/").status_code == 302
