"""Outgoing webhooks against real receivers on 127.0.0.1: one answering 500 twice then 200
gets every event, each signature verifying with the `standardwebhooks` library and each id
stable across retries; one that never answers holds up neither a sign-up's answer nor a send."""

from __future__ import annotations

import base64
import json
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from standardwebhooks import Webhook
from starlette.testclient import TestClient

from digest.config.load import load_config
from digest.config.sending import webhook_settings
from digest.delivery.webhooks import deliver
from digest.issues.plan import plan_send
from digest.issues.send import send_issue
from digest.issues.upkeep import upkeep
from digest.store.database import open_database
from digest.store.events import append
from digest.store.tables import Subscriber, WebhookMessage
from digest.web.public import create_public_app
from tests.issues.test_send import add_subscribers, write_config
from tests.support.smtp_server import SMTPServer
from tests.web.test_public_web import stamp

SECRET = "whsec_" + base64.b64encode(b"0123456789abcdef0123456789abcdef").decode()


@contextmanager
def receiver(failures: int) -> Iterator[tuple[str, list[tuple[dict[str, str], bytes]]]]:
    """An HTTP receiver that answers 500 to its first `failures` posts, then 200."""
    got: list[tuple[dict[str, str], bytes]] = []
    answers = {"left": failures}

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["content-length"]))
            got.append(({k.lower(): v for k, v in self.headers.items()}, body))
            status = 500 if answers["left"] > 0 else 200
            answers["left"] -= 1
            self.send_response(status)
            self.send_header("content-length", "0")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/hook", got
    finally:
        server.shutdown()
        server.server_close()


def configured(tmp_path: Path, database_url: str, port: int, url: str) -> Path:
    path = write_config(tmp_path, database_url, port)
    (tmp_path / "hook-secret").write_text(SECRET + "\n", encoding="utf-8")
    path.write_text(
        path.read_text("utf-8") + f"webhooks:\n  - url: {url}\n    secret_file: hook-secret\n",
        encoding="utf-8",
    )
    return path


def test_every_event_arrives_signed_after_two_failures(tmp_path: Path, database_url: str) -> None:
    with receiver(failures=2) as (url, got):
        config = load_config(configured(tmp_path, database_url, 25, url), environ={})
        database = open_database(config.database_url)
        with database.session() as session:
            person = Subscriber(email="ada@example.com", name="Ada", status="active")
            session.add(person)
            session.flush()
            append(session, "confirm", "web", subscriber_id=person.id)
            append(session, "unsubscribe", "link", subscriber_id=person.id)
            append(session, "preferences", "web", subscriber_id=person.id)  # no webhook type
        hooks = webhook_settings(config)
        now = datetime.now(UTC)
        times = iter([now, now + timedelta(seconds=6), now + timedelta(seconds=30)])
        for moment in times:
            deliver(database, hooks, lambda moment=moment: moment)  # type: ignore[misc]
        with database.session() as session:
            rows = session.query(WebhookMessage).all()
        database.dispose()
    assert len(rows) == 2 and all(row.delivered_at is not None for row in rows)
    delivered = [(h, b) for h, b in got]
    assert len(delivered) == 4  # 500, 500, then both delivered
    verifier = Webhook(SECRET)
    ids = [h["webhook-id"] for h, _ in delivered]
    for headers, body in delivered:
        verifier.verify(body, headers)  # raises if the signature does not match
    assert set(ids) == {row.msg_id for row in rows}  # a retry carries the same id
    types = sorted(json.loads(body)["type"] for _, body in delivered[-2:])
    assert types == ["confirmed", "unsubscribed"]
    email = {json.loads(body)["data"]["email"] for _, body in delivered}
    assert email == {"ada@example.com"}


@contextmanager
def silent_receiver() -> Iterator[tuple[str, list[socket.socket]]]:
    """Accepts connections and never answers."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    held: list[socket.socket] = []

    def accept() -> None:
        while True:
            try:
                connection, _ = listener.accept()
            except OSError:
                return
            held.append(connection)

    threading.Thread(target=accept, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}/hook", held
    finally:
        listener.close()
        for connection in held:
            connection.close()


@pytest.mark.slow
def test_a_hanging_receiver_holds_up_nothing(tmp_path: Path, database_url: str) -> None:
    with silent_receiver() as (url, held), SMTPServer() as smtp:
        path = configured(tmp_path, database_url, smtp.port, url)
        config = load_config(path, environ={})
        add_subscribers(config, 2, categories=None)
        database = open_database(config.database_url)
        with database.session() as session:
            append(session, "subscribe", "cli", subscriber_id=1)
        upkeep(config, database)  # starts posting in the background
        deadline = time.monotonic() + 30
        while not held and time.monotonic() < deadline:  # its first connection is open
            time.sleep(0.02)
        app = create_public_app(config, database)
        with TestClient(app) as client:
            data = {"email": "new@example.com", "locale": "en", "stamp": stamp()}
            answer = client.post("/subscribe", data=data)
        assert answer.status_code == 200  # answered while the receiver holds the connection
        assert len(held) >= 1 and held[0].fileno() != -1
        sent = send_issue(config, database, plan_send(config, database)).outcomes[0]
        assert sent.summary.sent == 2
        assert held[0].fileno() != -1  # the first connection is still open, unanswered
        database.dispose()
