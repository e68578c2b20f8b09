"""Waiting out a database that went away (digest.store.outage): one line when it goes and one
when it returns, past `database.outage_seconds` one sentence. (Real restarts of a real
PostgreSQL: tests/e2e/test_outage.py.)"""

from __future__ import annotations

import logging
import sqlite3

import pytest
from sqlalchemy.exc import OperationalError

from digest.store.outage import DatabaseAway, Outage, is_outage

# -- waiting out ---------------------------------------------------------------------------------


def _lost() -> OperationalError:
    return OperationalError("SELECT 1", {}, sqlite3.OperationalError("database is locked"))


def test_an_outage_is_waited_out_with_one_line_each_way(caplog: pytest.LogCaptureFixture) -> None:
    outage = Outage(limit=30)
    failures = [_lost(), _lost(), _lost()]
    told: list[int] = []

    def work() -> str:
        if failures:
            raise failures.pop()
        return "done"

    with caplog.at_level(logging.WARNING, "digest"):
        assert outage.wait_out(work, on_away=lambda: told.append(1)) == "done"
    assert told == [1] and outage.epoch == 1 and outage.returned_at is not None
    lines = [record.getMessage() for record in caplog.records]
    assert len(lines) == 2, lines
    assert lines[0].startswith("the database is out of reach")
    assert lines[1].startswith("the database is back")


def test_past_the_limit_one_sentence(caplog: pytest.LogCaptureFixture) -> None:
    outage = Outage(limit=0.3)

    def work() -> None:
        raise _lost()

    with pytest.raises(DatabaseAway) as caught:
        outage.wait_out(work)
    assert "out of reach for 0.3 s (database.outage_seconds)" in caught.value.message
    assert not is_outage(ValueError("not the database"))
