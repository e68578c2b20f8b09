"""Browser-test plumbing shared by the preview and the public app: Debian's Chromium driven by
Playwright (no download: `executable_path`), a uvicorn server in a thread, loopback-only pages."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import uvicorn
from playwright.sync_api import Browser, Page, Route, ViewportSize
from starlette.applications import Starlette

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
WIDE: ViewportSize = {"width": 1280, "height": 900}


def loopback_socket() -> socket.socket:
    """A socket bound to a free loopback port, for `serving`: its address is known before
    the app is made (a configuration that names its own URL)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    return sock


@contextmanager
def serving(
    app: Starlette, tls: tuple[Path, Path] | None = None, sock: socket.socket | None = None
) -> Iterator[str]:
    """Run `app` with uvicorn on a free loopback port in a thread (or on `sock`, from
    `loopback_socket`); yield its base URL. `tls`: (certificate chain, key) files, for HTTPS."""
    sock = sock or loopback_socket()
    port = sock.getsockname()[1]
    options: dict[str, Any] = {}
    if tls is not None:
        options = {"ssl_certfile": str(tls[0]), "ssl_keyfile": str(tls[1])}
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off", **options))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            sock.close()
            raise RuntimeError("the test web server did not start")
        time.sleep(0.02)
    try:
        yield f"{'https' if tls else 'http'}://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=15)
        sock.close()
        assert not thread.is_alive(), "the test web server did not stop"


@contextmanager
def loopback_page(
    browser: Browser, allowed: Callable[[str], bool], **options: Any
) -> Iterator[Page]:
    """A fresh page that reaches 127.0.0.1 only; requests elsewhere are aborted and, on
    leaving, must all be ones `allowed` expects (no network in tests but loopback).
    `options` go to the browser context (`java_script_enabled=False`, `color_scheme`...)."""
    context = browser.new_context(viewport=WIDE, **options)
    blocked: list[str] = []

    def only_loopback(route: Route) -> None:
        if urlsplit(route.request.url).hostname == "127.0.0.1":
            route.continue_()
        else:
            blocked.append(route.request.url)
            route.abort()

    context.route("**/*", only_loopback)
    page = context.new_page()
    yield page
    context.close()
    assert all(allowed(url) for url in blocked), blocked
