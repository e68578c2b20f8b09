"""Returned mail: what came back, newest first, with its classification (hard, soft,
complaint, unsubscribe, notice, auto-reply, not ours), filtered by kind; `notice` is the
unclassified kind: a report that named no verdict."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from digest.store import desk as reads
from digest.store.bounces import RECORDED_KINDS
from digest.web.desk.pages import Desk

PAGE = 50


class ReturnedPage:
    def __init__(self, desk: Desk) -> None:
        self.desk = desk

    def index(self, request: Request) -> Response:
        kind = request.query_params.get("kind")
        kind = kind if kind in RECORDED_KINDS else None
        before_raw = request.query_params.get("before", "")
        before = int(before_raw) if before_raw.isdigit() and len(before_raw) < 19 else None
        with self.desk.database.session() as session:
            rows = reads.returned_mail(session, kind=kind, before=before, limit=PAGE + 1)
            counts = reads.returned_counts(session)
        more = (
            self.desk.href("/returned", kind=kind, before=rows[PAGE - 1].id)
            if len(rows) > PAGE
            else None
        )
        values = {
            "rows": rows[:PAGE],
            "kind": kind,
            "kinds": RECORDED_KINDS,
            "counts": counts,
            "unclassified": reads.UNCLASSIFIED,
            "more": more,
        }
        return self.desk.render(
            request, "returned", values, section="returned", title="Returned mail"
        )
