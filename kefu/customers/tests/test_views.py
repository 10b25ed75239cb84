import pytest
from django.test import Client
from django.urls import reverse

from kefu.audit.models import AuditEntry
from kefu.customers.models import Customer
from kefu.customers.tests.factories import make_customer

pytestmark = pytest.mark.django_db

HX = {"HX-Request": "true"}


def client_for(user) -> Client:
    client = Client()
    if user is not None:
        client.force_login(user)
    return client


# page: (method, url name, kwargs builder, data, {role: expected status})
PAGES = {
    "list": (
        "get",
        "customers:customer_list",
        lambda c, d: {},
        None,
        {"agent": 200, "records_officer": 200, "manager": 200, "handler": 403},
    ),
    "detail": (
        "get",
        "customers:customer_detail",
        lambda c, d: {"pk": c.pk},
        None,
        {"agent": 200, "records_officer": 200, "manager": 200, "handler": 403},
    ),
    "create_form": (
        "get",
        "customers:customer_create",
        lambda c, d: {},
        None,
        {"agent": 200, "records_officer": 200, "manager": 200, "handler": 403},
    ),
    "edit_form": (
        "get",
        "customers:customer_edit",
        lambda c, d: {"pk": c.pk},
        None,
        {"agent": 200, "records_officer": 200, "manager": 200, "handler": 403},
    ),
    "lifecycle": (
        "post",
        "customers:customer_lifecycle",
        lambda c, d: {"pk": c.pk},
        {"status": "customer"},
        {"agent": 302, "records_officer": 302, "manager": 302, "handler": 403},
    ),
    "merge": (
        "post",
        "customers:customer_merge",
        lambda c, d: {"pk": c.pk},
        "merge",
        {"agent": 403, "records_officer": 302, "manager": 302, "handler": 403},
    ),
    "reveal": (
        "post",
        "customers:customer_contact_reveal",
        lambda c, d: {"pk": c.pk, "contact_id": c.contacts.get().pk},
        {},
        {"agent": 403, "records_officer": 200, "manager": 200, "handler": 403},
    ),
    "contact_add": (
        "post",
        "customers:customer_contact_add",
        lambda c, d: {"pk": c.pk},
        {"kind": "qq", "value": "12345678"},
        {"agent": 302, "records_officer": 302, "manager": 302, "handler": 403},
    ),
}


@pytest.mark.parametrize("role", ["anonymous", "agent", "records_officer", "manager", "handler"])
@pytest.mark.parametrize("page", sorted(PAGES))
def test_customer_page_permission_matrix(request, page, role, customer, duplicate):
    method, name, kwargs, data, expected = PAGES[page]
    user = None if role == "anonymous" else request.getfixturevalue(role)
    if data == "merge":
        data = {"duplicate_number": duplicate.number}
    url = reverse(name, kwargs=kwargs(customer, duplicate))
    response = getattr(client_for(user), method)(url, data or {})
    if role == "anonymous":
        assert response.status_code == 302
        assert response["Location"].startswith(reverse("accounts:login"))
    else:
        assert response.status_code == expected[role]
    if page == "merge" and response.status_code != 302:
        assert not Customer.objects.filter(merged_into__isnull=False).exists()


def test_list_shows_masked_phone_and_no_full_number(agent, customer):
    response = client_for(agent).get(reverse("customers:customer_list"))
    html = response.content.decode()
    assert "138****1234" in html
    assert "13812341234" not in html


def test_detail_never_contains_full_number_even_for_roles_that_may_reveal(
    records_officer, customer
):
    html = client_for(records_officer).get(customer.get_absolute_url()).content.decode()
    assert "138****1234" in html
    assert "13812341234" not in html
    assert not AuditEntry.objects.filter(action="customer.contact_revealed").exists()


def test_reveal_fragment_shows_number_and_audits(records_officer, customer):
    contact = customer.contacts.get()
    url = reverse(
        "customers:customer_contact_reveal", kwargs={"pk": customer.pk, "contact_id": contact.pk}
    )
    response = client_for(records_officer).post(url, headers=HX)
    assert response.status_code == 200
    assert "13812341234" in response.content.decode()
    assert "<html" not in response.content.decode()
    assert (
        AuditEntry.objects.filter(action="customer.contact_revealed", actor=records_officer).count()
        == 1
    )


def test_search_fragment_for_htmx(agent, customer):
    make_customer(actor=agent, name="李四")
    response = client_for(agent).get(reverse("customers:customer_list"), {"q": "zs"}, headers=HX)
    html = response.content.decode()
    assert html.lstrip().startswith('<div id="results">')
    assert "张三" in html
    assert "李四" not in html


def test_search_by_phone_tail_on_page(agent, customer):
    make_customer(actor=agent, name="李四", phone="13900005555")
    html = client_for(agent).get(reverse("customers:customer_list"), {"q": "1234"}).content.decode()
    assert "张三" in html
    assert "李四" not in html


def test_create_with_bad_phone_shows_inline_error_and_writes_nothing(agent):
    response = client_for(agent).post(
        reverse("customers:customer_create"),
        {"name": "新客", "level": "normal", "source": "phone", "phone": "12345"},
        headers=HX,
    )
    assert response.status_code == 200
    html = response.content.decode()
    assert 'id="customer-form"' in html
    assert "<html" not in html
    assert "12345" in html  # the error names the value
    assert Customer.objects.count() == 0


def test_create_duplicate_phone_points_to_existing(agent, customer):
    response = client_for(agent).post(
        reverse("customers:customer_create"),
        {"name": "李四", "level": "normal", "source": "phone", "phone": "13812341234"},
    )
    assert response.status_code == 200
    assert customer.number in response.content.decode()
    assert Customer.objects.count() == 1


def test_create_happy_path_redirects_to_profile(agent, store):
    response = client_for(agent).post(
        reverse("customers:customer_create"),
        {
            "name": "新客",
            "level": "vip",
            "source": "phone",
            "phone": "13612345678",
            "tags": "慢病，母婴",
            "store": store.pk,
            "address": "人民路 1 号",
            "city": "杭州市",
        },
        headers=HX,
    )
    customer = Customer.objects.get(name="新客")
    assert response.status_code == 200
    assert response["HX-Redirect"] == customer.get_absolute_url()
    assert sorted(customer.tags.values_list("name", flat=True)) == ["慢病", "母婴"]
    assert customer.addresses.get().city == "杭州市"


def test_edit_saves_and_audit_is_shown_to_managers_only(agent, manager, customer):
    response = client_for(agent).post(
        reverse("customers:customer_edit", kwargs={"pk": customer.pk}),
        {"name": "张三丰", "level": "vip", "source": "phone", "tags": "慢病"},
    )
    assert response.status_code == 302
    customer.refresh_from_db()
    assert customer.name == "张三丰"
    manager_html = client_for(manager).get(customer.get_absolute_url()).content.decode()
    assert "customer.updated" in manager_html
    assert "张三丰" in manager_html
    agent_html = client_for(agent).get(customer.get_absolute_url()).content.decode()
    assert "customer.updated" not in agent_html


def test_lifecycle_error_rerenders_panel(agent, customer):
    response = client_for(agent).post(
        reverse("customers:customer_lifecycle", kwargs={"pk": customer.pk}),
        {"status": "prospect"},
        headers=HX,
    )
    assert response.status_code == 200
    assert 'id="lifecycle-panel"' in response.content.decode()
    assert 'class="error"' in response.content.decode()


def test_merged_record_links_to_survivor(records_officer, customer, duplicate):
    client_for(records_officer).post(
        reverse("customers:customer_merge", kwargs={"pk": customer.pk}),
        {"duplicate_number": duplicate.number},
    )
    html = client_for(records_officer).get(duplicate.get_absolute_url()).content.decode()
    assert customer.get_absolute_url() in html
    listing = client_for(records_officer).get(reverse("customers:customer_list")).content.decode()
    assert duplicate.number not in listing


def test_navigation_shows_only_built_and_allowed_modules(agent, records_officer):
    agent_html = client_for(agent).get(reverse("customers:customer_list")).content.decode()
    assert reverse("customers:customer_import") not in agent_html
    officer_html = (
        client_for(records_officer).get(reverse("customers:customer_list")).content.decode()
    )
    assert reverse("customers:customer_import") in officer_html


def test_english_is_switchable(agent):
    client = client_for(agent)
    client.post(reverse("set_language"), {"language": "en", "next": "/"})
    html = client.get(reverse("customers:customer_list")).content.decode()
    assert '<html lang="en">' in html


def test_change_log_reads_in_labels_not_codes(records_officer, manager, customer, duplicate):
    from django.utils import translation

    client_for(records_officer).post(
        reverse("customers:customer_merge", kwargs={"pk": customer.pk}),
        {"duplicate_number": duplicate.number},
    )
    client_for(manager).post(
        reverse("customers:customer_lifecycle", kwargs={"pk": customer.pk}), {"status": "member"}
    )
    with translation.override("en"):
        client = client_for(manager)
        client.cookies["django_language"] = "en"
        html = client.get(customer.get_absolute_url()).content.decode()
    assert f"Merged from</span>: {duplicate.number}" in html  # a plain value, whole
    assert "Prospect → Member" in html  # the timeline and the log use the status labels
