"""The upkeep round (digest.issues.upkeep) runs after every send and in the scheduler: when the
database fails it says so in one sentence of ours, never the driver's text or a traceback
(DIGEST_DEBUG=1 keeps the traceback), and it never raises."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from sqlalchemy import text

from digest.config.load import load_config
from digest.issues.upkeep import upkeep
from digest.store.database import open_database
from tests.issues.test_send import write_config


@pytest.mark.parametrize("debug", [False, True])
def test_a_failing_database_is_one_sentence_of_ours(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch, debug: bool
) -> None:
    if debug:
        monkeypatch.setenv("DIGEST_DEBUG", "1")
    else:
        monkeypatch.delenv("DIGEST_DEBUG", raising=False)
    url = f"sqlite:///{tmp_path / 'digest.sqlite3'}"
    config = load_config(write_config(tmp_path, url, 2525), environ={})
    database = open_database(url)
    try:
        with database.engine.begin() as connection:  # the purge's table is gone
            connection.execute(text("ALTER TABLE deliveries RENAME TO elsewhere"))
        with caplog.at_level(logging.ERROR, "digest"):
            done = upkeep(config, database)
    finally:
        database.dispose()
    assert done.purged == 0
    [record] = [r for r in caplog.records if "sign-ups" in r.getMessage()]
    said = record.getMessage()
    assert said.startswith("removing stale pending sign-ups failed: the database failed: "), said
    assert "tried again next round" in said
    assert "no such table" not in said and "sqlite3" not in said and "SELECT" not in said
    assert bool(record.exc_info) == debug
    assert ("DIGEST_DEBUG=1" in said) != debug


def test_outgoing_webhooks_that_fail_on_the_database_say_so_in_words_of_ours(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    from datetime import UTC, datetime

    from digest.delivery.settings import WebhookSettings
    from digest.delivery.webhooks import start_background

    monkeypatch.delenv("DIGEST_DEBUG", raising=False)
    database = open_database(f"sqlite:///{tmp_path / 'digest.sqlite3'}")
    try:
        with database.engine.begin() as connection:
            connection.execute(text("ALTER TABLE webhook_outbox RENAME TO elsewhere"))
        hook = WebhookSettings(url="http://127.0.0.1:9/hook", events=(), secret="whsec_" + "A" * 32)
        with caplog.at_level(logging.ERROR, "digest"):
            thread = start_background(database, [hook], lambda: datetime.now(UTC))
            assert thread is not None
            thread.join(30)
    finally:
        database.dispose()
    [record] = caplog.records
    said = record.getMessage()
    assert said.startswith("outgoing webhooks failed: the database failed: "), said
    assert "they are tried again later" in said and not record.exc_info
    assert "no such table" not in said and "webhook_outbox" not in said
