"""Subscriber files: reading a CSV as spreadsheets write it (digest's own columns here, other
services' exports through `digest.audience.imports`), and writing digest's own.

Every bad row is named with its file and line and skipped; the good ones become `Row`s, which
`digest.store.subscribers.import_rows` applies. Limits keep one hostile or mistaken file from
using unbounded memory.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from digest.audience.addresses import (
    LOCALES,
    InvalidAddress,
    clean_name,
    normalise_email,
    parse_categories,
)
from digest.errors import DigestError
from digest.store.tables import Status, Subscriber, address_key

CSV_COLUMNS = ("email", "name", "locale", "categories", "status")


@dataclass(frozen=True, slots=True)
class Row:
    """One person to import, validated. Times come from another service's export (its consent
    or opt-in time, and when they subscribed there); `source` is the consent source recorded."""

    line: int
    email: str
    name: str
    locale: str | None
    categories: list[str] | None
    status: Status
    consent_at: datetime | None = None
    consent_ip: str | None = None
    subscribed_at: datetime | None = None
    source: str = "import"


@dataclass(frozen=True, slots=True)
class LeftOut:
    """A well-formed row deliberately not imported (a deletion request, an address the other
    service blocked as spam...): named in the output, not an error."""

    reason: str


# A row maker turns one row's values (header name lower-cased -> the cell, trimmed) into a Row,
# or says why it is left out; a ValueError is a bad row, its message names what is wrong.
RowMaker = Callable[[dict[str, str], int], Row | LeftOut]


class CsvProblems(list[str]):
    """The bad rows of a file, the first MAX_LISTED named; `total` counts all of them."""

    def __init__(self) -> None:
        super().__init__()
        self.total = 0

    def add(self, problem: str) -> None:
        self.total += 1
        if len(self) < MAX_LISTED:
            self.append(problem)


@dataclass(slots=True)
class ImportReport:
    added: int = 0
    updated: int = 0
    unchanged: int = 0
    problems: CsvProblems = field(default_factory=CsvProblems)

    @property
    def total(self) -> int:
        return self.added + self.updated + self.unchanged


@dataclass(slots=True)
class Parsed:
    """What a file held: the good rows, the bad ones named, the ones left out named."""

    rows: list[Row] = field(default_factory=list)
    problems: CsvProblems = field(default_factory=CsvProblems)
    left_out: CsvProblems = field(default_factory=CsvProblems)


# Limits that keep one hostile or mistaken file from using unbounded memory; real lists are far
# below them (a million subscribers is about 50 MB of CSV).
MAX_CSV_BYTES = 128 * 1024 * 1024
MAX_CSV_ROWS = 1_000_000
MAX_CSV_LINE = 8 * 1024  # characters in one line, and in one field
MAX_LISTED = 1000  # bad rows named one by one; the rest are counted
DELIMITERS = ",;\t|"
EMAIL_HEADERS = ("email", "email address", "email_address")  # digest, Mailchimp, Buttondown


def read_csv(path: Path) -> tuple[list[Row], CsvProblems]:
    """Parse and validate digest's own subscriber CSV (`CSV_COLUMNS`); every bad row is
    reported with its line number. `digest.audience.imports.read` also recognises the
    exports of other services."""
    parsed = read_rows(path, own_format)
    return parsed.rows, parsed.problems


def read_rows(path: Path, choose: Callable[[Path, list[str], str], RowMaker]) -> Parsed:
    """Read a subscriber file and make each row with the maker `choose` picks from the header.

    Read as spreadsheets write it: UTF-8 with or without a BOM, LF or CRLF, quoted fields
    (with the delimiter or line breaks inside), and the delimiter found from the header
    (comma, semicolon, tab or bar: the one that makes an email column; else csv.Sniffer).
    A line longer than MAX_CSV_LINE is a bad row, as is an address repeated from an earlier
    line; a file over MAX_CSV_BYTES or with more than MAX_CSV_ROWS rows is refused before
    anything is imported. `choose` raises DigestError for a header it cannot read.
    """
    text = _csv_text(path)
    delimiter = _delimiter(path, text)
    parsed = Parsed()
    previous_limit = csv.field_size_limit(MAX_CSV_LINE)
    try:
        _csv_rows(path, text, delimiter, choose, parsed)
    finally:
        csv.field_size_limit(previous_limit)
    return parsed


def own_format(path: Path, columns: list[str], delimiter: str) -> RowMaker:
    """digest's own columns (`CSV_COLUMNS`), or a one-sentence error naming the problem."""
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
    return _own_row


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
    """The delimiter whose split of the first line has an email column."""
    first = io.StringIO(text, newline="").readline()[:MAX_CSV_LINE]
    if not first.strip():
        raise DigestError(f"{path}: the file is empty; it needs a header row.")
    for candidate in DELIMITERS:
        try:
            header = next(csv.reader([first], delimiter=candidate))
        except (csv.Error, StopIteration):
            continue
        if any(h.strip().lower() in EMAIL_HEADERS for h in header):
            return candidate
    try:
        return csv.Sniffer().sniff(first, delimiters=DELIMITERS).delimiter
    except csv.Error:
        return ","


def _csv_rows(
    path: Path,
    text: str,
    delimiter: str,
    choose: Callable[[Path, list[str], str], RowMaker],
    parsed: Parsed,
) -> None:
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
    make = choose(path, columns, delimiter)
    problems = parsed.problems
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
            made = make(_values(fields, columns), line)
        except ValueError as exc:
            problems.add(f"{path}, line {line}: {exc}")
            continue
        if isinstance(made, LeftOut):
            parsed.left_out.add(f"{path}, line {line}: {made.reason}")
            continue
        key = address_key(made.email)
        if key in seen:
            problems.add(f"{path}, line {line}: {made.email} repeats line {seen[key]}")
            continue
        seen[key] = line
        parsed.rows.append(made)


def _values(fields: list[str], columns: list[str]) -> dict[str, str]:
    """The row as header name -> trimmed cell; a ValueError for a row that does not fit."""
    if any("\udc80" <= c <= "\udcff" for f in fields for c in f):
        raise ValueError("not valid UTF-8 (save the file as UTF-8)")
    if len(fields) < len(columns):
        missing = ", ".join(columns[len(fields) :])
        raise ValueError(f"missing column {missing} ({len(fields)} of {len(columns)} fields)")
    if len(fields) > len(columns):
        raise ValueError(f"{len(fields)} fields but the header has {len(columns)}")
    return dict(zip(columns, (f.strip() for f in fields), strict=True))


def address(value: str) -> str:
    """The cell as a normalised address; a ValueError naming it when it is not one."""
    try:
        return normalise_email(value)
    except InvalidAddress as exc:
        raise ValueError(f"{value[:100]!r} is not a valid address: {exc}") from None


def _own_row(values: dict[str, str], line: int) -> Row:
    email = address(values["email"])
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


def export_csv(subscribers: Iterable[Subscriber], out: io.TextIOBase | io.StringIO) -> int:
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    count = 0
    for s in subscribers:
        writer.writerow([s.email, s.name, s.locale or "", ";".join(s.categories or []), s.status])
        count += 1
    return count
