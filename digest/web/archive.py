"""Past issues as the web pages see them: a small read-only interface the database plugs into.

The database does not exist yet; until it does, the preview app uses an `IssueArchive` held in
memory (empty by default). Anything with these three methods can replace it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol


@dataclass(frozen=True, slots=True)
class ArchivedIssue:
    """One issue as it was created: its period key, subject, creation time and content."""

    key: str
    subject: str
    created: datetime
    html: str
    text: str


class IssueArchive(Protocol):
    """Read-only access to past issues, newest first."""

    def count(self) -> int:
        """How many issues there are."""
        ...

    def page(self, number: int, size: int) -> list[ArchivedIssue]:
        """Page `number` (1-based) of `size` issues, newest first; empty beyond the last page."""
        ...

    def get(self, key: str) -> ArchivedIssue | None:
        """The issue with this key, or None."""
        ...


class MemoryArchive:
    """An `IssueArchive` over a fixed list of issues."""

    def __init__(self, issues: Iterable[ArchivedIssue] = ()) -> None:
        self._issues = sorted(issues, key=lambda issue: issue.created, reverse=True)
        self._by_key = {issue.key: issue for issue in self._issues}

    def count(self) -> int:
        return len(self._issues)

    def page(self, number: int, size: int) -> list[ArchivedIssue]:
        if number < 1 or size < 1:
            return []
        start = (number - 1) * size
        return self._issues[start : start + size]

    def get(self, key: str) -> ArchivedIssue | None:
        return self._by_key.get(key)


@dataclass(frozen=True, slots=True)
class Pagination:
    """Where one page of a list sits among all pages: numbers for the links between them."""

    number: int
    size: int
    total: int

    @property
    def pages(self) -> int:
        """How many pages there are; an empty list still has page 1."""
        return max(1, -(-self.total // self.size))

    @property
    def previous(self) -> int | None:
        return self.number - 1 if self.number > 1 else None

    @property
    def next(self) -> int | None:
        return self.number + 1 if self.number < self.pages else None

    @property
    def numbers(self) -> list[int | None]:
        """Page numbers to link: the first, the last and those near this one; None is a gap."""
        near = {1, self.pages, *range(self.number - 2, self.number + 3)}
        shown = sorted(n for n in near if 1 <= n <= self.pages)
        numbers: list[int | None] = []
        for n in shown:
            if numbers and n - (numbers[-1] or 0) > 1:
                numbers.append(None)
            numbers.append(n)
        return numbers

    def exists(self) -> bool:
        return 1 <= self.number <= self.pages
