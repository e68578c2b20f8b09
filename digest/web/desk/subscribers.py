"""Subscribers: search and filters over keyset pages, one subscriber's page with their
timeline, add, unsubscribe, erase, reactivate, CSV import (every bad line named with its
reason) and a streamed CSV export with formula cells neutralised.

A search is either "address starts with" (an index range in address order: as fast at a
million subscribers as at ten thousand) or "address or name contains" (read in id order
until a page is full). Every character typed matches itself: quotes, `%`, `_` and
backslashes are no wildcards."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from digest.audience import manage
from digest.audience.csvfile import export_lines
from digest.audience.importfile import import_file
from digest.errors import DigestError
from digest.store import admins
from digest.store import desk as reads
from digest.store import subscribers as people
from digest.store.suppressed import reasons
from digest.store.tables import Status, Subscriber
from digest.web.desk.guard import form_of, who_of
from digest.web.desk.pages import Desk
from digest.web.site import client_ip

PAGE = 50
EXPORT_BATCH = 2000
STATUSES = [s.value for s in Status if s != Status.ERASED]
MATCHES = ("prefix", "contains")
FREQUENCIES = ("daily", "weekly", "monthly")


def _choice(value: str | None, allowed: Any) -> str | None:
    return value if value in allowed else None


class SubscribersPage:
    def __init__(self, desk: Desk) -> None:
        self.desk = desk

    def _who(self, request: Request) -> manage.Admin:
        return manage.Admin(who_of(request).name, client_ip(request), self.desk.clock())

    def index(self, request: Request) -> Response:
        query = request.query_params
        q = query.get("q", "")[:320]
        match = _choice(query.get("match"), MATCHES) or "prefix"
        filters: dict[str, Any] = {
            "status": _choice(query.get("status"), STATUSES),
            # `?language=`: `?locale=` is the desk's own language on every page (pages.py)
            "locale": _choice(query.get("language"), ("zh", "en")),
            "category": (query.get("category") or "")[:100] or None,
            "frequency": _choice(query.get("frequency"), FREQUENCIES),
            "default_frequency": self.desk.config.schedule.frequency,
        }
        after = query.get("after") or None
        with self.desk.database.session() as session:
            if q and match == "prefix":
                rows = people.by_address_prefix(session, q, after=after, limit=PAGE + 1, **filters)
                cursor = rows[PAGE - 1].email_key if len(rows) > PAGE else None
            else:
                start = int(after) if after and after.isdigit() and len(after) < 19 else 0
                rows = people.page(
                    session, after=start, limit=PAGE + 1, search=q or None, **filters
                )
                cursor = str(rows[PAGE - 1].id) if len(rows) > PAGE else None
            shown = [_row(s) for s in rows[:PAGE]]
        kept = {
            "q": q,
            "match": match if q else None,
            **{k: v for k, v in filters.items() if k not in ("default_frequency", "locale")},
            "language": filters["locale"],
        }
        values = {
            "rows": shown,
            "q": q,
            "match": match,
            "filters": filters,
            "statuses": STATUSES,
            "frequencies": FREQUENCIES,
            "next": self.desk.href("/subscribers", **kept, after=cursor) if cursor else None,
            "first": self.desk.href("/subscribers", **kept) if after else None,
            "export": self.desk.href("/subscribers/export.csv", status=filters["status"]),
        }
        return self.desk.render(
            request, "subscribers", values, section="subscribers", title="Subscribers"
        )

    def show(self, request: Request) -> Response:
        subscriber_id = request.path_params["id"]
        with self.desk.database.session() as session:
            try:
                person = manage.get(session, subscriber_id)
            except DigestError:
                raise HTTPException(404) from None
            row = _row(person)
            values: dict[str, Any] = {
                "person": row,
                "consent": {
                    "at": person.consent_at,
                    "source": person.consent_source,
                    "ip": person.consent_ip,
                },
                "why": reasons(session, [person]).get(person.id),
                "timeline": reads.timeline(session, person.id),
            }
        return self.desk.render(
            request, "subscriber", values, section="subscribers", title=str(row["email"])
        )

    def add(self, request: Request) -> Response:
        form = form_of(request)
        try:
            with self.desk.database.session() as session:
                person = manage.add(
                    session,
                    self._who(request),
                    str(form.get("email", ""))[:320],
                    str(form.get("name", ""))[:200],
                    _choice(str(form.get("locale", "")), ("zh", "en")),
                )
                new_id = person.id
        except (DigestError, ValueError) as exc:
            return self.desk.back("/subscribers", problem=str(exc))
        return self.desk.back(f"/subscribers/{new_id}", done="added")

    def _act(self, request: Request, action: str) -> Response:
        subscriber_id = request.path_params["id"]
        who = self._who(request)
        try:
            with self.desk.database.session() as session:
                if action == "unsubscribe":
                    manage.unsubscribe(session, who, subscriber_id)
                elif action == "reactivate":
                    manage.reactivate(session, who, subscriber_id)
                else:
                    if form_of(request).get("confirm") != "yes":
                        raise DigestError("tick the box to confirm the erasure.")
                    manage.erase(session, who, subscriber_id)
        except DigestError as exc:
            return self.desk.back(f"/subscribers/{subscriber_id}", problem=exc.message)
        if action == "erase":
            return self.desk.back("/subscribers", done="erased")
        return self.desk.back(f"/subscribers/{subscriber_id}", done=action)

    def unsubscribe(self, request: Request) -> Response:
        return self._act(request, "unsubscribe")

    def erase(self, request: Request) -> Response:
        return self._act(request, "erase")

    def reactivate(self, request: Request) -> Response:
        return self._act(request, "reactivate")

    def import_form(self, request: Request) -> Response:
        return self.desk.render(
            request, "import", {"result": None}, section="subscribers", title="Import"
        )

    def import_file(self, request: Request) -> Response:
        upload = form_of(request).get("file")
        if not isinstance(upload, UploadFile) or not upload.filename:
            values: dict[str, Any] = {"result": None, "problem": "no-file"}
            return self.desk.render(
                request, "import", values, section="subscribers", title="Import", status=400
            )
        shown = Path(upload.filename).name[:200] or "upload.csv"
        with tempfile.TemporaryDirectory(prefix="digest-import-") as folder:
            path = Path(folder) / "upload.csv"
            with path.open("wb") as out:
                while chunk := upload.file.read(1024 * 1024):
                    out.write(chunk)
            try:
                imported = import_file(self.desk.database, path, shown=shown)
            except DigestError as exc:
                values = {"result": None, "problem": exc.message.replace(str(path), shown)}
                return self.desk.render(
                    request, "import", values, section="subscribers", title="Import", status=400
                )
        report = imported.report
        problems = [p.replace(str(path), shown) for p in report.problems]
        with self.desk.database.session() as session:
            admins.audit(
                session,
                who_of(request).name,
                "subscribers-import",
                now=self.desk.clock(),
                ip=client_ip(request),
                detail=f"{shown}: {report.added} added, {report.updated} updated, "
                f"{imported.skipped} skipped",
            )
        values = {
            "result": {
                "file": shown,
                "shape": imported.shape,
                "added": report.added,
                "updated": report.updated,
                "unchanged": report.unchanged,
                "skipped": imported.skipped,
                "problems": problems,
                "more": report.problems.total - len(report.problems),
                "left_out": list(imported.parsed.left_out),
            }
        }
        return self.desk.render(request, "import", values, section="subscribers", title="Import")

    def export(self, request: Request) -> Response:
        status = _choice(request.query_params.get("status"), STATUSES)
        database = self.desk.database
        with database.session() as session:
            admins.audit(
                session,
                who_of(request).name,
                "subscribers-export",
                now=self.desk.clock(),
                ip=client_ip(request),
                detail=f"status {status}" if status else "all",
            )

        def lines() -> Iterator[str]:
            """Pages of EXPORT_BATCH by id, each read in its own short transaction, so the
            export never holds the database (SQLite's lock) while the browser downloads."""
            after, header = 0, True
            while True:
                with database.session() as session:
                    batch = people.page(session, after=after, limit=EXPORT_BATCH, status=status)
                    chunk = "".join(export_lines(batch, header=header))
                yield chunk
                header = False
                if len(batch) < EXPORT_BATCH:
                    return
                after = batch[-1].id

        name = "subscribers.csv" if status is None else f"subscribers-{status}.csv"
        return StreamingResponse(
            lines(),
            media_type="text/csv; charset=utf-8",
            headers={
                "Content-Disposition": f'attachment; filename="{name}"',
                "Cache-Control": "no-store",
                "X-Content-Type-Options": "nosniff",
            },
        )


def _row(s: Subscriber) -> dict[str, Any]:
    return {
        "id": s.id,
        "email": s.email,
        "name": s.name,
        "status": s.status,
        "locale": s.locale,
        "categories": s.categories or [],
        "frequency": s.frequency,
        "paused": s.paused,
        "created_at": s.created_at,
    }
