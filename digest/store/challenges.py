"""Solved sign-up challenges, spent once: a proof of work passes one sign-up, never two.

An ALTCHA solution is valid until its challenge expires (digest.audience.guard); without a
record of the ones already used, a bot could solve one challenge and post its answer a
thousand times in those minutes. `spend` records the challenge (the SHA-256 of its signature)
in the transaction of the sign-up that used it, and says whether it was new; the unique key
decides between two posts of the same answer at once (the second waits for the first's
commit on PostgreSQL, then fails to insert). Rows past their expiry are of no use (the
challenge no longer verifies) and are removed by the next `spend`.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from digest.store.tables import SpentChallenge


def spend(session: Session, key: str, expires_at: datetime, now: datetime) -> bool:
    """Record challenge `key` as used until `expires_at`; False when it already was."""
    session.execute(
        delete(SpentChallenge)
        .where(SpentChallenge.expires_at < now)
        .execution_options(synchronize_session=False)
    )
    try:
        with session.begin_nested():
            session.add(SpentChallenge(key=key, expires_at=expires_at))
    except IntegrityError:
        return False
    return True
