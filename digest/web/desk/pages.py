"""How a desk page is made: its language, its template (`templates/` of this package,
autoescaped, with the message catalogue of its language), what every page shows
(navigation, the CSRF token, the language and log-out controls) and the headers every
answer carries.

Pages run no inline script: the policy allows scripts and styles from the desk's own
/static/ only, so a value that slipped into a page unescaped still could not run.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response

from digest.config.schema import Config
from digest.render.i18n import html_lang, supported, translations
from digest.store.database import Database
from digest.web.desk.guard import Door
from digest.web.pages import COMMON_HEADERS, LOCALE_NAMES

DESK_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "frame-src 'self'; connect-src 'self'; form-action 'self'; base-uri 'none'; "
    "frame-ancestors 'none'"
)
# `same-origin`, not the public pages' `no-referrer`: under no-referrer a browser sends
# `Origin: null` with a form, and the guard could not tell the desk's own forms from others.
HEADERS = {
    **COMMON_HEADERS,
    "Referrer-Policy": "same-origin",
    "Content-Security-Policy": DESK_CSP,
    "X-Frame-Options": "DENY",
}
LOCALE_COOKIE = "digest-desk-locale"
# The desk's own templates, in the package (not under templates/: a user's templates_dir
# overrides the email and the public pages, never the desk).
TEMPLATES = Path(str(resources.files("digest.web.desk").joinpath("templates")))


def _(message: str) -> str:
    """Marks a word for the catalogue (Babel extracts `_`); the page translates it."""
    return message


# Words the templates translate from data (statuses, kinds, views), so that Babel finds them.
WORDS = (
    *(_("pending"), _("active"), _("unsubscribed"), _("bounced"), _("complained")),
    *(_("sending"), _("stopped"), _("paused"), _("finished")),
    *(_("queued"), _("claimed"), _("in_flight"), _("sent"), _("deferred"), _("failed")),
    *(_("skipped"), _("unknown")),
    *(_("hard"), _("soft"), _("complaint"), _("unsubscribe"), _("notice"), _("auto_reply")),
    *(_("not_ours"), _("daily"), _("weekly"), _("monthly"), _("desktop"), _("phone")),
    *(_("text"), _("zh"), _("en"), _("file"), _("default")),
    *(_("subscribe"), _("confirm-mail"), _("confirm"), _("import"), _("preferences")),
    *(_("pause"), _("resume"), _("resubscribe"), _("bounce"), _("soft-bounce")),
    *(_("reactivate"), _("erase"), _("audit"), _("delivery"), _("click")),
    *(_("Overview"), _("Next issue"), _("Issues"), _("Subscribers"), _("Returned mail")),
    *(_("Settings"), _("Log in"), _("Send now"), _("Sending"), _("Import"), _("Error")),
)
SECTIONS = (
    ("overview", "/", "Overview"),
    ("next", "/next", "Next issue"),
    ("issues", "/issues", "Issues"),
    ("subscribers", "/subscribers", "Subscribers"),
    ("returned", "/returned", "Returned mail"),
    ("settings", "/settings", "Settings"),
)


@dataclass(slots=True)
class Desk:
    """What every desk route shares."""

    config: Config
    database: Database
    door: Door
    clock: Callable[[], datetime]
    mount: str = "/admin"
    launched: list[int] = field(default_factory=list)  # pids of sends started here
    # signs the problem sentences a redirect carries, so that a link made elsewhere cannot
    # put words of its own into a desk page (a restart forgets it: harmless)
    key: bytes = field(default_factory=lambda: secrets.token_bytes(32))

    def _mac(self, text: str) -> str:
        return hmac.new(self.key, text.encode("utf-8"), hashlib.sha256).hexdigest()[:32]

    def problem(self, request: Request) -> str | None:
        """The problem sentence of the redirect that brought the browser here, if we made it."""
        text = request.query_params.get("problem")
        mac = request.query_params.get("sig", "")
        if text and hmac.compare_digest(self._mac(text), mac):
            return text
        return None

    def href(self, path: str, **query: Any) -> str:
        kept = {k: v for k, v in query.items() if v not in (None, "")}
        return self.mount + path + (("?" + urlencode(kept)) if kept else "")

    def locale(self, request: Request) -> str:
        """`?locale=`, else the language chosen before (a cookie), else the site's."""
        chosen = request.query_params.get("locale") or request.cookies.get(LOCALE_COOKIE)
        return supported(chosen, self.config.site.locale)

    def render(
        self,
        request: Request,
        name: str,
        values: dict[str, Any],
        *,
        section: str = "",
        status: int = 200,
        title: str = "",
    ) -> HTMLResponse:
        locale = self.locale(request)
        env = environment(locale)
        who = getattr(request.state, "who", None)
        query = dict(request.query_params)
        gettext = translations(locale).gettext
        common = {
            "desk": self,
            "who": who,
            "csrf": who.csrf if who is not None else "",
            "section": section,
            "title": title,
            "locale": locale,
            "html_lang": html_lang(locale),
            "site": self.config.site,
            "sections": [
                {"name": s, "href": self.href(p), "label": gettext(label), "current": s == section}
                for s, p, label in SECTIONS
            ],
            "locale_links": [
                {
                    "name": LOCALE_NAMES[other],
                    "lang": html_lang(other),
                    "href": request.url.path + "?" + urlencode({**query, "locale": other}),
                    "current": other == locale,
                }
                for other in LOCALE_NAMES
            ],
            "static": self.mount + "/static",
            "message": request.query_params.get("done"),
            "problem": self.problem(request),
        }
        html = env.get_template(f"{name}.html.j2").render({**common, **values})
        response = HTMLResponse(html, status_code=status, headers=HEADERS)
        if request.query_params.get("locale") in LOCALE_NAMES:
            response.set_cookie(
                LOCALE_COOKIE,
                locale,
                max_age=365 * 86400,
                path=self.mount,
                secure=self.door.secure,
                httponly=True,
                samesite="strict",
            )
        return response

    def back(self, path: str, **query: Any) -> Response:
        """After a change: see the page again (303, so a reload does not post twice); a
        `problem` sentence travels signed."""
        if query.get("problem"):
            query["problem"] = str(query["problem"])[:500]
            query["sig"] = self._mac(query["problem"])
        return Response(status_code=303, headers={"Location": self.href(path, **query)})


@cache
def environment(locale: str) -> Environment:
    env = Environment(
        loader=FileSystemLoader(str(TEMPLATES)),
        autoescape=select_autoescape(default=True, default_for_string=True),
        extensions=["jinja2.ext.i18n"],
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.install_gettext_translations(translations(locale), newstyle=True)  # type: ignore[attr-defined]
    env.filters["percent"] = percent
    env.filters["when"] = when
    env.filters["number"] = number
    return env


def percent(value: float | None, digits: int = 2) -> str:
    return "—" if value is None else f"{value * 100:.{digits}f} %"


def when(value: datetime | None) -> str:
    return "—" if value is None else value.strftime("%Y-%m-%d %H:%M UTC")


def number(value: int | None) -> str:
    return "—" if value is None else f"{value:,}"
