"""One row per person, for good: ids never reused, addresses compared in any case, erasure
that forgets the person but keeps the figures (issue 12), on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic import command
from click.testing import CliRunner
from sqlalchemy import select

from digest.audience.csvfile import ImportReport, read_csv
from digest.cli import main
from digest.config.load import load_config
from digest.errors import DigestError
from digest.store import subscribers as people
from digest.store.database import Database, alembic_config, connect, include_object, open_database
from digest.store.events import ISSUE_KINDS
from digest.store.tables import Base, Delivery, ErasedAddress, Event, Issue, Subscriber, UTCDateTime
from tests.issues.test_send import write_config
from tests.support.smtp_server import SMTPServer

WHEN = datetime(2026, 11, 23, 1, 0, tzinfo=UTC)


def cli(path: Path, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, ["--config", str(path), *args])
    return result.exit_code, result.output


# -- ids ----------------------------------------------------------------------------------------


def test_an_id_is_never_given_twice(database: Database) -> None:
    """Before: SQLite handed a deleted row's id (the highest) to the next new row."""
    with database.session() as session:
        ids = [people.add(session, f"p{n}@example.com").id for n in range(3)]
    with database.session() as session:
        session.delete(session.get_one(Subscriber, ids[-1]))  # by hand, not even a tombstone
    with database.session() as session:
        newcomer = people.add(session, "new@example.com").id
    assert newcomer > ids[-1]


# -- case ---------------------------------------------------------------------------------------


def test_an_address_in_another_case_is_the_same_person(database: Database) -> None:
    with database.session() as session:
        people.add(session, "Victim@Example.com")
    for spelling in ("victim@example.com", "VICTIM@example.com", "vIctim@EXAMPLE.COM"):
        with database.session() as session, pytest.raises(DigestError, match="already"):
            people.add(session, spelling)
    with database.session() as session:
        found = people.find(session, "VICTIM@EXAMPLE.COM")
        assert found is not None and found.email == "Victim@example.com"  # as given
        people.unsubscribe(session, found, "cli")
    with database.session() as session, pytest.raises(DigestError, match="unsubscribed"):
        people.add(session, "victim@example.com")  # suppression holds in any case


def test_the_csv_import_agrees(database: Database, tmp_path: Path) -> None:
    with database.session() as session:
        people.add(session, "Known@example.com")
    csv_file = tmp_path / "people.csv"
    csv_file.write_text(
        "email,name,status\n"
        "new@example.com,New,active\n"
        "NEW@example.com,Again,active\n"  # line 3 repeats line 2
        "KNOWN@EXAMPLE.COM,Known,unsubscribed\n",  # the existing person, suppressed
        "utf-8",
    )
    rows, problems = read_csv(csv_file)
    assert list(problems) == [f"{csv_file}, line 3: NEW@example.com repeats line 2"]
    report = ImportReport(problems=problems)
    with database.session() as session:
        people.import_rows(session, rows, report)
    assert (report.added, report.updated) == (1, 1)
    with database.session() as session:
        listed = {s.email: s.status for s in people.listing(session)}
    assert listed == {"Known@example.com": "unsubscribed", "new@example.com": "active"}


# -- erasure ------------------------------------------------------------------------------------


def sent_issue(database: Database, emails: list[str]) -> None:
    """An issue delivered to `emails`, with an unsubscribe event from the first of them."""
    with database.session() as session:
        issue = Issue(key="2026-W48", posts=[], status="finished", created_at=WHEN)
        session.add(issue)
        session.flush()
        for n, email in enumerate(emails):
            person = people.add(session, email, name=f"Reader {n}")
            status = "sent" if n else "bounced"
            session.add(
                Delivery(
                    issue_id=issue.id,
                    subscriber_id=person.id,
                    status=status,
                    error=f"550 5.1.1 <{email}>: no such user" if status == "bounced" else None,
                )
            )
        session.flush()
        first = people.find(session, emails[0])
        assert first is not None
        people.record(
            session, first, "unsubscribe", "one-click", issue_id=issue.id, ip="203.0.113.9"
        )


def test_erasure_forgets_the_person_and_keeps_the_report(tmp_path: Path, database_url: str) -> None:
    """Before: erasing deleted the row and, through it, its deliveries: past reports
    changed."""
    with SMTPServer() as server:
        path = write_config(tmp_path, database_url, server.port)
    config = load_config(path)
    database = open_database(config.database_url)
    sent_issue(database, ["Gone@example.com", "stays@example.com"])
    code, before = cli(path, "report", "--json")
    assert code == 0, before
    code, output = cli(path, "subscribers", "remove", "--erase", "gone@EXAMPLE.com")
    assert code == 0 and "Erased gone@example.com" in output, output
    code, after = cli(path, "report", "--json")
    assert json.loads(after) == json.loads(before)  # the figures of the past stand
    with database.session() as session:
        tomb = session.scalars(select(Subscriber).where(Subscriber.status == "erased")).one()
        assert (tomb.email, tomb.email_key, tomb.name, tomb.token_key) == (
            f"erased.{tomb.id}@invalid",
            None,
            "",
            None,
        )
        everything = json.dumps(
            [
                [str(getattr(row, c.name)) for c in type(row).__table__.columns]
                for model in (Subscriber, Event, Delivery)
                for row in session.scalars(select(model))
            ]
        )
        assert "gone@" not in everything.lower() and "203.0.113.9" not in everything
        assert session.get(ErasedAddress, people.address_hash("GONE@example.com")) is not None
    code, listed = cli(path, "subscribers", "list", "--json")
    assert [row["email"] for row in json.loads(listed)] == ["stays@example.com"]
    database.dispose()


def test_an_erased_address_is_not_brought_back(tmp_path: Path, database_url: str) -> None:
    with SMTPServer() as server:
        path = write_config(tmp_path, database_url, server.port)
    assert cli(path, "subscribers", "add", "gone@example.com")[0] == 0
    assert cli(path, "subscribers", "remove", "--erase", "gone@example.com")[0] == 0
    csv_file = tmp_path / "back.csv"
    csv_file.write_text("email,name\nother@example.com,O\nGone@Example.com,G\n", "utf-8")
    code, output = cli(path, "subscribers", "import", str(csv_file))
    assert code == 1, output
    assert (
        f"digest: warning: {csv_file}, line 3: Gone@example.com was erased at their request; "
        "skipped" in output
    )
    assert "1 added" in output and "1 rows skipped" in output
    code, output = cli(path, "subscribers", "add", "GONE@example.com")
    assert code == 1 and "was erased at their request" in output, output
    code, listed = cli(path, "subscribers", "list", "--json")
    assert [row["email"] for row in json.loads(listed)] == ["other@example.com"]


# -- migration 0005 -----------------------------------------------------------------------------


def at_0004(url: str) -> None:
    database = connect(url)
    config = alembic_config(url)
    with database.engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "0004")
    database.dispose()


def fill_0004(url: str) -> None:
    """Rows as revision 0004 held them; ids from the database itself (1, 2, ... in order),
    so that PostgreSQL's sequences know them."""
    engine = sa.create_engine(url)

    def table(name: str, *columns: str) -> sa.TableClause:
        typed = [
            sa.column(c, UTCDateTime())
            if c.endswith("_at")
            else sa.column(c, sa.JSON())
            if c == "posts"
            else sa.column(c)
            for c in columns
        ]
        return sa.table(name, *typed)

    with engine.begin() as connection:
        subscribers = table(
            "subscribers", "email", "status", "paused", "name", "created_at", "updated_at"
        )
        people_rows = [
            ("Dup@example.com", "active"),
            ("dup@example.com", "unsubscribed"),
            ("DUP@example.com", "pending"),
            ("solo@example.com", "active"),
            ("Pair@example.com", "pending"),
            ("pair@example.com", "active"),
        ]
        for email, status in people_rows:  # one by one: the ids follow the order
            connection.execute(
                subscribers.insert().values(
                    email=email,
                    status=status,
                    paused=False,
                    name="",
                    created_at=WHEN,
                    updated_at=WHEN,
                )
            )
        issues = table("issues", "key", "status", "frequency", "posts", "created_at")
        for key in ("2026-W41", "2026-W42"):
            connection.execute(
                issues.insert().values(
                    key=key, status="finished", frequency="weekly", posts=[], created_at=WHEN
                )
            )
        deliveries = table(
            "deliveries", "issue_id", "subscriber_id", "status", "attempts", "updated_at"
        )
        for issue, who in [(1, 1), (1, 2), (2, 3), (1, 4), (2, 4), (1, 6)]:
            connection.execute(
                deliveries.insert().values(
                    issue_id=issue, subscriber_id=who, status="sent", attempts=1, updated_at=WHEN
                )
            )
        events = table("events", "subscriber_id", "kind", "method", "created_at")
        for who in range(1, 7):
            connection.execute(
                events.insert().values(
                    subscriber_id=who, kind="subscribe", method="cli", created_at=WHEN
                )
            )
    engine.dispose()


def test_migration_0005_merges_case_duplicates_and_keeps_every_delivery(
    empty_database_url: str,
) -> None:
    at_0004(empty_database_url)
    fill_0004(empty_database_url)
    database = open_database(empty_database_url)  # upgrades to head
    with database.session() as session:
        rows = session.execute(
            select(
                Subscriber.id,
                Subscriber.email,
                Subscriber.status,
                Subscriber.email_key,
                Subscriber.token_key,
            ).order_by(Subscriber.id)
        ).all()
        # the most restrictive status wins; then the oldest row
        assert rows == [
            (2, "dup@example.com", "unsubscribed", "dup@example.com", None),
            (4, "solo@example.com", "active", "solo@example.com", None),
            (6, "pair@example.com", "active", "pair@example.com", None),
        ]
        ledger = session.execute(
            select(Delivery.id, Delivery.issue_id, Delivery.subscriber_id).order_by(Delivery.id)
        ).all()
        # issue 1 had both 1 and 2: the survivor's delivery is kept; issue 2's of 3 moves to 2
        assert ledger == [(2, 1, 2), (3, 2, 2), (4, 1, 4), (5, 2, 4), (6, 1, 6)]
        people_events = select(Event.subscriber_id).where(Event.kind.not_in(ISSUE_KINDS))
        owners = list(session.scalars(people_events.order_by(Event.id)))
        assert owners == [2, 2, 2, 4, 6, 6]
        new = people.add(session, "later@example.com")
        assert new.id == 7 and new.token_key is not None  # no id of a merged row again
    with database.engine.connect() as connection:
        from alembic.autogenerate import compare_metadata
        from alembic.runtime.migration import MigrationContext

        context = MigrationContext.configure(
            connection, opts={"include_object": include_object, "compare_type": False}
        )
        assert compare_metadata(context, Base.metadata) == []
        if connection.dialect.name == "sqlite":
            sql = connection.exec_driver_sql(
                "SELECT sql FROM sqlite_master WHERE name = 'subscribers'"
            ).scalar_one()
            assert "AUTOINCREMENT" in sql
            assert connection.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1  # back on
    database.dispose()


def test_migration_0005_refuses_to_run_with_sqlite_foreign_keys_on(tmp_path: Path) -> None:
    """Dropping the old table with them on would delete every delivery (ON DELETE CASCADE):
    the migration stops instead, and nothing is lost."""
    url = f"sqlite:///{tmp_path / 'db.sqlite3'}"
    at_0004(url)
    fill_0004(url)
    database = connect(url)  # foreign keys on, as every digest connection has them
    config = alembic_config(url)
    with (
        pytest.raises(RuntimeError, match="turns SQLite's foreign keys off"),
        database.engine.begin() as connection,
    ):
        config.attributes["connection"] = connection
        command.upgrade(config, "head")
    with database.engine.connect() as connection:
        assert connection.exec_driver_sql("SELECT count(*) FROM deliveries").scalar() == 6
    database.dispose()
