"""Plain data passed along the pipeline; imports nothing of the package (DESIGN.md section 5)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

BodyFormat = Literal["markdown", "html"]


@dataclass(frozen=True, slots=True)
class Post:
    """One blog post as a source read it, before any decision about newsletters.

    `body` is Markdown for folder posts and sanitised HTML for feed entries (`body_format`);
    `summary` is the author's own excerpt (front matter or feed summary), if any.
    `publish_date` and `expiry_date` are Hugo's publishDate and expiryDate: before the one and
    after the other the blog does not show the post, so it is not new.
    """

    id: str
    title: str
    url: str
    date: datetime | None
    body: str
    body_format: BodyFormat = "markdown"
    summary: str | None = None
    updated: datetime | None = None
    categories: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()
    cover: str | None = None
    cover_alt: str | None = None
    draft: bool = False
    newsletter: bool = True
    source: str = ""
    publish_date: datetime | None = None
    expiry_date: datetime | None = None
    math: bool | None = None  # the post's own math switch (front matter `math: true`), if any

    @property
    def category(self) -> str | None:
        """The category shown in the digest's meta line: the first one."""
        return self.categories[0] if self.categories else None

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready snapshot (an issue stores its posts this way)."""
        data = {name: getattr(self, name) for name in self.__dataclass_fields__}
        for key in _DATES:
            data[key] = data[key].isoformat() if data[key] is not None else None
        data["categories"] = list(self.categories)
        data["tags"] = list(self.tags)
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Post:
        values = dict(data)
        for key in _DATES:
            values[key] = datetime.fromisoformat(values[key]) if values.get(key) else None
        values["categories"] = tuple(values.get("categories") or ())
        values["tags"] = tuple(values.get("tags") or ())
        return cls(**{k: v for k, v in values.items() if k in cls.__dataclass_fields__})


_DATES = ("date", "updated", "publish_date", "expiry_date")


@dataclass(frozen=True, slots=True)
class Problem:
    """Something a source had to skip, reported to the user instead of failing the run."""

    where: str
    reason: str

    def __str__(self) -> str:
        return f"{self.where}: {self.reason}"


@dataclass(slots=True)
class SourceResult:
    """Posts read from every configured source, plus what had to be skipped or failed."""

    posts: list[Post] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)


PostStatus = Literal[
    "new",
    "sent",
    "draft",
    "opted-out",
    "future",
    "expired",
    "too-old",
    "before-start",
    "held",  # left out of the next issue by the owner (new again in the one after)
    "held-always",  # left out of every issue by the owner
]


def own_status(post: Post, now: datetime) -> PostStatus:
    """What a post's own front matter says of it at `now`, whatever was sent: a draft, opted
    out of newsletters, expired (Hugo's expiryDate), future (its publishDate or date), else
    new. `digest init` counts a blog's posts by it; the selection adds what was sent and
    how old a post may be (digest.issues.select.status_of)."""
    if post.draft:
        return "draft"
    if not post.newsletter:
        return "opted-out"
    if post.expiry_date is not None and post.expiry_date <= now:
        return "expired"
    if post.publish_date is not None and post.publish_date > now:
        return "future"
    if post.date is not None and post.date > now:
        return "future"
    return "new"


@dataclass(frozen=True, slots=True)
class Candidate:
    """A post with the selection's verdict on it, so `digest posts --all` can say why, and
    its excerpt when the command that read it shows it (None: not made; see
    digest.issues.upcoming.gather)."""

    post: Post
    status: PostStatus
    excerpt: str | None = None


# Per-recipient placeholders left in a rendered issue. They look like URLs with their own
# scheme so that CSS inlining and link absolutising leave them alone, and they are plain
# ASCII so that personalising is a byte replacement, never a second render.
UNSUBSCRIBE_URL = "x-digest:unsubscribe-url"
PREFERENCES_URL = "x-digest:preferences-url"
GREETING = "x-digest:greeting"
PLACEHOLDERS = (UNSUBSCRIBE_URL, PREFERENCES_URL, GREETING)
# A post's link with `tracking.clicks: personal`: CLICK_URL and the link's index among the
# issue's posts (`click_url`), replaced per recipient by a `/c/TOKEN` naming their delivery.
CLICK_URL = "x-digest:click-"
CLICK_PLACEHOLDER = re.compile(r"x-digest:click-([0-9]+)")


def click_url(link: int) -> str:
    """The placeholder of the post link `link` (its index among the issue's posts)."""
    return f"{CLICK_URL}{link}"


@dataclass(frozen=True, slots=True)
class Edition:
    """What one digest covers: its period key, when it was made, and its posts newest first.

    Every post here is covered by the issue; the digest shows the first `max_posts` of them and
    an overflow line for the rest.
    """

    key: str
    date: datetime
    posts: tuple[Post, ...]
    note: str = ""  # the editor's note (Markdown), shown above the posts in both parts


@dataclass(frozen=True, slots=True)
class Rendered:
    """One locale's rendering of an edition, with placeholders for per-recipient values."""

    locale: str
    subject: str
    preheader: str
    html: str
    text: str
    mjml: str
    greeting_named: str
    greeting_anonymous: str


@dataclass(frozen=True, slots=True)
class Recipient:
    """A subscriber as the send path needs them: no ORM object crosses into delivery."""

    delivery_id: int
    subscriber_id: int
    email: str
    name: str
    locale: str | None
    categories: tuple[str, ...] | None
    attempts: int = 0  # earlier attempts of this delivery (a deferred one is retried)
    deferred_since: datetime | None = None  # its first temporary failure, for retry_hours
    token_key: str | None = None  # what their links are bound to (digest.tokens)
