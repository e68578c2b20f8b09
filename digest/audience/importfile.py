"""Importing a CSV file, for `digest subscribers import` and the desk alike: recognise the
format (digest's own or another service's export), apply the good rows in one transaction,
and say what happened to every bad row (its line and why) and every row left out."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from digest.audience.csvfile import ImportReport, Parsed
from digest.audience.imports import read
from digest.store import subscribers as people
from digest.store.database import Database


@dataclass(frozen=True, slots=True)
class Imported:
    shape: str  # "digest", "mailchimp", ...
    report: ImportReport  # counts, and every problem (the parser's and the import's)
    parsed: Parsed

    @property
    def skipped(self) -> int:
        """Bad rows, those named and those only counted."""
        problems = self.parsed.problems
        return len(self.report.problems) + problems.total - len(problems)


def import_file(database: Database, path: Path, *, shown: str | None = None) -> Imported:
    """Import `path`; problems name it as `shown` (default: the path)."""
    shape, parsed = read(path)
    report = ImportReport(problems=parsed.problems)
    with database.session() as session:
        people.import_rows(session, parsed.rows, report, path=Path(shown) if shown else path)
    return Imported(shape, report, parsed)
