"""Subscribers: adding, consent, status changes and their events, CSV import and export.

Every change of standing (subscribe, confirm, unsubscribe, resubscribe, pause...) is recorded as
an `Event` with its method and, when it came from an email, the issue. Nobody who unsubscribed,
bounced or complained is ever re-activated by an import or by the operator: only the person,
through their own preferences link or a new confirmed sign-up, can come back.

Addresses are compared by `address_key` (the whole address lower-cased) everywhere: `find`,
the CSV's duplicates, sign-up and its limits; they are stored as given. An erased person
(`erase`) leaves a tombstone and a hash of their address, and is never added again by an
import or the operator; only a sign-up they confirm themselves (fresh consent, as Mailchimp
lets a permanently deleted contact back through its form) brings them back, as a new row.
"""

from __future__ import annotations

import csv
import hashlib
import hmac
import io
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path
from typing import Literal

from email_validator import EmailNotValidError, validate_email
from sqlalchemy import Connection, func, insert, select, update
from sqlalchemy.orm import Session

from digest.errors import DigestError
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

CSV_COLUMNS = ("email", "name", "locale", "categories", "status")
LOCALES = ("zh", "en")
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
]


class InvalidAddress(ValueError):
    """An address email-validator rejects; the message says why, in one sentence."""


def normalise_email(raw: str) -> str:
    """A syntactically valid address with its domain lower-cased (no DNS lookups)."""
    candidate = raw.strip()
    if not candidate:
        raise InvalidAddress("the address is empty")
    if any(c in candidate for c in "\r\n"):
        raise InvalidAddress("the address contains a line break")
    try:
        valid = validate_email(candidate, check_deliverability=False)
    except EmailNotValidError as exc:
        raise InvalidAddress(str(exc).rstrip(".")) from None
    local, _, domain = valid.normalized.rpartition("@")
    return f"{local}@{domain.lower()}"


def clean_name(name: str | None) -> str:
    """A display name on one line (names reach headers: never a CR or LF)."""
    return " ".join((name or "").split())[:200]


def parse_categories(value: str | Sequence[str] | None) -> list[str] | None:
    """`a; b` or a list -> ["a", "b"]; empty -> None, which means every category."""
    if value is None:
        return None
    items = value.replace("|", ";").split(";") if isinstance(value, str) else list(value)
    cleaned = list(dict.fromkeys(" ".join(item.split()) for item in items if item.strip()))
    return cleaned or None


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


def erase(session: Session, subscriber: Subscriber) -> None:
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
    record(session, subscriber, "erase", "cli")


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
) -> None:
    session.add(
        Event(
            subscriber_id=subscriber.id if subscriber is not None else None,
            issue_id=issue_id,
            delivery_id=delivery_id,
            kind=kind,
            method=method,
            ip=ip,
            user_agent=(user_agent or "")[:500] or None,
            detail=detail,
        )
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
) -> bool:
    """Unsubscribe at once; True if this call changed anything (repeats are no-ops)."""
    if subscriber.status == Status.UNSUBSCRIBED:
        return False
    subscriber.status = Status.UNSUBSCRIBED
    subscriber.unsubscribed_at = utcnow()
    record(
        session, subscriber, "unsubscribe", method, issue_id=issue_id, ip=ip, user_agent=user_agent
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


def counts(session: Session) -> dict[str, int]:
    rows = session.execute(
        select(Subscriber.status, func.count())
        .where(Subscriber.status != Status.ERASED)
        .group_by(Subscriber.status)
        .order_by(Subscriber.status)  # the same order on SQLite and PostgreSQL
    )
    return {status: count for status, count in rows}


# -- CSV ----------------------------------------------------------------------------------------


@dataclass(slots=True)
class ImportReport:
    added: int = 0
    updated: int = 0
    unchanged: int = 0
    problems: CsvProblems = field(default_factory=lambda: CsvProblems())

    @property
    def total(self) -> int:
        return self.added + self.updated + self.unchanged


@dataclass(frozen=True, slots=True)
class Row:
    line: int
    email: str
    name: str
    locale: str | None
    categories: list[str] | None
    status: Status


# Limits that keep one hostile or mistaken file from using unbounded memory; real lists are far
# below them (a million subscribers is about 50 MB of CSV).
MAX_CSV_BYTES = 128 * 1024 * 1024
MAX_CSV_ROWS = 1_000_000
MAX_CSV_LINE = 8 * 1024  # characters in one line, and in one field
MAX_LISTED = 1000  # bad rows named one by one; the rest are counted
DELIMITERS = ",;\t|"


class CsvProblems(list[str]):
    """The bad rows of a file, the first MAX_LISTED named; `total` counts all of them."""

    def __init__(self) -> None:
        super().__init__()
        self.total = 0

    def add(self, problem: str) -> None:
        self.total += 1
        if len(self) < MAX_LISTED:
            self.append(problem)


def read_csv(path: Path) -> tuple[list[Row], CsvProblems]:
    """Parse and validate a subscriber CSV; every bad row is reported with its line number.

    Read as spreadsheets write it: UTF-8 with or without a BOM, LF or CRLF, quoted fields
    (with the delimiter or line breaks inside), and the delimiter found from the header
    (comma, semicolon, tab or bar: the one that makes an `email` column; else csv.Sniffer).
    A line longer than MAX_CSV_LINE is a bad row; a file over MAX_CSV_BYTES or with more
    than MAX_CSV_ROWS rows is refused before anything is imported.
    """
    text = _csv_text(path)
    delimiter = _delimiter(path, text)
    problems = CsvProblems()
    previous_limit = csv.field_size_limit(MAX_CSV_LINE)
    try:
        rows = _csv_rows(path, text, delimiter, problems)
    finally:
        csv.field_size_limit(previous_limit)
    return rows, problems


def _csv_text(path: Path) -> str:
    try:
        if path.exists() and not path.is_file():
            raise DigestError(f"{path}: not a regular file.")
        with path.open("rb") as handle:
            data = handle.read(MAX_CSV_BYTES + 1)
    except OSError as exc:
        raise DigestError(f"{path}: cannot read the file: {exc.strerror}.") from None
    if len(data) > MAX_CSV_BYTES:
        raise DigestError(
            f"{path}: the file is larger than {MAX_CSV_BYTES // (1024 * 1024)} MB; split it."
        )
    return data.decode("utf-8", errors="surrogateescape").removeprefix("\ufeff")


def _delimiter(path: Path, text: str) -> str:
    """The delimiter whose split of the first line has an `email` column."""
    first = io.StringIO(text, newline="").readline()[:MAX_CSV_LINE]
    if not first.strip():
        raise DigestError(f"{path}: the file is empty; it needs a header row.")
    for candidate in DELIMITERS:
        try:
            header = next(csv.reader([first], delimiter=candidate))
        except (csv.Error, StopIteration):
            continue
        if "email" in (h.strip().lower() for h in header):
            return candidate
    try:
        return csv.Sniffer().sniff(first, delimiters=DELIMITERS).delimiter
    except csv.Error:
        return ","


def _csv_rows(path: Path, text: str, delimiter: str, problems: CsvProblems) -> list[Row]:
    long_lines: dict[int, int] = {}

    def lines() -> Iterable[str]:
        for number, line in enumerate(io.StringIO(text, newline=""), start=1):
            if len(line) > MAX_CSV_LINE:
                long_lines[number] = len(line)
                yield "\n"  # an empty row in its place: the line numbers stay right
            else:
                yield line

    reader = csv.reader(lines(), delimiter=delimiter)
    try:
        header = next(reader)
    except StopIteration:
        raise DigestError(f"{path}: the file is empty; it needs a header row.") from None
    except csv.Error as exc:
        raise DigestError(f"{path}, line 1: {exc}.") from None
    columns = [h.strip().lower() for h in header]
    if "email" not in columns:
        shown = {",": "comma", ";": "semicolon", "\t": "tab", "|": "bar"}[delimiter]
        raise DigestError(
            f"{path}, line 1: the header has no email column (read as {shown}-separated)."
        )
    unknown = [c for c in columns if c not in CSV_COLUMNS]
    if unknown:
        raise DigestError(
            f"{path}, line 1: unknown column {unknown[0][:40]!r} (known: {', '.join(CSV_COLUMNS)})."
        )
    rows: list[Row] = []
    seen: dict[str, int] = {}
    count = 0
    while True:
        first = reader.line_num + 1
        try:
            fields = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            problems.add(f"{path}, line {reader.line_num}: {exc}")
            continue
        line = reader.line_num
        long = [n for n in range(first, line + 1) if n in long_lines] if long_lines else []
        if long:
            problems.add(
                f"{path}, line {long[0]}: longer than {MAX_CSV_LINE:,} characters "
                f"({long_lines[long[0]]:,}); the row is skipped"
            )
            continue
        if not any(f.strip() for f in fields):
            continue
        count += 1
        if count > MAX_CSV_ROWS:
            raise DigestError(
                f"{path}: more than {MAX_CSV_ROWS:,} rows; split the file (nothing was imported)."
            )
        try:
            row = _row(fields, columns, line)
        except ValueError as exc:
            problems.add(f"{path}, line {line}: {exc}")
            continue
        key = address_key(row.email)
        if key in seen:
            problems.add(f"{path}, line {line}: {row.email} repeats line {seen[key]}")
            continue
        seen[key] = line
        rows.append(row)
    return rows


def _row(fields: list[str], columns: list[str], line: int) -> Row:
    if any("\udc80" <= c <= "\udcff" for f in fields for c in f):
        raise ValueError("not valid UTF-8 (save the file as UTF-8)")
    if len(fields) < len(columns):
        missing = ", ".join(columns[len(fields) :])
        raise ValueError(f"missing column {missing} ({len(fields)} of {len(columns)} fields)")
    if len(fields) > len(columns):
        raise ValueError(f"{len(fields)} fields but the header has {len(columns)}")
    values = dict(zip(columns, (f.strip() for f in fields), strict=True))
    try:
        email = normalise_email(values["email"])
    except InvalidAddress as exc:
        raise ValueError(f"{values['email'][:100]!r} is not a valid address: {exc}") from None
    locale = values.get("locale") or None
    if locale is not None and locale not in LOCALES:
        raise ValueError(f"locale {locale[:20]!r} is not one of {', '.join(LOCALES)}")
    raw_status = (values.get("status") or Status.ACTIVE).lower()
    try:
        status = Status(raw_status)
        if status == Status.ERASED:
            raise ValueError
    except ValueError:
        known = ", ".join(s.value for s in Status if s != Status.ERASED)
        raise ValueError(f"status {raw_status[:20]!r} is not one of {known}") from None
    return Row(
        line=line,
        email=email,
        name=clean_name(values.get("name")),
        locale=locale,
        categories=parse_categories(values.get("categories")),
        status=status,
    )


def import_rows(
    session: Session, rows: Iterable[Row], report: ImportReport, *, path: Path | None = None
) -> None:
    """Apply validated rows; idempotent, never re-activates a suppressed subscriber, and never
    brings an erased one back (the row is reported as skipped)."""
    for row in rows:
        if was_erased(session, row.email):
            where = f"{path}, line {row.line}" if path is not None else f"line {row.line}"
            report.problems.add(f"{where}: {row.email} was erased at their request; skipped")
            continue
        existing = find(session, row.email)
        if existing is None:
            subscriber = Subscriber(
                email=row.email,
                name=row.name,
                status=row.status,
                locale=row.locale,
                categories=row.categories,
                consent_at=utcnow() if row.status == Status.ACTIVE else None,
                consent_source="import",
                unsubscribed_at=utcnow() if row.status == Status.UNSUBSCRIBED else None,
            )
            session.add(subscriber)
            session.flush()
            record(
                session,
                subscriber,
                "subscribe" if row.status == Status.ACTIVE else "import",
                "import",
                detail=f"status {row.status}",
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
        record(session, subscriber, str(row.status), "import")
        changed = True
    # a row saying "active" never revives someone suppressed: their choice stands
    return changed


def export_csv(subscribers: Iterable[Subscriber], out: io.TextIOBase | io.StringIO) -> int:
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    count = 0
    for s in subscribers:
        writer.writerow([s.email, s.name, s.locale or "", ";".join(s.categories or []), s.status])
        count += 1
    return count


def mask(email: str) -> str:
    """`z***g@example.com`: enough for the owner to recognise, little for anyone else."""
    local, _, domain = email.rpartition("@")
    if len(local) <= 2:
        shown = local[:1] + "*" * max(1, len(local) - 1)
    else:
        shown = local[0] + "*" * min(6, len(local) - 2) + local[-1]
    return f"{shown}@{domain}"


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
