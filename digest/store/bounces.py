"""What comes back, recorded: bounces, complaints, mailed unsubscribes (docs/bounces.md).

`apply` records one returned message or provider event and changes the subscriber's standing:

- a hard bounce makes an active (or pending) subscriber `bounced`, a complaint `complained`,
  at once, with an event tied to the issue and the delivery when a VERP token named them;
- a soft bounce is an event; the subscriber is `bounced` once `soft_limit` consecutive issues
  had a soft bounce — a delivery that ended `failed` after deferral counts as one, and a
  delivery sent without any bounce resets the count (so does a reactivation);
- a mailed unsubscribe request unsubscribes (method `mailto`);
- notices, auto-replies and mail that is not ours are only remembered as processed.

Every key (Message-ID, or the provider's event id) is applied once: `returned_mail.key` is
unique, and a key seen before changes nothing, so a second run over a mailbox is a no-op.
The caller passes plain values (`Returned`): this layer knows nothing of parsing mail.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import func, select, true
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from digest.store.events import append
from digest.store.subscribers import find, unsubscribe
from digest.store.tables import (
    Delivery,
    DeliveryStatus,
    Event,
    Issue,
    ReturnedMail,
    Status,
    Subscriber,
)

SUPPRESSIBLE = frozenset({Status.ACTIVE, Status.PENDING})
RECORDED_KINDS = ("hard", "soft", "complaint", "unsubscribe", "notice", "auto_reply", "not_ours")
RESTART_EVENTS = ("reactivate", "resubscribe", "subscribe", "confirm")


@dataclass(frozen=True, slots=True)
class Returned:
    """One classified message, as plain values. `severities` gives a per-address verdict
    (`hard`/`soft`) when a report lists several recipients; `method` the event method."""

    key: str
    kind: str
    source: str
    reason: str
    method: str = "mail"
    subscriber_id: int | None = None  # from a verified token
    issue_id: int | None = None
    delivery_id: int | None = None
    addresses: tuple[str, ...] = ()
    severities: Mapping[str, str] = field(default_factory=dict)
    status: str | None = None


@dataclass(slots=True)
class Applied:
    """What `apply` did: `action` is one of duplicate, unknown, discarded, no-subscriber,
    bounced, complained, unsubscribed, soft, already; `subscribers` the addresses it concerned."""

    action: str
    subscribers: list[str] = field(default_factory=list)
    issue: str | None = None
    delivery_id: int | None = None
    detail: str = ""


def seen(session: Session, key: str) -> bool:
    return session.scalar(select(ReturnedMail.id).where(ReturnedMail.key == key)) is not None


def by_address(session: Session, address: str) -> Subscriber | None:
    """The subscriber with this address, compared case-insensitively in full like everywhere
    (digest.store.subscribers.find: `email_key`; never an erased person's tombstone)."""
    return find(session, address.strip())


def _targets(session: Session, returned: Returned) -> list[tuple[Subscriber, str]]:
    """Who the message is about, each with the verdict for them: the token's subscriber,
    else every listed address that is a subscriber."""
    if returned.subscriber_id is not None:
        subscriber = session.get(Subscriber, returned.subscriber_id)
        if subscriber is not None and subscriber.status != Status.ERASED:  # erased: nobody
            address = subscriber.email.lower()
            return [(subscriber, returned.severities.get(address, returned.kind))]
    found: list[tuple[Subscriber, str]] = []
    for address in dict.fromkeys(a.lower() for a in returned.addresses):
        subscriber = by_address(session, address)
        if subscriber is not None and all(s.id != subscriber.id for s, _ in found):
            found.append((subscriber, returned.severities.get(address, returned.kind)))
    return found


def _ids(
    session: Session, returned: Returned, subscriber: Subscriber | None
) -> tuple[int | None, int | None]:
    """The issue and delivery a token named, kept only if they exist and belong together."""
    issue_id, delivery_id = returned.issue_id, returned.delivery_id
    if delivery_id is not None:
        delivery = session.get(Delivery, delivery_id)
        if delivery is None or subscriber is None or delivery.subscriber_id != subscriber.id:
            delivery_id = None
        elif issue_id is None:
            issue_id = delivery.issue_id
    if issue_id is not None and session.get(Issue, issue_id) is None:
        issue_id = None
    return issue_id, delivery_id


def apply(session: Session, returned: Returned, soft_limit: int) -> Applied:
    """Record one returned message once and change standings (see the module doc)."""
    if returned.kind not in RECORDED_KINDS:
        return Applied("unknown", detail=returned.reason)
    if seen(session, returned.key):
        return Applied("duplicate")
    targets = (
        _targets(session, returned)
        if returned.kind not in ("notice", "auto_reply", "not_ours")
        else []
    )
    first = targets[0][0] if targets else None
    issue_id, delivery_id = _ids(session, returned, first)
    row = ReturnedMail(
        key=returned.key[:300],
        kind=returned.kind,
        source=returned.source[:20],
        subscriber_id=first.id if first else None,
        issue_id=issue_id,
        delivery_id=delivery_id,
        # a subscriber's address lives only on their row, so erasing them erases it here too
        address=None if first else (returned.addresses[0] if returned.addresses else None),
        status=returned.status,
        reason=returned.reason,
    )
    try:
        with session.begin_nested():
            session.add(row)
            session.flush()
    except IntegrityError:  # the same key recorded by a concurrent run just now
        return Applied("duplicate")
    issue = session.get(Issue, issue_id) if issue_id is not None else None
    issue_key = issue.key if issue is not None else None
    if returned.kind in ("notice", "auto_reply", "not_ours"):
        return Applied("discarded", detail=returned.reason)
    if not targets:
        return Applied("no-subscriber", detail=returned.reason, issue=issue_key)
    actions: list[str] = []
    for subscriber, kind in targets:
        ids = (issue_id, delivery_id) if subscriber is first else (None, None)
        actions.append(_change(session, subscriber, kind, returned, ids, soft_limit))
    return Applied(
        _worst(actions),
        [s.email for s, _ in targets],
        issue=issue_key,
        delivery_id=delivery_id,
        detail=returned.reason,
    )


def _worst(actions: Sequence[str]) -> str:
    for action in ("complained", "bounced", "unsubscribed", "soft", "already"):
        if action in actions:
            return action
    return actions[0]


def _event(
    session: Session,
    subscriber: Subscriber,
    kind: str,
    method: str,
    ids: tuple[int | None, int | None],
    detail: str,
) -> None:
    append(
        session,
        kind,
        method,
        subscriber_id=subscriber.id,
        issue_id=ids[0],
        delivery_id=ids[1],
        detail=detail or None,
    )


def _change(
    session: Session,
    subscriber: Subscriber,
    kind: str,
    returned: Returned,
    ids: tuple[int | None, int | None],
    soft_limit: int,
) -> str:
    if kind == "unsubscribe":
        changed = unsubscribe(session, subscriber, "mailto", issue_id=ids[0])
        return "unsubscribed" if changed else "already"
    if kind in ("hard", "complaint"):
        event = "bounce" if kind == "hard" else "complaint"
        _event(session, subscriber, event, returned.method, ids, returned.reason)
        if subscriber.status not in SUPPRESSIBLE:
            return "already"
        subscriber.status = Status.BOUNCED if kind == "hard" else Status.COMPLAINED
        return "bounced" if kind == "hard" else "complained"
    _event(session, subscriber, "soft-bounce", returned.method, ids, returned.reason)
    session.flush()
    if subscriber.status in SUPPRESSIBLE and suppress_if_over(session, subscriber, soft_limit):
        return "bounced"
    return "soft"


def suppress_if_over(session: Session, subscriber: Subscriber, soft_limit: int) -> bool:
    """Make the subscriber `bounced` if their soft-bounce streak reached the limit."""
    streak = soft_streak(session, subscriber.id)
    if streak < soft_limit:
        return False
    subscriber.status = Status.BOUNCED
    _event(
        session,
        subscriber,
        "bounce",
        "soft-limit",
        (None, None),
        f"{streak} issues in a row with a soft bounce (bounces.soft_limit is {soft_limit})",
    )
    return True


def soft_streak(session: Session, subscriber_id: int) -> int:
    """Consecutive issues, newest first, with a soft bounce (or a delivery that ended `failed`
    after deferral), until a delivery sent without any bounce; since the last reactivation.

    A soft bounce with no issue attached (no VERP) counts for the newest issue sent to the
    subscriber before it arrived: a bounce is almost always about the latest mail.
    """
    since = session.scalar(
        select(func.max(Event.created_at)).where(
            Event.subscriber_id == subscriber_id, Event.kind.in_(RESTART_EVENTS)
        )
    )
    deliveries = session.execute(
        select(Delivery.issue_id, Delivery.status, Delivery.deferred_since, Delivery.sent_at)
        .join(Issue, Issue.id == Delivery.issue_id)
        .where(Delivery.subscriber_id == subscriber_id)
        .where(Issue.created_at > since if since is not None else true())
        .order_by(Issue.created_at.desc(), Issue.id.desc())
    ).all()
    soft_rows = session.execute(
        select(ReturnedMail.issue_id, ReturnedMail.created_at).where(
            ReturnedMail.subscriber_id == subscriber_id,
            ReturnedMail.kind == "soft",
            ReturnedMail.created_at > since if since is not None else true(),
        )
    ).all()
    soft_issues = {issue for issue, _ in soft_rows if issue is not None}
    for issue, arrived in soft_rows:
        if issue is None:
            soft_issues |= _newest_sent_before(deliveries, arrived)
    bounced_issues = _hard_issues(session, subscriber_id)
    streak = 0
    for issue, status, deferred_since, _sent_at in deliveries:
        if issue in soft_issues or (status == DeliveryStatus.FAILED and deferred_since):
            streak += 1
        elif status == DeliveryStatus.SENT and issue not in bounced_issues:
            break
    return streak


def _newest_sent_before(
    deliveries: Iterable[tuple[int, str, datetime | None, datetime | None]], moment: datetime
) -> set[int]:
    for issue, _status, _deferred, sent_at in deliveries:
        if sent_at is not None and sent_at <= moment:
            return {issue}
    return set()


def _hard_issues(session: Session, subscriber_id: int) -> set[int]:
    rows = session.scalars(
        select(ReturnedMail.issue_id).where(
            ReturnedMail.subscriber_id == subscriber_id,
            ReturnedMail.kind.in_(("hard", "complaint")),
            ReturnedMail.issue_id.is_not(None),
        )
    )
    return {issue for issue in rows if issue is not None}


def sweep_soft(session: Session, soft_limit: int) -> list[str]:
    """Apply the soft limit to active subscribers with a delivery that ended `failed` after
    deferral (those failures are recorded by the send path, which knows no limit)."""
    failed_after_deferral = select(Delivery.subscriber_id).where(
        Delivery.status == DeliveryStatus.FAILED, Delivery.deferred_since.is_not(None)
    )
    candidates = session.scalars(
        select(Subscriber)
        .where(
            Subscriber.status.in_(tuple(SUPPRESSIBLE)),
            Subscriber.id.in_(failed_after_deferral),
        )
        .order_by(Subscriber.id)
    ).all()
    return [s.email for s in candidates if suppress_if_over(session, s, soft_limit)]
