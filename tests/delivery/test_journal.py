"""The outcome journal (digest.delivery.journal): each reply a sender reads is in the file when
`note` returns (its death cannot lose it), what it learnt while the database was away is on
disk before it goes on, the file is cut back once the database holds everything, and a
journal is replayed once its writer is gone, into its own database only; replaying twice
changes nothing. (The journal met by real senders and a real database restart:
tests/e2e/test_outage.py.)"""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from digest.delivery import journal
from digest.delivery.journal import Journal, replay, to_line
from digest.models import Recipient
from digest.store import deliveries
from digest.store.database import Database, identity, open_database
from digest.store.deliveries import Result
from digest.store.tables import DeliveryStatus
from tests.support.paths import ROOT

# -- the journal ----------------------------------------------------------------------------------


@pytest.fixture
def sqlite_database(tmp_path: Path) -> Iterator[Database]:
    database = open_database(f"sqlite:///{tmp_path / 'digest.sqlite3'}")
    yield database
    database.dispose()


def _issue_with(database: Database, count: int) -> tuple[int, list[Recipient]]:
    """An issue of `count` deliveries, claimed and in flight for worker `old:1`."""
    from digest.store.tables import Delivery
    from tests.web.test_public_web import add_issue, add_person

    issue = add_issue(database, "2026-W01", datetime(2026, 1, 1, tzinfo=UTC))
    people = [add_person(database, f"r{n}@example.com") for n in range(count)]
    with database.session() as session:
        session.add_all(Delivery(issue_id=issue, subscriber_id=p) for p in people)
    with database.transaction() as connection:
        deliveries.register(connection, "old:1", datetime.now(UTC))
        taken = deliveries.claim(connection, issue, "old:1", count)
        deliveries.start(connection, taken, "old:1")
    return issue, taken


def _statuses(database: Database) -> dict[int, str]:
    from sqlalchemy import select

    from digest.store.tables import Delivery

    with database.session() as session:
        return dict(session.execute(select(Delivery.id, Delivery.status)).all())


def test_a_journal_replaces_an_unknown_and_replaying_twice_changes_nothing(
    tmp_path: Path, sqlite_database: Database
) -> None:
    issue_id, taken = _issue_with(sqlite_database, 3)
    # a successor found the dead worker's rows in flight and recorded them unknown
    with sqlite_database.session() as session:
        deliveries.recover(session, issue_id, ["old:1"])
    writer = Journal(tmp_path, identity(sqlite_database), "old:1")
    results = [
        Result(taken[0], DeliveryStatus.SENT, 1, "<a@x>"),
        Result(taken[1], DeliveryStatus.BOUNCED, 1, error="550 5.1.1 no such user"),
    ]
    writer.keep(issue_id, results)
    assert writer.path is not None and writer.path.exists()
    # its writer holds the lock: a replay leaves it alone
    assert replay(tmp_path, sqlite_database).recorded == {}
    os.close(writer._fd)  # type: ignore[arg-type]  # the writer dies (its lock goes)
    path = writer.path
    copy = path.read_bytes()
    done = replay(tmp_path, sqlite_database)
    assert done.recorded == {"old:1": 2} and not path.exists()
    first = _statuses(sqlite_database)
    assert first == {
        taken[0].delivery_id: "sent",
        taken[1].delivery_id: "bounced",
        taken[2].delivery_id: "unknown",  # nothing known of it: it stays unknown
    }
    path.write_bytes(copy + b'{"issue": 1, "delivery": 3, "torn')  # and a torn last line
    assert replay(tmp_path, sqlite_database).recorded == {}  # nothing left to add
    assert _statuses(sqlite_database) == first


def test_a_replay_counts_and_writes_only_what_its_writer_had_not_recorded(
    tmp_path: Path, sqlite_database: Database
) -> None:
    """The writer noted three replies and recorded two of them itself before it died: the
    replay adds the third, says it added one (not three), and leaves the two recorded rows
    exactly as the writer wrote them (their `sent_at` too)."""
    from sqlalchemy import select

    from digest.store.tables import Delivery

    issue_id, taken = _issue_with(sqlite_database, 3)
    heard = [Result(r, DeliveryStatus.SENT, 1, f"<{n}@x>") for n, r in enumerate(taken)]
    writer = Journal(tmp_path, identity(sqlite_database), "old:1")
    writer.note(issue_id, heard)
    with sqlite_database.transaction() as connection:
        deliveries.record(connection, issue_id, "old:1", heard[:2])

    def sent_at() -> dict[int, object]:
        with sqlite_database.session() as session:
            return dict(session.execute(select(Delivery.id, Delivery.sent_at)).all())

    before = sent_at()
    os.close(writer._fd)  # type: ignore[arg-type]  # the writer dies
    assert replay(tmp_path, sqlite_database).recorded == {"old:1": 1}
    assert set(_statuses(sqlite_database).values()) == {"sent"}
    after = sent_at()
    assert {k: after[k] for k in list(after)[:2]} == {k: before[k] for k in list(before)[:2]}
    assert after[taken[2].delivery_id] is not None


def test_rows_a_sender_never_began_go_back_to_the_queue_not_to_unknown(
    tmp_path: Path, sqlite_database: Database, caplog: pytest.LogCaptureFixture
) -> None:
    """A lane's last step (`finish`) finds the database away: with the reply it read, its
    journal says which rows it had marked in flight and never began, so that a replay after
    its death gives them back to the queue (a successor would otherwise make them `unknown`)
    and counts them apart from the outcomes it recorded."""
    from digest.delivery.queue import Away, LedgerQueue

    issue_id, taken = _issue_with(sqlite_database, 4)
    writer = Journal(tmp_path, identity(sqlite_database), "old:1")
    queue = LedgerQueue(sqlite_database, issue_id, "old:1", 60, journal=writer)
    sqlite_database.outage.failed()  # the database is known away: the step makes no attempt
    reply = Result(taken[0], DeliveryStatus.SENT, 1, "<0@x>")
    with pytest.raises(Away):
        queue.finish([reply], taken[1:], patient=False)
    assert writer.holds == 4
    os.close(writer._fd)  # type: ignore[arg-type]  # the writer dies with the database away
    sqlite_database.outage.succeeded()
    found = journal.survey(tmp_path, sqlite_database)
    assert [(f.outcomes, f.unbegun, f.state) for f in found] == [(1, 3, "waiting")]
    with caplog.at_level(logging.WARNING, logger="digest.delivery.journal"):
        done = replay(tmp_path, sqlite_database)
    assert done.recorded == {"old:1": 1} and done.given_back == {"old:1": 3}
    assert _statuses(sqlite_database) == {
        taken[0].delivery_id: "sent",
        **{r.delivery_id: "queued" for r in taken[1:]},
    }
    assert "gave back to the queue 3 message(s) that old:1" in caplog.text
    # a successor finds nothing of the dead worker's in flight: nothing becomes unknown
    with sqlite_database.session() as session:
        assert deliveries.recover(session, issue_id, ["old:1"]) == (0, 0)


def test_a_row_given_back_then_begun_again_is_not_given_back_by_a_stale_line(
    tmp_path: Path, sqlite_database: Database
) -> None:
    """A lane's last step wrote "never begun" for a row while the database was away; the
    database returned and took the step (the row went back to the queue), but the line stayed
    in the file (other lines were still waiting). The same process claimed the row again,
    began it, and was killed before its reply. Its message may have arrived: the replay must
    not give the row back (it would be sent twice); a successor records it unknown."""
    issue_id, taken = _issue_with(sqlite_database, 2)
    first, other = taken
    writer = Journal(tmp_path, identity(sqlite_database), "old:1")
    writer.keep(issue_id, [Result(first, DeliveryStatus.QUEUED, 0)])
    writer.keep(issue_id, [Result(other, DeliveryStatus.SENT, 1, "<o@x>")])  # still waiting
    with sqlite_database.transaction() as connection:  # the database back: the step is taken
        deliveries.release(connection, [first], "old:1")
    writer.committed(issue_id, [Result(first, DeliveryStatus.QUEUED, 0)])
    with sqlite_database.transaction() as connection:  # claimed again and begun
        [again] = deliveries.claim(connection, issue_id, "old:1", 1)
        assert again.delivery_id == first.delivery_id
        assert deliveries.start(connection, [again], "old:1") == {first.delivery_id}
    os.close(writer._fd)  # type: ignore[arg-type]  # killed before the reply
    [found] = journal.survey(tmp_path, sqlite_database)
    assert (found.outcomes, found.unbegun) == (1, 0)
    # the plan shown before "Send now?" reads the journal as the replay will: not given back
    from digest.issues.plan import _replayed

    known = journal.waiting(tmp_path, sqlite_database)
    with sqlite_database.session() as session:
        assert _replayed(session, known, ["old:1"]) == {("old:1", other.delivery_id): "sent"}
    done = replay(tmp_path, sqlite_database)
    assert done.recorded == {"old:1": 1} and done.given_back == {}
    assert _statuses(sqlite_database)[first.delivery_id] == "in_flight"
    with sqlite_database.session() as session:
        assert deliveries.recover(session, issue_id, ["old:1"]) == (0, 1)
    assert _statuses(sqlite_database)[first.delivery_id] == "unknown"


def test_a_stale_deferral_does_not_defer_a_retry_that_may_be_on_the_wire(
    tmp_path: Path, sqlite_database: Database
) -> None:
    """A deferral the database took stays in the file while another line waits; the same
    process (a scheduler) later retries that delivery, begins it and is killed before its
    reply. The replay must not defer it again (its message may have arrived): it stays in
    flight, and a successor records it unknown."""
    from datetime import timedelta

    issue_id, taken = _issue_with(sqlite_database, 2)
    first, other = taken
    writer = Journal(tmp_path, identity(sqlite_database), "old:1")
    soon = datetime.now(UTC) - timedelta(seconds=1)  # due at once
    deferral = Result(first, DeliveryStatus.DEFERRED, 1, error="451 later", next_attempt_at=soon)
    writer.note(issue_id, [deferral, Result(other, DeliveryStatus.SENT, 1, "<o@x>")])
    with sqlite_database.transaction() as connection:  # the deferral is taken, not the other
        deliveries.record(connection, issue_id, "old:1", [deferral])
    writer.committed(issue_id, [deferral])
    with sqlite_database.transaction() as connection:  # the retry: claimed again and begun
        [again] = deliveries.claim(connection, issue_id, "old:1", 1, due=datetime.now(UTC))
        assert again.delivery_id == first.delivery_id
        deliveries.start(connection, [again], "old:1")
    os.close(writer._fd)  # type: ignore[arg-type]  # killed before the retry's reply
    done = replay(tmp_path, sqlite_database)
    assert done.recorded == {"old:1": 1}  # the other's reply only
    assert _statuses(sqlite_database) == {
        first.delivery_id: "in_flight",
        other.delivery_id: "sent",
    }


def test_status_counts_what_the_replay_will_write(
    tmp_path: Path, sqlite_database: Database
) -> None:
    """A dead writer's journal as `digest status` counts it: what its replay will write, no
    more. Lines its writer had recorded itself are not counted; a reply that never came (a
    timeout while the database was away) is counted apart, as what it is: unknown; so are
    rows never begun. The replay then writes exactly these."""
    issue_id, taken = _issue_with(sqlite_database, 5)
    writer = Journal(tmp_path, identity(sqlite_database), "old:1")
    heard = [Result(r, DeliveryStatus.SENT, 1, f"<{n}@x>") for n, r in enumerate(taken[:3])]
    writer.note(issue_id, heard)
    with sqlite_database.transaction() as connection:  # two of them recorded by the writer
        deliveries.record(connection, issue_id, "old:1", heard[:2])
    timeout = "the server did not answer within 3 s; it may have the message"
    writer.keep(
        issue_id,
        [
            Result(taken[3], DeliveryStatus.UNKNOWN, 1, error=timeout),
            Result(taken[4], DeliveryStatus.QUEUED, 0),
        ],
    )
    os.close(writer._fd)  # type: ignore[arg-type]  # the writer dies
    [found] = journal.survey(tmp_path, sqlite_database)
    assert (found.outcomes, found.unknown, found.unbegun, found.state) == (1, 1, 1, "waiting")
    done = replay(tmp_path, sqlite_database)
    assert done.recorded == {"old:1": 2} and done.given_back == {"old:1": 1}
    assert _statuses(sqlite_database) == {
        **{r.delivery_id: "sent" for r in taken[:3]},
        taken[3].delivery_id: "unknown",
        taken[4].delivery_id: "queued",
    }


def test_a_replay_takes_a_deliverys_last_line(tmp_path: Path, sqlite_database: Database) -> None:
    """A row given back while the database was away, then (the database back) begun and
    answered, has two lines: "queued", then "sent". The replay records what the writer knew
    last, sent; taking the lines in turn would give the row back to the queue (the "queued"
    line frees it from its worker, so the "sent" one no longer applies), and it would be sent
    twice."""
    issue_id, taken = _issue_with(sqlite_database, 2)
    writer = Journal(tmp_path, identity(sqlite_database), "old:1")
    writer.keep(issue_id, [Result(r, DeliveryStatus.QUEUED, 0) for r in taken])
    # the database returned and took the hold; the first row was then begun and answered
    writer.committed(issue_id, [Result(taken[0], DeliveryStatus.QUEUED, 0)])
    writer.note(issue_id, [Result(taken[0], DeliveryStatus.SENT, 1, "<0@x>")])
    os.close(writer._fd)  # type: ignore[arg-type]  # the writer dies
    done = replay(tmp_path, sqlite_database)
    assert done.recorded == {"old:1": 1} and done.given_back == {"old:1": 1}
    assert _statuses(sqlite_database) == {
        taken[0].delivery_id: "sent",
        taken[1].delivery_id: "queued",
    }


def test_a_journal_of_another_database_is_left_alone_with_a_warning(
    tmp_path: Path, sqlite_database: Database, caplog: pytest.LogCaptureFixture
) -> None:
    issue_id, taken = _issue_with(sqlite_database, 1)
    writer = Journal(tmp_path, "another-database", "old:1")
    writer.keep(issue_id, [Result(taken[0], DeliveryStatus.SENT, 1)])
    os.close(writer._fd)  # type: ignore[arg-type]
    with caplog.at_level(logging.WARNING, "digest"):
        done = replay(tmp_path, sqlite_database)
    assert done.recorded == {} and done.foreign == [writer.path]
    assert writer.path is not None and writer.path.exists()
    assert "belongs to another database" in caplog.text
    assert _statuses(sqlite_database) == {taken[0].delivery_id: "in_flight"}


def test_each_journal_line_is_on_disk_before_keep_returns(tmp_path: Path) -> None:
    """What `keep` returned from is in the file as whole lines (flushed and fsynced; a crash
    after it loses none), under the header naming the database and the writer."""
    recipient = Recipient(7, 3, "a@example.com", "", None, None, 2)
    writer = Journal(tmp_path, "db-id", f"host:{os.getpid()}")
    writer.keep(1, [Result(recipient, DeliveryStatus.DEFERRED, 1, error="451 later")])
    assert writer.path is not None
    header, *lines = writer.path.read_text("utf-8").splitlines()
    assert json.loads(header) == {
        "journal": 1,
        "database": "db-id",
        "worker": f"host:{os.getpid()}",
    }
    assert [json.loads(line)["status"] for line in lines] == ["deferred"]
    writer.keep(1, [Result(recipient, DeliveryStatus.DEFERRED, 1, error="451 later")])
    assert len(writer.path.read_text("utf-8").splitlines()) == 2  # kept once
    writer.committed(1, [Result(recipient, DeliveryStatus.DEFERRED, 1)])
    assert len(writer.path.read_text("utf-8").splitlines()) == 1  # committed: the header left
    writer.close()
    assert not list(tmp_path.glob("*.journal"))  # the send ended with nothing waiting: it goes
    assert journal.SUFFIX == ".journal"


# -- replies noted the moment they are read -------------------------------------------------------

_NOTE_THEN_DIE = """
import json, os, signal, sys
from pathlib import Path
from digest.delivery.journal import Journal, from_line
folder, database, lines = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
writer = Journal(Path(folder), database, "old:1")
for line in lines:
    issue_id, result = from_line(line)
    writer.note(issue_id, [result])
os.kill(os.getpid(), signal.SIGKILL)  # no flush, no close, no exit handler after `note`
"""


def test_replies_noted_survive_the_writers_sigkill_and_are_replayed(
    tmp_path: Path, sqlite_database: Database
) -> None:
    """A sender that noted two replies and was killed at once (SIGKILL, nothing after
    `note`): the next replay records both; the third message, in flight with no reply, stays
    in flight for recovery to make `unknown`."""
    issue_id, taken = _issue_with(sqlite_database, 3)
    heard = [
        Result(taken[0], DeliveryStatus.SENT, 1, "<a@x>"),
        Result(taken[1], DeliveryStatus.BOUNCED, 1, error="550 5.1.1 no such user"),
    ]
    lines = json.dumps([to_line(issue_id, result) for result in heard])
    child = subprocess.run(
        [sys.executable, "-c", _NOTE_THEN_DIE, str(tmp_path), identity(sqlite_database), lines],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert child.returncode == -signal.SIGKILL, child.stderr
    done = replay(tmp_path, sqlite_database)
    assert done.recorded == {"old:1": 2}
    assert _statuses(sqlite_database) == {
        taken[0].delivery_id: "sent",
        taken[1].delivery_id: "bounced",
        taken[2].delivery_id: "in_flight",
    }
    assert not list(tmp_path.glob("*.journal"))


def test_a_journal_is_cut_back_once_the_database_holds_everything(tmp_path: Path) -> None:
    """Noted lines are not fsynced (a reply a second); once every one is committed the file
    is back to its header, and a close with nothing waiting removes it. One still waiting
    when the send ends is kept for the next `digest send`."""
    recipients = [Recipient(n, n, f"r{n}@example.com", "", None, None, 0) for n in range(1, 4)]
    writer = Journal(tmp_path, "db-id", "host:1")
    first = [Result(r, DeliveryStatus.SENT, 1) for r in recipients[:2]]
    writer.note(1, first)
    assert writer.path is not None
    path = writer.path
    assert len(path.read_text("utf-8").splitlines()) == 3  # header + 2, as note returned
    writer.committed(1, first[:1])
    assert len(path.read_text("utf-8").splitlines()) == 3 and writer.holds == 1
    writer.committed(1, first[1:])
    assert path.read_text("utf-8").splitlines() == [
        json.dumps({"journal": 1, "database": "db-id", "worker": "host:1"})
    ]
    late = Result(recipients[2], DeliveryStatus.DEFERRED, 1, error="451 later")
    writer.note(1, [late])  # written after the cut, at the end
    assert [json.loads(line)["delivery"] for line in path.read_text("utf-8").splitlines()[1:]] == [
        3
    ]
    writer.close()  # still waiting: kept
    assert path.exists() and writer.holds == 1
    writer.committed(1, [late])
    writer.close()
    assert not path.exists() and not list(tmp_path.glob("*.journal"))


def test_a_long_send_keeps_its_journal_short(tmp_path: Path) -> None:
    """Two connections take turns, so something is always waiting and the file is never
    empty: once it has grown past the lines still waiting, it is written anew with those
    alone (and they are still there, whole)."""
    writer = Journal(tmp_path, "db-id", "host:1")
    waiting: list[Result] = []
    for n in range(1, 3 * journal.COMPACT_AFTER):
        recipient = Recipient(n, n, f"r{n}@example.com", "", None, None, 0)
        result = Result(recipient, DeliveryStatus.SENT, 1)
        writer.note(1, [result])
        waiting.append(result)
        if len(waiting) == 3:
            writer.committed(1, waiting[:2])  # the older two recorded, the newest waits
            waiting = waiting[2:]
    assert writer.path is not None
    lines = writer.path.read_text("utf-8").splitlines()
    assert len(lines) <= journal.COMPACT_AFTER + 10
    kept = {json.loads(line)["delivery"] for line in lines[1:]}
    assert {r.recipient.delivery_id for r in waiting} <= kept
    assert writer.holds == len(waiting)


def test_digest_status_names_each_journal_of_this_machine(tmp_path: Path) -> None:
    """`digest status` says which journals wait for a replay, which a running sender holds
    and which belong to another database; reading them changes nothing."""
    from click.testing import CliRunner

    from digest.cli import main
    from digest.config.load import load_config
    from tests.issues.test_send import write_config

    path = write_config(tmp_path, f"sqlite:///{tmp_path / 'digest.sqlite3'}", 2525)
    folder = load_config(path).path(Path("var/state"))
    database = open_database(f"sqlite:///{tmp_path / 'digest.sqlite3'}")
    try:
        issue_id, taken = _issue_with(database, 3)
        waiting = Journal(folder, identity(database), "old:1")
        waiting.keep(issue_id, [Result(taken[0], DeliveryStatus.SENT, 1)])
        os.close(waiting._fd)  # type: ignore[arg-type]  # its writer died
        live = Journal(folder, identity(database), "running:2")
        live.note(issue_id, [Result(taken[1], DeliveryStatus.SENT, 1)])
        foreign = Journal(folder, "another-database", "elsewhere:3")
        foreign.keep(issue_id, [Result(taken[2], DeliveryStatus.SENT, 1)])
        os.close(foreign._fd)  # type: ignore[arg-type]
        before = {p.name: p.read_bytes() for p in folder.iterdir()}

        result = CliRunner().invoke(main, ["--config", str(path), "status", "--json"])
        assert result.exit_code == 0, result.output
        said = {
            j["worker"]: (j["state"], j["outcomes"]) for j in json.loads(result.output)["journals"]
        }
        assert said == {
            "old:1": ("waiting", 1),
            "running:2": ("live", 1),
            "elsewhere:3": ("foreign", 1),
        }
        text = CliRunner().invoke(main, ["--config", str(path), "status"]).output
        assert "1 outcome(s) that old:1 read and did not record wait in" in text, text
        assert "running:2 keeps its latest replies in" in text, text
        assert "of elsewhere:3 belongs to another database" in text, text
        # status only looked: the live writer still holds its lock, the others are intact
        assert {p.name: p.read_bytes() for p in folder.iterdir()} == before
        assert replay(folder, database).recorded == {"old:1": 1}
        live.close()
    finally:
        database.dispose()


def test_status_does_not_list_a_killed_worker_of_this_host_as_sending(
    sqlite_database: Database,
) -> None:
    """A worker killed with SIGKILL leaves its row (and a current heartbeat) until the next send
    takes its deliveries back: `digest status` must not say it is sending. A worker of this
    host whose process runs, and one of another host (which cannot be checked here), are."""
    import socket
    from datetime import timedelta

    from digest.store.report import live_workers

    host = socket.gethostname()
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    later = datetime.now(UTC) + timedelta(minutes=5)
    with sqlite_database.transaction() as connection:
        for name in (f"{host}:{dead.pid}", f"{host}:{os.getpid()}", "elsewhere:12"):
            deliveries.register(connection, name, later)
    with sqlite_database.session() as session:
        names = [worker.name for worker in live_workers(session)]
    assert sorted(names) == sorted([f"{host}:{os.getpid()}", "elsewhere:12"])
