"""Real `digest send` processes interrupted for real, against a server that counts what each
recipient received, compared with the ledger: nobody twice, nobody lost.

Every signal lands at a moment the test observed: the server holds its replies until every
connection waits for one, the signal goes out, the sender says it is stopping, and only then
are the replies released — so "at most connections x processes messages complete after the
signal, and nothing new begins" is checked exactly, on a machine of any speed.
"""

from __future__ import annotations

import os
import signal
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from sqlalchemy import select

from digest.cli import main
from digest.config.load import load_config
from digest.config.schema import Config
from digest.delivery.settings import GROUP
from digest.store import lease
from digest.store.database import open_database
from digest.store.tables import Delivery
from tests.issues.test_send import add_subscribers, write_config
from tests.issues.test_send import statuses as ledger
from tests.support.processes import Digest, gone, running
from tests.support.smtp_server import CountingServer

SUBSCRIBERS = 300
HELD_REPLY_TIMEOUT = 300  # seconds: longer than any hold, so a held client never gives up


def prepare(tmp_path: Path, database_url: str, port: int, **smtp: Any) -> tuple[Path, Config]:
    # The server holds replies for as long as a test needs (signal_held): with the usual 5 s
    # a loaded machine let a held client give up, reconnect and be held again, so a fifth
    # connection waited, a reply counted as lost, or a message began after the signal.
    smtp.setdefault("timeout", HELD_REPLY_TIMEOUT)
    path = write_config(tmp_path, database_url, port, **smtp)
    config = load_config(path)
    add_subscribers(config, SUBSCRIBERS)
    return path, config


def at_least(count: int) -> Callable[[CountingServer], bool]:
    """A condition: the server has accepted `count` messages."""
    return lambda server: server.accepted() >= count


def workers(config: Config, count: int = 2) -> set[int]:
    """The pids that claimed deliveries (workers are named host:pid), once `count` did (the
    spawned one starts a little later)."""
    database = open_database(config.database_url)
    deadline = time.monotonic() + 120  # a hang guard, not a timing
    try:
        while True:
            with database.session() as session:
                names = session.scalars(select(Delivery.worker).distinct()).all()
            pids = {int(name.rpartition(":")[2]) for name in names if name}
            if len(pids) >= count or time.monotonic() > deadline:
                return pids
            time.sleep(0.05)
    finally:
        database.dispose()


def send(path: Path, *args: str) -> Any:
    return CliRunner().invoke(main, ["--config", str(path), "send", "--yes", *args])


def signal_held(
    server: CountingServer,
    sender: Digest,
    signum: int,
    connections: int,
    target: int | None = None,
    again: bool = False,
) -> tuple[int, int]:
    """Hold every connection at its reply, signal (`target`, default the sender), wait until the
    sender says it stops, release. Returns (transactions begun, messages accepted) by then.
    With `again`, a second signal comes while it stops (a second Ctrl-C)."""
    server.hold()
    server.wait(lambda s: s.waiting == connections)
    os.kill(target or sender.pid, signum)
    name = signal.Signals(signum).name
    sender.wait_for_line(f"digest: stopped on request ({name})", stdout=False)
    if again:
        sender.signal(signum)
        sender.wait_for_line("digest: already stopping", stdout=False)
    begun, accepted = server.started, server.accepted()
    server.release()
    return begun, accepted


def assert_everyone_once(server: CountingServer, config: Config) -> None:
    statuses = ledger(config)
    assert len(statuses) == SUBSCRIBERS and set(statuses.values()) == {"sent"}
    assert len(server.received) == SUBSCRIBERS and set(server.received.values()) == {1}
    assert set(server.received) == set(statuses)


def test_ctrl_c_three_times_then_resume_sends_each_once(tmp_path: Path, database_url: str) -> None:
    with CountingServer(delay=0.005) as server:
        path, config = prepare(tmp_path, database_url, server.port, connections=2)
        for round_, threshold in enumerate((20, 110, 200)):
            with running(path, "send", "--yes") as sender:
                server.wait(at_least(threshold))
                begun, accepted = signal_held(
                    server, sender, signal.SIGINT, connections=2, again=round_ == 1
                )
                assert sender.finish() == 130, sender.output
            assert server.started == begun  # nothing begun after the signal
            assert server.accepted() - accepted <= 2  # the held ones completed, no more
            assert "Stopped issue" in sender.output and "Run `digest send` again" in sender.output
            counts = Counter(ledger(config).values())
            assert set(counts) <= {"sent", "queued"}  # never unknown, never left claimed
            assert counts["sent"] == server.accepted()
        resumed = send(path)
        assert resumed.exit_code == 0, resumed.output
        assert "Resuming issue" in resumed.output
        assert "Nothing new" in send(path).output
        assert_everyone_once(server, config)


@pytest.mark.parametrize("target", ["parent", "child"])
def test_sigterm_stops_every_process_of_a_two_process_send(
    tmp_path: Path, database_url: str, target: str
) -> None:
    with CountingServer(delay=0.005) as server:
        path, config = prepare(tmp_path, database_url, server.port, connections=4, processes=2)
        with running(path, "send", "--yes") as sender:
            server.wait(at_least(20))
            server.hold()  # until both processes' connections wait: the child is sending too
            server.wait(lambda s: s.waiting == 4)
            pids = workers(config)
            assert sender.pid in pids and len(pids) == 2  # two sending processes
            [child] = pids - {sender.pid}
            aim = sender.pid if target == "parent" else child
            begun, accepted = signal_held(server, sender, signal.SIGTERM, 4, target=aim)
            assert sender.finish() == 143, sender.output
        assert gone(child) and gone(sender.pid)  # every process stopped
        assert server.started == begun  # and none began a message after the signal
        assert server.accepted() - accepted <= 4  # connections x processes
        counts = Counter(ledger(config).values())
        assert set(counts) <= {"sent", "queued"} and counts["sent"] == server.accepted()
        resumed = send(path)
        assert resumed.exit_code == 0, resumed.output
        assert_everyone_once(server, config)


def test_a_sending_process_whose_parent_was_killed_stops(tmp_path: Path, database_url: str) -> None:
    with CountingServer(delay=0.005) as server:
        path, config = prepare(tmp_path, database_url, server.port, connections=4, processes=2)
        with running(path, "send", "--yes") as sender:
            server.wait(at_least(20))
            server.hold()
            server.wait(lambda s: s.waiting == 4)
            [child] = workers(config) - {sender.pid}
            sender.signal(signal.SIGKILL)
            sender.finish(output=False)  # the orphan still holds the output open
            begun = server.started
            server.release()
            deadline_ok = _wait_gone(child)
            sender.finish()  # its output ends once the orphan and the resource tracker did
        assert deadline_ok, "the orphaned sending process went on"
        assert server.started == begun  # the orphan finished its message and began no other
        # only sentences of ours: not multiprocessing's resource tracker warning about the
        # semaphores the killed parent left (it cleans them up)
        for line in sender.lines:  # its standard error
            assert line.startswith("digest: "), sender.output
        assert "resource_tracker" not in sender.output and "Warning" not in sender.output
        resumed = send(path)
        assert resumed.exit_code == 0, resumed.output
        statuses = ledger(config)
        unknown = {email for email, status in statuses.items() if status == "unknown"}
        assert len(unknown) <= 2 * GROUP  # the parent's in-flight groups, at most
        assert max(server.received.values()) == 1
        missed = {e for e in statuses if server.received[e] == 0}
        assert missed <= unknown


def _wait_gone(pid: int) -> bool:
    deadline = time.monotonic() + 120  # a hang guard, not a timing
    while not gone(pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def test_a_kill_in_the_middle_of_its_groups_loses_no_reply_it_read(
    tmp_path: Path, database_url: str
) -> None:
    """Groups of five (`smtp.pipeline`), two connections. The server holds its replies once
    both connections wait for one, and the sender is SIGKILLed then, with each connection
    somewhere in its group: the replies it had read since the group was marked are in no
    database write yet, only in its journal. The next `digest send` records them first: every
    message whose reply the sender read is `sent`, and the only `unknown` are the rest of the
    groups in flight (the two held messages and those never written), at most five per
    connection."""
    with CountingServer(delay=0.002) as server:
        path, config = prepare(tmp_path, database_url, server.port, connections=2, pipeline=5)
        with running(path, "send", "--yes") as sender:
            server.wait(at_least(23))
            server.hold()
            server.wait(lambda s: s.waiting == 2)
            read = set(server.received)  # each connection read every reply before its held one
            sender.signal(signal.SIGKILL)
            sender.finish()
        in_flight = {email for email, status in ledger(config).items() if status == "in_flight"}
        assert 2 <= len(in_flight) <= 2 * 5
        server.release()  # for the next send (the held two went with their connections)
        resumed = send(path)
        assert resumed.exit_code == 0, resumed.output
        if in_flight & read:  # replies read since the group was marked: the journal had them
            assert f"recorded {len(in_flight & read)} outcome(s) that " in resumed.output
    statuses = ledger(config)
    unknown = {email for email, status in statuses.items() if status == "unknown"}
    assert all(statuses[email] == "sent" for email in read), Counter(
        statuses[email] for email in read
    )
    assert unknown == in_flight - read and len(unknown) <= 2 * 5
    assert max(server.received.values()) == 1  # nobody twice
    assert {email for email in statuses if server.received[email] == 0} <= unknown
    assert not list((tmp_path / "var" / "state").glob("*.journal"))


def test_kill_9_four_times_then_resume(tmp_path: Path, database_url: str) -> None:
    """What a SIGKILL leaves: at most the in-flight groups unknown, nothing else lost."""
    in_flight_at_kills = 0
    with CountingServer(delay=0.002) as server:
        path, config = prepare(tmp_path, database_url, server.port, connections=2)
        for threshold in (15, 80, 150, 220):
            with running(path, "send", "--yes") as sender:
                server.wait(at_least(threshold))
                sender.signal(signal.SIGKILL)
                sender.finish()
            counts = Counter(ledger(config).values())
            assert counts["in_flight"] <= 2 * GROUP  # connections x group, not the claims
            in_flight_at_kills += counts["in_flight"]
        resumed = send(path)
        assert resumed.exit_code == 0, resumed.output
        assert "in flight when the last send stopped" in resumed.output
        assert "Nothing new" in send(path).output
        received = Counter(server.received)
        statuses = ledger(config)
        assert len(statuses) == SUBSCRIBERS and set(statuses.values()) <= {"sent", "unknown"}
        unknown = {email for email, status in statuses.items() if status == "unknown"}
        missed = {email for email in statuses if received[email] == 0}
        assert max(received.values()) == 1  # nobody twice
        assert missed <= unknown  # whoever got nothing is recorded unknown, never sent
        assert len(missed) <= len(unknown) <= in_flight_at_kills
        for email, status in statuses.items():
            if status == "sent":
                assert received[email] == 1, email
        report = CliRunner().invoke(main, ["--config", str(path), "report"])
        assert f"{len(unknown)} deliveries are unknown" in report.output
        assert "--resend-unknown" in report.output
        [key] = _issue_keys(config)
        again = send(path, "--resend-unknown", key)  # the operator prefers a duplicate to a loss
        assert again.exit_code == 0, again.output
        assert set(ledger(config).values()) == {"sent"}
        for email in statuses:
            expected = received[email] + (1 if email in unknown else 0)
            assert server.received[email] == expected, email  # the unknown ones, once more


def _issue_keys(config: Config) -> list[str]:
    from digest.store.tables import Issue

    database = open_database(config.database_url)
    with database.session() as session:
        keys = list(session.scalars(select(Issue.key)))
    database.dispose()
    return keys


def test_two_sends_started_together_send_each_once(tmp_path: Path, database_url: str) -> None:
    with CountingServer(delay=0.002) as server:
        path, config = prepare(tmp_path, database_url, server.port, connections=2)
        for round_ in range(2):
            server.hold()  # whoever wins the lease waits at the server; the other must stop
            with running(path, "send", "--yes") as first, running(path, "send", "--yes") as second:
                pair = [first, second]
                if round_ == 0:
                    server.wait(lambda s: s.waiting == 2)
                    loser = _first_to_exit(pair)
                    winner = second if loser is first else first
                    assert loser.finish() == 0, loser.output
                    line = loser.wait_for_line("Another send is running (")
                    assert f":{winner.pid} since " in line
                server.release()
                codes = [process.finish() for process in pair]
            assert codes == [0, 0], [p.output for p in pair]
            for process in pair:
                assert "Error" not in process.output and "Traceback" not in process.output
            assert_everyone_once(server, config)


def _first_to_exit(processes: list[Digest]) -> Digest:
    deadline = time.monotonic() + 120  # a hang guard, not a timing
    while time.monotonic() < deadline:
        for process in processes:
            if process.exited():
                return process
        time.sleep(0.02)
    raise AssertionError("neither send stopped while the other held the lease")


def test_a_sender_whose_heartbeat_stopped_is_taken_over(tmp_path: Path, database_url: str) -> None:
    """A hung sender (SIGSTOP: its heartbeat stops) loses the lease and its claims once they
    expire; another send takes over, and the first, woken, sends nothing of theirs."""
    quick = {"DIGEST_SMTP__HEARTBEAT": "0.2", "DIGEST_SMTP__LEASE_TIMEOUT": "1.5"}
    with CountingServer(delay=0.005) as server:
        path, config = prepare(tmp_path, database_url, server.port, connections=2)
        with running(path, "send", "--yes", env=quick) as hung:
            server.wait(at_least(30))
            server.hold()  # its connections wait for replies: no database work of theirs
            server.wait(lambda s: s.waiting == 2)
            _stop_between_transactions(hung, config)
            database = open_database(config.database_url)
            _wait_until(lambda: lease.current_holder(database, lease.SEND_LEASE) is None)
            database.dispose()
            server.release()
            with running(path, "send", "--yes", env=quick) as successor:
                assert successor.finish() == 0, successor.output
            assert "Resuming issue" in successor.output
            hung.signal(signal.SIGCONT)
            assert hung.finish() == 1  # it stops: the lease is no longer its own
        assert "the send lease was taken over" in hung.output
        assert max(server.received.values()) == 1  # nobody twice
        statuses = ledger(config)
        unknown = {email for email, status in statuses.items() if status == "unknown"}
        assert set(statuses.values()) <= {"sent", "unknown"} and len(unknown) <= 2 * GROUP
        assert {e for e in statuses if server.received[e] == 0} <= unknown


def _stop_between_transactions(process: Digest, config: Config) -> None:
    """SIGSTOP `process` at a moment it holds no lock in the database (its heartbeat writes
    now and then): stopped inside a transaction, it would block its successor on SQLite."""
    while True:
        process.signal(signal.SIGSTOP)
        if _unlocked(config):
            return
        process.signal(signal.SIGCONT)
        _wait_until(lambda: _unlocked(config))


def _unlocked(config: Config) -> bool:
    """Whether a write could start right now without waiting for another process."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.exc import OperationalError

    url = config.database_url
    sqlite = url.startswith("sqlite")
    engine = create_engine(url, connect_args={"timeout": 0} if sqlite else {})
    try:
        with engine.connect() as connection:
            if sqlite:
                connection.exec_driver_sql("BEGIN IMMEDIATE")
            else:
                connection.execute(text("SET lock_timeout = 1"))
                connection.execute(text("SELECT * FROM leases FOR UPDATE"))
                connection.execute(
                    text("SELECT id FROM deliveries WHERE worker IS NOT NULL FOR UPDATE")
                )
            connection.rollback()
        return True
    except OperationalError:
        return False
    finally:
        engine.dispose()


def _wait_until(condition: Callable[[], bool]) -> None:
    deadline = time.monotonic() + 120  # a hang guard, not a timing
    while not condition():
        assert time.monotonic() < deadline, "the condition never held"
        time.sleep(0.05)
