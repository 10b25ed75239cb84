"""What the browser is told: the Content-Security-Policy of each kind of page, templates without
inline handlers, and HTTPS-only cookies and HSTS when Kefu is served over HTTPS."""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings
from django.test import Client, override_settings
from django.urls import reverse

pytestmark = pytest.mark.django_db

KEFU = Path(settings.BASE_DIR) / "kefu"
TEMPLATES = sorted(KEFU.glob("**/templates/**/*.html"))
# An attribute a browser runs as script, or htmx evaluates: onclick=, onchange=, hx-on:..., and
# javascript: addresses.
INLINE_HANDLER = re.compile(r"""\s(on[a-z]+|hx-on[:\w-]*)\s*=|javascript:""", re.IGNORECASE)
STYLE_ATTRIBUTE = re.compile(r"""\sstyle\s*=\s*["']""", re.IGNORECASE)


def _directives(policy: str) -> dict[str, list[str]]:
    parts = (part.split() for part in policy.split(";") if part.strip())
    return {name: values for name, *values in parts}


def _logged_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_templates_are_found():
    assert len(TEMPLATES) > 50


@pytest.mark.parametrize("path", TEMPLATES, ids=lambda p: str(p.relative_to(KEFU)))
def test_no_template_has_inline_handlers_or_style_attributes(path):
    """The policy runs no inline handler and applies no style attribute: none may be written."""
    text = path.read_text(encoding="utf-8")
    assert not INLINE_HANDLER.findall(text)
    assert not STYLE_ATTRIBUTE.findall(text)


def test_a_staff_page_gets_the_policy_and_every_inline_block_its_nonce(agent):
    # when
    first = _logged_in(agent).get(reverse("customers:customer_list"))
    second = _logged_in(agent).get(reverse("customers:customer_list"))
    # then
    policy = _directives(first["Content-Security-Policy"])
    nonce = policy["script-src"][1]
    assert policy["script-src"] == ["'self'", nonce]
    assert nonce.startswith("'nonce-")
    assert policy["style-src"] == ["'self'", nonce]
    assert policy["object-src"] == ["'none'"]
    assert policy["base-uri"] == ["'self'"]
    assert policy["frame-ancestors"] == ["'none'"]
    assert policy["form-action"] == ["'self'"]
    assert "'unsafe-inline'" not in first["Content-Security-Policy"]
    assert "'unsafe-eval'" not in first["Content-Security-Policy"]
    html = first.content.decode()
    scripts = re.findall(r"<script\b[^>]*>", html)
    assert scripts
    value = nonce.removeprefix("'nonce-").removesuffix("'")
    for tag in scripts:
        assert f'nonce="{value}"' in tag or 'type="application/json"' in tag, tag
    assert _directives(second["Content-Security-Policy"])["script-src"][1] != nonce


def test_htmx_is_told_not_to_eval_nor_to_run_swapped_scripts(agent):
    html = _logged_in(agent).get(reverse("customers:customer_list")).content.decode()
    config = json.loads(html.split('<meta name="htmx-config" content=\'')[1].split("'>")[0])
    assert config == {
        "allowEval": False,
        "allowScriptTags": False,
        "includeIndicatorStyles": False,
    }


def test_the_login_page_and_the_admin_get_the_policy(administrator):
    assert (
        "script-src 'self' 'nonce-" in Client().get("/accounts/login/")["Content-Security-Policy"]
    )
    admin = _logged_in(administrator).get("/admin/")
    assert admin.status_code == 200
    assert "frame-ancestors 'none'" in admin["Content-Security-Policy"]


def test_json_and_scripts_get_no_policy(agent):
    response = _logged_in(agent).get("/api/v1/accounts/me")
    assert response.status_code == 200
    assert "Content-Security-Policy" not in response


def test_the_status_page_shows_pictures_from_kefu_only(client):
    """The public status page (a link without a login) is framed by nobody and loads nothing
    from elsewhere; its one style block has the nonce."""
    response = client.get("/s/t/not-a-valid-token/")
    assert response.status_code == 404
    policy = _directives(response["Content-Security-Policy"])
    assert policy["img-src"] == ["'self'", "data:"]
    assert policy["frame-ancestors"] == ["'none'"]
    nonce = policy["style-src"][1].removeprefix("'nonce-").removesuffix("'")
    assert f'<style nonce="{nonce}">' in response.content.decode()


# --- HTTPS ----------------------------------------------------------------------------------------
def _settings_with(**env: str) -> dict:
    """The settings a fresh process reads from these environment variables."""
    code = (
        "import json, django; from django.conf import settings; django.setup(); print(json.dumps("
        "{k: getattr(settings, k, None) for k in ('SESSION_COOKIE_SECURE', 'CSRF_COOKIE_SECURE',"
        " 'SECURE_HSTS_SECONDS', 'CSRF_TRUSTED_ORIGINS', 'SECURE_PROXY_SSL_HEADER')}))"
    )
    clean = {k: v for k, v in os.environ.items() if not k.startswith("KEFU_")}
    clean["KEFU_VAR_DIR"] = os.environ.get("KEFU_VAR_DIR", str(settings.VAR_DIR))
    result = subprocess.run(
        [sys.executable, "-c", code],
        env={**clean, "DJANGO_SETTINGS_MODULE": "kefu.settings", **env},
        capture_output=True,
        text=True,
        check=True,
        cwd=settings.BASE_DIR,
    )
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_an_https_base_url_turns_on_secure_cookies_and_hsts():
    read = _settings_with(KEFU_BASE_URL="https://kefu.example.com")
    assert read["SESSION_COOKIE_SECURE"] is True
    assert read["CSRF_COOKIE_SECURE"] is True
    assert read["SECURE_HSTS_SECONDS"] == 31536000
    assert read["CSRF_TRUSTED_ORIGINS"] == ["https://kefu.example.com"]


def test_plain_http_keeps_cookies_usable_and_sends_no_hsts():
    read = _settings_with(KEFU_BASE_URL="http://192.168.1.20:8000")
    assert read["SESSION_COOKIE_SECURE"] is False
    assert read["SECURE_HSTS_SECONDS"] == 0


def test_the_variables_override_what_the_base_url_implies():
    read = _settings_with(
        KEFU_BASE_URL="https://kefu.example.com",
        KEFU_SECURE_COOKIES="false",
        KEFU_CSRF_TRUSTED_ORIGINS="https://kefu.example.com, https://kf.example.com/",
        KEFU_PROXY_SSL_HEADER="X-Forwarded-Proto",
    )
    assert read["SESSION_COOKIE_SECURE"] is False
    assert read["SECURE_HSTS_SECONDS"] == 0
    assert read["CSRF_TRUSTED_ORIGINS"] == ["https://kefu.example.com", "https://kf.example.com"]
    assert read["SECURE_PROXY_SSL_HEADER"] == ["HTTP_X_FORWARDED_PROTO", "https"]
    forced = _settings_with(KEFU_SECURE_COOKIES="true", KEFU_HSTS_SECONDS="600")
    assert forced["SESSION_COOKIE_SECURE"] is True
    assert forced["SECURE_HSTS_SECONDS"] == 600


@override_settings(SESSION_COOKIE_SECURE=True, CSRF_COOKIE_SECURE=True, SECURE_HSTS_SECONDS=600)
def test_over_https_the_login_cookies_are_secure_and_hsts_is_sent(agent):
    client = Client()
    login = client.get("/accounts/login/", secure=True)
    assert login["Strict-Transport-Security"] == "max-age=600"
    assert login.cookies["csrftoken"]["secure"]
    response = client.post(
        "/accounts/login/", {"username": "agent", "password": "pw-kefu-123"}, secure=True
    )
    assert response.status_code == 302
    assert response.cookies["sessionid"]["secure"]
    assert "Strict-Transport-Security" not in Client().get("/accounts/login/")
