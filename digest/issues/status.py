"""How things stand, for `digest status`: the latest issues, the next runs, who is sending
(the send lease and every live worker), deferred retries, the audience, the posts waiting and
this machine's outcome journals (replies a sender kept while the database was away).

Assembled here, read in one go, so the command only prints it (as text or JSON).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from digest.config.schema import Config
from digest.config.stages import issue_settings
from digest.delivery.journal import Found, survey
from digest.issues.upcoming import next_issue
from digest.store import lease, ledger
from digest.store import subscribers as people
from digest.store.database import Database
from digest.store.report import IssueReport, LiveWorker, live_workers, reports


@dataclass(frozen=True, slots=True)
class Unfinished:
    key: str
    status: str
    reason: str | None


@dataclass(slots=True)
class Status:
    latest: list[IssueReport]
    next_runs: dict[str, datetime]
    holder: lease.Holder | None
    workers: list[LiveWorker]
    unfinished: list[Unfinished]
    deferred: list[ledger.Deferred]
    audience: dict[str, int]
    posts_waiting: int
    source_failures: list[str] = field(default_factory=list)
    journals: list[Found] = field(default_factory=list)

    @property
    def waiting(self) -> int:
        """Deferred deliveries, all issues together."""
        return sum(d.count for d in self.deferred)

    @property
    def next_retry(self) -> datetime | None:
        return min((d.next_attempt_at for d in self.deferred), default=None)

    def as_json(self) -> dict[str, Any]:
        holder, first, retry = self.holder, self.unfinished[:1], self.next_retry
        return {
            "issues": [r.as_json() for r in self.latest],
            "next_runs": {f: moment.isoformat() for f, moment in self.next_runs.items()},
            "lease": {
                "holder": holder.name,
                "since": holder.since.isoformat(),
                "expires_at": holder.expires_at.isoformat(),
            }
            if holder
            else None,
            "workers": [
                {
                    "name": w.name,
                    "since": w.started_at.isoformat(),
                    "expires_at": w.expires_at.isoformat(),
                }
                for w in self.workers
            ],
            "posts_waiting": self.posts_waiting,
            "unfinished": {
                "key": first[0].key,
                "status": first[0].status,
                "reason": first[0].reason,
            }
            if first
            else None,
            "deferred": {
                "count": self.waiting,
                "next_retry": retry.isoformat() if retry else None,
                "issues": {d.key: d.count for d in self.deferred},
            },
            "subscribers": self.audience,
            "source_failures": self.source_failures,
            "journals": [
                {
                    "path": str(j.path),
                    "worker": j.worker,
                    "outcomes": j.outcomes,
                    "unbegun": j.unbegun,
                    "unknown": j.unknown,
                    "state": j.state,
                }
                for j in self.journals
            ],
        }


def current_status(config: Config, database: Database) -> Status:
    """Everything `digest status` shows, as of now."""
    from digest.issues.schedule import next_runs

    with database.session() as session:
        latest = reports(session, limit=5)
        workers = live_workers(session)
        open_issues = ledger.unfinished_issues(session)
        deferred = ledger.deferred(session, [i.id for i in open_issues])
        unfinished = [Unfinished(i.key, i.status, i.paused_reason) for i in open_issues]
        audience = people.counts(session)
    gathered = next_issue(issue_settings(config), database, excerpts="none")  # it counts them only
    return Status(
        latest=latest,
        next_runs=next_runs(config, database),
        holder=lease.current_holder(database, lease.SEND_LEASE),
        workers=workers,
        unfinished=unfinished,
        deferred=deferred,
        audience=audience,
        posts_waiting=len(gathered.new),
        source_failures=list(gathered.source.failures),
        journals=survey(config.path(config.state_dir), database),
    )
