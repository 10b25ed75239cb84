"""Fixtures that serve the ASGI app (HTTP and WebSockets) on loopback for tests.

`asgi_server` runs kefu.asgi:application under uvicorn in a thread of the test process, on
127.0.0.1 and a free port. Sharing the process means sharing the test database (the fixture needs
`transactional_db`: the server's threads see only committed rows) and the in-memory channel
layer, so services called by the test publish to the sockets the server holds.

One rule: once sockets are connected, call services that publish live events through
`asgi_server.call(...)` (or `await asgi_server.acall(...)` inside a coroutine). The in-memory
layer's queues belong to the server's event loop; a publish from the test's own thread or loop
would reach them from the wrong loop. Setting rows up before any socket connects needs nothing
special.

The browser journeys use the same fixture: point Playwright at `asgi_server.url` (and log the
agent in through the login form, or add `asgi_server.session_cookie(user)` to the context).
"""

import asyncio
import socket
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import pytest
from asgiref.sync import sync_to_async

T = TypeVar("T")

START_TIMEOUT = 15.0
STOP_TIMEOUT = 10.0


class AsgiServer:
    """A running uvicorn serving kefu.asgi:application; `url` and `ws_url` have no trailing /."""

    def __init__(self, server: Any, port: int, thread: threading.Thread) -> None:
        self._server = server
        self._thread = thread
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.ws_url = f"ws://127.0.0.1:{port}"
        self.loop: asyncio.AbstractEventLoop | None = None

    # --- Running code where a consumer would run it -------------------------------------------
    def call(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> T:
        """Run `fn(*args, **kwargs)` in the server's database thread, as a consumer would, and
        return its result (exceptions are raised here). For a plain synchronous test."""
        future = asyncio.run_coroutine_threadsafe(self._call(fn, args, kwargs), self._loop())
        return future.result(timeout=30)

    async def acall(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> T:
        """`call` for a coroutine running in another event loop (a websockets client's)."""
        future = asyncio.run_coroutine_threadsafe(self._call(fn, args, kwargs), self._loop())
        return await asyncio.wait_for(asyncio.wrap_future(future), timeout=30)

    @staticmethod
    async def _call(fn: Callable[..., T], args: tuple, kwargs: dict) -> T:
        return await sync_to_async(fn, thread_sensitive=True)(*args, **kwargs)

    def _loop(self) -> asyncio.AbstractEventLoop:
        if self.loop is None or self.loop.is_closed():
            raise RuntimeError("the ASGI server is not running")
        return self.loop

    # --- Logging an agent in for a WebSocket client ---------------------------------------------
    def session_cookie(self, user: Any) -> dict[str, str]:
        """A logged-in session of `user` as a cookie: {"name", "value", "url"} (Playwright's
        add_cookies takes this shape). Call it from synchronous code (no running event loop)."""
        return {"name": _session_cookie_name(), "value": session_key_for(user), "url": self.url}

    def agent_headers(self, user: Any, *, origin: str | None = None) -> dict[str, str]:
        """Headers for a websockets client connecting to /ws/agent/ as `user`: the session
        cookie and an Origin of this server (another `origin` to test the refusal)."""
        return {
            "Cookie": f"{_session_cookie_name()}={session_key_for(user)}",
            "Origin": origin or self.url,
        }

    # --- Lifecycle ------------------------------------------------------------------------------
    def stop(self) -> None:
        loop = self.loop
        if loop is not None and not loop.is_closed() and self._thread.is_alive():
            # Leave nothing behind for the next test: the layer's groups and queued events, and
            # the database connections of the consumers' thread.
            try:
                self.call(_close_connections)
                asyncio.run_coroutine_threadsafe(_layer_flush(), loop).result(timeout=5)
            except Exception:
                pass
        self._server.should_exit = True
        self._thread.join(timeout=STOP_TIMEOUT)
        if self._thread.is_alive():
            self._server.force_exit = True
            self._thread.join(timeout=STOP_TIMEOUT)


def _session_cookie_name() -> str:
    from django.conf import settings

    return settings.SESSION_COOKIE_NAME


def session_key_for(user: Any) -> str:
    """A fresh session in the database with `user` logged in; its key is the cookie value."""
    from django.conf import settings
    from django.test import Client

    client = Client()
    client.force_login(user)
    return client.cookies[settings.SESSION_COOKIE_NAME].value


def _close_connections() -> None:
    from django.db import connections

    connections.close_all()


async def _layer_flush() -> None:
    from channels.layers import get_channel_layer

    layer = get_channel_layer()
    if layer is not None and hasattr(layer, "flush"):
        await layer.flush()


def free_socket() -> socket.socket:
    """A socket bound to 127.0.0.1 on a port the system picked (no race for the port)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.set_inheritable(True)
    return sock


def asgi_server_start() -> AsgiServer:
    """Start uvicorn in a daemon thread and wait until it accepts connections."""
    import uvicorn

    sock = free_socket()
    port = sock.getsockname()[1]
    config = uvicorn.Config(
        "kefu.asgi:application",
        lifespan="off",
        log_level="warning",
        # What `kefu run` gets with ws="auto" (the legacy "websockets" one is deprecated).
        ws="websockets-sansio",
        # Fail fast on a broken socket instead of waiting for the default ping timeout.
        ws_ping_interval=None,
    )
    server = uvicorn.Server(config)
    started = threading.Event()
    holder: dict[str, Any] = {}

    def run() -> None:
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        holder["loop"] = loop
        started.set()
        try:
            loop.run_until_complete(server.serve(sockets=[sock]))
        except BaseException as exc:
            holder["error"] = exc
        finally:
            loop.close()
            sock.close()

    thread = threading.Thread(target=run, name=f"uvicorn-{port}", daemon=True)
    running = AsgiServer(server, port, thread)
    thread.start()
    started.wait(START_TIMEOUT)
    running.loop = holder.get("loop")
    deadline = time.monotonic() + START_TIMEOUT
    while not server.started:
        if "error" in holder or not thread.is_alive():
            raise RuntimeError(f"uvicorn did not start: {holder.get('error')!r}")
        if time.monotonic() > deadline:
            running.stop()
            raise RuntimeError(f"uvicorn did not start within {START_TIMEOUT:.0f} s")
        time.sleep(0.02)
    with socket.create_connection(("127.0.0.1", port), timeout=5):
        pass  # accepts connections
    return running


@pytest.fixture
def asgi_server(transactional_db) -> Iterator[AsgiServer]:
    """kefu.asgi:application served by uvicorn on 127.0.0.1:<free port> for one test, sharing
    the test database and the in-memory channel layer; stopped afterwards.

    Yields an object with `.url` ("http://127.0.0.1:PORT"), `.ws_url` ("ws://127.0.0.1:PORT"),
    `.agent_headers(user)` (Cookie and Origin for /ws/agent/), `.session_cookie(user)` (for a
    browser) and `.call(fn, ...)` / `await .acall(fn, ...)` to run a service where a consumer
    would (needed for anything that publishes while sockets are open).
    """
    from django.db import connections

    # Django's ASGI handler runs each request in a thread of its own: with persistent
    # connections those threads' connections would outlive the test and, on SQLite's shared
    # in-memory test database, hold table locks against the next test. Close them per request.
    settings_dict = connections["default"].settings_dict
    max_age = settings_dict.get("CONN_MAX_AGE")
    settings_dict["CONN_MAX_AGE"] = 0
    server = asgi_server_start()
    try:
        yield server
    finally:
        server.stop()
        settings_dict["CONN_MAX_AGE"] = max_age
        import gc

        gc.collect()  # connections of finished threads are closed now, not at some later point
