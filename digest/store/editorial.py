"""The owner's say in the next issue: the editor's note waiting for it and the posts held
back (digest.issues.editorial holds the rules)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from digest.store.tables import EditorNote, HeldPost

SCOPES = ("next", "always")


def note(session: Session, frequency: str) -> EditorNote | None:
    return session.get(EditorNote, frequency)


def set_note(session: Session, frequency: str, text: str, now: datetime, actor: str | None) -> None:
    row = session.get(EditorNote, frequency)
    if row is None:
        session.add(EditorNote(frequency=frequency, text=text, updated_at=now, updated_by=actor))
    else:
        row.text, row.updated_at, row.updated_by = text, now, actor


def clear_note(session: Session, frequency: str) -> bool:
    """Remove the waiting note; True if there was one."""
    result = session.execute(delete(EditorNote).where(EditorNote.frequency == frequency))
    return bool(getattr(result, "rowcount", 0))


def take_note(session: Session, frequency: str, taken: str) -> bool:
    """Remove the waiting note if it is still `taken` (the text the issue being created
    carries, in this transaction); a note changed since waits for the next issue."""
    row = session.get(EditorNote, frequency)
    if row is None or row.text != taken:
        return False
    session.delete(row)
    return True


def held(session: Session) -> dict[str, str]:
    """post id -> scope (`next` or `always`) of every held post."""
    return {row.post_id: row.scope for row in session.scalars(select(HeldPost))}


def held_rows(session: Session) -> list[HeldPost]:
    return list(session.scalars(select(HeldPost).order_by(HeldPost.created_at)))


def hold(
    session: Session, post_id: str, scope: str, title: str, now: datetime, actor: str | None
) -> None:
    if scope not in SCOPES:
        raise ValueError(scope)
    row = session.get(HeldPost, post_id)
    if row is None:
        session.add(
            HeldPost(post_id=post_id, scope=scope, title=title, created_at=now, created_by=actor)
        )
    else:
        row.scope, row.created_at, row.created_by = scope, now, actor


def release(session: Session, post_id: str) -> bool:
    result = session.execute(delete(HeldPost).where(HeldPost.post_id == post_id))
    return bool(getattr(result, "rowcount", 0))


def release_next(session: Session) -> int:
    """Let the posts held from the next issue only go (that issue is being created): they are
    new again for the one after."""
    result = session.execute(delete(HeldPost).where(HeldPost.scope == "next"))
    return int(getattr(result, "rowcount", 0) or 0)
