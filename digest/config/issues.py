"""What reading the next issue takes from the configuration (digest.issues.upcoming).

It lives in digest.config, not beside digest.issues.upcoming, because digest.issues sits above
digest.config (the layers of pyproject.toml) and the snapshot here builds and reads it.

Built from a `Config` by digest.config.stages.issue_settings, or read back from the snapshot a
validated configuration left (digest.config.snapshot), so that `digest posts` can read the next
issue without validating the configuration again. Standard library only.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from zoneinfo import ZoneInfo

from digest.sources.settings import SourceSettings


@dataclass(frozen=True, slots=True, kw_only=True)
class IssueSettings:
    """The sources (resolved), `digest.max_posts`, `digest.lookback_days` and
    `digest.first_issue`, the site's `timezone` (dates in sentences), the main
    `frequency` (`schedule.frequency`) and the `schedule_timezone` issues are keyed in."""

    sources: SourceSettings
    max_posts: int = 12
    lookback_days: int = 30
    first_issue: date | int | None = None
    timezone: str = "UTC"
    frequency: str = "weekly"
    schedule_timezone: str = "UTC"

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @property
    def schedule_tz(self) -> ZoneInfo:
        return ZoneInfo(self.schedule_timezone)
