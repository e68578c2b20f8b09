"""A database made by digest 0.1.0 upgrades in place, on SQLite and PostgreSQL.

The 0.1.0 schema is built with the release's own migrations (a copy under
tests/fixtures/v0_1_0/, checked against the release's git blob ids in RELEASE), filled as
0.1.0 left it — an issue half sent, one message caught `sending` by a crash — then upgraded
by `digest db upgrade` and compared row by row.
The upgraded issue then resumes under the new version.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
import types
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from alembic import command
from click.testing import CliRunner

import digest
from digest.cli import main
from digest.config.load import load_config
from digest.store.database import alembic_config, connect, head_revision, include_object
from digest.store.tables import Base, UTCDateTime
from tests.issues.test_send import write_config
from tests.support import paths
from tests.support.smtp_server import SMTPServer

ROOT = paths.ROOT
FIXTURE = paths.TESTS / "fixtures" / "v0_1_0" / "migrations"
WHEN = datetime(2026, 11, 23, 1, 0, tzinfo=UTC)


def _release() -> tuple[str, dict[str, str]]:
    """The manifest beside the fixture: the v0.1.0 commit and each file's git blob id."""
    commit, blobs = "", {}
    for line in (FIXTURE.parent / "RELEASE").read_text().splitlines():
        if line.startswith("commit "):
            commit = line.split()[1]
        elif line and not line.startswith("#"):
            blob, name = line.split(maxsplit=1)
            blobs[name] = blob
    return commit, blobs


def _blob_id(data: bytes) -> str:
    """What `git hash-object` prints for these bytes, without needing git or the tag."""
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()  # git's blob id


def test_the_fixture_is_the_released_migrations_byte_for_byte() -> None:
    """Every fixture file has the blob id 0.1.0 released, and no file is missing or extra.

    The ids are checked by hashing, so this holds on a clone without tags or history (as CI
    makes); where the release commit is in this clone's history, its tree must be the manifest.
    """
    assert _blob_id(b"") == "e69de29bb2d1d6434b8b29ae775ad8c2e48c5391"  # git's empty blob
    commit, blobs = _release()
    assert len(commit) == 40 and blobs
    files = {p.relative_to(FIXTURE).as_posix(): p for p in FIXTURE.rglob("*") if p.is_file()}
    assert sorted(files) == sorted(blobs)
    for name, path in files.items():
        assert _blob_id(path.read_bytes()) == blobs[name], name
    git = shutil.which("git")
    have = git and subprocess.run(
        [git, "cat-file", "-e", f"{commit}^{{commit}}"], cwd=ROOT, capture_output=True
    )
    if git and have and have.returncode == 0:
        listed = subprocess.run(
            [git, "ls-tree", "-r", commit, "digest/migrations/"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.splitlines()
        tree = {}
        for line in listed:
            meta, name = line.split("\t", 1)
            tree[name.removeprefix("digest/migrations/")] = meta.split()[2]
        assert tree == blobs


def build_0_1_0(url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """The 0.1.0 schema, by 0.1.0's migrations (they import `digest.db`, since moved)."""
    shim = types.ModuleType("digest.db")
    shim.UTCDateTime = UTCDateTime  # type: ignore[attr-defined]
    shim.include_object = include_object  # type: ignore[attr-defined]
    shim.Base = types.SimpleNamespace(metadata=sa.MetaData())  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "digest.db", shim)
    monkeypatch.setattr(digest, "db", shim, raising=False)
    database = connect(url)
    config = alembic_config(url)
    config.set_main_option("script_location", str(FIXTURE))
    with database.engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "head")
    database.dispose()


def _table(name: str, *columns: str, when: tuple[str, ...] = ()) -> sa.TableClause:
    """A 0.1.0 table as its writes saw it: timestamps through the same column type."""
    typed = [sa.column(c, sa.JSON()) if c == "posts" else sa.column(c) for c in columns]
    return sa.table(name, *typed, *(sa.column(c, UTCDateTime()) for c in when))


POST = {
    "id": "a.md",
    "title": "A post",
    "url": "https://blog.example.com/posts/a/",
    "date": "2026-11-20T09:00:00+08:00",
    "body": "正文。",
}


def fill_as_0_1_0(url: str) -> dict[str, list[Any]]:
    """Rows as 0.1.0 wrote them: people, their events, a half-sent issue, a lease."""
    engine = sa.create_engine(url)
    subscribers = _table(
        "subscribers",
        "id",
        "email",
        "name",
        "status",
        "locale",
        "paused",
        when=("created_at", "updated_at"),
    )
    issues = _table("issues", "id", "key", "frequency", "status", "posts", when=("created_at",))
    deliveries = _table(
        "deliveries", "id", "issue_id", "subscriber_id", "status", "attempts", when=("updated_at",)
    )
    with engine.begin() as connection:
        connection.execute(
            subscribers.insert(),
            [
                {
                    "id": n,
                    "email": f"reader{n}@example.com",
                    "name": f"读者{n}",
                    "status": "active" if n != 6 else "unsubscribed",
                    "locale": "zh",
                    "paused": False,
                    "created_at": WHEN,
                    "updated_at": WHEN,
                }
                for n in range(1, 7)
            ],
        )
        events = _table("events", "id", "subscriber_id", "kind", "method", when=("created_at",))
        connection.execute(
            events.insert(),
            [
                {
                    "id": 1,
                    "subscriber_id": 6,
                    "kind": "unsubscribe",
                    "method": "cli",
                    "created_at": WHEN,
                }
            ],
        )
        connection.execute(
            issues.insert(),
            [
                {
                    "id": 1,
                    "key": "2026-W48",
                    "frequency": "weekly",
                    "status": "sending",
                    "posts": [POST],
                    "created_at": WHEN,
                }
            ],
        )
        connection.execute(
            _table("issue_posts", "id", "issue_id", "post_id").insert(),
            [{"id": 1, "issue_id": 1, "post_id": "a.md"}],
        )
        states = {1: "sent", 2: "sent", 3: "sending", 4: "queued", 5: "queued"}
        connection.execute(
            deliveries.insert(),
            [
                {
                    "id": n,
                    "issue_id": 1,
                    "subscriber_id": n,
                    "status": status,
                    "attempts": 1 if status == "sent" else 0,
                    "updated_at": WHEN,
                }
                for n, status in states.items()
            ],
        )
        connection.execute(
            _table("leases", "name", "holder", when=("expires_at",)).insert(),
            [{"name": "send", "holder": "old-host:1:abcd", "expires_at": WHEN}],
        )
        snapshot = _snapshot(connection)
    engine.dispose()
    return snapshot


def _snapshot(connection: sa.Connection, events: str = "events") -> dict[str, list[Any]]:
    """The rows 0.1.0 wrote; its `events` are in `event_log` from revision 0008 on (with the
    issue events that revision adds)."""
    queries = {
        "subscribers": "SELECT id, email, name, status, locale FROM subscribers ORDER BY id",
        "events": f"SELECT id, subscriber_id, kind, method FROM {events} "
        "WHERE kind NOT LIKE 'issue-%' ORDER BY id",
        "issues": "SELECT id, key, frequency, status FROM issues ORDER BY id",
        "issue_posts": "SELECT issue_id, post_id FROM issue_posts ORDER BY id",
        "deliveries": "SELECT id, subscriber_id, status, attempts FROM deliveries ORDER BY id",
    }
    return {
        name: [tuple(row) for row in connection.execute(sa.text(sql))]
        for name, sql in queries.items()
    }


def test_a_0_1_0_database_upgrades_in_place(
    tmp_path: Path, empty_database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    build_0_1_0(empty_database_url, monkeypatch)
    before = fill_as_0_1_0(empty_database_url)
    monkeypatch.undo()
    with SMTPServer() as server:
        path = write_config(tmp_path, empty_database_url, server.port)
        result = CliRunner().invoke(main, ["--config", str(path), "db", "upgrade"])
        assert result.exit_code == 0, result.output
        assert f"from revision 0003 to {head_revision()}" in result.output
        engine = sa.create_engine(load_config(path).database_url)
        with engine.connect() as connection:
            after = _snapshot(connection, "event_log")
            issue_events = connection.execute(
                sa.text("SELECT kind, issue_id FROM event_log WHERE kind LIKE 'issue-%'")
            ).all()
            rows = connection.execute(sa.text("SELECT id, error FROM deliveries")).all()
            errors: dict[int, str | None] = {row[0]: row[1] for row in rows}
            lease = connection.execute(sa.text("SELECT holder FROM leases")).scalar_one()
        expected = dict(before)
        expected["deliveries"] = [
            (i, s, "unknown" if status == "sending" else status, a)
            for i, s, status, a in before["deliveries"]
        ]
        assert after == expected  # nothing lost; the one caught `sending` may have arrived
        assert "0.1.0" in (errors[3] or "") and lease == "old-host:1:abcd"
        assert issue_events == [("issue-created", 1)]  # not finished: no issue-finished
        with engine.connect() as connection:
            from alembic.autogenerate import compare_metadata
            from alembic.runtime.migration import MigrationContext

            context = MigrationContext.configure(
                connection, opts={"include_object": include_object, "compare_type": False}
            )
            assert compare_metadata(context, Base.metadata) == []  # the models agree
        engine.dispose()
        resumed = CliRunner().invoke(main, ["--config", str(path), "send", "--yes"])
        assert resumed.exit_code == 0, resumed.output
        assert "Resuming issue 2026-W48" in resumed.output, resumed.output
    # the two still queued, and only them: not the sent ones, not the unknown one
    assert sorted(server.mailbox.recipients()) == ["reader4@example.com", "reader5@example.com"], (
        resumed.output
    )


def test_a_database_already_current_is_left_alone(tmp_path: Path, database_url: str) -> None:
    path = write_config(tmp_path, database_url, 25)
    first = CliRunner().invoke(main, ["--config", str(path), "db", "upgrade"])
    again = CliRunner().invoke(main, ["--config", str(path), "db", "upgrade"])
    assert first.exit_code == again.exit_code == 0
    assert f"up to date (revision {head_revision()})" in again.output
