"""What every page of the public app shares: its configuration, database, clock and keys, how a
page picks its language and is rendered, and how a signed link becomes a subscriber.

Every token route answers a bad token the same way: one plain 400 page, whether the token was
tampered with, truncated, meant for another purpose, expired, or names nobody we know.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlencode

from sqlalchemy.orm import Session
from starlette.datastructures import FormData
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse

from digest.config.schema import Config
from digest.render.i18n import html_lang, supported
from digest.store.database import Database
from digest.store.subscribers import by_token
from digest.store.tables import Issue, Subscriber
from digest.tokens import InvalidToken, Keyring, Purpose, TokenData, read_token
from digest.web.pages import COMMON_HEADERS, LOCALE_NAMES, page_environment

# Like the preview's pages (no script, nothing external, never framed), but forms may post here.
PUBLIC_CSP = (
    "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; "
    "base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)


class BadToken(HTTPException):
    """Any link we do not accept: answered with the one plain 400 page."""

    def __init__(self) -> None:
        super().__init__(400)


@dataclass(frozen=True, slots=True)
class Site:
    """The public app's shared state; the route modules hold one each."""

    config: Config
    database: Database
    keys: Keyring
    clock: Callable[[], datetime]

    # -- language and pages ---------------------------------------------------------------------

    def locale(self, request: Request, preferred: str | None = None) -> str:
        """`?locale=`, else the person's own locale, else the site's."""
        fallback = supported(preferred, self.config.site.locale)
        return supported(request.query_params.get("locale"), fallback)

    def render(
        self,
        request: Request,
        locale: str,
        name: str,
        values: dict[str, Any],
        status: int = 200,
        *,
        switch: bool = True,
    ) -> HTMLResponse:
        """`web/public/<name>.html.j2` as a response with the public pages' headers.

        `switch=False` leaves out the language links, which repeat the page's own address (an
        error page must not echo a bad link back).
        """
        env = page_environment(self.config, locale)
        query = dict(request.query_params)
        common = {
            "site": self.config.site,
            "page_name": name,
            "html_lang": html_lang(locale),
            "locale": locale,
            "locale_links": [
                {
                    "name": LOCALE_NAMES[other],
                    "lang": html_lang(other),
                    "href": request.url.path + "?" + urlencode({**query, "locale": other}),
                    "current": other == locale,
                }
                for other in LOCALE_NAMES
                if switch
            ],
        }
        html = env.get_template(f"web/public/{name}.html.j2").render({**common, **values})
        headers = {**COMMON_HEADERS, "Content-Security-Policy": PUBLIC_CSP}
        return HTMLResponse(html, status_code=status, headers=headers)

    # -- signed links ---------------------------------------------------------------------------

    def token(self, purpose: Purpose, token: str) -> TokenData:
        try:
            return read_token(self.keys, purpose, token, now=self.clock())
        except InvalidToken:
            raise BadToken from None

    def subscriber(self, session: Session, data: TokenData) -> Subscriber:
        """The person the token is bound to; the generic 400 for an erased one, a row the
        token's binding does not match, or no row at all."""
        subscriber = by_token(session, data.subscriber_id, data.binding)
        if subscriber is None:
            raise BadToken
        return subscriber

    def issue_id(self, session: Session, data: TokenData) -> int | None:
        """The issue a link came from, if it still exists (test sends carry issue 0)."""
        if not data.issue_id or session.get(Issue, data.issue_id) is None:
            return None
        return data.issue_id


async def small_form(request: Request) -> FormData:
    """The posted form, refusing files and anything large (a one-click body is 26 bytes)."""
    return await request.form(max_files=0, max_fields=50, max_part_size=64 * 1024)


def client_ip(request: Request) -> str | None:
    """The peer's address (uvicorn applies X-Forwarded-For only from trusted proxies)."""
    return request.client.host[:64] if request.client else None


def user_agent(request: Request) -> str | None:
    return request.headers.get("user-agent", "")[:500] or None


def with_locale(path: str, request: Request) -> str:
    """`path`, keeping an explicit `?locale=` so that a form's answer speaks the same language."""
    chosen = request.query_params.get("locale")
    return f"{path}?{urlencode({'locale': chosen})}" if chosen in LOCALE_NAMES else path
