"""Process what comes back: classify each message or event, record it, mark it handled.

The one place where returned mail meets the database (through `digest.store.bounces`): the
`digest bounces` command, the scheduler's poll and the web hooks all call it. Each message is
recorded in its own transaction and marked handled in its mailbox only after that commit, so
a crash between the two leaves the message unseen, and the next run finds its key already
recorded and changes nothing. Messages that cannot be classified (`unknown`) are neither
recorded nor marked: they stay unseen for a human, and are counted. A dry run classifies and
looks up exactly as a real run does, inside one transaction that is rolled back, and marks
nothing.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.orm import Session

from digest.errors import ConfigError
from digest.inbound.classify import Context, classify
from digest.inbound.mailbox import Imap, Mailbox, Maildir, Mbox, Skipped
from digest.inbound.result import Classification
from digest.inbound.settings import InboundSettings, MailboxSettings
from digest.store.bounces import Applied, Returned, apply, sweep_soft
from digest.store.database import Database

METHODS = {"ses": "ses", "postmark": "postmark"}


@dataclass(frozen=True, slots=True)
class Row:
    """One message's decision and what was done about it (a row of `digest bounces --json`)."""

    where: str
    classification: Classification
    applied: Applied

    def as_dict(self) -> dict[str, Any]:
        c, a = self.classification, self.applied
        return {
            "where": self.where,
            "key": c.key,
            "kind": c.kind,
            "reason": c.reason,
            "source": c.source,
            "addresses": list(c.addresses),
            "status": c.status,
            "action": a.action,
            "subscribers": a.subscribers,
            "issue": a.issue,
            "delivery_id": a.delivery_id,
        }


@dataclass(slots=True)
class Run:
    """A whole run: its rows, what was skipped unread, and who the soft limit suppressed."""

    source: str
    dry_run: bool = False
    rows: list[Row] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)
    soft_limited: list[str] = field(default_factory=list)

    @property
    def unknown(self) -> int:
        return sum(1 for row in self.rows if row.applied.action == "unknown")

    def counts(self) -> dict[str, int]:
        result: dict[str, int] = {}
        for row in self.rows:
            result[row.applied.action] = result.get(row.applied.action, 0) + 1
        return result


def to_returned(result: Classification) -> Returned:
    """The plain values the store records."""
    severities = {
        r.address.lower(): r.severity for r in result.recipients if r.severity is not None
    }
    return Returned(
        key=result.key,
        kind=result.kind,
        source=result.source,
        reason=result.reason,
        method=METHODS.get(result.source, "mail"),
        subscriber_id=result.subscriber_id,
        issue_id=result.issue_id,
        delivery_id=result.delivery_id,
        addresses=result.addresses,
        severities=severities,
        status=result.status,
    )


def record(session: Session, result: Classification, soft_limit: int) -> Applied:
    return apply(session, to_returned(result), soft_limit)


def record_all(
    database: Database, results: Iterable[Classification], soft_limit: int
) -> list[Applied]:
    """Record provider events (each in its own transaction); for the web hooks."""
    applied = []
    for result in results:

        def one(session: Session, result: Classification = result) -> Applied:
            return record(session, result, soft_limit)

        applied.append(database.run_session(one))
    database.run_session(lambda session: sweep_soft(session, soft_limit))
    return applied


def open_mailbox(settings: MailboxSettings) -> Mailbox:
    """The mailbox to read: the Maildir, else the mbox file, else IMAP (the options of
    `digest bounces`, else `bounces.maildir`, else `bounces.imap`:
    digest.config.sending.mailbox_settings)."""
    if settings.maildir is not None:
        return Maildir(settings.maildir)
    if settings.mbox is not None:
        return Mbox(settings.mbox)
    if settings.imap is not None:
        return Imap(settings.imap)
    raise ConfigError(
        "nothing to read: give --maildir DIR or --mbox FILE, or set bounces.maildir or "
        "bounces.imap in the config."
    )


def process(
    settings: InboundSettings,
    database: Database,
    mailbox: Mailbox,
    *,
    dry_run: bool = False,
    context: Context | None = None,
) -> Run:
    """Read every unseen message of `mailbox` once (see the module doc)."""
    context = context or Context(keyring=settings.keys, return_path=settings.return_path)
    limit = settings.soft_limit
    run = Run(mailbox.description, dry_run)
    if dry_run:
        with database.sessions() as session:
            for incoming in mailbox:
                result = classify(incoming.message, context, raw=incoming.raw)
                run.rows.append(Row(incoming.where, result, record(session, result, limit)))
            session.rollback()
    else:
        for incoming in mailbox:
            result = classify(incoming.message, context, raw=incoming.raw)

            # a database away is waited out; recording twice changes nothing (by its key)
            def one(session: Session, result: Classification = result) -> Applied:
                return record(session, result, limit)

            applied = database.run_session(one)
            if applied.action != "unknown":
                incoming.mark_handled()
            run.rows.append(Row(incoming.where, result, applied))
        run.soft_limited = database.run_session(lambda session: sweep_soft(session, limit))
    run.skipped = list(mailbox.skipped)
    return run
