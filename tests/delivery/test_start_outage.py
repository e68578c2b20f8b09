"""A sending process starting while PostgreSQL restarts: what it reads before its first
message (the plan of `digest send`, the issue's edition, the variants its queue needs, each
variant stored), and the scheduler's reports, are read again when the connection is lost in
the middle, instead of ending the process.

Seen in `tests/e2e/test_outage.py::test_three_restarts_and_a_20_s_outage_kill_no_sender`
(worker0 joined, then "the database failed: it is out of reach" at the first restart): these
reads were units of work that waited out a database away when they began, not one lost in
the middle. Here the server ends the connection of every other
unit of work (pg_terminate_backend, as a restart does) right after it began."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, event, text

from digest.config.load import load_config
from digest.config.sending import compose_settings
from digest.delivery.compose import load_variants, make_composer
from digest.issues.plan import plan_send
from digest.issues.schedule import recent_reports
from digest.store import ledger
from digest.store.database import open_database
from tests.issues.test_send import add_subscribers, write_config
from tests.support.postgres import PostgresServer


def test_a_worker_reads_through_connections_lost_as_it_starts(
    tmp_path: Path, postgres: PostgresServer
) -> None:
    url = postgres.migrated_database()
    config = load_config(write_config(tmp_path, url, 25), environ={})
    add_subscribers(config, 6)  # readers in zh and en: two variants
    database = open_database(url)
    edition = plan_send(config, database).edition
    assert edition is not None
    with database.session() as session:  # no variant stored: the starting process renders
        issue_id = ledger.create_issue(
            session, edition, frequency="weekly", default_frequency="weekly"
        ).id
    database.dispose()

    starting = open_database(url)  # a fresh process's database: nothing stored in memory
    admin = create_engine(url, isolation_level="AUTOCOMMIT")
    begun = 0  # units of work (sessions) begun, each counted at its first begin

    def lose_every_other(session: Any, transaction: Any, connection: Any) -> None:
        nonlocal begun
        if session.info.get("counted"):
            return
        session.info["counted"] = True
        begun += 1
        if begun % 2:
            pid = connection.exec_driver_sql("SELECT pg_backend_pid()").scalar()
            with admin.connect() as other:
                other.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})

    starting.outage.limit = 10  # a lost connection is read again at once: never this long
    event.listen(starting.sessions, "after_begin", lose_every_other)
    try:
        resumed = plan_send(config, starting)  # what `digest send` reads first
        assert resumed.issue_id == issue_id
        composer = make_composer(compose_settings(config), starting, issue_id)
        load_variants(composer, starting, issue_id)
        reported = recent_reports(starting)  # what the scheduler's alerts read each round
    finally:
        event.remove(starting.sessions, "after_begin", lose_every_other)
        starting.dispose()
        admin.dispose()
    # the plan, the edition, the queue's variants, each variant's row and the reports: each
    # lost once, then read again
    assert [report.key for report in reported] == [edition.key]
    assert begun >= 12 and begun % 2 == 0, begun
    assert len(composer._templates) == 2
    assert all(template is not None for template in composer._templates.values())
