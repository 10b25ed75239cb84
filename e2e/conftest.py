"""Browser journeys: Debian's Chromium driven by Playwright against pytest-django's live server.

Without /usr/bin/chromium (or the playwright package) the journeys are skipped, unless
KEFU_E2E_REQUIRED=1 (as CI sets it), in which case they fail loudly. Playwright's bundled
browsers are never used: `playwright install` downloads, and nothing is downloaded here.
"""

import os
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

# Playwright's sync API runs an asyncio loop in the test thread; Django would otherwise refuse
# ORM calls made there (the test's own setup and checks, the database flush after each test).
os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
# The live server listens on IPv4 loopback (pytest-django's default is "localhost").
os.environ.setdefault("DJANGO_LIVE_TEST_SERVER_ADDRESS", "127.0.0.1")

CHROMIUM = Path(os.environ.get("KEFU_CHROMIUM", "/usr/bin/chromium"))
REQUIRED = os.environ.get("KEFU_E2E_REQUIRED") == "1"
SHOTS_DIR = Path(os.environ.get("KEFU_E2E_SHOTS", "/tmp/kefu-shots"))
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
DEFAULT_TIMEOUT_MS = 10_000


def _unavailable(reason: str) -> None:
    if REQUIRED:
        pytest.fail(f"KEFU_E2E_REQUIRED=1 but {reason}", pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="module")
def browser() -> Iterator:
    """One headless Chromium per test module."""
    if not CHROMIUM.exists():
        _unavailable(f"{CHROMIUM} is missing (apt-get install chromium)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _unavailable("the playwright package is not installed")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
        )
        yield browser
        browser.close()


@pytest.fixture
def page(browser, live_server, request: pytest.FixtureRequest) -> Iterator:
    """A fresh browser context (no cookies) on a desktop-sized window; a screenshot on failure."""
    context = browser.new_context(
        base_url=live_server.url, viewport={"width": 1280, "height": 860}, locale="zh-CN"
    )
    context.set_default_timeout(DEFAULT_TIMEOUT_MS)
    page = context.new_page()
    yield page
    if getattr(request.node, "rep_call", None) is not None and request.node.rep_call.failed:
        SHOTS_DIR.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=SHOTS_DIR / f"FAILED-{request.node.name}.png", full_page=True)
    context.close()


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    report = yield
    setattr(item, f"rep_{report.when}", report)
    return report


@pytest.fixture
def shot():
    """shot(page, "name") saves a full-page screenshot under KEFU_E2E_SHOTS (/tmp/kefu-shots)."""

    def take(page, name: str) -> Path:
        SHOTS_DIR.mkdir(parents=True, exist_ok=True)
        path = SHOTS_DIR / f"{re.sub(r'[^a-z0-9-]+', '-', name.lower())}.png"
        page.screenshot(path=path, full_page=True)
        return path

    return take


@pytest.fixture
def log_in():
    """log_in(page, username) logs in through the login form, as a person would."""

    def submit(page, username: str, password: str = "pw-kefu-123") -> None:
        page.goto("/accounts/login/")
        page.fill("input[name=username]", username)
        page.fill("input[name=password]", password)
        with page.expect_navigation():
            page.click("main form button[type=submit]")

    return submit
