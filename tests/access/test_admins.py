"""Administrators of the desk (digest.access.admins), on SQLite and PostgreSQL: argon2id
hashes, names, the throttle's arithmetic (a run of failures, doubling waits, a success ends
the run), an account locked by one address still open to another, sessions that end."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from digest.access import admins as access
from digest.errors import UsageError
from digest.store.database import Database

T0 = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)
PASSWORD = "correct horse battery staple"


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def test_the_throttle_waits_after_five_failures_and_doubles_up_to_fifteen_minutes() -> None:
    four = [at(0), at(1), at(2), at(3)]
    assert access.wait_after(four, at(4)) == 0
    five = [*four, at(4)]
    assert access.wait_after(five, at(4)) == 60
    assert access.wait_after(five, at(34)) == 30
    assert access.wait_after(five, at(64)) == 0
    run = list(five)
    expected = [120, 240, 480, 900, 900]
    for wait in expected:
        run.append(run[-1] + timedelta(seconds=access.wait_after(run, run[-1])))
        assert access.wait_after(run, run[-1]) == wait
    # five failures spread over more than the window never start a wait
    spread = [at(n * 300) for n in range(5)]
    assert access.wait_after(spread, spread[-1]) == 0


def test_a_run_ends_at_a_success_or_a_long_gap() -> None:
    attempts = [(at(0), True), (at(1), True), (at(2), False), (at(3), True), (at(4), True)]
    assert access.streak(attempts) == [at(3), at(4)]
    gap = [(at(0), True), (at(1000), True), (at(1001), True)]
    assert access.streak(gap) == [at(1000), at(1001)]


def test_passwords_are_argon2id_and_names_are_checked(database: Database) -> None:
    with database.session() as session:
        admin = access.add_user(session, "alice", PASSWORD, T0)
        assert admin.password_hash.startswith("$argon2id$")
        assert PASSWORD not in admin.password_hash
    with database.session() as session, pytest.raises(UsageError, match="exists already"):
        access.add_user(session, "alice", PASSWORD, T0)
    with database.session() as session, pytest.raises(UsageError, match="at least 10"):
        access.add_user(session, "bob", "short", T0)
    with database.session() as session, pytest.raises(UsageError, match="administrator name"):
        access.add_user(session, "../bob", PASSWORD, T0)


def attempt(database: Database, password: str, ip: str, now: datetime) -> str:
    try:
        with database.session() as session:
            opened = access.log_in(session, "alice", password, "", now=now, ip=ip, user_agent=None)
    except access.Throttled as exc:
        return f"429 {exc.retry_after}"
    return "ok" if opened is not None else "401"


def test_a_locked_account_still_opens_for_its_owner_elsewhere(database: Database) -> None:
    with database.session() as session:
        access.add_user(session, "alice", PASSWORD, T0)
    for n in range(5):
        assert attempt(database, "guess guess guess", "203.0.113.9", at(n)) == "401"
    assert attempt(database, PASSWORD, "203.0.113.9", at(5)) == "429 59"
    # an address with no failure of its own gets its attempt checked; wrong, it is locked too
    assert attempt(database, "another guess", "192.0.2.1", at(6)) == "401"
    assert attempt(database, PASSWORD, "192.0.2.1", at(7)) == "429 119"  # 6th: doubled
    # the owner, from an address that never failed, gets in
    assert attempt(database, PASSWORD, "198.51.100.7", at(8)) == "ok"
    # which ends the account's run, not the attacker's own address's
    assert attempt(database, PASSWORD, "203.0.113.9", at(9)) == "429 55"
    assert attempt(database, PASSWORD, "192.0.2.1", at(9)) == "ok"


def test_sessions_end_idle_absolute_or_revoked(database: Database) -> None:
    with database.session() as session:
        access.add_user(session, "alice", PASSWORD, T0)
        opened = access.log_in(session, "alice", PASSWORD, "", now=T0, ip=None, user_agent=None)
    assert opened is not None
    secret = opened.secret
    with database.session() as session:
        assert access.current(session, secret, at(3599)) is not None
        assert access.current(session, secret + "x", at(3599)) is None
    with database.session() as session:
        assert access.current(session, secret, at(3599 + 3601)) is None  # idle since 3599
    with database.session() as session:
        again = access.log_in(session, "alice", PASSWORD, "", now=T0, ip=None, user_agent=None)
    assert again is not None
    late = T0
    while late < T0 + access.ABSOLUTE - timedelta(minutes=30):
        late += timedelta(minutes=30)
        with database.session() as session:
            assert access.current(session, again.secret, late) is not None
    with database.session() as session:
        assert access.current(session, again.secret, T0 + access.ABSOLUTE + timedelta(1)) is None
