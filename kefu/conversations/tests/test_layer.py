"""With KEFU_REDIS_URL the live updates cross processes: an event published by another process
(a worker, another web process) reaches a socket's channel here."""

import asyncio
import os
import sys

import pytest
from channels_redis.core import RedisChannelLayer

from kefu.core.tests.test_worker import _redis_or_skip

pytestmark = pytest.mark.slow

PUBLISH = """
import django
django.setup()
from kefu.conversations import realtime
realtime._send([realtime.staff_group(7)], {"type": "message", "message": {"id": 42}})
"""


def test_an_event_published_by_another_process_arrives_through_redis():
    # given: this process listens on the group of conversation 7 through Redis
    url = _redis_or_skip()
    layer = RedisChannelLayer(hosts=[url], prefix="kefu")

    async def listen() -> dict:
        channel = await layer.new_channel()
        await layer.group_add("staff.7", channel)
        # when: another process configured by KEFU_REDIS_URL publishes
        env = {**os.environ, "KEFU_REDIS_URL": url, "DJANGO_SETTINGS_MODULE": "kefu.settings"}
        proc = await asyncio.create_subprocess_exec(sys.executable, "-c", PUBLISH, env=env)
        assert await asyncio.wait_for(proc.wait(), 60) == 0
        try:
            return await asyncio.wait_for(layer.receive(channel), 10)
        finally:
            await layer.group_discard("staff.7", channel)
            await layer.flush()

    event = asyncio.run(listen())
    # then
    assert event["type"] == "kefu.event"
    assert event["payload"] == {"type": "message", "message": {"id": 42}}
