"""The desk's first page, assembled in one place: readers by status, the audience's growth
day by day, the latest issues' figures (through the rates of digest.store.report), the next
run and what it would carry, and the warnings that need the owner.

Warnings (each a code and its values, worded by whoever shows them):
- `unsettled`: an issue has deferred or unknown deliveries;
- `bounce-rate`: one of the latest issues bounced over `BOUNCE_LIMIT` (2 %);
- `complaint-rate`: one drew complaints over `COMPLAINT_LIMIT` (0.1 %, Gmail's advice;
  its hard limit, 0.3 %, is the line drawn on the chart);
- `unclassified`: returned mail in the last `RECENT` that no rule could classify;
- `missed`: a scheduled run's time passed more than `schedule.misfire_grace_hours` ago and
  the scheduler did not run it (none is running, or it is stuck);
- `source`: a source could not be read.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from digest.config.schema import Config
from digest.config.stages import issue_settings
from digest.issues.upcoming import next_issue
from digest.store import desk, lease
from digest.store import subscribers as people
from digest.store.database import Database
from digest.store.report import IssueReport, reports
from digest.store.tables import Status

DAYS = 90
ISSUES = 12
BOUNCE_LIMIT = 0.02
COMPLAINT_LIMIT = 0.001
COMPLAINT_LINE = 0.003  # Gmail's and Yahoo's limit (February 2024 sender requirements)
RECENT = timedelta(days=30)


@dataclass(frozen=True, slots=True)
class Day:
    day: str  # ISO date, UTC
    joins: int
    leaves: int
    active: int  # active readers at the end of the day


@dataclass(frozen=True, slots=True)
class Warning:
    code: str
    values: dict[str, Any]


@dataclass(slots=True)
class Overview:
    readers: dict[str, int]
    growth: list[Day]
    issues: list[IssueReport]  # oldest first
    next_runs: dict[str, datetime]
    posts_waiting: int
    held: int
    sending: lease.Holder | None
    warnings: list[Warning] = field(default_factory=list)


def growth(readers_now: int, changes: dict[str, tuple[int, int]], today: datetime) -> list[Day]:
    """`DAYS` days up to `today`, the active total of each computed back from today's count
    through each day's joins and leaves (never below zero)."""
    days: list[Day] = []
    active = readers_now
    for back in range(DAYS):
        day = (today - timedelta(days=back)).date().isoformat()
        joins, leaves = changes.get(day, (0, 0))
        days.append(Day(day, joins, leaves, max(active, 0)))
        active = active - joins + leaves
    return days[::-1]


def overview(config: Config, database: Database, now: datetime | None = None) -> Overview:
    from digest.issues.schedule import next_runs, stored_next_runs

    now = now or datetime.now(UTC)
    with database.session() as session:
        readers = people.counts(session)
        changes = desk.daily_changes(session, now - timedelta(days=DAYS))
        latest = reports(session, limit=ISSUES)
        unsettled = desk.unsettled(session)
        unclassified = desk.returned_since(session, desk.UNCLASSIFIED, now - RECENT)
    gathered = next_issue(issue_settings(config), database, now=now)
    result = Overview(
        readers=readers,
        growth=growth(readers.get(Status.ACTIVE, 0), changes, now),
        issues=latest[::-1],
        next_runs=next_runs(config, database),
        posts_waiting=len(gathered.new),
        held=sum(1 for c in gathered.candidates if c.status in ("held", "held-always")),
        sending=lease.current_holder(database, lease.SEND_LEASE),
    )
    warnings = result.warnings
    for item in unsettled:
        values = {"issue": item.key, "deferred": item.deferred, "unknown": item.unknown}
        warnings.append(Warning("unsettled", values))
    for report in latest[:5]:
        if (report.bounce_rate or 0) > BOUNCE_LIMIT:
            warnings.append(
                Warning("bounce-rate", {"issue": report.key, "rate": report.bounce_rate})
            )
        if (report.complaint_rate or 0) > COMPLAINT_LIMIT:
            values = {"issue": report.key, "rate": report.complaint_rate}
            warnings.append(Warning("complaint-rate", values))
    if unclassified:
        warnings.append(Warning("unclassified", {"count": unclassified}))
    grace = timedelta(hours=config.schedule.misfire_grace_hours)
    for job, due in stored_next_runs(database).items():
        if due < now - grace:
            warnings.append(Warning("missed", {"job": job, "due": due}))
    for failure in gathered.source.failures:
        warnings.append(Warning("source", {"reason": failure}))
    return result
