"""`kefu demo`: the pharmacy chain's customer service department, reproducible from a seed."""

from collections import Counter
from io import StringIO

import pytest
from django.contrib.auth import authenticate
from django.core.management import CommandError, call_command
from django.urls import reverse

from kefu.accounts.models import Store, User
from kefu.accounts.roles import Role, role_group_name
from kefu.customers.contacts import phone_normalize
from kefu.customers.models import ContactPoint, Customer
from kefu.customers.tests.factories import make_customer
from kefu.demo import data

pytestmark = pytest.mark.django_db

LOGINS = [
    "director",
    "manager",
    "supervisor1",
    "supervisor2",
    *[f"agent{i:02d}" for i in range(1, 11)],
    "complaints",
    "records",
    "vip",
    "store1",
    "store2",
    "store3",
    "store4",
    "admin",
]


def demo(**options) -> str:
    out = StringIO()
    call_command("demo", stdout=out, **options)
    return out.getvalue()


def test_demo_creates_the_department_of_seed_001():
    """Every role of the organisation chart has its logins, and each store its manager."""
    out = demo(customers=0)

    assert sorted(User.objects.values_list("username", flat=True)) == sorted(LOGINS)
    assert Counter(User.objects.values_list("role", flat=True)) == {
        Role.DIRECTOR: 1,
        Role.MANAGER: 1,
        Role.SUPERVISOR: 2,
        Role.AGENT: 10,
        Role.COMPLAINT_SPECIALIST: 1,
        Role.RECORDS_OFFICER: 1,
        Role.VIP_SPECIALIST: 1,
        Role.STORE_MANAGER: 4,
        Role.ADMINISTRATOR: 1,
    }
    for user in User.objects.prefetch_related("groups"):
        assert [g.name for g in user.groups.all()] == [role_group_name(user.role)]
        assert user.display_name
        assert user.employee_no.startswith("KF")
    assert list(Store.objects.values_list("code", flat=True)) == ["S01", "S02", "S03", "S04"]
    managed = dict(
        User.objects.filter(role=Role.STORE_MANAGER).values_list("username", "store__code")
    )
    assert managed == {"store1": "S01", "store2": "S02", "store3": "S03", "store4": "S04"}
    assert User.objects.get(username="agent01").team.name == "热线组"
    assert "password: kefu-demo" in out


def test_demo_customers_have_valid_phones_and_a_realistic_mix():
    """Every customer has a valid, unique mobile as primary phone; members hold a card."""
    demo(customers=80, seed=3)

    assert Customer.objects.count() == 80
    phones = list(ContactPoint.objects.filter(kind=ContactPoint.Kind.PHONE))
    assert len({p.value for p in phones}) == len(phones) >= 80
    for phone in phones:
        assert phone_normalize(phone.value) == phone.value
        assert phone.value.startswith("+861")
    assert Customer.objects.filter(contacts__kind="phone", contacts__is_primary=True).count() == 80
    assert set(Customer.objects.values_list("level", flat=True)) <= set(Customer.Level.values)
    assert Customer.objects.filter(level=Customer.Level.NORMAL).count() > 40
    assert Customer.objects.values("status").distinct().count() >= 3
    members = Customer.objects.filter(status=Customer.Status.MEMBER)
    assert members.exists()
    assert not members.filter(membership_card_no=None).exists()
    assert Customer.objects.filter(tags__isnull=False).distinct().count() > 20
    assert Customer.objects.values("store").distinct().count() >= 4


def test_same_seed_gives_same_customers_and_another_seed_others():
    """Names, phones and card numbers come from the seed alone; a prefix for a smaller count."""
    rows = data.customer_rows(seed=5, count=200)

    assert data.customer_rows(seed=5, count=200) == rows
    assert data.customer_rows(seed=5, count=50) == rows[:50]
    assert [
        r for chunk in data.customer_row_chunks(seed=5, count=200, size=64) for r in chunk
    ] == rows
    other = data.customer_rows(seed=6, count=200)
    assert [r["name"] for r in other] != [r["name"] for r in rows]
    assert not {r["phone"] for r in other} & {r["phone"] for r in rows}


def test_demo_loads_the_rows_of_its_seed():
    """The database holds exactly the generated customers, numbered in order."""
    demo(customers=30, seed=5)

    rows = data.customer_rows(seed=5, count=30)
    loaded = [
        (c.name, c.contacts.get(kind="phone", is_primary=True).value)
        for c in Customer.objects.order_by("number").prefetch_related("contacts")
    ]
    assert loaded == [(r["name"], phone_normalize(r["phone"])) for r in rows]


def test_demo_logins_work_with_the_demo_password(client):
    """All logins share the demo password; the login page lets them in."""
    demo(customers=0)

    assert User.objects.values("password").distinct().count() == 1
    for username in ("director", "agent01", "store1", "admin"):
        assert authenticate(username=username, password="kefu-demo") is not None
    assert authenticate(username="agent01", password="wrong") is None
    response = client.post(
        reverse("accounts:login"), {"username": "supervisor1", "password": "kefu-demo"}
    )
    assert response.status_code == 302
    assert int(client.session["_auth_user_id"]) == User.objects.get(username="supervisor1").pk


def test_demo_refuses_to_load_twice():
    demo(customers=0)

    with pytest.raises(CommandError, match="already loaded"):
        demo(customers=0)
    assert User.objects.count() == len(LOGINS)


def test_demo_refuses_a_database_with_data_unless_forced(agent):
    """Logins with a published password are not added to a real archive by accident."""
    with pytest.raises(CommandError, match="--force"):
        demo(customers=0)
    assert not User.objects.filter(username="director").exists()

    demo(customers=5, force=True)

    assert User.objects.filter(username="director").exists()
    assert Customer.objects.count() == 5


def test_demo_loads_nothing_when_the_import_refuses_a_row():
    """A generated phone already in the archive: the whole demo is rolled back, and says why."""
    make_customer(name="王芳", phone=data.customer_rows(seed=1, count=3)[2]["phone"])

    with pytest.raises(CommandError, match="refused by the import"):
        demo(customers=10, force=True)

    assert not User.objects.filter(username="director").exists()
    assert Customer.objects.count() == 1


def test_first_run_loads_the_department_into_a_database_without_users():
    """What `kefu run` asks of the demo app on every start (core does not import it)."""
    out = demo(first_run=True, customers=0)

    assert out.startswith("First run: loading the demo department")
    assert User.objects.filter(username__in=LOGINS).count() == len(LOGINS)
    assert data.LOGINS_HELP in out


def test_first_run_leaves_a_database_with_users_alone_and_shows_demo_logins_if_there():
    # given a database with its own users only
    User.objects.create_user(username="own-admin", password="pw-kefu-123")

    # when / then: nothing loaded, nothing said
    assert demo(first_run=True) == ""
    assert demo(logins=True) == ""
    assert User.objects.count() == 1

    # given the demo department loaded
    demo(customers=0, force=True)

    # when / then: the logins, and nothing loaded again
    assert demo(first_run=True) == data.LOGINS_HELP + "\n"
    assert demo(logins=True) == data.LOGINS_HELP + "\n"
    assert User.objects.count() == 1 + len(LOGINS)


def test_logins_never_loads_the_department():
    """`kefu run --no-demo` on an empty database."""
    assert demo(logins=True) == ""
    assert not User.objects.exists()
