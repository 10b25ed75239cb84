import pytest
from django.test import Client

from kefu.accounts.services import api_token_create
from kefu.audit.models import AuditEntry
from kefu.customers.models import Customer
from kefu.customers.tests.factories import make_customer

pytestmark = pytest.mark.django_db

BASE = "/api/v1/customers"


def api_client(user) -> Client:
    """A client authenticating with a bearer token, as an integration does."""
    if user is None:
        return Client()
    _token, key = api_token_create(user=user, name="test", actor=None)
    return Client(headers={"authorization": f"Bearer {key}"})


def call(client: Client, method: str, url: str, body=None):
    if method == "get":
        return client.get(url)
    return getattr(client, method)(url, body or {}, content_type="application/json")


# Expected status per role for every customer endpoint. 401 anonymous, 403 not allowed.
MATRIX = {
    # name: (method, url template, body, {role: status})
    "list": (
        "get",
        BASE,
        None,
        {"anonymous": 401, "agent": 200, "records_officer": 200, "manager": 200, "handler": 403},
    ),
    "create": (
        "post",
        BASE,
        {"name": "新客户", "contacts": [{"kind": "phone", "value": "13700007777"}]},
        {"anonymous": 401, "agent": 201, "records_officer": 201, "manager": 201, "handler": 403},
    ),
    "read": (
        "get",
        BASE + "/{id}",
        None,
        {"anonymous": 401, "agent": 200, "records_officer": 200, "manager": 200, "handler": 403},
    ),
    "update": (
        "patch",
        BASE + "/{id}",
        {"notes": "改"},
        {"anonymous": 401, "agent": 200, "records_officer": 200, "manager": 200, "handler": 403},
    ),
    "lifecycle": (
        "post",
        BASE + "/{id}/lifecycle",
        {"status": "customer"},
        {"anonymous": 401, "agent": 200, "records_officer": 200, "manager": 200, "handler": 403},
    ),
    "merge": (
        "post",
        BASE + "/{id}/merge",
        {"duplicate_id": "{dup}"},
        {"anonymous": 401, "agent": 403, "records_officer": 200, "manager": 200, "handler": 403},
    ),
    "reveal": (
        "post",
        BASE + "/{id}/contacts/{contact}/reveal",
        None,
        {"anonymous": 401, "agent": 403, "records_officer": 200, "manager": 200, "handler": 403},
    ),
    "timeline": (
        "get",
        BASE + "/{id}/timeline",
        None,
        {"anonymous": 401, "agent": 200, "records_officer": 200, "manager": 200, "handler": 403},
    ),
    "contact_add": (
        "post",
        BASE + "/{id}/contacts",
        {"kind": "qq", "value": "12345678"},
        {"anonymous": 401, "agent": 201, "records_officer": 201, "manager": 201, "handler": 403},
    ),
}


@pytest.mark.parametrize("role", ["anonymous", "agent", "records_officer", "manager", "handler"])
@pytest.mark.parametrize("endpoint", sorted(MATRIX))
def test_customer_api_permission_matrix(request, endpoint, role, customer, duplicate):
    method, url, body, expected = MATRIX[endpoint]
    user = None if role == "anonymous" else request.getfixturevalue(role)
    contact = customer.contacts.get(kind="phone")
    url = url.format(id=customer.pk, contact=contact.pk)
    if body and body.get("duplicate_id") == "{dup}":
        body = {"duplicate_id": duplicate.pk}
    response = call(api_client(user), method, url, body)
    assert response.status_code == expected[role], response.content
    if expected[role] in (401, 403):
        assert response.json()["code"] in ("not_authenticated", "permission_denied")
        assert Customer.objects.filter(merged_into__isnull=False).count() == 0


def test_session_auth_works_for_pages_js_and_needs_csrf(agent, customer):
    client = Client(enforce_csrf_checks=True)
    client.force_login(agent)
    assert client.get(BASE).status_code == 200
    response = client.post(BASE, {"name": "x"}, content_type="application/json")
    assert response.status_code == 403  # no CSRF token


def test_list_masks_phones_and_filters(agent, customer, duplicate):
    response = api_client(agent).get(BASE, {"q": "zs", "page_size": 10})
    body = response.json()
    assert body["count"] == 2
    phones = {r["phone"] for r in body["results"]}
    assert phones == {"138****1234", "139****9999"}
    assert api_client(agent).get(BASE, {"tag": "慢病"}).json()["count"] == 1
    assert (
        api_client(agent).get(BASE, {"q": "1234"}).json()["results"][0]["number"] == customer.number
    )


def test_create_and_read_roundtrip(records_officer, store):
    client = api_client(records_officer)
    response = client.post(
        BASE,
        {
            "name": "赵六",
            "level": "vip",
            "gender": "female",
            "birthday": "1985-06-01",
            "store_id": store.pk,
            "tags": ["母婴"],
            "contacts": [
                {"kind": "phone", "value": "13611112222"},
                {"kind": "wechat_openid", "value": "oABCDEF123456"},
            ],
            "addresses": [{"city": "杭州市", "detail": "文三路 90 号"}],
        },
        content_type="application/json",
    )
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["number"].startswith("KH")
    assert body["store"] == {"id": store.pk, "name": store.name}
    assert {c["kind"]: c["value"] for c in body["contacts"]} == {
        "phone": "136****2222",
        "wechat_openid": "oA****56",
    }
    got = client.get(f"{BASE}/{body['id']}").json()
    assert got == body


def test_error_shape_for_schema_errors(agent):
    response = api_client(agent).post(
        BASE, {"name": "", "birthday": "not-a-date"}, content_type="application/json"
    )
    assert response.status_code == 422
    body = response.json()
    assert body["code"] == "invalid"
    assert set(body["errors"]) == {"name", "birthday"}
    assert all(isinstance(m, list) and m for m in body["errors"].values())


def test_error_shape_for_domain_validation(agent):
    response = api_client(agent).post(
        BASE,
        {"name": "钱七", "level": "gold", "contacts": [{"kind": "phone", "value": "123"}]},
        content_type="application/json",
    )
    assert response.status_code == 422
    body = response.json()
    assert body["code"] == "invalid"
    assert set(body["errors"]) == {"level", "contacts.0.value"}
    assert Customer.objects.count() == 0


def test_error_shape_for_malformed_json(agent):
    response = api_client(agent).generic(
        "POST", BASE, b"{not json", content_type="application/json"
    )
    assert response.status_code == 400
    assert response.json()["code"] == "bad_request"


def test_duplicate_contact_is_409_pointing_to_existing(agent, customer):
    response = api_client(agent).post(
        BASE,
        {"name": "李四", "contacts": [{"kind": "phone", "value": "138-1234-1234"}]},
        content_type="application/json",
    )
    assert response.status_code == 409
    body = response.json()
    assert body["code"] == "contact_taken"
    assert body["existing"]["number"] == customer.number
    assert "contacts.0.value" in body["errors"]


def test_not_found_and_illegal_lifecycle_shapes(agent, customer):
    client = api_client(agent)
    missing = client.get(f"{BASE}/999999")
    assert (missing.status_code, missing.json()["code"]) == (404, "customer_not_found")
    same = client.post(
        f"{BASE}/{customer.pk}/lifecycle", {"status": "prospect"}, content_type="application/json"
    )
    assert (same.status_code, same.json()["code"]) == (409, "lifecycle_change_not_allowed")
    assert same.json()["message"]


def test_bad_token_is_401(customer):
    response = Client(headers={"authorization": "Bearer kefu_wrong"}).get(BASE)
    assert response.status_code == 401
    assert response.json()["code"] == "not_authenticated"


def test_revoked_token_stops_working(agent):
    from kefu.accounts.services import api_token_revoke

    token, key = api_token_create(user=agent, name="erp", actor=None)
    client = Client(headers={"authorization": f"Bearer {key}"})
    assert client.get(BASE).status_code == 200
    api_token_revoke(token_id=token.pk, actor=None)
    assert client.get(BASE).status_code == 401


def test_reveal_through_api_is_audited(records_officer, customer):
    contact = customer.contacts.get()
    response = api_client(records_officer).post(
        f"{BASE}/{customer.pk}/contacts/{contact.pk}/reveal"
    )
    assert response.json()["value"] == "13812341234"
    assert (
        AuditEntry.objects.filter(action="customer.contact_revealed", actor=records_officer).count()
        == 1
    )


def test_merge_through_api(records_officer, customer, duplicate):
    response = api_client(records_officer).post(
        f"{BASE}/{customer.pk}/merge",
        {"duplicate_id": duplicate.pk, "reason": "同一人"},
        content_type="application/json",
    )
    assert response.status_code == 200
    assert len(response.json()["contacts"]) == 2
    assert (
        api_client(records_officer).get(f"{BASE}/{duplicate.pk}").json()["merged_into"]
        == customer.number
    )


def test_openapi_schema_and_docs_are_served(agent):
    schema = Client().get("/api/v1/openapi.json")
    assert schema.status_code == 200
    paths = schema.json()["paths"]
    assert "/api/v1/customers" in paths
    assert "/api/v1/customers/{customer_id}/merge" in paths
    client = Client()
    client.force_login(agent)
    assert client.get("/api/v1/docs").status_code == 200


def test_list_query_count_is_constant(agent, django_assert_max_num_queries):
    for i in range(30):
        make_customer(actor=agent, name=f"客户{i}", tags=["慢病", "母婴"])
    client = api_client(agent)
    with django_assert_max_num_queries(8):
        assert len(client.get(BASE, {"page_size": 30}).json()["results"]) == 30
