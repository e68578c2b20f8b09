"""The overview: readers by status, the growth chart, the issues chart, the next run and the
warnings (assembled by digest.issues.overview). Each chart's data travels in the page as
JSON, drawn by the vendored uPlot (static/desk.js), and is also a table for screen readers
and for anyone without JavaScript."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from digest.issues.overview import COMPLAINT_LINE, Overview, overview
from digest.store.tables import Status
from digest.web.desk.pages import Desk

STATUSES = [s.value for s in Status if s != Status.ERASED]


def _epoch(day: str) -> int:
    return int(datetime.fromisoformat(day).replace(tzinfo=UTC).timestamp())


def growth_chart(view: Overview) -> dict[str, Any]:
    return {
        "kind": "growth",
        "x": [_epoch(d.day) for d in view.growth],
        "joins": [d.joins for d in view.growth],
        "leaves": [d.leaves for d in view.growth],
        "active": [d.active for d in view.growth],
    }


def issues_chart(view: Overview) -> dict[str, Any]:
    def pct(value: float | None) -> float | None:
        return None if value is None else round(value * 100, 4)

    return {
        "kind": "issues",
        "labels": [r.key for r in view.issues],
        "x": list(range(len(view.issues))),
        "delivered": [r.count("sent") for r in view.issues],
        "bounce": [pct(r.bounce_rate) for r in view.issues],
        "complaint": [pct(r.complaint_rate) for r in view.issues],
        "unsubscribe": [pct(r.unsubscribe_rate) for r in view.issues],
        "line": [COMPLAINT_LINE * 100 for _ in view.issues],
    }


class OverviewPage:
    def __init__(self, desk: Desk) -> None:
        self.desk = desk

    async def show(self, request: Request) -> Response:
        desk = self.desk
        view = await run_in_threadpool(overview, desk.config, desk.database, desk.clock())
        values = {
            "view": view,
            "statuses": STATUSES,
            "growth": growth_chart(view),
            "issues_chart": issues_chart(view),
            "line": COMPLAINT_LINE,
            "growth_rows": [d for d in view.growth if d.joins or d.leaves][-30:],
        }
        return desk.render(request, "overview", values, section="overview", title="Overview")
