"""The API's bodies as pydantic models: requests are validated by them, responses written
through them, and the OpenAPI document's schemas are generated from them, so what the API
says and what it does cannot drift apart."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

# no control characters (a NUL would also be refused by PostgreSQL), one line
TEXT = r"^[^\x00-\x1f\x7f]*$"
BIG = 2**53 - 1  # event positions: integers every JSON parser reads exactly
ROW_ID = 2**31 - 1  # subscribers' and issues' ids are 32-bit integers

StatusName = Literal["pending", "active", "unsubscribed", "bounced", "complained"]
Locale = Literal["zh", "en"]
Frequency = Literal["daily", "weekly", "monthly"]
Category = Annotated[str, Field(min_length=1, max_length=100, pattern=TEXT)]


class ErrorDetail(BaseModel):
    code: str = Field(description="A stable word: unauthorized, forbidden, not_found, gone, ...")
    message: str = Field(description="One sentence saying what is wrong.")


class Error(BaseModel):
    error: ErrorDetail


class Reason(BaseModel):
    """Why a subscriber receives nothing: their latest event of that kind."""

    kind: str
    method: str
    detail: str | None
    issue: str | None
    at: datetime


class Subscriber(BaseModel):
    id: int
    email: str
    name: str
    status: StatusName
    locale: str | None
    categories: list[str] = Field(description="Empty: every category.")
    frequency: str | None = Field(description="None: the site's own rhythm.")
    paused: bool
    created_at: datetime
    consent_at: datetime | None
    consent_source: str | None
    reason: Reason | None


class SubscriberPage(BaseModel):
    data: list[Subscriber]
    next_after: int | None = Field(description="Pass as `after` for the next page; null: done.")


class SubscriberChange(BaseModel):
    """What to set; a field left out stays as it is."""

    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(default=None, max_length=200, pattern=TEXT)
    locale: Locale | None = None
    categories: list[Category] | None = Field(
        default=None, max_length=50, description="An empty list: every category."
    )
    frequency: Frequency | None = Field(
        default=None, description="One of the site's rhythms (schedule.frequencies)."
    )
    confirmed: bool = Field(
        default=False,
        description="Add them as already confirmed (you vouch for their consent): only a "
        "token made with --allow-confirmed may. Otherwise a new or pending address gets "
        "the confirmation mail (double opt-in).",
    )


class Upserted(BaseModel):
    subscriber: Subscriber
    created: bool
    changes: list[str]
    confirmation_sent: bool = Field(description="A confirmation mail goes out after this answer.")
    note: str


class Removed(BaseModel):
    subscriber: Subscriber | None = Field(description="Null once erased.")
    changed: bool
    erased: bool


class PostClicks(BaseModel):
    """One post of an issue and its followed links (`tracking.clicks`): people, and robots
    (HEAD requests, prefetches, scanners right after delivery) counted apart."""

    link: int
    title: str
    url: str
    human: int
    robot: int


class IssueReport(BaseModel):
    """The same figures as `digest report --json`, with the issue's id."""

    id: int
    key: str
    status: str
    created_at: datetime
    posts: int
    recipients: int
    deliveries: dict[str, int]
    unsubscribes: dict[str, int]
    unsubscribes_total: int
    returned: dict[str, int]
    paused_reason: str | None
    workers: dict[str, int]
    bounce_rate: float | None = None
    complaint_rate: float | None = None
    clicks: list[PostClicks] = Field(
        default_factory=list, description="Clicks per post; empty while tracking is off."
    )


class IssuePage(BaseModel):
    data: list[IssueReport]
    next_before: int | None = Field(description="Pass as `before` for older issues; null: done.")


class Post(BaseModel):
    id: str
    title: str
    url: str
    date: datetime | None
    categories: list[str]
    excerpt: str


class NextIssue(BaseModel):
    key: str = Field(description="The period key the issue would have, as of now.")
    frequency: str
    posts: list[Post] = Field(description="The posts with a block in the digest.")
    more: list[Post] = Field(description="New posts named in its 'more posts' line.")


class Event(BaseModel):
    id: int = Field(description="The event's position in the log: the feed's cursor.")
    kind: str
    method: str
    created_at: datetime
    subscriber_id: int | None
    email: str | None = Field(description="Null once the person is erased.")
    issue: str | None = Field(description="The key of the issue it came from, if any.")
    delivery_id: int | None
    actor: str | None = Field(description="Who did it when not the person: token:NAME, ...")
    detail: str | None


class EventPage(BaseModel):
    data: list[Event]
    next_after: int = Field(description="Pass as `after` next time (the last id seen).")
