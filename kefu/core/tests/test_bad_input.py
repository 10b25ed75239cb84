"""Input no client should send, answered as a refusal in the API's error shape and never a 500:
bodies nested deeper than any JSON Kefu reads, page numbers and offsets past the integers of the
database, ids that fit no column, and days at the ends of the calendar (filters clamp them)."""

import hashlib
import hmac
import time

import pytest
from django.test import Client

from kefu.accounts.services import api_token_create
from kefu.conversations.models import Channel
from kefu.core.bounds import DATE_MIN, ID_MAX, OFFSET_MAX, PAGE_MAX
from kefu.core.json_body import JSON_MAX_DEPTH, JsonBodyInvalid, json_body_load
from kefu.customers.tests.factories import make_customer
from kefu.tickets import services as ticket_services

pytestmark = pytest.mark.django_db

HUGE = 10**20  # what the fuzzer sent: far past a bigint
NESTED = b"[" * 100_000 + b"]" * 100_000  # json.loads raises RecursionError on it
JUST_TOO_DEEP = b'{"a":' * (JSON_MAX_DEPTH + 1) + b"1" + b"}" * (JSON_MAX_DEPTH + 1)


def _api(user) -> Client:
    _token, key = api_token_create(user=user, name="test", actor=None)
    return Client(headers={"authorization": f"Bearer {key}"}, raise_request_exception=False)


def _page(user) -> Client:
    client = Client(raise_request_exception=False)
    client.force_login(user)
    return client


def _refusal(response, status: int) -> dict:
    """The body of a refusal in the shared shape, after checking its status."""
    assert response.status_code == status, response.content[:300]
    body = response.json()
    assert set(body) >= {"code", "message", "errors"}
    assert body["message"]
    return body


# --- Nested JSON ---------------------------------------------------------------------------------
def test_json_loader_measures_nesting_without_recursion():
    """Depth is counted outside strings; the deepest allowed body parses, one level more does
    not, and neither costs a recursion."""
    allowed = b"[" * JSON_MAX_DEPTH + b"]" * JSON_MAX_DEPTH
    assert json_body_load(allowed) is not None
    assert json_body_load(b'{"text": "' + b"[" * 500 + b'"}') == {"text": "[" * 500}
    for raw in (NESTED, JUST_TOO_DEEP, b'{"a": NaN}', b"[1,", b"\xff"):
        with pytest.raises(JsonBodyInvalid):
            json_body_load(raw)


@pytest.mark.parametrize("body", [NESTED, JUST_TOO_DEEP], ids=["100000-deep", "33-deep"])
def test_chat_session_refuses_nested_json(web_chat, body):
    """The chat widget's session endpoint answers 400, in the API's shape, for a body nested
    past the limit (before: RecursionError, a 500)."""
    # when
    response = Client(raise_request_exception=False).post(
        f"/chat/{web_chat.code}/session", body, content_type="application/json"
    )
    # then
    refusal = _refusal(response, 400)
    assert refusal["code"] == "bad_request"
    assert str(JSON_MAX_DEPTH) in refusal["message"]


def test_signed_webhook_refuses_nested_json(chat_queue):
    """A correctly signed webhook body nested 100,000 deep is refused with 400; nothing is
    stored (before: RecursionError, a 500)."""
    # given
    Channel.objects.create(
        kind=Channel.Kind.WEBHOOK,
        code="qq-shop",
        name="QQ 客服",
        queue=chat_queue,
        config={"secret": "s3cret", "platform": "qq"},
    )
    timestamp = str(int(time.time()))
    mac = hmac.new(b"s3cret", timestamp.encode() + b"." + NESTED, hashlib.sha256)
    # when
    response = Client(raise_request_exception=False).post(
        "/channels/hook/qq-shop/",
        NESTED,
        content_type="application/json",
        headers={"X-Kefu-Timestamp": timestamp, "X-Kefu-Signature": "sha256=" + mac.hexdigest()},
    )
    # then
    assert _refusal(response, 400)["code"] == "bad_request"
    assert not Channel.objects.get(code="qq-shop").conversations.exists()


def test_api_body_nested_too_deep_is_400_in_the_error_shape(manager):
    response = _api(manager).post(
        "/api/v1/campaigns/segments/preview", JUST_TOO_DEEP, content_type="application/json"
    )
    refusal = _refusal(response, 400)
    assert str(JSON_MAX_DEPTH) in refusal["message"]


# --- Page numbers and offsets -----------------------------------------------------------------
LISTS = [
    ("/api/v1/customers", "page", PAGE_MAX),
    ("/api/v1/campaigns", "offset", OFFSET_MAX),
    ("/api/v1/followups", "offset", OFFSET_MAX),
    ("/api/v1/conversations", "offset", OFFSET_MAX),
    ("/api/v1/appointments", "offset", OFFSET_MAX),
    ("/api/v1/notifications", "page", PAGE_MAX),
    ("/api/v1/campaigns/benefits", "offset", OFFSET_MAX),
    ("/api/v1/conversations/calls", "offset", OFFSET_MAX),
    ("/api/v1/followups/lists", "offset", OFFSET_MAX),
]


@pytest.mark.parametrize(("url", "param", "bound"), LISTS, ids=[u for u, _p, _b in LISTS])
def test_list_refuses_a_page_or_offset_past_its_bound(manager, url, param, bound):
    """page=10**20 or offset=10**20 is a 422 naming the parameter (before: an integer overflow
    in SQL, a 500); the bound itself is still a page, empty."""
    api = _api(manager)
    # when
    response = api.get(url, {param: HUGE})
    # then
    refusal = _refusal(response, 422)
    assert refusal["code"] == "invalid"
    assert list(refusal["errors"]) == [param]
    assert str(bound) in refusal["errors"][param][0]
    assert api.get(url, {param: bound}).status_code == 200


@pytest.mark.parametrize(
    "url",
    ["/tickets/", "/campaigns/", "/consultations/calls/", "/customers/", "/notifications/"],
)
def test_list_pages_show_a_page_for_any_page_number(manager, url):
    """The pages clamp ?page= instead: a huge page number shows an empty last page."""
    response = _page(manager).get(url, {"page": HUGE})
    assert response.status_code == 200


# --- Dates at the ends of the calendar ------------------------------------------------------
@pytest.fixture
def ticket(manager):
    customer = make_customer(name="王芳", phone="13900001111")
    return ticket_services.ticket_create(
        actor=manager, data={"type": "consultation", "subject": "药品效期", "customer": customer.pk}
    )


@pytest.mark.parametrize(
    "params", [{"created_from": "0001-01-01"}, {"created_to": "9999-12-31"}], ids=str
)
def test_ticket_date_filters_clamp_to_the_calendar(manager, ticket, params):
    """created_from=0001-01-01 means from the beginning and created_to=9999-12-31 until the
    end, on the API and on the list page (before: OverflowError, a 500)."""
    # when
    response = _api(manager).get("/api/v1/tickets", params)
    page = _page(manager).get("/tickets/", {"tab": "all", **params})
    # then
    assert response.status_code == 200, response.content[:300]
    assert [t["number"] for t in response.json()["results"]] == [ticket.number]
    assert page.status_code == 200
    assert ticket.number in page.content.decode()


def test_ticket_date_filters_still_cut(manager, ticket):
    """Clamped bounds still filter: a range that ends before the ticket finds nothing."""
    day = DATE_MIN.isoformat()
    response = _api(manager).get("/api/v1/tickets", {"created_from": day, "created_to": day})
    assert response.json()["results"] == []


# --- Ids that fit no column ---------------------------------------------------------------------
@pytest.mark.parametrize(
    "url",
    [
        "/api/v1/tickets?customer=",
        "/api/v1/conversations?customer=",
        "/api/v1/conversations/calls?customer=",
        "/api/v1/campaigns/benefits?customer_id=",
    ],
)
def test_customer_id_past_the_bigint_is_refused(manager, url):
    """customer=99999999999999999999 is a 422 naming the filter (before: OverflowError)."""
    refusal = _refusal(_api(manager).get(url + "9" * 20), 422)
    assert list(refusal["errors"]) == [url.rsplit("?", 1)[1].rstrip("=")]
    assert _api(manager).get(url + str(ID_MAX)).status_code == 200


def test_channel_settings_in_the_admin_refuse_nesting_too_deep():
    """The administration site's JSON field for channel settings has the same limit."""
    from django.core.exceptions import ValidationError

    from kefu.conversations.admin import PrettyJSONField

    field = PrettyJSONField(required=False)
    assert field.clean('{"secret": "s", "ids": [[1]]}') == {"secret": "s", "ids": [[1]]}
    with pytest.raises(ValidationError):
        field.clean(NESTED.decode())
