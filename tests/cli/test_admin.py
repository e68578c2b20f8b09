"""`digest admin token create|list|revoke`: a token is printed once and kept only as a hash,
listed by name and its first characters, revoked by name; bad requests exit 2."""

from __future__ import annotations

import json

from click.testing import CliRunner, Result
from sqlalchemy import select

from digest.access.tokens import check
from digest.cli import main
from digest.store.database import open_database
from digest.store.tables import ApiToken
from tests.support import paths

ROOT = paths.ROOT


def cli(database_url: str, *args: str) -> Result:
    return CliRunner().invoke(
        main,
        ["--config", str(ROOT / "config.yaml"), "admin", "token", *args],
        env={"DIGEST_DATABASE__URL": database_url},
    )


def test_create_list_and_revoke(database_url: str) -> None:
    made = cli(database_url, "create", "newsletter-form", "--scope", "write", "--allow-confirmed")
    assert made.exit_code == 0, made.output
    secret = made.stdout.strip()
    assert secret.startswith("dgt_") and len(secret) > 40 and "\n" not in secret
    assert "not shown again" in made.stderr
    database = open_database(database_url)
    with database.session() as session:
        [stored] = session.scalars(select(ApiToken)).all()
        assert secret not in (stored.secret_hash, stored.hint)
        assert (stored.scope, stored.allow_confirmed, stored.per_minute) == ("write", True, 600)
        grant = check(session, secret)
        assert grant is not None and grant.name == "newsletter-form"
    listed = json.loads(cli(database_url, "list", "--json").stdout)
    assert [(t["name"], t["scope"], t["allow_confirmed"]) for t in listed] == [
        ("newsletter-form", "write", True)
    ]
    assert listed[0]["last_used_at"] is not None  # the check above used it
    assert secret not in cli(database_url, "list").stdout
    assert listed[0]["starts"] in cli(database_url, "list").stdout
    revoked = cli(database_url, "revoke", "newsletter-form")
    assert revoked.exit_code == 0 and "Revoked" in revoked.stdout
    assert "already" in cli(database_url, "revoke", "newsletter-form").stdout
    with database.session() as session:
        assert check(session, secret) is None
    database.dispose()
    again = cli(database_url, "create", "newsletter-form", "--scope", "read")
    assert again.exit_code == 1 and "revoked names are not reused" in again.stderr


def test_bad_requests_exit_2_and_make_nothing(database_url: str) -> None:
    for args in (
        ("create", "reader", "--scope", "read", "--allow-confirmed"),
        ("create", "has space", "--scope", "read"),
        ("create", "x", "--scope", "admin"),
        ("create", "x", "--scope", "read", "--per-minute", "0"),
    ):
        result = cli(database_url, *args)
        assert result.exit_code == 2, (args, result.output)
    assert cli(database_url, "revoke", "nobody").exit_code == 1
    assert json.loads(cli(database_url, "list", "--json").stdout) == []


def test_the_last_use_is_recorded_to_the_minute(database_url: str) -> None:
    """One write a minute at most, not one per request (a busy token would write on every
    call otherwise); the recorded time is never more than a minute old."""
    from datetime import UTC, datetime, timedelta

    from digest.access.tokens import create, listing

    database = open_database(database_url)
    start = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
    with database.session() as session:
        secret = create(session, "busy", scope="read")
    for seconds, expected in ((0, 0), (30, 0), (59, 0), (61, 61), (90, 61), (125, 125)):
        with database.session() as session:
            assert check(session, secret, now=start + timedelta(seconds=seconds)) is not None
        with database.session() as session:
            [listed] = listing(session)
        assert listed.last_used_at == start + timedelta(seconds=expected), seconds
    database.dispose()
