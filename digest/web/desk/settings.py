"""Settings: the configuration in force (secrets masked, each value's origin), the
administrators, one's own second factor and sessions ("log out everywhere"), API tokens
(made and shown once, revoked) and the audit log of every administrative action."""

from __future__ import annotations

from typing import Any

import segno
from starlette.requests import Request
from starlette.responses import Response

from digest.access import admins as access
from digest.access import tokens
from digest.config.effective import effective
from digest.errors import DigestError
from digest.store import admins
from digest.web.desk.guard import form_of, who_of
from digest.web.desk.pages import Desk
from digest.web.site import client_ip

AUDIT_PAGE = 50


class SettingsPage:
    def __init__(self, desk: Desk) -> None:
        self.desk = desk

    def show(self, request: Request, extra: dict[str, Any] | None = None) -> Response:
        who = who_of(request)
        now = self.desk.clock()
        before_raw = request.query_params.get("before", "")
        before = int(before_raw) if before_raw.isdigit() and len(before_raw) < 19 else None
        with self.desk.database.session() as session:
            values: dict[str, Any] = {
                "settings": effective(self.desk.config),
                "admins": admins.listing(session),
                "sessions": admins.sessions_of(session, who.admin_id, now),
                "tokens": tokens.listing(session),
                "audit": admins.audit_page(session, before=before, limit=AUDIT_PAGE + 1),
                "pending": access.pending_totp(session, who),
            }
        audit = values["audit"]
        values["older"] = (
            self.desk.href("/settings", before=audit[AUDIT_PAGE - 1].id) + "#audit"
            if len(audit) > AUDIT_PAGE
            else None
        )
        values["audit"] = audit[:AUDIT_PAGE]
        values["session_id"] = who.session_id
        if values["pending"]:
            uri = access.totp_uri(who.name, values["pending"])
            qr = segno.make(uri, error="m")
            values["qr"] = qr.svg_inline(
                scale=4, dark="#000000", light="#ffffff", title="TOTP QR code"
            )
        values.update(extra or {})
        return self.desk.render(request, "settings", values, section="settings", title="Settings")

    def index(self, request: Request) -> Response:
        return self.show(request)

    def totp_start(self, request: Request) -> Response:
        who = who_of(request)
        with self.desk.database.session() as session:
            access.start_totp(session, who)
        return self.desk.back("/settings", done="totp-started")

    def totp_confirm(self, request: Request) -> Response:
        who = who_of(request)
        code = str(form_of(request).get("code", ""))[:20]
        with self.desk.database.session() as session:
            good = access.confirm_totp(session, who, code, self.desk.clock(), client_ip(request))
        if not good:
            return self.desk.back("/settings", problem="totp-code")
        return self.desk.back("/settings", done="totp-on")

    def totp_off(self, request: Request) -> Response:
        who = who_of(request)
        with self.desk.database.session() as session:
            access.turn_off_totp(session, who, self.desk.clock(), client_ip(request))
        return self.desk.back("/settings", done="totp-off")

    def token_create(self, request: Request) -> Response:
        form = form_of(request)
        name = str(form.get("name", ""))[:40]
        scope = str(form.get("scope", ""))
        who = who_of(request)
        try:
            with self.desk.database.session() as session:
                secret = tokens.create(session, name, scope=scope)
                admins.audit(
                    session,
                    who.name,
                    "token-create",
                    now=self.desk.clock(),
                    ip=client_ip(request),
                    detail=f"{name} ({scope})",
                )
        except DigestError as exc:
            return self.desk.back("/settings", problem=exc.message)
        # shown once, in this answer only (not in a URL, not stored)
        return self.show(request, {"new_token": {"name": name, "secret": secret}})

    def token_revoke(self, request: Request) -> Response:
        name = str(form_of(request).get("name", ""))[:40]
        who = who_of(request)
        try:
            with self.desk.database.session() as session:
                revoked = tokens.revoke(session, name)
                if revoked:
                    admins.audit(
                        session,
                        who.name,
                        "token-revoke",
                        now=self.desk.clock(),
                        ip=client_ip(request),
                        detail=name,
                    )
        except DigestError as exc:
            return self.desk.back("/settings", problem=exc.message)
        return self.desk.back("/settings", done="token-revoked")
