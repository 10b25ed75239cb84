import pytest

from kefu.accounts.tests.factories import UserFactory
from kefu.conversations.models import AgentStatus, Channel, InboxQueue


@pytest.fixture
def chat_queue(db):
    return InboxQueue.objects.create(name="在线咨询", strategy=InboxQueue.Strategy.LEAST_BUSY)


@pytest.fixture
def web_chat(db, chat_queue):
    return Channel.objects.create(
        kind=Channel.Kind.WEB_CHAT,
        code="site",
        name="官网在线咨询",
        queue=chat_queue,
        greeting="您好，欢迎咨询，请问有什么可以帮您？",
        away_message="客服暂时不在线，请留言，我们上线后第一时间回复。",
    )


@pytest.fixture
def online_agent(db, chat_queue):
    """An agent of the chat queue, online, taking up to three chats."""
    user = UserFactory(username="chat-agent", role="agent", display_name="小王")
    chat_queue.members.add(user)
    AgentStatus.objects.create(user=user, status=AgentStatus.Status.ONLINE, capacity=3)
    return user


@pytest.fixture
def second_agent(db, chat_queue):
    user = UserFactory(username="chat-agent-2", role="agent", display_name="小李")
    chat_queue.members.add(user)
    AgentStatus.objects.create(user=user, status=AgentStatus.Status.OFFLINE, capacity=3)
    return user


@pytest.fixture
def chat_supervisor(db, chat_queue):
    user = UserFactory(username="chat-supervisor", role="supervisor", display_name="主管")
    chat_queue.supervisors.add(user)
    return user
