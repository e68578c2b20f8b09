"""The owner's say in the next issue, for `digest note`, `digest posts hold|release` and the
desk alike: the editor's note (Markdown, shown above the posts in both parts of the email,
kept with the issue when it is created) and posts left out of the next issue or of every
issue. Every change is an audit event naming who made it (`cli` from the command line)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from digest.access.admins import audit
from digest.config.schema import Config
from digest.config.stages import issue_settings
from digest.errors import UsageError
from digest.excerpt.clean import clean
from digest.issues.upcoming import next_issue
from digest.models import Candidate
from digest.store import editorial
from digest.store.database import Database

MAX_NOTE = 5000  # characters: a note, not an article (the HTML budget is the posts')


@dataclass(frozen=True, slots=True)
class Actor:
    """Who changes something, and from where (None: the command line)."""

    name: str = "cli"
    ip: str | None = None


def note(config: Config, database: Database, frequency: str | None = None) -> str:
    with database.session() as session:
        row = editorial.note(session, frequency or config.schedule.frequency)
        return row.text if row is not None else ""


def set_note(
    config: Config,
    database: Database,
    text: str,
    actor: Actor,
    *,
    frequency: str | None = None,
    now: datetime | None = None,
) -> str:
    """Keep `text` as the note of the next issue (an empty one clears it); returns it as kept
    (control characters removed, trailing space trimmed)."""
    kept = clean(text).strip()
    if len(kept) > MAX_NOTE:
        raise UsageError(f"the editor's note has {len(kept)} characters; at most {MAX_NOTE}.")
    now = now or datetime.now(UTC)
    frequency = frequency or config.schedule.frequency
    with database.session() as session:
        if kept:
            editorial.set_note(session, frequency, kept, now, actor.name)
        else:
            editorial.clear_note(session, frequency)
        action = "note-set" if kept else "note-cleared"
        audit(session, actor.name, action, ip=actor.ip, now=now, detail=kept[:200] or None)
    return kept


def clear_note(
    config: Config,
    database: Database,
    actor: Actor,
    *,
    frequency: str | None = None,
    now: datetime | None = None,
) -> None:
    set_note(config, database, "", actor, frequency=frequency, now=now)


def find_post(candidates: list[Candidate], ident: str) -> Candidate:
    """The post `ident` names (its id or its URL) among the next issue's candidates."""
    for candidate in candidates:
        if ident in (candidate.post.id, candidate.post.url):
            return candidate
    raise UsageError(
        f"no post {ident!r} among the blog's posts (`digest posts --all --json` lists each id)."
    )


def hold_post(
    config: Config,
    database: Database,
    ident: str,
    actor: Actor,
    *,
    always: bool = False,
    now: datetime | None = None,
) -> Candidate:
    """Leave the post out of the next issue (`always`: of every issue until released)."""
    now = now or datetime.now(UTC)
    candidate = find_post(next_issue(issue_settings(config), database, now=now).candidates, ident)
    scope = "always" if always else "next"
    with database.session() as session:
        editorial.hold(session, candidate.post.id, scope, candidate.post.title, now, actor.name)
        audit(
            session,
            actor.name,
            f"post-held-{scope}",
            ip=actor.ip,
            now=now,
            detail=f"{candidate.post.id} ({candidate.post.title})"[:500],
        )
    return candidate


def release_post(
    config: Config, database: Database, ident: str, actor: Actor, *, now: datetime | None = None
) -> bool:
    """Let a held post back in; False if it was not held."""
    now = now or datetime.now(UTC)
    with database.session() as session:
        held = editorial.held(session)
    post_id = ident
    if ident not in held:
        post_id = find_post(
            next_issue(issue_settings(config), database, now=now).candidates, ident
        ).post.id
    with database.session() as session:
        released = editorial.release(session, post_id)
        if released:
            audit(session, actor.name, "post-released", ip=actor.ip, now=now, detail=post_id)
    return released


def held_posts(database: Database) -> list[tuple[str, str, str]]:
    """(post id, scope, title) of every held post, oldest hold first."""
    with database.session() as session:
        return [(row.post_id, row.scope, row.title) for row in editorial.held_rows(session)]
