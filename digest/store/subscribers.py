"""Subscribers: adding, consent, status changes and their events, applying imported rows.

Every change of standing (subscribe, confirm, unsubscribe, resubscribe, pause...) is recorded in
the event log (digest.store.events) with its method and, when it came from an email, the
issue. Nobody who unsubscribed, bounced or complained is ever re-activated by an import or by
the operator: only the person, through their own preferences link or a new confirmed
sign-up, can come back.

Addresses are compared by `address_key` (the whole address lower-cased) everywhere: `find`,
the CSV's duplicates, sign-up and its limits; they are stored as given. An erased person
(`erase`) leaves a tombstone and a hash of their address, and is never added again by an
import or the operator; only a sign-up they confirm themselves (fresh consent, as Mailchimp
lets a permanently deleted contact back through its form) brings them back, as a new row.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Iterable
from itertools import islice
from pathlib import Path
from typing import Literal

from sqlalchemy import (
    ColumnElement,
    Connection,
    Select,
    cast,
    exists,
    func,
    insert,
    select,
    update,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Session

from digest.audience.addresses import LOCALES, clean_name, normalise_email
from digest.audience.csvfile import ImportReport, Row
from digest.errors import DigestError
from digest.store.events import append
from digest.store.tables import (
    Delivery,
    ErasedAddress,
    Event,
    ReturnedMail,
    Status,
    Subscriber,
    address_key,
    utcnow,
)

SUPPRESSED = frozenset({Status.UNSUBSCRIBED, Status.BOUNCED, Status.COMPLAINED})
Method = Literal[
    "one-click",
    "link",
    "preferences",
    "cli",
    "import",
    "web",
    "smtp",
    "mailto",
    "mail",
    "ses",
    "postmark",
    "soft-limit",
    "api",
    "desk",
]


def find(session: Session, email: str) -> Subscriber | None:
    """The subscriber with this address in any case (never an erased one)."""
    return session.scalar(select(Subscriber).where(Subscriber.email_key == address_key(email)))


def by_token(session: Session, subscriber_id: int, binding: str | None) -> Subscriber | None:
    """The subscriber a verified token names, if the token is still theirs: the row exists,
    is not erased, and its `token_key` is the one the token carries (compared in constant
    time). A row from before revision 0005 has no key and accepts only the unbound links it
    was sent; every newer row requires its key, so an old unbound token reaches nobody new."""
    subscriber = session.get(Subscriber, subscriber_id)
    if subscriber is None or subscriber.status == Status.ERASED:
        return None
    if subscriber.token_key is None:
        return subscriber if binding is None else None
    if binding is None or not hmac.compare_digest(subscriber.token_key, binding):
        return None
    return subscriber


def address_hash(email: str) -> str:
    """SHA-256 of the address's `address_key`: what erasure keeps."""
    return hashlib.sha256(address_key(email).encode("utf-8")).hexdigest()


def was_erased(session: Session, email: str) -> bool:
    return session.get(ErasedAddress, address_hash(email)) is not None


def consented_again(session: Session, email: str) -> None:
    """Someone confirmed a sign-up: if the address had been erased, its hash goes (an import
    may add them again, as anyone who subscribed)."""
    kept = session.get(ErasedAddress, address_hash(email))
    if kept is not None:
        session.delete(kept)


def erase(
    session: Session, subscriber: Subscriber, method: Method = "cli", actor: str | None = None
) -> None:
    """Forget the person, keep the figures. The row becomes a tombstone (status `erased`, no
    address, name, locale, categories or consent details; its id is never reused), so its
    deliveries stay and past `digest report` figures do not change; their events lose the IP
    address and user agent, their deliveries the server's reply (which may quote the address);
    the address's hash is kept (`was_erased`). Their links stop working at once."""
    if subscriber.status == Status.ERASED:
        return
    address = subscriber.email
    hashed = address_hash(address)
    if session.get(ErasedAddress, hashed) is None:
        session.add(ErasedAddress(address_hash=hashed))
    subscriber.email = f"erased.{subscriber.id}@invalid"  # unique, and no one's address
    subscriber.email_key = None
    subscriber.token_key = None
    subscriber.status = Status.ERASED
    subscriber.name = ""
    subscriber.locale = subscriber.categories = subscriber.frequency = None
    subscriber.paused = False
    subscriber.consent_at = subscriber.consent_ip = subscriber.consent_user_agent = None
    subscriber.consent_source = None
    subscriber.unsubscribed_at = subscriber.unsubscribed_at or utcnow()
    session.execute(
        update(Event)
        .where(Event.subscriber_id == subscriber.id)
        .values(ip=None, user_agent=None, detail=None)
    )
    session.execute(
        update(Delivery).where(Delivery.subscriber_id == subscriber.id).values(error=None)
    )
    # returned mail keeps its kind (the report counts it), not the text that quotes them
    session.execute(
        update(ReturnedMail)
        .where(
            (ReturnedMail.subscriber_id == subscriber.id)
            | (func.lower(ReturnedMail.address) == address_key(address))
        )
        .values(reason="", address=None)
    )
    record(session, subscriber, "erase", method, actor=actor)


def record(
    session: Session,
    subscriber: Subscriber | None,
    kind: str,
    method: Method,
    *,
    issue_id: int | None = None,
    ip: str | None = None,
    user_agent: str | None = None,
    detail: str | None = None,
    delivery_id: int | None = None,
    actor: str | None = None,
) -> None:
    """A subscriber event in the log, in the transaction of the change (digest.store.events)."""
    append(
        session,
        kind,
        method,
        subscriber_id=subscriber.id if subscriber is not None else None,
        issue_id=issue_id,
        delivery_id=delivery_id,
        actor=actor,
        ip=ip,
        user_agent=user_agent,
        detail=detail,
    )


def add(
    session: Session,
    email: str,
    *,
    name: str | None = None,
    locale: str | None = None,
    categories: list[str] | None = None,
    method: Method = "cli",
) -> Subscriber:
    """Add an active subscriber the operator vouches for; refuse to re-activate anyone."""
    address = normalise_email(email)
    if locale is not None and locale not in LOCALES:
        raise DigestError(f"locale {locale!r} is not one of {', '.join(LOCALES)}.")
    if was_erased(session, address):
        raise DigestError(
            f"{address} was erased at their request; digest keeps a hash of the address so "
            "that it is never added again."
        )
    existing = find(session, address)
    if existing is not None:
        if existing.status in SUPPRESSED:
            raise DigestError(
                f"{address} is {existing.status}; only they can subscribe again "
                "(through a preferences link or the sign-up form)."
            )
        raise DigestError(f"{address} is already a subscriber ({existing.status}).")
    subscriber = Subscriber(
        email=address,
        name=clean_name(name),
        status=Status.ACTIVE,
        locale=locale,
        categories=categories,
        consent_at=utcnow(),
        consent_source=method,
    )
    session.add(subscriber)
    session.flush()
    record(session, subscriber, "subscribe", method)
    return subscriber


def unsubscribe(
    session: Session,
    subscriber: Subscriber,
    method: Method,
    *,
    issue_id: int | None = None,
    ip: str | None = None,
    user_agent: str | None = None,
    actor: str | None = None,
) -> bool:
    """Unsubscribe at once; True if this call changed anything (repeats are no-ops)."""
    if subscriber.status == Status.UNSUBSCRIBED:
        return False
    subscriber.status = Status.UNSUBSCRIBED
    subscriber.unsubscribed_at = utcnow()
    record(
        session,
        subscriber,
        "unsubscribe",
        method,
        issue_id=issue_id,
        ip=ip,
        user_agent=user_agent,
        actor=actor,
    )
    return True


def resubscribe(
    session: Session,
    subscriber: Subscriber,
    method: Method,
    *,
    issue_id: int | None = None,
    ip: str | None = None,
    user_agent: str | None = None,
) -> bool:
    """The person themselves coming back (from their own signed link); new consent recorded."""
    if subscriber.status == Status.ACTIVE and not subscriber.paused:
        return False
    subscriber.status = Status.ACTIVE
    subscriber.paused = False
    subscriber.unsubscribed_at = None
    subscriber.consent_at = utcnow()
    subscriber.consent_ip = ip
    subscriber.consent_user_agent = (user_agent or "")[:500] or None
    subscriber.consent_source = method
    record(
        session, subscriber, "resubscribe", method, issue_id=issue_id, ip=ip, user_agent=user_agent
    )
    return True


def set_paused(
    session: Session,
    subscriber: Subscriber,
    paused: bool,
    method: Method,
    *,
    issue_id: int | None = None,
) -> bool:
    if subscriber.paused == paused:
        return False
    subscriber.paused = paused
    record(session, subscriber, "pause" if paused else "resume", method, issue_id=issue_id)
    return True


def listing(session: Session, status: str | None = None) -> list[Subscriber]:
    """Subscribers in id order (never the tombstones of erased people)."""
    query = select(Subscriber).where(Subscriber.status != Status.ERASED).order_by(Subscriber.id)
    if status is not None:
        query = query.where(Subscriber.status == status)
    return list(session.scalars(query))


def page(
    session: Session,
    *,
    after: int = 0,
    limit: int = 100,
    status: str | None = None,
    locale: str | None = None,
    category: str | None = None,
    search: str | None = None,
    frequency: str | None = None,
    default_frequency: str = "weekly",
) -> list[Subscriber]:
    """Up to `limit` subscribers with an id above `after`, in id order (a keyset page: as fast
    on the thousandth page as on the first), never the tombstones of erased people.

    `category` keeps those who receive that category's posts (who chose it, or chose none,
    which means all); `frequency` those who receive that rhythm (no choice of their own means
    `default_frequency`); `search` is a piece of the address or the name, matched literally
    and in any case (`%`, `_` and backslashes are no wildcards)."""
    query = select(Subscriber).where(Subscriber.status != Status.ERASED, Subscriber.id > after)
    query = _filtered(session, query, status, locale, category, frequency, default_frequency)
    if search:
        pattern = "%" + re.sub(r"([\\%_])", r"\\\1", search.lower()) + "%"
        query = query.where(
            Subscriber.email_key.like(pattern, escape="\\")
            | func.lower(Subscriber.name).like(pattern, escape="\\")
        )
    return list(session.scalars(query.order_by(Subscriber.id).limit(limit)))


def by_address_prefix(
    session: Session,
    prefix: str,
    *,
    after: str | None = None,
    limit: int = 100,
    status: str | None = None,
    locale: str | None = None,
    category: str | None = None,
    frequency: str | None = None,
    default_frequency: str = "weekly",
) -> list[Subscriber]:
    """Up to `limit` subscribers whose address starts with `prefix` (in any case; every
    character literal), in address order after the address key `after` (a keyset page).

    The match is a range of the address index, `prefix <= key < successor(prefix)`, compared
    byte by byte (COLLATE "C" on PostgreSQL, with its own index from migration 0015), so a
    search reads only the rows it shows, at ten thousand subscribers as at a million."""
    low = address_key(prefix)
    key = Subscriber.email_key
    if session.get_bind().dialect.name == "postgresql":
        key = key.collate("C")  # type: ignore[assignment]
    query = select(Subscriber).where(key >= low, Subscriber.status != Status.ERASED)
    if low:
        query = query.where(key < low[:-1] + chr(ord(low[-1]) + 1))
    if after is not None:
        query = query.where(key > after)
    query = _filtered(session, query, status, locale, category, frequency, default_frequency)
    return list(session.scalars(query.order_by(key).limit(limit)))


def _filtered(
    session: Session,
    query: Select[Subscriber],
    status: str | None,
    locale: str | None,
    category: str | None,
    frequency: str | None,
    default_frequency: str,
) -> Select[Subscriber]:
    if status is not None:
        query = query.where(Subscriber.status == status)
    if locale is not None:
        query = query.where(Subscriber.locale == locale)
    if category is not None:
        query = query.where(_all_categories(session) | _has_category(session, category))
    if frequency is not None:
        chosen = Subscriber.frequency == frequency
        if frequency == default_frequency:
            chosen = chosen | Subscriber.frequency.is_(None)
        query = query.where(chosen)
    return query


def _all_categories(session: Session) -> ColumnElement[bool]:
    """No categories chosen: SQL NULL, or the JSON `null` a None is stored as."""
    postgresql = session.get_bind().dialect.name == "postgresql"
    kind = (func.json_typeof if postgresql else func.json_type)(Subscriber.categories)
    return Subscriber.categories.is_(None) | (kind == "null")


def _has_category(session: Session, category: str) -> ColumnElement[bool]:
    if session.get_bind().dialect.name == "postgresql":
        return cast(Subscriber.categories, JSONB).contains([category])
    each = func.json_each(Subscriber.categories).table_valued("value")
    return exists(select(1).select_from(each).where(each.c.value == category))


def counts(session: Session) -> dict[str, int]:
    rows = session.execute(
        select(Subscriber.status, func.count())
        .where(Subscriber.status != Status.ERASED)
        .group_by(Subscriber.status)
        .order_by(Subscriber.status)  # the same order on SQLite and PostgreSQL
    )
    return {status: count for status, count in rows}


def import_rows(
    session: Session, rows: Iterable[Row], report: ImportReport, *, path: Path | None = None
) -> None:
    """Apply validated rows; idempotent, never re-activates a suppressed subscriber, and never
    brings an erased one back (the row is reported as skipped). A new active subscriber's
    consent is the row's consent time (an export's opt-in or confirmation), else when they
    subscribed there, else now; the source says where it came from (`import:mailchimp`)."""
    for row in rows:
        if was_erased(session, row.email):
            where = f"{path}, line {row.line}" if path is not None else f"line {row.line}"
            report.problems.add(f"{where}: {row.email} was erased at their request; skipped")
            continue
        existing = find(session, row.email)
        if existing is None:
            now = utcnow()
            active = row.status == Status.ACTIVE
            subscriber = Subscriber(
                email=row.email,
                name=row.name,
                status=row.status,
                locale=row.locale,
                categories=row.categories,
                consent_at=(row.consent_at or row.subscribed_at or now) if active else None,
                consent_ip=row.consent_ip if active else None,
                consent_source=row.source,
                unsubscribed_at=now if row.status == Status.UNSUBSCRIBED else None,
            )
            session.add(subscriber)
            session.flush()
            since = row.subscribed_at or row.consent_at
            record(
                session,
                subscriber,
                "subscribe" if active else "import",
                "import",
                detail=f"status {row.status}"
                + (f", subscribed {since.isoformat()}" if since else "")
                + (f" ({row.source})" if row.source != "import" else ""),
            )
            report.added += 1
            continue
        if _merge(session, existing, row):
            report.updated += 1
        else:
            report.unchanged += 1


def _merge(session: Session, subscriber: Subscriber, row: Row) -> bool:
    changed = False
    for attribute, value in (
        ("name", row.name),
        ("locale", row.locale),
        ("categories", row.categories),
    ):
        if value and getattr(subscriber, attribute) != value:
            setattr(subscriber, attribute, value)
            changed = True
    if row.status in SUPPRESSED and subscriber.status not in SUPPRESSED:
        subscriber.status = row.status
        if row.status == Status.UNSUBSCRIBED:
            subscriber.unsubscribed_at = utcnow()
        kind = {Status.UNSUBSCRIBED: "unsubscribe", Status.BOUNCED: "bounce"}
        record(session, subscriber, kind.get(row.status, "complaint"), "import")
        changed = True
    # a row saying "active" never revives someone suppressed: their choice stands
    return changed


def insert_many(
    connection: Connection,
    people: Iterable[tuple[str, str, str | None]],
    *,
    batch: int = 10_000,
) -> int:
    """Insert active subscribers (email, name, locale) in batches of one executemany each;
    returns how many. For an audience the caller vouches for and has normalised (a benchmark,
    a move from another tool): no validation, no duplicate check, no events — `add` and
    `import_rows` do those, one row at a time. Memory stays one batch, whatever the count."""
    rows = iter(people)
    total = 0
    while chunk := list(islice(rows, batch)):
        now = utcnow()
        connection.execute(
            insert(Subscriber),
            [
                {
                    "email": email,
                    "email_key": address_key(email),
                    "name": name,
                    "status": Status.ACTIVE,
                    "locale": locale,
                    "paused": False,
                    "created_at": now,
                    "updated_at": now,
                }
                for email, name, locale in chunk
            ],
        )
        total += len(chunk)
    return total
