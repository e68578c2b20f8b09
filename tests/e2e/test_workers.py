"""Many workers, one issue: `digest send` (the send lease) and `digest send --worker`
processes on one throwaway PostgreSQL, against a server that counts what each recipient got.

Every step waits for an event it observes: the server holds its replies until all six
connections (three processes, two each) wait for one, so every process is known to be
sending before anything is measured or killed, on a machine of any speed.

The rate is judged from the server's side: when each MAIL FROM came. The limiter spaces
sending slots 1/40 s apart for all processes together, and a message never goes before its
slot; it may go after it, when its process waits for a core (this 2-core machine runs other
test suites too). A late MAIL FROM moves into the next window: a window of 1 s can hold
the 40 slots of its own second plus the late ones of the second before. One process (a
third of the slots) stalled for 0.6 s adds 8, or all three stalled for 0.2 s: the test
allows 48 (1.2 x). Without a shared limit the three would send 120 a second (each at the
full 40): measured 123 when the shared schedule is switched off, 41 with it.
"""

from __future__ import annotations

import bisect
import json
import signal
import socket
from collections import Counter
from pathlib import Path

from click.testing import CliRunner
from sqlalchemy import select

from digest.cli import main
from digest.config.load import load_config
from digest.config.schema import Config
from digest.delivery.settings import GROUP
from digest.store.database import open_database
from digest.store.tables import Delivery, Subscriber
from tests.issues.test_send import add_subscribers, write_config
from tests.support.postgres import PostgresServer
from tests.support.processes import Digest, gone, running
from tests.support.smtp_server import CountingServer

SUBSCRIBERS = 400
RATE = 40
CONNECTIONS = 2
PROCESSES = 3


def prepare(tmp_path: Path, url: str, port: int) -> tuple[Path, Config]:
    path = write_config(
        tmp_path, url, port, connections=CONNECTIONS, rate_per_second=RATE, lease_timeout=30
    )
    config = load_config(path)
    add_subscribers(config, SUBSCRIBERS)
    return path, config


def ledger(config: Config) -> dict[str, tuple[str, str | None, int]]:
    """email -> (status, worker, delivery id)."""
    database = open_database(config.database_url)
    with database.session() as session:
        rows = session.execute(
            select(Subscriber.email, Delivery.status, Delivery.worker, Delivery.id).join(Delivery)
        ).all()
    database.dispose()
    return {email: (status, worker, id_) for email, status, worker, id_ in rows}


def cli(path: Path, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, ["--config", str(path), *args])
    return result.exit_code, result.output


def all_sending(server: CountingServer) -> None:
    """Until every connection of every process waits for its reply (the server holds)."""
    server.wait(lambda s: s.waiting == PROCESSES * CONNECTIONS)


def busiest_second(moments: list[float]) -> int:
    """The most events in any window [t, t + 1 s) of the sorted `moments`."""
    return max(bisect.bisect_left(moments, t + 1.0) - i for i, t in enumerate(moments))


def name(process: Digest) -> str:
    return f"{socket.gethostname()}:{process.pid}"


def test_three_workers_share_the_ledger_and_the_limit(
    tmp_path: Path, postgres: PostgresServer
) -> None:
    with CountingServer() as server:
        path, config = prepare(tmp_path, postgres.new_database(), server.port)
        server.hold()
        with (
            running(path, "send", "--worker", "--wait", "300") as first,
            running(path, "send", "--worker", "--wait", "300") as second,
            running(path, "send", "--yes") as holder,
        ):
            all_sending(server)
            code, output = cli(path, "status", "--json")
            assert code == 0, output
            live = {w["name"] for w in json.loads(output)["workers"]}
            assert live == {name(holder), name(first), name(second)}
            server.release()
            codes = [p.finish() for p in (holder, first, second)]
            assert codes == [0, 0, 0], [p.output for p in (holder, first, second)]
        assert "Joined issue" in first.output and "Joined issue" in second.output
        assert set(server.received.values()) == {1} and len(server.received) == SUBSCRIBERS
        statuses = ledger(config)
        assert {status for status, _, _ in statuses.values()} == {"sent"}

        began = sorted(server.began)
        assert len(began) == SUBSCRIBERS
        assert busiest_second(began) <= RATE * 1.2
        # over the whole send too: 400 slots 1/40 s apart span 9.975 s; the first message may
        # go after its slot (then the span is shorter), the last never before its own
        assert began[-1] - began[0] >= (SUBSCRIBERS - 1) / RATE - 0.5

        code, output = cli(path, "report", "--json")
        assert code == 0, output
        [report] = json.loads(output)
        assert report["status"] == "finished"
        workers = report["workers"]
        assert set(workers) == {name(holder), name(first), name(second)}  # each had one held
        assert sum(workers.values()) == SUBSCRIBERS
        code, output = cli(path, "status", "--json")
        assert json.loads(output)["workers"] == []  # all ended


def test_a_worker_killed_mid_send_loses_nothing(tmp_path: Path, postgres: PostgresServer) -> None:
    """SIGKILL while its messages wait for their replies: its claims go back to the queue,
    the others finish and exit 0, and whoever missed the issue is among the `unknown`."""
    with CountingServer() as server:
        path, config = prepare(tmp_path, postgres.new_database(), server.port)
        server.hold()
        with (
            running(path, "send", "--worker", "--wait", "300") as victim,
            running(path, "send", "--worker", "--wait", "300") as survivor,
            running(path, "send", "--yes") as holder,
        ):
            all_sending(server)
            held = {
                delivery_id
                for status, worker, delivery_id in ledger(config).values()
                if worker == name(victim) and status == "claimed"
            }
            assert held  # it holds claims besides the messages in flight
            victim.signal(signal.SIGKILL)
            assert victim.finish() == -signal.SIGKILL and gone(victim.pid)
            server.release()
            codes = [holder.finish(), survivor.finish()]
            assert codes == [0, 0], holder.output + survivor.output
        statuses = ledger(config)
        counts = Counter(status for status, _, _ in statuses.values())
        assert set(counts) <= {"sent", "unknown"}
        assert counts["unknown"] <= CONNECTIONS * GROUP  # at most its groups in flight
        assert set(server.received.values()) == {1}  # nobody twice
        missed = SUBSCRIBERS - len(server.received)
        assert missed <= counts["unknown"]
        by_id = {delivery_id: (status, worker) for status, worker, delivery_id in statuses.values()}
        for delivery_id in held:  # its claims went back to the queue and were sent by others
            status, worker = by_id[delivery_id]
            assert status == "sent" and worker in (name(holder), name(survivor))
        code, output = cli(path, "report", "--json")
        assert code == 0, output
        [report] = json.loads(output)
        assert report["status"] == "finished"
        assert name(victim) not in report["workers"]  # it never saw a reply


def test_a_worker_with_nothing_to_join_says_so(tmp_path: Path, postgres: PostgresServer) -> None:
    path = write_config(tmp_path, postgres.new_database(), 2525)
    code, output = cli(path, "send", "--worker")
    assert (code, output) == (0, "No issue is being sent: nothing to join.\n")
    code, output = cli(path, "send", "--worker", "--wait", "0.2")
    assert (code, output) == (0, "No issue is being sent (waited 0.2 s): nothing to join.\n")


def test_worker_on_sqlite_is_a_usage_error(tmp_path: Path) -> None:
    path = write_config(tmp_path, f"sqlite:///{tmp_path / 'digest.sqlite3'}", 2525)
    result = CliRunner().invoke(main, ["--config", str(path), "send", "--worker"])
    assert result.exit_code == 2
    assert "needs a PostgreSQL database_url" in result.output
    assert "Traceback" not in result.output and len(result.output.strip().splitlines()) == 1


def test_worker_excludes_the_options_of_a_planned_send(tmp_path: Path) -> None:
    path = write_config(tmp_path, f"sqlite:///{tmp_path / 'digest.sqlite3'}", 2525)
    for args in (["--worker", "--dry-run"], ["--wait", "5"]):
        result = CliRunner().invoke(main, ["--config", str(path), "send", *args])
        assert result.exit_code == 2, result.output
