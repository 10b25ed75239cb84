"""The task engine with real `kefu worker` processes: a scheduled task survives a killed worker."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

KEFU = Path(sys.executable).with_name("kefu")
# One Redis database per xdist worker (15, 14, ...): each test flushes its own.
_XDIST_INDEX = int(os.environ.get("PYTEST_XDIST_WORKER", "gw0").removeprefix("gw") or 0)
REDIS_TEST_URL = os.environ.get(
    "KEFU_TEST_REDIS_URL", f"redis://127.0.0.1:6379/{15 - _XDIST_INDEX % 12}"
)

pytestmark = pytest.mark.slow


def _redis_or_skip() -> str:
    import redis

    try:
        redis.Redis.from_url(REDIS_TEST_URL, socket_timeout=2).flushdb()
    except redis.RedisError as exc:
        if os.environ.get("CI"):
            pytest.fail(f"Redis at {REDIS_TEST_URL} is needed in CI: {exc}")
        pytest.skip(f"no Redis at {REDIS_TEST_URL}")
    return REDIS_TEST_URL


@pytest.fixture(params=["sqlite", "redis"])
def worker_env(request, tmp_path) -> dict[str, str]:
    """An installation of its own (SQLite database and task store under tmp_path, or Redis)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KEFU_", "DJANGO_", "PYTEST"))}
    env.update(
        KEFU_VAR_DIR=str(tmp_path / "var"),
        KEFU_BACKUP_DIR=str(tmp_path / "backups"),
        KEFU_BACKUP_DAILY_HOUR="",
    )
    if request.param == "redis":
        env["KEFU_REDIS_URL"] = _redis_or_skip()
    subprocess.run([KEFU, "migrate", "-v0"], env=env, check=True, timeout=120)
    return env


def _backups(env: dict[str, str]) -> list[Path]:
    folder = Path(env["KEFU_BACKUP_DIR"])
    return sorted(folder.glob("kefu-backup-*")) if folder.exists() else []


def _start_worker(env: dict[str, str], log: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [KEFU, "worker"],
        env=env,
        stdout=log.open("a"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def _stop(worker: subprocess.Popen, sig: int = signal.SIGTERM) -> None:
    if worker.poll() is None:
        os.killpg(worker.pid, sig)
        worker.wait(timeout=20)


def test_scheduled_task_survives_a_killed_worker(worker_env, tmp_path):
    # given a backup scheduled 6 s ahead and a worker that is killed (SIGKILL) before then
    schedule = (
        "from kefu.core.tasks import backup_create_task; backup_create_task.schedule(delay=6)"
    )
    subprocess.run([KEFU, "shell", "-c", schedule], env=worker_env, check=True, timeout=60)
    due = time.monotonic() + 6
    log = tmp_path / "worker.log"
    first = _start_worker(worker_env, log)
    time.sleep(2)
    assert first.poll() is None, log.read_text()
    _stop(first, signal.SIGKILL)
    assert _backups(worker_env) == []
    time.sleep(max(0.0, due - time.monotonic()) + 1)  # the moment passes with no worker running

    # when a worker starts again
    second = _start_worker(worker_env, log)
    try:
        deadline = time.monotonic() + 45
        while not _backups(worker_env) and time.monotonic() < deadline:
            time.sleep(0.5)
        time.sleep(3)  # time enough for a duplicate run to show
        # then the task ran, exactly once
        assert len(_backups(worker_env)) == 1, log.read_text()
    finally:
        _stop(second)
