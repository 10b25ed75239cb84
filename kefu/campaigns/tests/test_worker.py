"""Bulk messages with real `kefu worker` processes: a worker killed (SIGKILL) or stopped (SIGTERM)
in the middle of a dispatch leaves no claim behind. After a restart the stalled campaign resumes
where it stopped, a campaign launched after the crash is sent too, and every recipient gets
exactly one message. On the SQLite and on the Redis task store."""

import signal
import sqlite3
import subprocess
import time
from pathlib import Path

import pytest

from kefu.core.tests.test_worker import KEFU, _start_worker, _stop, worker_env  # noqa: F401

pytestmark = pytest.mark.slow

AUDIENCE = 300  # VIP members: campaign A
LATER = 40  # normal customers: campaign B, launched after the crash
RATE = 20  # messages a second: A takes 15 s

SETUP = f"""
from kefu.campaigns import services
from kefu.campaigns.models import MessageTemplate
from kefu.customers.services import customer_create

for i in range({AUDIENCE + LATER}):
    customer_create(
        actor=None,
        data={{"name": f"会员{{i}}", "level": "vip" if i < {AUDIENCE} else "normal"}},
        contacts=[{{"kind": "phone", "value": str(13900000000 + i)}}],
    )
template = MessageTemplate.objects.create(
    name="会员日", gateway="sms", purpose="promotion", body="{{name}}您好，本周六会员日全场9折。"
)
for name, level in (("A", "vip"), ("B", "normal")):
    segment = services.segment_save(actor=None, name=name, filters={{"levels": [level]}})
    services.campaign_create(
        actor=None, data={{"name": name, "template": template.pk, "segment": segment.pk}}
    )
"""

LAUNCH = """
from kefu.campaigns import services
from kefu.campaigns.models import Campaign

services.campaign_launch(actor=None, campaign_id=Campaign.objects.get(name="{name}").pk)
"""


def _shell(env: dict[str, str], code: str) -> None:
    subprocess.run([KEFU, "shell", "-c", code], env=env, check=True, timeout=120)


def _query(env: dict[str, str], sql: str) -> list[tuple]:
    """Read the installation's database directly: quick enough to watch a dispatch."""
    path = Path(env["KEFU_VAR_DIR"]) / "kefu.sqlite3"
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=10) as db:
        return db.execute(sql).fetchall()


def _sent(env, name: str) -> int:
    return _query(
        env,
        "SELECT count(*) FROM campaigns_outboxmessage o JOIN campaigns_campaignrecipient r"
        " ON o.recipient_id = r.id JOIN campaigns_campaign c ON r.campaign_id = c.id"
        f" WHERE c.name = '{name}'",
    )[0][0]


def _status(env, name: str) -> str:
    return _query(env, f"SELECT status FROM campaigns_campaign WHERE name = '{name}'")[0][0]


@pytest.fixture
def campaign_env(worker_env):  # noqa: F811
    """Claims lapse after 5 s (a minute in production); no quiet hours, no approval step."""
    env = {
        **worker_env,
        "KEFU_LEASE_SECONDS": "5",
        "KEFU_SMS_RATE": str(RATE),
        "KEFU_SMS_QUIET_HOURS": "",
        "KEFU_CAMPAIGN_APPROVAL_THRESHOLD": "0",
    }
    _shell(env, SETUP)
    return env


@pytest.mark.parametrize("stop_signal", [signal.SIGKILL, signal.SIGTERM], ids=["kill", "term"])
def test_a_worker_stopped_mid_dispatch_stalls_nothing(campaign_env, tmp_path, stop_signal):
    env = campaign_env
    # given: campaign A sending, and its worker stopped in the middle of the dispatch
    _shell(env, LAUNCH.format(name="A"))
    log = tmp_path / "worker.log"
    first = _start_worker(env, log)
    deadline = time.monotonic() + 60
    while _sent(env, "A") < 30 and time.monotonic() < deadline:
        assert first.poll() is None, log.read_text()
        time.sleep(0.2)
    _stop(first, stop_signal)
    sent_before = _sent(env, "A")
    assert 0 < sent_before < AUDIENCE, log.read_text()
    assert _status(env, "A") == "sending"

    # when: another campaign on the same gateway is launched, and a worker starts again
    _shell(env, LAUNCH.format(name="B"))
    second = _start_worker(env, log)
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline and (_status(env, "A"), _status(env, "B")) != (
            "done",
            "done",
        ):
            assert second.poll() is None, log.read_text()
            time.sleep(1)
        time.sleep(2)  # time enough for a duplicate to show
    finally:
        _stop(second)

    # then: both campaigns finished, each recipient with exactly one message
    assert (_status(env, "A"), _status(env, "B")) == ("done", "done"), log.read_text()
    assert _sent(env, "A") == AUDIENCE
    assert _sent(env, "B") == LATER
    rows = _query(
        env,
        "SELECT r.status, count(o.id) FROM campaigns_campaignrecipient r"
        " LEFT JOIN campaigns_outboxmessage o ON o.recipient_id = r.id GROUP BY r.id",
    )
    assert len(rows) == AUDIENCE + LATER
    assert set(rows) == {("sent", 1)}
    per_customer = _query(
        env,
        "SELECT r.campaign_id, r.customer_id, count(*) FROM campaigns_outboxmessage o"
        " JOIN campaigns_campaignrecipient r ON o.recipient_id = r.id"
        " GROUP BY r.campaign_id, r.customer_id HAVING count(*) > 1",
    )
    assert per_customer == []
    # and the stalled campaign's timeline says it resumed after the stop
    resumed = _query(
        env,
        "SELECT count(*) FROM campaigns_campaignevent e JOIN campaigns_campaign c"
        " ON e.campaign_id = c.id WHERE c.name = 'A' AND e.kind = 'resumed'",
    )
    assert resumed == [(1,)]
