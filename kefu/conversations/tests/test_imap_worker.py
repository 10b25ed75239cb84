"""The IMAP poll with real `kefu worker` processes: a worker killed (SIGKILL) in the middle of a
mailbox poll does not keep that mailbox from being polled again, on the SQLite and the Redis task
stores. (The poll's claim is a lease that lapses, not a lock left in the task store.)"""

import signal
import socket
import socketserver
import sqlite3
import subprocess
import threading
import time
from pathlib import Path

import pytest

from kefu.conversations.tests.test_email import ImapStandIn, _mail
from kefu.core.tests.test_worker import KEFU, _start_worker, _stop, worker_env  # noqa: F401

pytestmark = pytest.mark.slow

SETUP = """
from kefu.conversations.models import Channel
Channel.objects.create(kind="email", code="imap", name="售后邮箱", config={{
    "address": "aftersales@shop.example", "imap_host": "127.0.0.1", "imap_port": {port},
    "imap_user": "service", "imap_password": "s3cret pass", "imap_ssl": False}})
"""
POLL = """
from kefu.conversations.models import Channel
from kefu.conversations.tasks import imap_poll_task
channel = Channel.objects.get(code="imap")
imap_poll_task(channel.pk)  # refused while the dead worker's lease runs
imap_poll_task.schedule((channel.pk,), delay=8)  # after it has lapsed
"""


class MailboxThatHangsFirst(socketserver.ThreadingTCPServer):
    """The mailbox as a worker sees it: the first connection is taken and never answered (a
    slow provider: the worker is in the middle of its poll); later ones reach the stand-in."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, upstream: int) -> None:
        self.upstream = upstream
        self.connections = 0
        self.held: list[socket.socket] = []
        super().__init__(("127.0.0.1", 0), _Relay)
        self.port = self.server_address[1]
        threading.Thread(target=self.serve_forever, daemon=True).start()


class _Relay(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        server: MailboxThatHangsFirst = self.server  # type: ignore[assignment]
        server.connections += 1
        if server.connections == 1:
            server.held.append(self.request)
            while self.request.recv(4096):
                pass  # until the worker's side closes (it is killed)
            return
        upstream = socket.create_connection(("127.0.0.1", server.upstream), timeout=30)

        def pipe(source: socket.socket, sink: socket.socket) -> None:
            try:
                while data := source.recv(65536):
                    sink.sendall(data)
            except OSError:
                pass
            finally:
                sink.close()

        threading.Thread(target=pipe, args=(upstream, self.request), daemon=True).start()
        pipe(self.request, upstream)


def _stored(env: dict[str, str]) -> int:
    path = Path(env["KEFU_VAR_DIR"]) / "kefu.sqlite3"
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=10) as db:
        return db.execute(
            "SELECT count(*) FROM conversations_message WHERE external_id = 'killed@example.cn'"
        ).fetchone()[0]


def test_a_worker_killed_mid_poll_does_not_stop_the_mailbox_being_polled(worker_env, tmp_path):  # noqa: F811
    env = {**worker_env, "KEFU_LEASE_SECONDS": "5"}
    with ImapStandIn() as mailbox:
        mailbox.add(_mail(message_id="<killed@example.cn>").as_bytes())
        relay = MailboxThatHangsFirst(mailbox.port)
        try:
            # given: a poll of the mailbox in progress when its worker is killed
            subprocess.run(
                [KEFU, "shell", "-c", SETUP.format(port=relay.port)],
                env=env,
                check=True,
                timeout=120,
            )
            subprocess.run(
                [
                    KEFU,
                    "shell",
                    "-c",
                    "from kefu.conversations.tasks import imap_poll_task;"
                    " from kefu.conversations.models import Channel;"
                    " imap_poll_task(Channel.objects.get(code='imap').pk)",
                ],
                env=env,
                check=True,
                timeout=120,
            )
            log = tmp_path / "worker.log"
            first = _start_worker(env, log)
            deadline = time.monotonic() + 60
            while relay.connections < 1 and time.monotonic() < deadline:
                assert first.poll() is None, log.read_text()
                time.sleep(0.2)
            assert relay.connections == 1, log.read_text()
            _stop(first, signal.SIGKILL)
            assert _stored(env) == 0

            # when: a worker starts again and the mailbox is polled
            second = _start_worker(env, log)
            try:
                subprocess.run([KEFU, "shell", "-c", POLL], env=env, check=True, timeout=120)
                deadline = time.monotonic() + 60
                while _stored(env) == 0 and time.monotonic() < deadline:
                    assert second.poll() is None, log.read_text()
                    time.sleep(0.5)
            finally:
                _stop(second)

            # then: the mail was fetched, stored once and marked read
            assert _stored(env) == 1, log.read_text()
            assert mailbox.unseen() == []
        finally:
            relay.shutdown()
            relay.server_close()
