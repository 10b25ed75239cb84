"""A consultation in real browsers against the real ASGI server: a customer writes in the web chat
page on a phone, the agent answers in the inbox, closes the conversation with its record, and the
customer rates the service — every message live over the WebSockets.

Elements are found by ids and data attributes, never by visible text.
"""

import os
import re

import pytest

from kefu.accounts.tests.factories import UserFactory
from kefu.conversations.models import AgentStatus, Channel, Conversation, InboxQueue

try:
    from playwright.sync_api import expect
except ImportError:  # pragma: no cover - the e2e fixtures say why
    if os.environ.get("KEFU_E2E_REQUIRED") == "1":
        raise
    pytest.skip("the playwright package is not installed", allow_module_level=True)

pytestmark = [pytest.mark.e2e]

expect.set_options(timeout=10_000)
PHONE = {"width": 390, "height": 844}


def test_customer_chats_agent_answers_customer_rates(browser, asgi_server):
    # given: the site's web chat, its queue and an agent who is online
    queue = InboxQueue.objects.create(name="在线咨询")
    Channel.objects.create(
        kind=Channel.Kind.WEB_CHAT,
        code="site",
        name="官网在线咨询",
        queue=queue,
        greeting="您好，欢迎咨询，请问有什么可以帮您？",
    )
    agent = UserFactory(username="xiaowang", role="agent", display_name="小王")
    queue.members.add(agent)
    AgentStatus.objects.create(user=agent, status=AgentStatus.Status.ONLINE, capacity=5)

    customer_side = browser.new_context(viewport=PHONE, locale="zh-CN", is_mobile=True)
    agent_side = browser.new_context(viewport={"width": 1280, "height": 860}, locale="zh-CN")
    agent_side.add_cookies([asgi_server.session_cookie(agent)])
    try:
        customer = customer_side.new_page()
        inbox = agent_side.new_page()

        # when: the customer writes from the chat page on a phone
        customer.goto(f"{asgi_server.url}/chat/site/")
        customer.locator("#chat-input").fill("你好，想问一下周末营业到几点？")
        customer.locator("#chat-send").click()
        # then: the message is stored and the greeting comes back at once
        expect(customer.locator("#chat-messages .chat-message[data-id]")).to_have_count(2)
        expect(customer.locator("#chat-messages")).to_contain_text("欢迎咨询")
        conversation = Conversation.objects.get()
        assert conversation.assignee == agent

        # when: the agent opens the chat in the inbox and answers
        inbox.goto(f"{asgi_server.url}/inbox/")
        row = inbox.locator(f'.inbox-row[data-conversation="{conversation.pk}"]')
        expect(row).to_be_visible()
        row.locator("a").first.click()
        expect(inbox).to_have_url(re.compile(rf"/inbox/{conversation.pk}/"))
        expect(inbox.locator("#live-status")).to_have_attribute("data-state", "live")
        expect(inbox.locator("#messages")).to_contain_text("周末营业到几点")
        inbox.locator("#reply-body").fill("您好，周末门店营业到晚上九点。")
        inbox.locator("#reply-send").click()
        # then: the customer sees the answer without reloading
        expect(customer.locator("#chat-messages")).to_contain_text("营业到晚上九点")

        # when: the customer writes again, the agent sees it live
        customer.locator("#chat-input").fill("好的，谢谢！")
        customer.locator("#chat-send").click()
        expect(inbox.locator("#messages")).to_contain_text("好的，谢谢")

        # when: the agent closes the conversation with its consultation record
        inbox.locator("#close-panel summary").click()
        inbox.locator("#close_topic").fill("营业时间")
        inbox.locator("#close_outcome").select_option("answered")
        inbox.locator("#close-submit").click()
        expect(inbox.locator("#consultation-record")).to_be_visible()

        # then: the customer is asked to rate the service, and rates it
        expect(customer.locator("#chat-rating")).to_be_visible()
        customer.locator('.rating-star[data-value="5"]').click()
        customer.locator("#rating-comment").fill("回复很快，很耐心")
        customer.locator("#rating-submit").click()
        expect(customer.locator("#chat-rated")).to_be_visible()
        conversation.refresh_from_db()
        assert (conversation.status, conversation.topic, conversation.outcome) == (
            Conversation.Status.CLOSED,
            "营业时间",
            "answered",
        )
        assert (conversation.rating, conversation.rated_agent) == (5, agent)
        assert conversation.rating_comment == "回复很快，很耐心"
        # and the agent's screen shows the rating
        expect(inbox.locator("#conversation-rating")).to_have_attribute("data-rating", "5")
    finally:
        customer_side.close()
        agent_side.close()
