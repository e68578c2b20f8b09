"""What the desk's actions that start a sender, or send a test copy, have in common: the
audit line each leaves (who, from where, when, what), and a send launched in a process of its
own that outlives the request (digest.issues.launch)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from digest.access.admins import audit
from digest.issues.launch import launch
from digest.issues.plan import SenderBusy
from digest.web.desk.guard import who_of
from digest.web.desk.pages import Desk
from digest.web.site import client_ip


def audited(desk: Desk, request: Request, action: str, detail: str) -> None:
    """One audit event for `action` by the administrator of `request`."""
    with desk.database.session() as session:
        audit(
            session,
            who_of(request).name,
            action,
            ip=client_ip(request),
            now=desk.clock(),
            detail=detail,
        )


def start_sender(
    desk: Desk, request: Request, action: str, *, busy_to: str, resend_unknown: str | None = None
) -> Response:
    """`digest send` (`--resend-unknown KEY` when given) in a process of its own, audited,
    then the progress page; while another send holds the lease, back to `busy_to` naming it."""
    try:
        pid = launch(desk.config, desk.database, resend_unknown=resend_unknown)
    except SenderBusy as exc:
        return desk.back(busy_to, problem=f"busy:{exc.holder.describe()}")
    desk.launched.append(pid)
    audited(
        desk, request, action, f"{resend_unknown}, pid {pid}" if resend_unknown else f"pid {pid}"
    )
    return desk.back("/next/progress", started="1")
