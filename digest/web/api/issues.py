"""`/api/v1/issues`: the issues, newest first, each with its report (the same figures as
`digest report --json`: digest.store.report), one issue's report, and the next issue's posts
(digest.issues.upcoming, as `digest posts` reads them)."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from digest.config.stages import issue_settings
from digest.issues.select import period_key
from digest.issues.upcoming import next_issue
from digest.models import Candidate
from digest.store import ledger
from digest.store.report import issue_report, recent_issues
from digest.store.tables import Issue
from digest.web.api import schemas
from digest.web.api.auth import require
from digest.web.api.errors import ApiError
from digest.web.api.spec import Operation, Query, limit
from digest.web.api.subscribers import answer
from digest.web.site import Site

BEFORE = Query(
    "before", "Only issues older than this id (the previous page's next_before).", "integer",
    1, schemas.ROW_ID,
)  # fmt: skip
PAGE = (BEFORE, limit(20, 100))
KEY = {"type": "string", "maxLength": 40, "description": "The issue's key, e.g. 2026-W48."}
UNAUTHORISED = {401: ("No valid token.", schemas.Error)}


def report_of(session: Session, issue: Issue) -> schemas.IssueReport:
    """The issue's report, as `digest report --json` has it, with its id."""
    return schemas.IssueReport(id=issue.id, **issue_report(session, issue).as_json())


class IssuesApi:
    def __init__(self, site: Site) -> None:
        self.site = site

    def operations(self) -> list[Operation]:
        return [
            Operation(
                "GET",
                "/issues",
                self.listing,
                "listIssues",
                "Issues, newest first, each with its report.",
                query=PAGE,
                answers={
                    200: ("A page of issues.", schemas.IssuePage),
                    **UNAUTHORISED,
                    422: ("A parameter is not valid.", schemas.Error),
                },
            ),
            Operation(
                "GET",
                "/issues/{key}",
                self.get,
                "getIssue",
                "One issue's report: the figures of `digest report ISSUE --json`.",
                path_params={"key": KEY},
                answers={
                    200: ("The issue's report.", schemas.IssueReport),
                    **UNAUTHORISED,
                    404: ("There is no issue with this key.", schemas.Error),
                },
            ),
            Operation(
                "GET",
                "/next-issue",
                self.upcoming,
                "getNextIssue",
                "The posts the next issue would hold if it were sent now.",
                answers={200: ("The next issue.", schemas.NextIssue), **UNAUTHORISED},
            ),
        ]

    async def listing(self, request: Request) -> Response:
        require(request, "read")
        before, count = (q.read(request) for q in PAGE)

        def read() -> schemas.IssuePage:
            with self.site.database.session() as session:
                issues = recent_issues(session, before=before, limit=count)
                return schemas.IssuePage(
                    data=[report_of(session, issue) for issue in issues],
                    next_before=issues[-1].id if len(issues) == count else None,
                )

        return answer(await run_in_threadpool(read))

    async def get(self, request: Request) -> Response:
        require(request, "read")
        key = str(request.path_params["key"])

        def read() -> schemas.IssueReport:
            with self.site.database.session() as session:
                issue = ledger.issue_by_key(session, key[:40])
                if issue is None:
                    raise ApiError(404, f"there is no issue {key[:40]!r}.")
                return report_of(session, issue)

        return answer(await run_in_threadpool(read))

    async def upcoming(self, request: Request) -> Response:
        require(request, "read")
        config = self.site.config

        def read() -> schemas.NextIssue:
            now = datetime.now(UTC)
            frequency = config.schedule.frequency
            gathered = next_issue(
                issue_settings(config),
                self.site.database,
                frequency=frequency,
                now=now,
                excerpts="new",
            )  # the overflow's excerpts too: `more` lists them
            size = config.digest.max_posts
            return schemas.NextIssue(
                key=period_key(now, frequency, config.schedule_tz),
                frequency=frequency,
                posts=[_post(c) for c in gathered.shown(size)],
                more=[_post(c) for c in gathered.overflow(size)],
            )

        return answer(await run_in_threadpool(read))


def _post(candidate: Candidate) -> schemas.Post:
    post = candidate.post
    return schemas.Post(
        id=post.id,
        title=post.title,
        url=post.url,
        date=post.date,
        categories=list(post.categories),
        excerpt=candidate.excerpt or "",  # next_issue made the next issue's excerpts
    )
