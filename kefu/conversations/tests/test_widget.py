"""The web chat widget's pages: the loader script, the embeddable chat page, the visitor token."""

import json

import pytest
from django.urls import reverse

from kefu.conversations.models import InboxQueue
from kefu.conversations.visitors import visitor_token_make, visitor_token_read

pytestmark = pytest.mark.django_db


def _session(client, code, data=None, **kwargs):
    return client.post(
        reverse("webchat:chat_session", args=[code]),
        json.dumps(data or {}),
        content_type="application/json",
        **kwargs,
    )


# --- widget.js ---------------------------------------------------------------------------------
def test_widget_script_is_javascript_that_opens_the_chat_page(client, web_chat):
    """The one script tag gets cacheable JavaScript that knows the chat page's address."""
    # when
    response = client.get("/chat/site/widget.js")
    # then
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/javascript")
    assert "max-age=300" in response["Cache-Control"]
    body = response.content.decode()
    assert '"url": "http://testserver/chat/site/"' in body
    assert "attachShadow" in body
    assert body.rstrip().endswith(");")


def test_widget_script_of_an_unknown_or_inactive_chat_is_404(client, web_chat):
    web_chat.is_active = False
    web_chat.save()
    for url in ("/chat/site/widget.js", "/chat/nope/widget.js"):
        response = client.get(url)
        assert response.status_code == 404
        assert response["Content-Type"].startswith("text/javascript")


# --- The chat page -----------------------------------------------------------------------------
def test_chat_page_can_be_embedded_in_another_site(client, web_chat):
    """No X-Frame-Options on the chat page (the rest of Kefu sends DENY), no frame-ancestors
    limit when the channel lists no origins, and the elements chat.js works with."""
    # when
    response = client.get("/chat/site/")
    # then
    assert response.status_code == 200
    assert "X-Frame-Options" not in response
    policy = response["Content-Security-Policy"]
    assert "frame-ancestors" not in policy
    assert "script-src 'self' 'nonce-" in policy
    html = response.content.decode()
    for element in ('id="chat-messages"', 'id="chat-input"', 'id="chat-send"', 'id="chat-config"'):
        assert element in html
    config = json.loads(html.split('id="chat-config" type="application/json">')[1].split("<")[0])
    assert config["ws_path"] == "/ws/chat/site/"
    assert config["session_url"] == "/chat/site/session"
    assert config["prechat"] is False
    assert client.get("/accounts/login/")["X-Frame-Options"] == "DENY"


def test_chat_page_limits_embedding_to_the_channels_allowed_origins(client, web_chat):
    web_chat.config = {"allowed_origins": "https://shop.example, *.example.cn bad'origin"}
    web_chat.save()
    # when
    response = client.get("/chat/site/")
    # then
    policy = response["Content-Security-Policy"]
    assert policy.endswith("; frame-ancestors 'self' https://shop.example *.example.cn")
    # the accent colour comes in the one inline block, with the response's nonce
    nonce = policy.split("'nonce-")[1].split("'")[0]
    assert f'<style nonce="{nonce}">' in response.content.decode()


def test_a_switched_off_chat_says_so_inside_any_sites_frame(client, web_chat):
    web_chat.is_active = False
    web_chat.save()
    response = client.get("/chat/site/")
    assert response.status_code == 404
    assert "X-Frame-Options" not in response
    assert "frame-ancestors" not in response["Content-Security-Policy"]


def test_chat_page_shows_the_prechat_form_with_the_queues_topics(client, web_chat):
    # given
    web_chat.has_prechat_form = True
    web_chat.save()
    InboxQueue.objects.create(name="售后服务", skill="售后")
    InboxQueue.objects.create(name="售前咨询", skill="售前")
    # when
    html = client.get("/chat/site/").content.decode()
    # then
    assert 'id="prechat-form"' in html
    assert 'name="phone"' in html
    assert '<option value="售后">售后</option>' in html
    assert '<option value="售前">售前</option>' in html


def test_chat_page_of_an_unknown_or_inactive_chat_is_404(client, web_chat):
    assert client.get("/chat/nope/").status_code == 404
    web_chat.is_active = False
    web_chat.save()
    assert client.get("/chat/site/").status_code == 404


# --- The session endpoint ----------------------------------------------------------------------
def test_session_gives_a_visitor_token_for_the_channel(client, web_chat):
    """Without a pre-chat form, empty fields are enough; CSRF does not apply (the page runs in
    a third-party site's iframe, where the CSRF cookie is not sent)."""
    client = client.__class__(enforce_csrf_checks=True)
    # when
    response = _session(client, "site")
    # then
    assert response.status_code == 200
    token = response.json()["visitor"]
    assert response.json()["resumed"] is False
    assert visitor_token_read(token, channel_code="site")["n"] == ""


def test_session_carries_the_prechat_answers_in_the_token(client, web_chat):
    # given
    web_chat.has_prechat_form = True
    web_chat.save()
    InboxQueue.objects.create(name="售后服务", skill="售后")
    # when: a form post, as a page without JavaScript would send it
    response = client.post(
        "/chat/site/session", {"name": " 张 女士 ", "phone": "138 1234 5678", "topic": "售后"}
    )
    # then
    data = visitor_token_read(response.json()["visitor"], channel_code="site")
    assert (data["n"], data["p"], data["t"]) == ("张 女士", "+8613812345678", "售后")


def test_session_refuses_an_invalid_phone_naming_the_field(client, web_chat):
    # when
    response = _session(client, "site", {"name": "张女士", "phone": "12345"})
    # then
    assert response.status_code == 422
    body = response.json()
    assert body["code"] == "invalid"
    assert list(body["errors"]) == ["phone"]
    assert body["message"]


def test_session_refuses_an_unknown_topic_and_a_missing_name_on_the_form(client, web_chat):
    web_chat.has_prechat_form = True
    web_chat.save()
    # when
    response = _session(client, "site", {"name": "", "topic": "不存在"})
    # then
    assert response.status_code == 422
    assert set(response.json()["errors"]) == {"name", "topic"}


def test_session_resumes_a_valid_token_and_replaces_a_foreign_one(client, web_chat):
    # given
    kept = visitor_token_make(channel_code="site", name="老客户")
    foreign = visitor_token_make(channel_code="other")
    # when
    resumed = _session(client, "site", {"visitor": kept}).json()
    replaced = _session(client, "site", {"visitor": foreign}).json()
    # then
    assert resumed == {"visitor": kept, "resumed": True}
    assert replaced["resumed"] is False
    assert replaced["visitor"] != foreign
    assert visitor_token_read(replaced["visitor"], channel_code="site") is not None


def test_session_with_a_stale_token_on_a_form_channel_asks_for_the_form_again(client, web_chat):
    web_chat.has_prechat_form = True
    web_chat.save()
    response = _session(client, "site", {"visitor": "forged"})
    assert response.json() == {"visitor": "", "resumed": False}


def test_session_of_an_inactive_or_unknown_channel_is_404(client, web_chat):
    # given
    web_chat.is_active = False
    web_chat.save()
    # when
    inactive = _session(client, "site")
    unknown = _session(client, "nope")
    # then
    assert inactive.status_code == 404
    assert inactive.json()["code"] == "not_found"
    assert unknown.status_code == 404


def test_session_answers_bad_json_and_get_with_errors_not_500(client, web_chat):
    bad = client.post("/chat/site/session", "{nope", content_type="application/json")
    assert bad.status_code == 400
    assert bad.json()["code"] == "bad_request"
    assert client.get("/chat/site/session").status_code == 405
