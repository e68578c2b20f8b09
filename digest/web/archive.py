"""Past issues as the web pages see them: a small read-only interface the database plugs into.

`DatabaseArchive` reads the issues table; `MemoryArchive` holds a fixed list (tests, and a
preview without a database). Anything with these three methods can serve.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from html import escape
from typing import Any, Protocol

from sqlalchemy.orm import Session
from starlette.exceptions import HTTPException
from starlette.requests import Request

from digest.config.schema import Config
from digest.config.stages import render_settings
from digest.models import CLICK_PLACEHOLDER
from digest.store.database import Database
from digest.store.ledger import edition_of, issue_by_key, issues_page, unfiltered_variant
from digest.store.tables import Issue

_PAGE_NUMBER = re.compile(r"[0-9]{1,6}")


@dataclass(frozen=True, slots=True)
class ArchivedIssue:
    """One issue as it was created: its period key, subject, creation time and content."""

    key: str
    subject: str
    created: datetime
    html: str
    text: str
    posts: tuple[tuple[str, str], ...] = ()  # (title, the original post's URL)


def with_post_links(content: str, issue: Issue, *, markup: bool) -> str:
    """`content` with each personal click link's placeholder (`tracking.clicks: personal`)
    back to the original post's URL (HTML-escaped in `markup`): the archive names no one."""

    def original(match: re.Match[str]) -> str:
        link = int(match.group(1))
        url = (_original_url(issue.posts[link]) if link < len(issue.posts) else None) or "#"
        return escape(url) if markup else url

    return CLICK_PLACEHOLDER.sub(original, content)


def original_posts(issue: Issue) -> tuple[tuple[str, str], ...]:
    """The issue's posts as (title, URL), links to the blog itself (never a click link)."""
    found = []
    for post in issue.posts:
        title, url = str(post.get("title") or ""), _original_url(post)
        if title and url:
            found.append((title, url))
    return tuple(found)


def _original_url(post: dict[str, Any]) -> str | None:
    """A stored post's own URL when it is an http(s) link to the blog, else None."""
    url = str(post.get("url") or "")
    return url if url.startswith(("http://", "https://")) else None


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

    @classmethod
    def requested(cls, request: Request, size: int, total: int) -> Pagination:
        """The page `?page=N` asks for: 400 when N is not a number, 404 beyond the last."""
        raw = request.query_params.get("page", "1")
        if not _PAGE_NUMBER.fullmatch(raw):
            raise HTTPException(400)
        pagination = cls(number=int(raw), size=size, total=total)
        if not pagination.exists():
            raise HTTPException(404)
        return pagination

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


class DatabaseArchive:
    """An `IssueArchive` over the issues table: each issue as stored when it was sent.

    An issue shows its stored variant in the site's locale without a category filter (what
    everyone without preferences received); failing that, an unfiltered variant in the other
    locale; failing that (nobody received it unfiltered), its post snapshot rendered afresh.
    """

    def __init__(self, database: Database, config: Config) -> None:
        self.database = database
        self.config = config

    def count(self) -> int:
        with self.database.session() as session:
            total, _ = issues_page(session, 1, 1)
        return total

    def page(self, number: int, size: int) -> list[ArchivedIssue]:
        if number < 1 or size < 1:
            return []
        with self.database.session() as session:
            _, issues = issues_page(session, number, size)
            return [self._archived(session, issue) for issue in issues]

    def get(self, key: str) -> ArchivedIssue | None:
        with self.database.session() as session:
            issue = issue_by_key(session, key)
            return None if issue is None else self._archived(session, issue)

    def _archived(self, session: Session, issue: Issue) -> ArchivedIssue:
        site_locale = self.config.site.locale
        rendered = unfiltered_variant(session, issue, site_locale)
        if rendered is None:
            from digest.render.edition import render

            rendered = render(render_settings(self.config), edition_of(issue), site_locale)
        return ArchivedIssue(
            key=issue.key,
            subject=rendered.subject,
            created=issue.created_at,
            html=with_post_links(rendered.html, issue, markup=True),
            text=with_post_links(rendered.text, issue, markup=False),
            posts=original_posts(issue),
        )
