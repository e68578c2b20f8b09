"""Issues: the list (newest first, keyset pages) and each issue's report — what
`digest report --json` has, per worker — with its deferred and unknown deliveries (and the
`--resend-unknown` action, which starts `digest send --resend-unknown KEY` like "send now"),
its bounces, complaints and unsubscribes."""

from __future__ import annotations

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from digest.store import desk as reads
from digest.store import ledger
from digest.store.report import issue_report, recent_issues
from digest.web.desk.pages import Desk
from digest.web.desk.starts import start_sender

PAGE = 25


def _int(value: str | None) -> int | None:
    return int(value) if value and value.isdigit() and len(value) < 19 else None


class IssuesPage:
    def __init__(self, desk: Desk) -> None:
        self.desk = desk

    def index(self, request: Request) -> Response:
        before = _int(request.query_params.get("before"))
        with self.desk.database.session() as session:
            issues = recent_issues(session, before=before, limit=PAGE + 1)
            rows = [issue_report(session, issue) for issue in issues[:PAGE]]
            ids = [issue.id for issue in issues[:PAGE]]
        more = self.desk.href("/issues", before=ids[-1]) if len(issues) > PAGE else None
        values = {"reports": rows, "more": more, "first": before is not None}
        return self.desk.render(request, "issues", values, section="issues", title="Issues")

    def show(self, request: Request) -> Response:
        key = request.path_params["key"]
        with self.desk.database.session() as session:
            issue = ledger.issue_by_key(session, key)
            if issue is None:
                raise HTTPException(404)
            report = issue_report(session, issue)
            unsettled = [u for u in reads.unsettled(session) if u.issue_id == issue.id]
            returned = reads.returned_mail(session, issue_id=issue.id, limit=200)
            note = issue.note
        values = {
            "report": report,
            "unsettled": unsettled[0] if unsettled else None,
            "returned": returned,
            "note": note,
        }
        return self.desk.render(request, "issue", values, section="issues", title=key)

    def resend_unknown(self, request: Request) -> Response:
        desk = self.desk
        key = request.path_params["key"]
        with desk.database.session() as session:
            if ledger.issue_by_key(session, key) is None:
                raise HTTPException(404)
        return start_sender(
            desk, request, "resend-unknown", busy_to=f"/issues/{key}", resend_unknown=key
        )
