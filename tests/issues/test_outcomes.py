"""Outcomes that tell the truth: a refused issue is not "finished", a greylisted message is
deferred and retried, not failed; and every command shows what the next issue really holds."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from sqlalchemy import select, update

from digest.cli import main
from digest.config.load import load_config
from digest.config.schema import Config
from digest.config.stages import issue_settings
from digest.issues.send import gather, next_issue, plan_send
from digest.store.database import open_database
from digest.store.tables import Delivery, Issue, Subscriber
from tests.issues.test_send import add_subscribers, write_config
from tests.support import paths
from tests.support.smtp_server import CountingServer

ROOT = paths.ROOT


def cli(path: Path, *args: str) -> Any:
    return CliRunner().invoke(main, ["--config", str(path), *args])


def statuses(config: Config) -> dict[str, int]:
    database = open_database(config.database_url)
    with database.session() as session:
        rows = session.scalars(select(Delivery.status)).all()
    database.dispose()
    counts: dict[str, int] = {}
    for status in rows:
        counts[status] = counts.get(status, 0) + 1
    return counts


def issue_status(config: Config) -> tuple[str, str | None]:
    database = open_database(config.database_url)
    with database.session() as session:
        issue = session.scalars(select(Issue)).one()
        result = issue.status, issue.paused_reason
    database.dispose()
    return result


def posts_json(path: Path) -> list[dict[str, Any]]:
    result = cli(path, "posts", "--json")
    assert result.exit_code == 0, result.output
    rows: list[dict[str, Any]] = json.loads(result.stdout)
    return rows


def blog(tmp_path: Path, *names: str) -> Path:
    folder = tmp_path / "blog"
    folder.mkdir(exist_ok=True)
    for index, name in enumerate(names):
        date = datetime.now(UTC) - timedelta(days=index + 1)
        (folder / f"{name}.md").write_text(
            f"---\ntitle: {name}\ndate: {date.isoformat()}\n---\n{name} 的正文。\n", "utf-8"
        )
    return folder


def config_for(tmp_path: Path, database_url: str, port: int, folder: Path, **smtp: Any) -> Path:
    path = write_config(tmp_path, database_url, port, **smtp)
    text = path.read_text("utf-8").replace(str(ROOT / "examples" / "blog"), str(folder))
    path.write_text(text, "utf-8")
    return path


@pytest.mark.slow
def test_a_server_refusing_everything_leaves_the_issue_open(
    tmp_path: Path, database_url: str
) -> None:
    with CountingServer() as server:
        server.refuse = "554 5.7.1 rejected by policy"
        path = config_for(
            tmp_path, database_url, server.port, blog(tmp_path, "one", "two"), retries=0
        )
        config = load_config(path)
        add_subscribers(config, 4)  # fewer than max_consecutive_failures: every one fails
        refused = cli(path, "send", "--yes")
        assert refused.exit_code == 1, refused.output
        assert "delivered nothing: 4 failed" in refused.output and "554 5.7.1" in refused.output
        status, reason = issue_status(config)
        assert status == "paused" and reason is not None and "554 5.7.1" in reason
        assert [row["id"] for row in posts_json(path)] == ["one.md", "two.md"]  # still new
        again = cli(path, "send", "--yes")  # still refused: still open, still exit 1
        assert again.exit_code == 1 and "tried again" in again.output
        server.refuse = None
        accepted = cli(path, "send", "--yes")
        assert accepted.exit_code == 0, accepted.output
        assert "Resuming issue" in accepted.output and "Finished issue" in accepted.output
        assert set(server.received.values()) == {1} and len(server.received) == 4
    assert statuses(config) == {"sent": 4}
    assert issue_status(config)[0] == "finished"
    assert posts_json(path) == []


def test_refusals_in_a_row_pause_before_the_list_is_burnt(
    tmp_path: Path, database_url: str
) -> None:
    with CountingServer() as server:
        server.refuse = "554 5.7.1 rejected by policy"
        path = config_for(
            tmp_path,
            database_url,
            server.port,
            blog(tmp_path, "one"),
            retries=0,
            max_consecutive_failures=3,
            connections=1,
        )
        config = load_config(path)
        add_subscribers(config, 20)
        refused = cli(path, "send", "--yes")
        assert refused.exit_code == 1 and "3 failures in a row" in refused.output
        assert statuses(config) == {"failed": 3, "queued": 17}
        server.refuse = None
        assert cli(path, "send", "--yes").exit_code == 0  # the 3 failed are tried again
        assert len(server.received) == 20 and set(server.received.values()) == {1}


def test_greylisting_defers_and_a_later_send_delivers(tmp_path: Path, database_url: str) -> None:
    with CountingServer() as server:
        server.greylist = "451 4.7.1 greylisted, come back later"
        # no retry within the run; the next attempt 10 minutes later, whatever the machine's pace
        path = config_for(
            tmp_path, database_url, server.port, blog(tmp_path, "one"), retries=0, retry_delay=600
        )
        config = load_config(path)
        add_subscribers(config, 5)
        first = cli(path, "send", "--yes")
        assert first.exit_code == 1, first.output  # nothing delivered yet
        assert "nothing delivered yet: 5 deliveries deferred" in first.output
        assert "451 4.7.1" in first.output and "the next retry at" in first.output
        assert statuses(config) == {"deferred": 5}  # not failed
        status = json.loads(cli(path, "status", "--json").stdout)
        assert status["deferred"]["count"] == 5 and status["deferred"]["next_retry"]
        text = cli(path, "status").output
        assert "Deferred deliveries: 5; the next retry at" in text
        assert len(posts_json(path)) == 1  # nothing delivered: the post is still new
        waiting = cli(path, "send", "--yes")  # before the retry time: nothing is attempted
        assert waiting.exit_code == 0 and "retries its deferred deliveries at" in waiting.output
        server.greylist = None
        _time_passes(config, timedelta(minutes=15))
        later = cli(path, "send", "--yes")
        assert later.exit_code == 0, later.output
        assert len(server.received) == 5 and set(server.received.values()) == {1}
    assert statuses(config) == {"sent": 5}
    assert issue_status(config)[0] == "finished"


def test_a_delivery_deferred_beyond_retry_hours_fails(tmp_path: Path, database_url: str) -> None:
    with CountingServer() as server:
        server.greylist = "451 4.2.2 mailbox full"
        path = config_for(
            tmp_path, database_url, server.port, blog(tmp_path, "one"), retries=0, retry_hours=1
        )
        config = load_config(path)
        add_subscribers(config, 2)
        assert cli(path, "send", "--yes").exit_code == 1
        assert statuses(config) == {"deferred": 2}
        _time_passes(config, timedelta(hours=2))  # beyond retry_hours since the first failure
        final = cli(path, "send", "--yes")
        assert statuses(config) == {"failed": 2}
        assert final.exit_code == 1 and "temporary failures for 1 h" in final.output


def _time_passes(config: Config, delta: timedelta) -> None:
    """As if `delta` had passed: the deferred deliveries' times move back by it."""
    database = open_database(config.database_url)
    with database.session() as session:
        for delivery in session.scalars(select(Delivery).where(Delivery.status == "deferred")):
            assert delivery.next_attempt_at is not None and delivery.deferred_since is not None
            delivery.next_attempt_at -= delta
            delivery.deferred_since -= delta
    database.dispose()


def test_no_active_subscriber_creates_no_issue(tmp_path: Path, database_url: str) -> None:
    path = config_for(tmp_path, database_url, 25, blog(tmp_path, "one"))
    config = load_config(path)
    add_subscribers(config, 2)
    database = open_database(config.database_url)
    with database.session() as session:
        session.execute(update(Subscriber).values(status="unsubscribed"))
    database.dispose()
    result = cli(path, "send", "--yes")
    assert result.exit_code == 0
    assert result.output.strip() == "No active subscribers: no issue was created."
    database = open_database(config.database_url)
    with database.session() as session:
        assert session.scalars(select(Issue)).all() == []
    database.dispose()


@pytest.mark.slow
def test_after_a_send_the_next_issue_holds_only_new_posts(
    tmp_path: Path, database_url: str
) -> None:
    folder = blog(tmp_path, "one", "two")
    with CountingServer() as server:
        path = config_for(tmp_path, database_url, server.port, folder)
        add_subscribers(load_config(path), 2)
        assert len(posts_json(path)) == 2
        assert cli(path, "send", "--yes").exit_code == 0
        assert posts_json(path) == []
        assert "Nothing new" in cli(path, "posts").output
        assert "Nothing new" in cli(path, "render", "--out", str(tmp_path / "out")).output
        status = json.loads(cli(path, "status", "--json").stdout)
        assert status["posts_waiting"] == 0
        (folder / "three.md").write_text(
            f"---\ntitle: three\ndate: {datetime.now(UTC).isoformat()}\n---\n新的一篇。\n", "utf-8"
        )
        assert [row["id"] for row in posts_json(path)] == ["three.md"]


def test_planning_writes_nothing(tmp_path: Path, database_url: str) -> None:
    """A stopped issue with a dead sender's claims: planning (what `Send now?` shows) leaves
    every row as it was; only the send itself recovers them."""
    with CountingServer() as server:
        path = config_for(tmp_path, database_url, server.port, blog(tmp_path, "one"))
        config = load_config(path)
        add_subscribers(config, 6)
        database = open_database(config.database_url)
        plan = plan_send(config, database)
        assert plan.edition is not None and not plan.resumed
        with database.session() as session:
            assert session.scalars(select(Issue)).all() == []  # planning created nothing
        assert cli(path, "send", "--yes").exit_code == 0
        with database.session() as session:
            issue = session.scalars(select(Issue)).one()
            issue.status = "stopped"
            session.execute(
                update(Delivery)
                .where(Delivery.id <= 3)
                .values(status="claimed", worker="this-host-is-gone:1")
            )
        before = _rows(config)
        plan = plan_send(config, database)
        assert plan.resumed and plan.recipients == 3
        assert _rows(config) == before
        database.dispose()


def _rows(config: Config) -> list[tuple[Any, ...]]:
    database = open_database(config.database_url)
    with database.session() as session:
        rows = [
            tuple(row)
            for row in session.execute(
                select(Delivery.id, Delivery.status, Delivery.worker).order_by(Delivery.id)
            )
        ]
        rows += [tuple(row) for row in session.execute(select(Issue.id, Issue.status))]
    database.dispose()
    return rows


def test_send_frequency_serves_monthly_subscribers_from_cron(
    tmp_path: Path, database_url: str
) -> None:
    with CountingServer() as server:
        path = config_for(tmp_path, database_url, server.port, blog(tmp_path, "one"))
        config = load_config(path)
        add_subscribers(config, 3)
        database = open_database(config.database_url)
        with database.session() as session:
            monthly = session.scalars(select(Subscriber).order_by(Subscriber.id)).first()
            assert monthly is not None
            monthly.frequency = "monthly"
            email = monthly.email
        database.dispose()
        assert cli(path, "send", "--yes").exit_code == 0
        assert email not in server.received and len(server.received) == 2
        result = cli(path, "send", "--yes", "--frequency", "monthly")
        assert result.exit_code == 0, result.output
        assert server.received[email] == 1 and len(server.received) == 3
        bad = cli(path, "send", "--frequency", "hourly")
        assert bad.exit_code == 2


def test_gather_honours_its_lookback(tmp_path: Path) -> None:
    folder = tmp_path / "blog"
    folder.mkdir()
    old = datetime.now(UTC) - timedelta(days=35)
    (folder / "old.md").write_text(f"---\ntitle: old\ndate: {old.isoformat()}\n---\nx\n", "utf-8")
    path = config_for(tmp_path, "sqlite://", 25, folder)
    text = path.read_text("utf-8").replace("lookback_days: 3650", "lookback_days: 30")
    path.write_text(text, "utf-8")
    settings = issue_settings(load_config(path))
    assert [c.status for c in gather(settings, lookback_days=40).candidates] == ["new"]
    assert [c.status for c in gather(settings).candidates] == ["too-old"]  # digest.lookback_days
    assert [c.status for c in next_issue(settings, None, frequency="weekly").candidates] == [
        "too-old"
    ]
    monthly = next_issue(settings, None, frequency="monthly")  # a month and a week back
    assert [c.status for c in monthly.candidates] == ["new"]


def test_render_out_fills_personal_links_with_samples(tmp_path: Path) -> None:
    path = config_for(tmp_path, f"sqlite:///{tmp_path / 'd.sqlite3'}", 25, blog(tmp_path, "a"))
    result = cli(path, "render", "--out", str(tmp_path / "out"))
    assert result.exit_code == 0, result.output
    html = (tmp_path / "out" / "issue.html").read_text("utf-8")
    text = (tmp_path / "out" / "issue.txt").read_text("utf-8")
    assert "x-digest:" not in html and "x-digest:" not in text
    assert 'href="#preview-unsubscribe"' in html and 'href="#preview-preferences"' in html


def test_the_preview_shows_the_next_issue_not_the_last_one(
    tmp_path: Path, database_url: str
) -> None:
    import warnings

    from digest.web.preview import database_preview

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "Using `httpx` with `starlette.testclient`")
        from starlette.testclient import TestClient

    folder = blog(tmp_path, "one")
    with CountingServer() as server:
        path = config_for(tmp_path, database_url, server.port, folder)
        config = load_config(path)
        add_subscribers(config, 1)
        database = open_database(config.database_url)
        client = TestClient(database_preview(config, database))
        assert client.get("/email.html").status_code == 200  # "one" is next
        assert cli(path, "send", "--yes").exit_code == 0
        assert client.get("/email.html").status_code == 404  # sent: nothing new
        with database.session() as session:
            key = session.scalars(select(Issue.key)).one()
        assert key in client.get("/issues").text  # the sent one is in the archive
        database.dispose()


def test_status_forgets_a_sender_that_died(tmp_path: Path, database_url: str) -> None:
    import os
    import socket
    import subprocess
    import sys

    from digest.store import lease

    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        check=True,
        capture_output=True,
        text=True,
    )
    name = f"{socket.gethostname()}:{int(dead.stdout)}"  # a process of this host, gone
    path = config_for(tmp_path, database_url, 25, blog(tmp_path, "one"))
    database = open_database(load_config(path).database_url)
    assert lease.acquire(database, lease.SEND_LEASE, name, timedelta(minutes=10)) is None
    database.dispose()
    status = json.loads(cli(path, "status", "--json").stdout)
    assert status["lease"] is None  # not "sending" for ten minutes after a kill -9
    assert "Nobody is sending right now." in cli(path, "status").output
    alive = f"{socket.gethostname()}:{os.getpid()}"
    database = open_database(load_config(path).database_url)
    assert lease.acquire(database, lease.SEND_LEASE, alive, timedelta(minutes=10)) is None
    database.dispose()
    status = json.loads(cli(path, "status", "--json").stdout)
    assert status["lease"]["holder"] == alive and status["lease"]["since"]


def test_heartbeat_and_lease_timeout_are_checked(tmp_path: Path) -> None:
    path = config_for(tmp_path, "sqlite://", 25, blog(tmp_path, "one"))
    result = CliRunner().invoke(
        main, ["--config", str(path), "status"], env={"DIGEST_SMTP__HEARTBEAT": "90"}
    )
    assert result.exit_code == 2
    assert "heartbeat must be shorter than lease_timeout" in result.output
