"""The published OpenAPI document tells the truth about the API: one schema per name, each the
shape its class validates or serializes, error responses on every operation, strict bodies."""

import typing
from collections import defaultdict
from collections.abc import Iterator

import pytest
from django.test import Client
from ninja.openapi.schema import REF_TEMPLATE
from ninja.schema import NinjaGenerateJsonSchema
from pydantic import BaseModel

from kefu.accounts.services import api_token_create
from kefu.core.api import ERROR_RESPONSES, api
from kefu.core.schemas import InputSchema


def _operations() -> Iterator:
    for _prefix, router in api._routers:
        for path_view in router.path_operations.values():
            yield from path_view.operations


def _models_in(annotation) -> Iterator[type[BaseModel]]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        yield annotation
        for field in annotation.model_fields.values():
            yield from _models_in(field.annotation)
    for arg in typing.get_args(annotation):
        yield from _models_in(arg)


def _schema_classes() -> dict[tuple[str, str], set[type[BaseModel]]]:
    """Every schema class the document shows, by (name, mode): bodies and parameters are
    published as they validate, responses as they serialize."""
    found: dict[tuple[str, str], set[type[BaseModel]]] = defaultdict(set)
    for operation in _operations():
        for params in operation.models:
            if params.__ninja_param_source__ != "body":
                continue  # query and path parameters are published one by one, not as schemas
            for field in params.model_fields.values():
                for model in _models_in(field.annotation):
                    found[model.__name__, "validation"].add(model)
        for response in operation.response_models.values():
            if response is not None:
                for model in _models_in(response.model_fields["response"].annotation):
                    found[model.__name__, "serialization"].add(model)
    return found


def test_each_schema_name_is_one_class():
    """Two classes of one name would publish one of them for both (CustomerRef of five apps
    required a phone on every ticket's customer)."""
    by_name: dict[str, set[str]] = defaultdict(set)
    for (name, _mode), models in _schema_classes().items():
        by_name[name] |= {f"{m.__module__}.{m.__qualname__}" for m in models}
    clashes = {name: sorted(classes) for name, classes in by_name.items() if len(classes) > 1}
    assert clashes == {}


def test_each_published_schema_is_its_class():
    """A component is exactly its class's JSON schema, in the mode the document uses it (a
    class used both ways must look the same both ways)."""
    components = api.get_openapi_schema()["components"]["schemas"]
    wrong = []
    for (name, mode), models in _schema_classes().items():
        (model,) = models
        own = model.model_json_schema(
            ref_template=REF_TEMPLATE, schema_generator=NinjaGenerateJsonSchema, mode=mode
        )
        own.pop("$defs", None)
        if components.get(name) != own:
            wrong.append((name, mode))
    assert wrong == []


def test_ticket_customer_is_published_without_a_phone():
    components = api.get_openapi_schema()["components"]["schemas"]
    ticket_customer = components["TicketListItem"]["properties"]["customer"]["$ref"]
    customer_ref = components[ticket_customer.rsplit("/", 1)[1]]
    assert customer_ref["required"] == ["id", "number", "name"]
    assert "kind_label" not in components["CustomerEventOut"]["properties"]


def test_every_operation_documents_its_error_responses():
    document = api.get_openapi_schema()
    assert document["components"]["schemas"]["ErrorOut"]["required"] == [
        "code",
        "message",
        "errors",
    ]
    missing = [
        (method, path, status)
        for path, operations in document["paths"].items()
        for method, operation in operations.items()
        for status in ERROR_RESPONSES
        if status not in operation["responses"]
    ]
    assert missing == []


def test_request_bodies_are_strict_objects():
    """Every body class refuses properties it does not declare, and says so in the document."""
    loose = []
    components = api.get_openapi_schema()["components"]["schemas"]
    for (name, mode), (model,) in _schema_classes().items():
        if mode == "validation" and (
            not issubclass(model, InputSchema)
            or components[name].get("additionalProperties") is not False
        ):
            loose.append(name)
    assert sorted(set(loose)) == []


@pytest.mark.django_db
@pytest.mark.parametrize("body", [b"true", b"[]", b'"filters"', b'{"filters": {}, "levels": []}'])
def test_segment_preview_refuses_a_body_that_is_not_its_object(manager, body):
    """`true` used to count everyone; now it, a list, a string and an unknown property get 422
    in the error shape and count no one."""
    _token, key = api_token_create(user=manager, name="test", actor=None)
    client = Client(headers={"authorization": f"Bearer {key}"})
    response = client.post(
        "/api/v1/campaigns/segments/preview", body, content_type="application/json"
    )
    assert response.status_code == 422
    refusal = response.json()
    assert refusal["code"] == "invalid"
    assert refusal["errors"]
    assert "count" not in refusal


@pytest.mark.django_db
def test_a_write_without_credentials_is_401_as_documented():
    """No token and no session: 401 `not_authenticated`, not the session's CSRF refusal (403),
    so an integration that forgot its token is told so."""
    response = Client(enforce_csrf_checks=True).post(
        "/api/v1/campaigns/segments/preview", {"filters": {}}, content_type="application/json"
    )
    assert response.status_code == 401
    assert response.json()["code"] == "not_authenticated"


@pytest.mark.django_db
def test_an_unknown_api_url_answers_in_the_error_shape(manager):
    """A path no operation matches (an id that is not a number where the route wants one) is
    a JSON 404 like any other, not the HTML page."""
    _token, key = api_token_create(user=manager, name="test", actor=None)
    client = Client(headers={"authorization": f"Bearer {key}"})
    for url in ("/api/v1/campaigns/segments/1.5", "/api/v1/nothing-here"):
        response = client.put(url, {}, content_type="application/json")
        assert response.status_code == 404
        assert response["Content-Type"] == "application/json"
        assert response.json()["code"] == "not_found"


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("language", "expected"),
    [
        ("zh-hans", ["该值不能大于 100000。"]),
        ("en", ["Ensure this value is less than or equal to 100000."]),
    ],
)
def test_validation_messages_speak_the_request_language(manager, language, expected):
    """The field messages of a refused parameter are Kefu's, in Chinese or English, not
    pydantic's English."""
    _token, key = api_token_create(user=manager, name="test", actor=None)
    client = Client(headers={"authorization": f"Bearer {key}", "accept-language": language})
    response = client.get("/api/v1/customers", {"page": 10**20})
    assert response.status_code == 422
    assert response.json()["errors"] == {"page": expected}
