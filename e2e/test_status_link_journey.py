"""The status link an agent copies from the ticket page opens for the customer, on a Kefu started
with `kefu run` on a port other than 8000 and no KEFU_BASE_URL.

A real `kefu run` (its own database under a scratch KEFU_VAR_DIR, a small demo department) on a
free loopback port; the agent reads the link off the ticket page in Chromium and the customer
opens it in a fresh browser context, without a login.
"""

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

try:
    from playwright.sync_api import expect
except ImportError:  # pragma: no cover - the e2e fixtures say why
    if os.environ.get("KEFU_E2E_REQUIRED") == "1":
        raise
    pytest.skip("the playwright package is not installed", allow_module_level=True)

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

KEFU = Path(sys.executable).with_name("kefu")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_until_up(url: str, server: subprocess.Popen, log: Path, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise AssertionError(f"kefu run exited:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.3)
    raise AssertionError(f"kefu run did not answer at {url}:\n{log.read_text()[-3000:]}")


@pytest.fixture(scope="module")
def kefu_run(tmp_path_factory) -> Iterator[str]:
    """`kefu run` serving a small demo department on a free port; yields its address."""
    home = tmp_path_factory.mktemp("kefu-run")
    port = _free_port()
    assert port != 8000
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KEFU_", "DJANGO_", "PYTEST"))}
    env.update(KEFU_VAR_DIR=str(home / "var"), KEFU_PORT=str(port), KEFU_BACKUP_DAILY_HOUR="")
    subprocess.run([KEFU, "migrate", "-v0"], env=env, check=True, timeout=300)
    subprocess.run(
        [KEFU, "demo", "--customers", "60", "--tickets", "6"],
        env=env,
        check=True,
        timeout=300,
        capture_output=True,
    )
    log = home / "run.out"
    with log.open("w") as out:
        server = subprocess.Popen(
            [KEFU, "run", "--no-worker"],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    address = f"http://127.0.0.1:{port}"
    try:
        _wait_until_up(f"{address}/accounts/login/", server, log)
        yield address
    finally:
        if server.poll() is None:
            os.killpg(server.pid, signal.SIGINT)
            try:
                server.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(server.pid, signal.SIGKILL)
                server.wait()


def test_customer_opens_the_status_link_copied_from_the_ticket_page(browser, kefu_run, shot):
    # given an agent logged in to the server on its non-default port
    agent = browser.new_context(base_url=kefu_run, locale="zh-CN")
    page = agent.new_page()
    page.goto("/accounts/login/")
    page.fill("input[name=username]", "agent01")
    page.fill("input[name=password]", "kefu-demo")
    with page.expect_navigation():
        page.click("main form button[type=submit]")

    # when the agent copies the status link off a ticket's page
    page.goto("/tickets/1/")
    link = page.get_by_test_id("status-url").input_value()
    agent_sees = page.content()
    shot(page, "status-link-ticket-page")
    agent.close()

    # then it points at this server, and the customer opens it in a browser of their own
    assert link.startswith(f"{kefu_run}/s/"), link
    customer = browser.new_context(locale="zh-CN")
    status_page = customer.new_page()
    response = status_page.goto(link)
    assert response is not None
    assert response.status == 200
    expect(status_page.get_by_test_id("ticket-summary")).to_be_visible()
    number = status_page.locator("[data-testid=ticket-summary] .number").inner_text()
    assert number.startswith("GD")
    assert number in agent_sees  # the same ticket
    shot(status_page, "status-link-customer")
    customer.close()
