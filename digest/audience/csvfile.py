"""digest's own subscriber CSV: reading it as spreadsheets write it, and writing it.

Every bad row is named with its file and line and skipped; the good ones become `Row`s, which
`digest.store.subscribers.import_rows` applies. Limits keep one hostile or mistaken file from
using unbounded memory.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from dataclasses import dataclass, field
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


def export_csv(subscribers: Iterable[Subscriber], out: io.TextIOBase | io.StringIO) -> int:
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    count = 0
    for s in subscribers:
        writer.writerow([s.email, s.name, s.locale or "", ";".join(s.categories or []), s.status])
        count += 1
    return count
