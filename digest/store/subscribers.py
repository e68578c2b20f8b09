"""Subscribers: adding, consent, status changes and their events, CSV import and export.

Every change of standing (subscribe, confirm, unsubscribe, resubscribe, pause...) is recorded as
an `Event` with its method and, when it came from an email, the issue. Nobody who unsubscribed,
bounced or complained is ever re-activated by an import or by the operator: only the person,
through their own preferences link or a new confirmed sign-up, can come back.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from email_validator import EmailNotValidError, validate_email
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from digest.errors import DigestError
from digest.store.tables import Event, Status, Subscriber, utcnow

CSV_COLUMNS = ("email", "name", "locale", "categories", "status")
LOCALES = ("zh", "en")
SUPPRESSED = frozenset({Status.UNSUBSCRIBED, Status.BOUNCED, Status.COMPLAINED})
Method = Literal["one-click", "link", "preferences", "cli", "import", "web", "smtp"]


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
    return session.scalar(select(Subscriber).where(Subscriber.email == email))


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
) -> None:
    session.add(
        Event(
            subscriber_id=subscriber.id if subscriber is not None else None,
            issue_id=issue_id,
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
    query = select(Subscriber).order_by(Subscriber.id)
    if status is not None:
        query = query.where(Subscriber.status == status)
    return list(session.scalars(query))


def counts(session: Session) -> dict[str, int]:
    rows = session.execute(select(Subscriber.status, func.count()).group_by(Subscriber.status))
    return {status: count for status, count in rows}


# -- CSV ----------------------------------------------------------------------------------------


@dataclass(slots=True)
class ImportReport:
    added: int = 0
    updated: int = 0
    unchanged: int = 0
    problems: list[str] = field(default_factory=list)

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
        if row.email in seen:
            problems.add(f"{path}, line {line}: {row.email} repeats line {seen[row.email]}")
            continue
        seen[row.email] = line
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
    except ValueError:
        known = ", ".join(s.value for s in Status)
        raise ValueError(f"status {raw_status[:20]!r} is not one of {known}") from None
    return Row(
        line=line,
        email=email,
        name=clean_name(values.get("name")),
        locale=locale,
        categories=parse_categories(values.get("categories")),
        status=status,
    )


def import_rows(session: Session, rows: Iterable[Row], report: ImportReport) -> None:
    """Apply validated rows; idempotent, and never re-activates a suppressed subscriber."""
    for row in rows:
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
