import pytest
from django.test import Client

from kefu.accounts.services import api_token_create

pytestmark = pytest.mark.django_db


def test_api_create_runs_a_bounded_number_of_queries(
    records_officer, store, django_assert_max_num_queries
):
    """Writes are the hot path of integrations: keep the query count of a create small."""
    _token, key = api_token_create(user=records_officer, name="t", actor=None)
    client = Client(headers={"authorization": f"Bearer {key}"})
    body = {
        "name": "赵六",
        "store_id": store.pk,
        "tags": ["母婴"],
        "contacts": [{"kind": "phone", "value": "13611112222"}],
    }
    client.post("/api/v1/customers", body, content_type="application/json")  # warm caches
    body["contacts"] = [{"kind": "phone", "value": "13611113333"}]
    with django_assert_max_num_queries(19):
        response = client.post("/api/v1/customers", body, content_type="application/json")
    assert response.status_code == 201
