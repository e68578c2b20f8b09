"""Prometheus metrics (prometheus-client): this process's sending, and the state of the
newsletter as the database has it.

- This process (`digest schedule`, `digest send --worker`): deliveries by outcome
  (`digest_process_deliveries_total{outcome}`), and the rate of the send in progress
  (`digest_process_messages_per_second`, 0 when idle). A send's spawned helper processes
  count as its own: their summaries reach it.
- The database, read at each scrape so that every process reports the same, and the same as
  `digest report --json` whoever sent: the newest issue's deliveries by status, what came
  back, its bounce and complaint rates (digest.store.report's functions), the queue of the
  open issues by state, the deferred deliveries due, the last and next runs, the sign-up
  events and the subscribers by status.

Who may read them is `allowed`: loopback, `metrics.allow`, or the bearer token.
"""

from __future__ import annotations

import hmac
import ipaddress
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import UTC, datetime
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from digest.delivery.engine import Summary
from digest.store import gauges
from digest.store import subscribers as people
from digest.store.database import Database
from digest.store.report import reports

OUTCOMES = ("sent", "deferred", "failed", "bounced", "unknown", "skipped")
NextRuns = Callable[[], dict[str, datetime]]


class ProcessMetrics:
    """Deliveries of this process by outcome and its current rate, fed by the summaries a
    send reports as it goes (`track()` gives one send its own baseline)."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.deliveries = Counter(
            "digest_process_deliveries",
            "Deliveries this process (and the helpers it spawned) brought to an outcome.",
            ["outcome"],
            registry=registry,
        )
        for outcome in OUTCOMES:
            self.deliveries.labels(outcome)
        self.rate = Gauge(
            "digest_process_messages_per_second",
            "Messages per second of the send in progress in this process (0 when idle).",
            registry=registry,
        )
        self.lock = threading.Lock()

    def track(self) -> SendTracker:
        return SendTracker(self)


class SendTracker:
    """One send's progress: each summary is cumulative, so only the growth is counted."""

    def __init__(self, metrics: ProcessMetrics) -> None:
        self.metrics = metrics
        self.counted = dict.fromkeys(OUTCOMES, 0)

    def __call__(self, summary: Summary) -> None:
        with self.metrics.lock:
            for outcome in OUTCOMES:
                now = int(getattr(summary, outcome))
                if now > self.counted[outcome]:
                    self.metrics.deliveries.labels(outcome).inc(now - self.counted[outcome])
                    self.counted[outcome] = now
            self.metrics.rate.set(summary.rate)

    def finish(self, summary: Summary | None = None) -> None:
        if summary is not None:
            self(summary)
        self.metrics.rate.set(0)


class DatabaseCollector(Collector):
    """The newsletter's state, read from the database at each scrape."""

    def __init__(self, database: Database, next_runs: NextRuns | None = None) -> None:
        self.database = database
        self.next_runs = next_runs

    def collect(self) -> Iterator[Metric]:
        now = datetime.now(UTC)
        with self.database.session() as session:
            latest = reports(session, limit=1)
            depth = gauges.queue_depth(session)
            due = gauges.deferred_due(session, now)
            signups = gauges.signup_events(session)
            audience = people.counts(session)
        yield _gauge(
            "digest_queue_deliveries", "Deliveries of the open issues by state.", "state", depth
        )
        yield GaugeMetricFamily(
            "digest_deferred_due", "Deferred deliveries whose next attempt is due.", value=due
        )
        yield _counter(
            "digest_signup_events",
            "Sign-up events recorded: confirmation mails, confirmations, subscriptions, "
            "unsubscriptions.",
            "kind",
            signups,
        )
        yield _gauge("digest_subscribers", "Subscribers by status.", "status", audience)
        yield from _last_issue(latest[0] if latest else None)
        if self.next_runs is not None:
            runs = GaugeMetricFamily(
                "digest_next_run_timestamp_seconds",
                "When each rhythm's next scheduled run is due (Unix time).",
                labels=["frequency"],
            )
            for frequency, moment in self.next_runs().items():
                runs.add_metric([frequency], moment.timestamp())
            yield runs


def _last_issue(report: Any) -> Iterable[Metric]:
    deliveries = GaugeMetricFamily(
        "digest_last_issue_deliveries",
        "The newest issue's deliveries by status (as `digest report` counts them).",
        labels=["issue", "status"],
    )
    returned = GaugeMetricFamily(
        "digest_last_issue_returned",
        "What came back for the newest issue: hard and soft bounces, complaints...",
        labels=["issue", "kind"],
    )
    bounce = GaugeMetricFamily(
        "digest_last_issue_bounce_rate",
        "The newest issue's bounce rate (hard and soft bounces over delivered and failed).",
        labels=["issue"],
    )
    complaint = GaugeMetricFamily(
        "digest_last_issue_complaint_rate",
        "The newest issue's complaint rate (complaints over delivered).",
        labels=["issue"],
    )
    last_run = GaugeMetricFamily(
        "digest_last_run_timestamp_seconds",
        "When the newest issue was created (Unix time).",
        labels=["issue"],
    )
    if report is not None:
        for status, count in sorted(report.deliveries.items()):
            deliveries.add_metric([report.key, status], count)
        for kind, count in sorted(report.returned.items()):
            returned.add_metric([report.key, kind], count)
        bounce.add_metric([report.key], report.bounce_rate or 0.0)
        complaint.add_metric([report.key], report.complaint_rate or 0.0)
        last_run.add_metric([report.key], report.created_at.timestamp())
    return [deliveries, returned, bounce, complaint, last_run]


def _gauge(name: str, documentation: str, label: str, values: dict[str, int]) -> Metric:
    family = GaugeMetricFamily(name, documentation, labels=[label])
    for key, value in sorted(values.items()):
        family.add_metric([key], value)
    return family


def _counter(name: str, documentation: str, label: str, values: dict[str, int]) -> Metric:
    family = CounterMetricFamily(name, documentation, labels=[label])
    for key, value in sorted(values.items()):
        family.add_metric([key], value)
    return family


def registry(database: Database, next_runs: NextRuns | None = None) -> CollectorRegistry:
    """A registry with the database's metrics (each app or process makes its own)."""
    made = CollectorRegistry(auto_describe=False)
    made.register(DatabaseCollector(database, next_runs))
    return made


# -- who may read them --------------------------------------------------------------------------


def allowed(
    client: str | None, authorization: str | None, allow: Sequence[str], token: str | None
) -> bool:
    """Loopback, an address in `allow` (addresses or networks), or `Authorization: Bearer
    <token>` (compared in constant time). Anything else, an unknown client included, is
    refused."""
    if token and authorization:
        scheme, _, presented = authorization.partition(" ")
        if scheme.lower() == "bearer" and hmac.compare_digest(
            presented.strip().encode(), token.encode()
        ):
            return True
    if not client:
        return False
    try:
        address = ipaddress.ip_address(client.strip("[]"))
    except ValueError:
        return False
    if address.is_loopback:
        return True
    return any(address in ipaddress.ip_network(n, strict=False) for n in allow)


# -- a port of their own, for `digest schedule` and `digest send --worker` ----------------------


def serve_metrics(
    metrics: CollectorRegistry,
    port: int,
    address: str,
    allow: Sequence[str],
    token: str | None,
) -> Callable[[], None]:
    """Answer GET /metrics on `address:port` in a thread, to `allowed` clients only; returns
    the function that stops it."""
    from wsgiref.simple_server import WSGIRequestHandler, make_server

    from prometheus_client import make_wsgi_app
    from prometheus_client.exposition import ThreadingWSGIServer

    exposition = make_wsgi_app(metrics)

    def app(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        if not allowed(environ.get("REMOTE_ADDR"), environ.get("HTTP_AUTHORIZATION"), allow, token):
            start_response("403 Forbidden", [("Content-Type", "text/plain")])
            return [b"forbidden\n"]
        return exposition(environ, start_response)  # type: ignore[no-any-return]

    class Quiet(WSGIRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            return None

    server = make_server(address, port, app, ThreadingWSGIServer, handler_class=Quiet)
    thread = threading.Thread(target=server.serve_forever, name="metrics", daemon=True)
    thread.start()

    def stop() -> None:
        server.shutdown()
        server.server_close()

    return stop


_process: ProcessMetrics | None = None
_process_registry = CollectorRegistry(auto_describe=False)


def process_metrics() -> ProcessMetrics:
    """This process's sending counters (one set per process, made on first use)."""
    global _process
    if _process is None:
        _process = ProcessMetrics(_process_registry)
    return _process


def process_registry(database: Database, next_runs: NextRuns | None = None) -> CollectorRegistry:
    """This process's counters and the database's state, for a `--metrics-port`."""
    process_metrics()
    _process_registry.register(DatabaseCollector(database, next_runs))
    return _process_registry
