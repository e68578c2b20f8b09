"""A database that goes away kills no sender, and an outcome once known is never lost.

On a throwaway PostgreSQL of their own (synchronous_commit on, as PostgreSQL ships: an
immediate shutdown then loses no committed transaction — with it off, the server itself
forgets the last commits and no client can help), real `digest send` and `digest send
--worker` processes, supervised as systemd would restart them, meet database restarts
(`-m immediate`, `-m fast`, kept down), SIGKILLs and a misbehaving SMTP server
(tests/support/storm.py).
The server counts what it stored apart from what it acknowledged, so the ledger is compared
with the truth. Issue 20's promises (README "Sending"):

- a restart or an outage shorter than `database.outage_seconds` is waited out: no process
  exits, nothing becomes `unknown`, nobody gets the issue twice, no message begins while the
  database is away, and the log says when it went and when it came back;
- an outage longer than the lease timeout takes nothing over: expiry counts from the return;
- an outcome read while the database is away is journalled, and a later `digest send`
  records it even when its writer was killed;
- under a storm of every fault at once: nobody twice, whoever got nothing is `unknown`, and
  nothing is printed that is not a sentence of ours.
"""

from __future__ import annotations

import json
import logging
import random
import signal
import threading
import time
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from click.testing import CliRunner

from digest.cli import main
from digest.config.load import load_config
from digest.config.schema import Config
from digest.config.sending import inbound_settings
from digest.store.database import open_database
from digest.store.outage import DatabaseAway
from tests.issues.test_send import add_subscribers, write_config
from tests.issues.test_send import statuses as ledger
from tests.support.postgres import PostgresServer
from tests.support.processes import Digest
from tests.support.smtp_server import CountingServer
from tests.support.storm import KINDS, plan, storm

# a PostgreSQL cluster of the module's own (`durable`), which the automatic marker cannot see
pytestmark = pytest.mark.postgres


@pytest.fixture(scope="module")
def durable() -> Iterator[PostgresServer]:
    """A cluster of this module's own, restarted by its tests (not the session's)."""
    server = PostgresServer(durable=True)
    server.start()
    yield server
    server.stop()


# -- restarts and outages, waited out ---------------------------------------------------------


def test_three_restarts_and_a_20_s_outage_kill_no_sender(
    tmp_path: Path, durable: PostgresServer
) -> None:
    """5,000 subscribers, `digest send` and two workers; the database restarted with
    `-m fast` once and `-m immediate` three times, then kept down for 20 s."""
    figures = storm(
        tmp_path,
        durable,
        5000,
        ["pg-fast", "pg-immediate", "pg-immediate", "pg-immediate", "pg-down"],
        down=20,
    )
    assert figures.starts == {"send": 1, "worker0": 1, "worker1": 1}, figures.output
    assert figures.exits == {"send": [0], "worker0": [0], "worker1": [0]}, figures.output
    assert figures.statuses == {"sent": 5000}, figures.as_dict()
    assert figures.twice == 0 and figures.missed == 0 and figures.unknown == 0
    assert figures.foreign == [], figures.foreign
    # each process says when the database went and when it came back (a restart shorter
    # than the gap between two of its calls may pass unseen; 20 s cannot)
    for role, text in zip(figures.exits, figures.outputs, strict=True):
        said = [
            line.split(" (")[0]
            for line in text.splitlines()
            if line.startswith("digest: warning: the database is ")
        ]
        gone = said.count("digest: warning: the database is out of reach")
        back = said.count("digest: warning: the database is back")
        # a process whose last beat met the start of the last outage ends with it unpaired
        # (its heartbeat thread was waiting it out as the process ended, after its work)
        ended_away = bool(said) and said[-1].endswith("out of reach")
        assert back >= 1 and gone == back + ended_away, f"{role} said:\n{text}"
    # no message began while the database was down (from when the server was gone; a moment
    # allowed for a message whose mark committed just before)
    down, up = figures.outages[-1]
    assert up - down >= 20
    begun = [moment for moment in figures.mails if down + 1.0 < moment < up]
    assert begun == [], f"{len(begun)} messages began while the database was down"


def test_an_outage_longer_than_the_lease_timeout_takes_nothing_over(
    tmp_path: Path, durable: PostgresServer
) -> None:
    """Down 8 s with a 3 s lease timeout: no sender is taken for dead when it returns (expiry
    counts from the return), so nothing is `unknown` and every outcome the senders read is in
    the ledger."""
    figures = storm(
        tmp_path,
        durable,
        1000,
        ["pg-down"],
        down=8,
        smtp={"heartbeat": 0.5, "lease_timeout": 3},
    )
    assert figures.twice == 0 and figures.foreign == []
    for email, count in figures.acked.items():  # whatever the server said 250 to
        assert count == 1 and figures.ledger[email] == "sent", (email, figures.ledger[email])
    assert figures.unknown == 0 and figures.statuses == {"sent": 1000}, figures.as_dict()
    assert all(codes == [0] for codes in figures.exits.values()), figures.output


@pytest.mark.parametrize(
    "end", ["SIGKILL", "SIGKILL, seen", "past outage_seconds", "past outage_seconds, seen"]
)
def test_a_sender_ended_while_the_database_is_down_keeps_what_it_knew(
    tmp_path: Path, durable: PostgresServer, end: str
) -> None:
    """Both connections wait for their replies; the database goes down; the replies come and
    go to the journal; then the sender is SIGKILLed, or gives up once `outage_seconds` passed
    (one sentence, exit 1). The next `digest send` records the journal first: the ledger says
    what the server accepted — every reply the sender read is `sent`, nothing `sent` was
    not stored — and nobody gets the issue twice. After a SIGKILL the rest of each group in
    flight (`smtp.pipeline`, five) may stay `unknown`: a message that was on the wire, and
    those never written, at most five per connection; none once the sender had seen the
    database go and journalled what it held back ("seen"), nor after it gave up."""
    count = 300
    # "seen": the sender learns of the outage (its heartbeat) before the replies come, so the
    # rest of each group in flight is not begun; it must go back to the queue, not `unknown`
    seen = {"heartbeat": 0.2} if end.endswith("seen") else {}
    killed = end.startswith("SIGKILL")
    with CountingServer() as server:
        path = write_config(tmp_path, durable.new_database(), server.port, timeout=300, **seen)
        if not killed:
            text = path.read_text("utf-8")
            path.write_text(text.replace("database:\n", "database:\n  outage_seconds: 3\n"))
        config = load_config(path)
        add_subscribers(config, count)
        state = tmp_path / "var" / "state"
        sender = Digest(path, "send", "--yes")
        try:
            server.wait(lambda s: s.accepted() >= 50)
            server.hold()
            server.wait(lambda s: s.waiting == 2)
            ids = delivery_ids(config)  # while the database is still up
            flying = {d for d, status in ledger_ids(config).items() if status == "in_flight"}
            before = Counter(server.received)
            durable.halt("immediate")
            try:
                if seen:
                    sender.wait_for_line("the database is out of reach")
                server.release()
                server.wait(lambda s: s.accepted() >= sum(before.values()) + 2)
                replied = {ids[e] for e, n in server.received.items() if n > before[e]}
                # the journal also holds lines already committed (it is cut back in steps):
                # wait for those of the replies that came while the database was down
                # seen: also the lines of the rest of each group, held back and never begun
                journals = _wait_for_journal(state, replied | (flying if seen else set()))
                if killed:
                    sender.signal(signal.SIGKILL)
                    assert sender.finish() == -signal.SIGKILL
                else:
                    assert sender.finish() == 1, sender.output
            finally:
                durable.launch()
        finally:
            if not sender.exited():
                sender.signal(signal.SIGKILL)
                sender.finish()
        if not killed:
            errors = [line for line in sender.output.splitlines() if "error" in line]
            assert len(errors) == 1, sender.output
            assert errors[0].startswith("digest: error: ") and "out of reach" in errors[0]
            for bad in ("Traceback", "psycopg.", "OperationalError", "sqlalchemy"):
                assert bad not in sender.output, sender.output
        kept = _entries(journals[0])
        # replies read, and the rows a step that found the database away was about to mark
        # in flight, hold back or give back, never begun: its journal says so
        assert {line["status"] for line in kept} <= {"sent", "queued"}, kept
        # the journal also holds lines the sender had committed and not yet cut back: the
        # replay adds, and counts, only those whose row still waits for its outcome
        rows = ledger_ids(config)
        replies = [
            line
            for line in kept
            if line["status"] == "sent" and rows[int(str(line["delivery"]))] == "in_flight"
        ]
        # given back: rows marked in flight and never begun, and rows only claimed
        unbegun = [
            line
            for line in kept
            if line["status"] == "queued"
            and rows[int(str(line["delivery"]))] in ("in_flight", "claimed")
        ]
        assert replied <= {int(str(line["delivery"])) for line in replies}
        result = CliRunner().invoke(main, ["--config", str(path), "send", "--yes"])
        assert result.exit_code == 0, result.output
        assert f"recorded {len(replies)} outcome(s) that " in result.output, result.output
        if unbegun:
            said = f"gave back to the queue {len(unbegun)} message(s) that "
            assert said in result.output, result.output
        if end != "SIGKILL":  # the plan shown first read the journal too: nothing is lost
            assert "recorded as unknown" not in result.output, result.output
            assert "replies are in its journal on this machine" in result.output, result.output
        assert "Traceback" not in result.output
    statuses = ledger(config)
    by_id = ledger_ids(config)
    assert max(server.received.values()) == 1  # nobody twice
    for line in kept:  # every reply the sender read and journalled is recorded
        assert by_id[int(str(line["delivery"]))] == "sent", line
    for email, status in statuses.items():  # nothing `sent` the server did not store,
        assert status in ("sent", "unknown"), (email, status)  # nobody missed unrecorded
        if status == "sent" or server.received[email] == 0:
            assert status == "unknown" or server.received[email] == 1, (email, status)
    unknown = [email for email, status in statuses.items() if status == "unknown"]
    assert len(unknown) <= (0 if end != "SIGKILL" else 2 * 5), Counter(statuses.values())
    assert not list(state.glob("*.journal"))  # committed, then deleted


def ledger_ids(config: Config) -> dict[int, str]:
    """Each delivery's status by its id (what a journal line names)."""
    from sqlalchemy import select

    from digest.store.tables import Delivery

    database = open_database(config.database_url)
    try:
        with database.session() as session:
            return dict(session.execute(select(Delivery.id, Delivery.status)).all())
    finally:
        database.dispose()


def delivery_ids(config: Config) -> dict[str, int]:
    """Each subscriber's delivery id (what a journal line names), by address."""
    from sqlalchemy import select

    from digest.store.tables import Delivery, Subscriber

    database = open_database(config.database_url)
    try:
        with database.session() as session:
            rows = session.execute(select(Subscriber.email, Delivery.id).join(Delivery))
            return {email: delivery for email, delivery in rows}
    finally:
        database.dispose()


def _wait_for_journal(folder: Path, deliveries: set[int]) -> list[Path]:
    """Until the journals hold a line for each of `deliveries`."""
    deadline = time.monotonic() + 120  # a hang guard, not a timing
    while True:
        found = sorted(folder.glob("*.journal")) if folder.is_dir() else []
        held = {int(str(line["delivery"])) for path in found for line in _entries(path)}
        if found and deliveries <= held:
            return found
        assert time.monotonic() < deadline, "nothing was journalled"
        time.sleep(0.05)


def _entries(path: Path) -> list[dict[str, object]]:
    lines = [json.loads(line) for line in path.read_text("utf-8").splitlines() if line]
    return lines[1:]


def test_the_storm(tmp_path: Path, durable: PostgresServer) -> None:
    """5,000 subscribers and 15 faults of every kind at once (kills, restarts fast and
    immediate, an outage, drops before and after the final dot, 421 and 451 bursts, stalled
    replies): nobody twice, whoever got nothing is `unknown`, no traceback, no driver text."""
    faults = plan(random.Random(15), 15, KINDS)
    figures = storm(tmp_path, durable, 5000, faults, seed=15, down=3)
    assert figures.twice == 0, figures.as_dict()
    assert figures.missed_not_unknown == 0, figures.as_dict()
    assert figures.foreign == [], figures.foreign
    assert set(figures.statuses) <= {"sent", "unknown"}, figures.statuses


def test_an_unreachable_database_is_waited_for_then_one_sentence(tmp_path: Path) -> None:
    path = write_config(tmp_path, "postgresql+psycopg://nobody:secret@127.0.0.1:1/none", 2525)
    path.write_text(
        path.read_text("utf-8").replace("database:\n", "database:\n  outage_seconds: 0.5\n"),
        "utf-8",
    )
    result = CliRunner().invoke(main, ["--config", str(path), "status"])
    assert result.exit_code == 1
    lines = result.output.strip().splitlines()
    assert lines[-1].startswith("digest: error: cannot open the database"), result.output
    assert "did not answer for 0.5 s" in lines[-1] and "secret" not in result.output
    for bad in ("psycopg.", "(psycopg", "Connection refused", "Traceback", "OperationalError"):
        assert bad not in result.output, result.output


# -- the scheduler's job store and the bounce reader -------------------------------------------


def _back_in(server: PostgresServer, seconds: float) -> threading.Thread:
    """Start `server` again `seconds` from now, from another thread (the caller waits)."""

    def later() -> None:
        time.sleep(seconds)
        server.launch()

    thread = threading.Thread(target=later)
    thread.start()
    return thread


def test_the_schedulers_job_store_waits_out_a_restart(
    durable: PostgresServer, caplog: pytest.LogCaptureFixture
) -> None:
    """APScheduler's own reads of its job store, with the database down for a moment: they
    wait for it (no "Error getting due jobs" with the driver's text), past the limit they
    give up through `on_gone` (the scheduler then stops with one sentence)."""
    from digest.issues.schedule import PatientJobStore

    database = open_database(durable.new_database(), outage_seconds=60)
    gone: list[DatabaseAway] = []
    store = PatientJobStore(database, gone.append)
    store.start(None, "default")
    try:
        assert store.get_due_jobs(datetime.now(UTC)) == []
        durable.halt("immediate")
        returning = _back_in(durable, 1.5)
        with caplog.at_level(logging.WARNING, "digest"):
            assert store.get_due_jobs(datetime.now(UTC)) == []
        returning.join()
        assert gone == []
        said = [record.getMessage() for record in caplog.records]
        assert said[0].startswith("the database is out of reach"), said
        assert said[-1].startswith("the database is back"), said
        durable.halt("fast")
        try:
            database.outage.limit = 0.5
            with pytest.raises(DatabaseAway):
                store.get_next_run_time()
            assert len(gone) == 1 and "out of reach for 0.5 s" in gone[0].message
        finally:
            durable.launch()
    finally:
        database.dispose()


def test_the_bounce_reader_waits_out_a_restart(tmp_path: Path, durable: PostgresServer) -> None:
    """`process` records each message in its own transaction: one that meets the database
    down waits for it, and the message is recorded (and marked handled) once it is back."""
    from digest.inbound.mailbox import Maildir
    from digest.inbound.process import process

    maildir = tmp_path / "Maildir"
    for sub in ("new", "cur", "tmp"):
        (maildir / sub).mkdir(parents=True)
    (maildir / "new" / "1.host").write_bytes(
        b"From: someone@example.org\r\nTo: bounces@example.com\r\nSubject: hello\r\n"
        b"Message-ID: <1@example.org>\r\n\r\nNot a bounce.\r\n"
    )
    path = write_config(tmp_path, durable.new_database(), 2525)
    config = load_config(path)
    database = open_database(config.database_url)
    try:
        durable.halt("immediate")
        returning = _back_in(durable, 1.5)
        run = process(inbound_settings(config), database, Maildir(maildir))
        returning.join()
        assert len(run.rows) == 1 and database.outage.epoch == 1
    finally:
        database.dispose()
