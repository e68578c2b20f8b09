"""Health, readiness, Prometheus metrics and JSON logs of `digest serve`, `digest schedule`
and `digest send --worker`: real processes, real SMTP servers, prometheus_client's parser."""

from __future__ import annotations

import json
import signal
import threading
import time
import warnings
from collections.abc import Iterable
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample
from sqlalchemy import text

from digest.cli import main
from digest.config.load import load_config
from digest.issues.schedule import scheduled_send
from digest.ops.metrics import allowed, process_metrics
from digest.store import lease
from digest.store.database import Database, open_database
from digest.web.public import create_public_app
from tests.issues.test_send import add_subscribers, write_config
from tests.support.browser import serving
from tests.support.postgres import PostgresServer
from tests.support.processes import Digest, running
from tests.support.smtp_server import CountingServer, SMTPServer, free_port

with warnings.catch_warnings():
    warnings.filterwarnings("ignore", "Using `httpx` with `starlette.testclient`")
    from starlette.testclient import TestClient

TOKEN = "metrics-token-of-the-test"


def samples(exposition: str) -> list[Sample]:
    return [s for family in text_string_to_metric_families(exposition) for s in family.samples]


def value(found: Iterable[Sample], name: str, **labels: str) -> float:
    matching = [s.value for s in found if s.name == name and labels.items() <= s.labels.items()]
    assert len(matching) == 1, (name, labels, matching)
    return matching[0]


def metrics_config(tmp_path: Path, database_url: str, port: int, extra: str = "") -> Path:
    path = write_config(tmp_path, database_url, port)
    path.write_text(path.read_text("utf-8") + extra, encoding="utf-8")
    return path


def test_healthz_and_readyz_need_no_login_and_readyz_sees_pending_migrations(
    tmp_path: Path,
) -> None:
    config = load_config(metrics_config(tmp_path, f"sqlite:///{tmp_path / 'd.sqlite3'}", 25))
    database = open_database(config.database_url)
    client = TestClient(create_public_app(config, database), client=("203.0.113.7", 4000))
    alive = client.get("/healthz")
    assert (alive.status_code, alive.text) == (200, "ok")
    assert alive.headers["cache-control"] == "no-store"
    ready = client.get("/readyz")
    assert (ready.status_code, ready.text) == (200, "ready")
    with database.engine.begin() as connection:
        connection.execute(text("UPDATE alembic_version SET version_num = '0001'"))
    pending = client.get("/readyz")
    assert (pending.status_code, pending.text) == (503, "database migrations pending")
    assert client.get("/healthz").status_code == 200  # alive all the same
    database.dispose()


@pytest.mark.slow  # starts digest processes
def test_metrics_equal_the_report_after_a_send_by_another_process(
    tmp_path: Path, database_url: str
) -> None:
    with SMTPServer() as server:
        path = metrics_config(tmp_path, database_url, server.port)
        config = load_config(path)
        add_subscribers(config, 12)
        sender = Digest(path, "send", "--yes")
        assert sender.finish() == 0, sender.output
        assert len(server.mailbox.messages) == 12
    report = CliRunner().invoke(main, ["--config", str(path), "report", "--json"])
    assert report.exit_code == 0, report.output
    [latest, *_] = json.loads(report.output)
    database = open_database(config.database_url)
    try:
        with serving(create_public_app(config, database)) as url:
            response = httpx.get(f"{url}/metrics")
    finally:
        database.dispose()
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=")
    found = samples(response.text)
    for status, count in latest["deliveries"].items():
        assert (
            value(found, "digest_last_issue_deliveries", issue=latest["key"], status=status)
            == count
        )
    assert latest["deliveries"] == {"sent": 12}
    assert value(found, "digest_last_issue_bounce_rate", issue=latest["key"]) == 0.0
    assert latest["bounce_rate"] == 0.0 and latest["complaint_rate"] == 0.0
    assert value(found, "digest_queue_deliveries", state="queued") == 0
    assert value(found, "digest_deferred_due") == 0
    assert value(found, "digest_subscribers", status="active") == 12
    assert value(found, "digest_signup_events_total", kind="confirm") == 0
    assert value(found, "digest_next_run_timestamp_seconds", frequency="weekly") > time.time()
    created = value(found, "digest_last_run_timestamp_seconds", issue=latest["key"])
    assert abs(created - time.time()) < 3600


def test_metrics_are_refused_to_others_without_the_token(tmp_path: Path) -> None:
    path = metrics_config(
        tmp_path,
        f"sqlite:///{tmp_path / 'd.sqlite3'}",
        25,
        "metrics:\n  allow: [198.51.100.0/24]\n  token_file: metrics-token\n",
    )
    (tmp_path / "metrics-token").write_text(TOKEN + "\n", encoding="utf-8")
    config = load_config(path)
    database = open_database(config.database_url)
    app = create_public_app(config, database)

    def get(peer: str, **headers: str) -> int:
        client = TestClient(app, client=(peer, 40000))
        return int(client.get("/metrics", headers=headers).status_code)

    assert get("203.0.113.9") == 403
    assert get("203.0.113.9", Authorization="Bearer wrong") == 403
    assert get("203.0.113.9", Authorization=f"Bearer {TOKEN}") == 200
    assert get("198.51.100.20") == 200  # metrics.allow
    assert get("127.0.0.1") == 200 and get("::1") == 200
    # through the local proxy (a trusted one), the client is the one it names
    assert get("127.0.0.1", **{"X-Forwarded-For": "203.0.113.9"}) == 403
    assert get("127.0.0.1", **{"X-Forwarded-For": "198.51.100.7"}) == 200
    # from anyone else the header is ignored: a client cannot name itself loopback
    assert get("203.0.113.9", **{"X-Forwarded-For": "127.0.0.1"}) == 403
    database.dispose()


def test_only_metrics_is_guarded_among_the_public_routes(tmp_path: Path) -> None:
    """The route table, enumerated: /metrics is the one route refused to a stranger without
    a link's token; /healthz and /readyz answer anyone."""
    config = load_config(metrics_config(tmp_path, f"sqlite:///{tmp_path / 'd.sqlite3'}", 25))
    database = open_database(config.database_url)
    app = create_public_app(config, database)
    paths = sorted({route.path for route in app.routes})  # type: ignore[attr-defined]
    client = TestClient(app, client=("203.0.113.9", 40000))
    refused = [p for p in paths if "{" not in p and client.get(p).status_code == 403]
    assert refused == ["/metrics"]
    assert {"/healthz", "/readyz", "/metrics"} <= set(paths)
    database.dispose()


@pytest.mark.parametrize(
    ("client", "authorization", "allow", "ok"),
    [
        ("127.0.0.5", None, [], True),
        ("::1", None, [], True),
        ("10.1.2.3", None, ["10.0.0.0/8"], True),
        ("10.1.2.3", None, ["192.168.0.0/16"], False),
        (None, None, ["0.0.0.0/0"], False),
        ("testclient", None, ["0.0.0.0/0"], False),
        ("192.0.2.1", f"Bearer {TOKEN}", [], True),
        ("192.0.2.1", f"bearer  {TOKEN} ", [], True),
        ("192.0.2.1", f"Basic {TOKEN}", [], False),
        ("192.0.2.1", "Bearer ", [], False),
    ],
)
def test_who_may_read_the_metrics(
    client: str | None, authorization: str | None, allow: list[str], ok: bool
) -> None:
    assert allowed(client, authorization, allow, TOKEN) is ok
    assert allowed(client, authorization, allow, None) is (ok and authorization is None)


def test_the_scheduler_counts_its_own_deliveries(tmp_path: Path, database: Database) -> None:
    metrics = process_metrics()
    before = metrics.deliveries.labels("sent")._value.get()
    with SMTPServer() as server:
        path = metrics_config(
            tmp_path, str(database.engine.url.render_as_string(False)), server.port
        )
        config = load_config(path)
        add_subscribers(config, 7)
        assert scheduled_send(config, database, "weekly") == 1
    assert metrics.deliveries.labels("sent")._value.get() - before == 7
    assert metrics.rate._value.get() == 0  # idle again


@pytest.mark.slow  # starts digest processes
def test_schedule_serves_metrics_on_its_port_and_logs_json(tmp_path: Path) -> None:
    path = metrics_config(tmp_path, f"sqlite:///{tmp_path / 'd.sqlite3'}", 25)
    port = free_port()
    with running(path, "schedule", "--log-format", "json", "--metrics-port", str(port)) as process:
        process.wait_for_line("scheduler started", stdout=False)
        response = httpx.get(f"http://127.0.0.1:{port}/metrics")
        assert response.status_code == 200
        found = samples(response.text)
        assert value(found, "digest_process_deliveries_total", outcome="sent") == 0
        assert value(found, "digest_process_messages_per_second") == 0
        assert value(found, "digest_next_run_timestamp_seconds", frequency="weekly") > time.time()
        process.signal(signal.SIGTERM)
        assert process.finish() == 0
    lines = [line for line in process.lines if line.strip()]
    assert lines, process.output
    for line in lines:
        record = json.loads(line)  # one object per line, nothing else on stderr
        assert {"time", "level", "logger", "message"} <= set(record)
    assert any("scheduler started" in json.loads(line)["message"] for line in lines)


def test_metrics_port_is_for_workers_only(tmp_path: Path) -> None:
    path = metrics_config(tmp_path, f"sqlite:///{tmp_path / 'd.sqlite3'}", 25)
    result = CliRunner().invoke(main, ["--config", str(path), "send", "--metrics-port", "9999"])
    assert result.exit_code == 2 and "--metrics-port is for --worker" in result.output


@pytest.mark.slow  # starts digest processes
def test_a_worker_counts_what_it_sent(tmp_path: Path, postgres: PostgresServer) -> None:
    """`digest send --worker`'s counters: what this process delivered as a worker, as the
    report credits it (the lease holder is another process)."""
    from digest.cli.send import as_worker

    with CountingServer() as server:
        path = write_config(
            tmp_path, postgres.new_database(), server.port, connections=2, lease_timeout=30
        )
        config = load_config(path)
        add_subscribers(config, 120)
        metrics = process_metrics()
        before = metrics.deliveries.labels("sent")._value.get()
        server.hold()
        with running(path, "send", "--yes") as holder:
            server.wait(lambda s: s.waiting == 2)  # the holder's two connections wait

            def release() -> None:
                server.wait(lambda s: s.waiting == 4)  # and the worker's two
                server.release()

            releaser = threading.Thread(target=release, daemon=True)
            releaser.start()
            database = open_database(config.database_url)
            try:
                assert as_worker(config, database, wait=60) == 0
            finally:
                database.dispose()
            releaser.join(60)
            assert holder.finish() == 0, holder.output
    report = CliRunner().invoke(main, ["--config", str(path), "report", "--json"])
    [latest] = json.loads(report.output)
    mine = latest["workers"][lease.worker_name()]
    assert mine > 0
    assert metrics.deliveries.labels("sent")._value.get() - before == mine


@pytest.mark.slow  # starts digest processes
def test_serve_logs_json_lines(tmp_path: Path) -> None:
    path = metrics_config(tmp_path, f"sqlite:///{tmp_path / 'd.sqlite3'}", 25)
    port = free_port()
    with running(path, "serve", "--port", str(port), "--log-format", "json") as process:
        process.wait_for_line("Application startup complete", stdout=False)
        assert httpx.get(f"http://127.0.0.1:{port}/healthz").text == "ok"
        process.wait_for_line("/healthz", stdout=False)  # the access log line
        process.signal(signal.SIGTERM)
        # uvicorn shuts down, then re-raises the signal it caught
        assert process.finish() in (0, -signal.SIGTERM)
        assert "Application shutdown complete" in process.output
    records = [json.loads(line) for line in process.lines if line.strip()]
    assert records and all({"time", "level", "logger", "message"} <= set(r) for r in records)
    assert any(r["logger"] == "uvicorn.access" and "/healthz" in r["message"] for r in records)
