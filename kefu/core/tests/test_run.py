"""`kefu run` shows a person what they need (the address, the logins, where the log is) and sends
the server's and the worker's chatter to var/log/kefu.log; refused requests log no traceback;
installing Kefu prints no setuptools warning."""

import http.cookiejar
import io
import logging
import logging.config
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import pytest
from django.conf import settings

from kefu.core.log import logging_config

KEFU = Path(sys.executable).with_name("kefu")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Browser:
    """A cookie-keeping HTTP client that logs in through the login form."""

    def __init__(self, address: str):
        self.address = address
        self.cookies = http.cookiejar.CookieJar()
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(self.cookies))

    def get(self, path: str) -> int:
        try:
            with self.opener.open(self.address + path, timeout=10) as response:
                return response.status
        except urllib.error.HTTPError as exc:
            return exc.code
        except OSError:  # not listening yet
            return 0

    def log_in(self, username: str, password: str) -> None:
        with self.opener.open(self.address + "/accounts/login/", timeout=10) as response:
            form = response.read().decode()
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', form).group(1)
        body = urllib.parse.urlencode(
            {"csrfmiddlewaretoken": token, "username": username, "password": password}
        ).encode()
        request = urllib.request.Request(
            self.address + "/accounts/login/", data=body, headers={"Referer": self.address + "/"}
        )
        with self.opener.open(request, timeout=10) as response:
            assert "/accounts/login/" not in response.url, "logged in"


def _wait_for(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.3)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.mark.slow
def test_kefu_run_prints_what_a_person_needs_and_logs_the_rest(tmp_path):
    # given an installation with the demo department, served on a free port with its worker
    port = _free_port()
    var = tmp_path / "var"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KEFU_", "DJANGO_", "PYTEST"))}
    env.update(KEFU_VAR_DIR=str(var), KEFU_PORT=str(port), KEFU_BACKUP_DAILY_HOUR="")
    subprocess.run([KEFU, "migrate", "-v0"], env=env, check=True, timeout=300)
    subprocess.run(
        [KEFU, "demo", "--customers", "40", "--tickets", "4"],
        env=env,
        check=True,
        timeout=300,
        capture_output=True,
    )
    out_path = tmp_path / "terminal.txt"
    with out_path.open("w") as terminal:
        server = subprocess.Popen(
            [KEFU, "run"],
            env=env,
            stdout=terminal,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    address = f"http://127.0.0.1:{port}"
    log = var / "log" / "kefu.log"
    try:
        browser = Browser(address)
        _wait_for(lambda: browser.get("/accounts/login/") == 200, 120, "the server")
        # when an agent opens pages, among them one the role may not open (403)
        browser.log_in("agent01", "kefu-demo")
        assert browser.get("/customers/") == 200
        assert browser.get("/accounts/tokens/") == 403
        _wait_for(lambda: log.exists() and "huey.consumer" in log.read_text(), 60, "the worker")
        terminal = out_path.read_text()
        # and when the worker dies, the terminal says so (its own output is in the log)
        children = Path(f"/proc/{server.pid}/task/{server.pid}/children").read_text().split()
        (worker,) = [int(c) for c in children]
        os.kill(worker, signal.SIGKILL)
        _wait_for(
            lambda: "background worker stopped" in out_path.read_text(), 30, "the worker's end"
        )
    finally:
        if server.poll() is None:
            os.killpg(server.pid, signal.SIGINT)
            try:
                server.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(server.pid, signal.SIGKILL)
                server.wait()

    # then the terminal holds the logins, the log's place and the address, and little else
    lines = [line for line in terminal.splitlines() if line.strip()]
    assert any(line.startswith("Demo logins:") and "kefu-demo" in line for line in lines)
    assert f"Log: {log}" in terminal
    assert lines[-1].startswith(f"Kefu is at {address}/"), terminal
    assert len(lines) <= 6, terminal
    for chatter in ("huey", "Traceback", "Forbidden", "uvicorn", "GET /"):
        assert chatter not in terminal, chatter
    # and the log file has the server's and the worker's lines, the 403 without a traceback
    logged = log.read_text()
    assert "huey.consumer" in logged
    assert '"GET /customers/ HTTP/1.1" 200' in logged
    refused = logged.splitlines()
    at = next(i for i, line in enumerate(refused) if "Forbidden (Permission denied)" in line)
    assert refused[at].endswith("Forbidden (Permission denied): /accounts/tokens/")
    assert not refused[at + 1 :] or not refused[at + 1].startswith("Traceback"), logged


@pytest.fixture
def log_to_file(tmp_path):
    """Kefu's logging as `kefu run` sets it up, to a file of the test's own."""
    path = tmp_path / "kefu.log"
    logging.config.dictConfig(logging_config(log_file=str(path)))
    yield path
    logging.config.dictConfig(settings.LOGGING)


@pytest.mark.django_db
def test_a_refused_request_logs_one_line_and_a_server_error_its_traceback(
    log_to_file, agent, client
):
    # given
    client.force_login(agent)

    # when a page refuses the agent (Django's PermissionDenied) and a server error is logged
    assert client.get("/accounts/tokens/").status_code == 403
    try:
        raise RuntimeError("database gone")
    except RuntimeError as exc:
        logging.getLogger("django.request").error(
            "Internal Server Error: %s", "/x/", exc_info=exc, extra={"status_code": 500}
        )

    # then
    logged = log_to_file.read_text()
    refused, _, failed = logged.partition("Internal Server Error")
    assert "Forbidden (Permission denied): /accounts/tokens/" in refused
    assert "Traceback" not in refused
    assert "Traceback" in failed
    assert "RuntimeError: database gone" in failed


def test_the_console_shows_errors_in_one_line_when_there_is_a_log_file(log_to_file):
    console = io.StringIO()
    (handler,) = [h for h in logging.getLogger().handlers if type(h) is logging.StreamHandler]
    handler.setStream(console)
    try:
        raise RuntimeError("database gone")
    except RuntimeError:
        logging.getLogger("kefu.test").exception("the backup failed")
    logging.getLogger("kefu.test").info("a task ran")

    assert console.getvalue() == "ERROR kefu.test: the backup failed\n"
    logged = log_to_file.read_text()
    assert "RuntimeError: database gone" in logged
    assert "a task ran" in logged


@pytest.mark.slow
def test_installing_kefu_prints_no_setuptools_warning(tmp_path):
    """What `make setup` runs (pip install -e .), into a scratch prefix: no warning about the
    project's metadata (the license table) or its layout."""
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--no-deps",
            "--ignore-installed",
            "--prefix",
            str(tmp_path / "prefix"),
            "-e",
            str(settings.BASE_DIR),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "BuildBackendWarning" not in output, output
    assert "SetuptoolsDeprecationWarning" not in output, output
    assert "project.license" not in output, output
