"""Links for customers point where Kefu answers: KEFU_BASE_URL, else the address `kefu run`
serves; behind a proxy without KEFU_BASE_URL administrators are told and no dead link is sent."""

import os
import subprocess
import sys

import pytest
from django.test import Client, RequestFactory
from django.utils import timezone

from kefu.accounts.services import api_token_create
from kefu.core.public_address import public_address_problem, public_url
from kefu.tickets import services as ticket_services

pytestmark = pytest.mark.django_db

PROXIED = {"HTTP_X_FORWARDED_FOR": "203.0.113.7", "HTTP_X_FORWARDED_PROTO": "https"}


def _settings_in_a_fresh_process(var_dir, **env: str) -> dict[str, str]:
    """BASE_URL and SERVED_URL as a new Kefu process reads them from its environment."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("KEFU_", "PYTEST"))}
    out = subprocess.run(
        [sys.executable, "-c", "import kefu.settings as s; print(s.BASE_URL, s.SERVED_URL)"],
        env={**clean, "KEFU_VAR_DIR": str(var_dir), **env},
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout.split()
    return {"BASE_URL": out[0], "SERVED_URL": out[1]}


def test_base_url_defaults_to_the_address_kefu_run_serves(tmp_path):
    """KEFU_HOST/KEFU_PORT elsewhere than 127.0.0.1:8000: links follow them."""
    read = _settings_in_a_fresh_process(tmp_path, KEFU_HOST="127.0.0.2", KEFU_PORT="8123")
    assert read == {"BASE_URL": "http://127.0.0.2:8123", "SERVED_URL": "http://127.0.0.2:8123"}


def test_kefu_base_url_wins_when_set(tmp_path):
    read = _settings_in_a_fresh_process(
        tmp_path, KEFU_PORT="8123", KEFU_BASE_URL="https://kefu.example.cn/"
    )
    assert read == {"BASE_URL": "https://kefu.example.cn", "SERVED_URL": "http://127.0.0.1:8123"}


@pytest.fixture
def served_here(settings):
    """Kefu serves at http://testserver (the test client's host) and KEFU_BASE_URL is unset."""
    settings.SERVED_URL = settings.BASE_URL = "http://testserver"
    settings.ALLOWED_HOSTS = ["testserver", "kefu.example.cn"]
    return settings


@pytest.mark.parametrize(
    ("headers", "problem"),
    [
        ({}, False),
        ({"HTTP_HOST": "testserver:80"}, False),  # the default port written out
        (PROXIED, True),
        ({"HTTP_FORWARDED": "for=203.0.113.7;proto=https"}, True),
        ({"HTTP_X_REAL_IP": "203.0.113.7"}, True),
        ({"HTTP_HOST": "kefu.example.cn"}, True),  # another name than the one served
        ({"HTTP_HOST": "testserver:8080"}, True),
    ],
)
def test_a_request_shows_whether_the_served_address_reaches_kefu(served_here, headers, problem):
    request = RequestFactory().get("/", **headers)
    found = public_address_problem(request)
    assert (found is not None) is problem
    if problem:
        assert found.base_url == "http://testserver"
        assert public_url(request, "/s/t/x/") is None
    else:
        assert public_url(request, "/s/t/x/") == "http://testserver/s/t/x/"


def test_localhost_and_127_0_0_1_are_the_same_machine(settings):
    settings.SERVED_URL = settings.BASE_URL = "http://127.0.0.1:8123"
    request = RequestFactory().get("/", HTTP_HOST="localhost:8123")
    assert public_address_problem(request) is None


def test_a_configured_base_url_is_trusted_behind_a_proxy(settings):
    settings.SERVED_URL = "http://127.0.0.1:8000"
    settings.BASE_URL = "https://kefu.example.cn"
    request = RequestFactory().get("/", HTTP_HOST="kefu.example.cn", **PROXIED)
    assert public_address_problem(request) is None
    assert public_url(request, "/s/t/x/") == "https://kefu.example.cn/s/t/x/"


def test_the_proxy_s_address_is_named(served_here):
    request = RequestFactory().get(
        "/", HTTP_X_FORWARDED_HOST="kefu.example.cn", HTTP_X_FORWARDED_PROTO="https"
    )
    assert public_address_problem(request).reached_at == "https://kefu.example.cn"


def _client(user, **headers) -> Client:
    client = Client(headers={"accept-language": "en"}, **headers)
    client.force_login(user)
    return client


def test_administrators_are_told_on_every_page(served_here, administrator, agent):
    for url in ("/customers/", "/tickets/", "/accounts/tokens/"):
        page = _client(administrator, **PROXIED).get(url).content.decode()
        assert 'data-testid="base-url-unset"' in page, url
        assert "KEFU_BASE_URL" in page
        assert "http://testserver" in page
    direct = _client(administrator).get("/customers/").content.decode()
    assert 'data-testid="base-url-unset"' not in direct
    # agents cannot change it; they see why the status link is missing where it would be
    as_agent = _client(agent, **PROXIED).get("/customers/").content.decode()
    assert 'data-testid="base-url-unset"' not in as_agent


@pytest.fixture
def ticket(agent, customer):
    return ticket_services.ticket_create(
        actor=agent,
        data={
            "type": "complaint",
            "channel": "phone",
            "subject": "买到过期的维生素",
            "description": "顾客称维生素C已过期。",
            "customer": customer.pk,
        },
        now=timezone.now(),
    )


def test_the_ticket_page_offers_a_live_status_link(served_here, agent, ticket):
    page = _client(agent).get(ticket.get_absolute_url()).content.decode()
    assert 'value="http://testserver/s/t/' in page
    assert 'data-testid="status-url-withheld"' not in page


def test_behind_a_proxy_the_ticket_page_sends_no_dead_link(served_here, agent, ticket):
    page = _client(agent, **PROXIED).get(ticket.get_absolute_url()).content.decode()
    assert 'data-testid="status-url"' not in page
    assert "http://testserver/s/t/" not in page
    assert 'data-testid="status-url-withheld"' in page


def test_behind_a_proxy_the_api_sends_no_dead_link(served_here, agent, ticket):
    _token, key = api_token_create(user=agent, name="test", actor=None)
    api = Client(headers={"authorization": f"Bearer {key}"})
    url = f"/api/v1/tickets/{ticket.pk}"
    assert api.get(url).json()["status_url"].startswith("http://testserver/s/t/")
    assert api.get(url, **PROXIED).json()["status_url"] is None
