"""`/c/TOKEN`: a followed link of an issue (`tracking.clicks`), counted, then redirected.

The token is signed (digest.tokens.make_click_token) and names the issue and the link's index
among the issue's posts, and with `tracking.clicks: personal` the delivery; the redirect goes
to the URL the issue recorded for that post, and nowhere else: a changed token (another
index, another issue, another delivery, a bad signature) is the generic 400, and so is a
token whose delivery is not one of that issue's, so the route can never be an open redirect.
With tracking off the route does not exist.

With `personal` the click is counted against the delivery and, when it looks human, written
into the reader's history (digest.store.clicks.record); in aggregate mode nothing names the
reader, whatever the token holds.

Robots are counted apart from people (`human` false), by these rules, in order:
- a `HEAD` request (a link checker or a scanner asking what is there);
- a prefetch: `Sec-Purpose: prefetch`, `Purpose: prefetch`, `X-Moz: prefetch` or
  `X-Purpose: preview` (browsers and mail apps warming a link nobody chose);
- within `tracking.scanner_seconds` of the delivery (the recipient's, when the token names
  it; else the issue's latest message sent), a user agent that looks like a mail
  scanner: none at all, no `Mozilla/` in it, or a known scanner or HTTP library's name.
  Security gateways (Microsoft Defender Safe Links, Proofpoint, Mimecast, Barracuda...) open
  every link seconds after the message arrives; a person rarely clicks that fast.
Nothing of the request is stored: not the IP address, not the user agent.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from digest.store import clicks
from digest.tokens import InvalidToken, read_click_token
from digest.web.site import BadToken, Site

_SCANNER = re.compile(
    r"bot\b|crawl|spider|scan|preview|proofpoint|mimecast|barracuda|safelinks|urldefense|"
    r"microsoft office|outlook-|python|curl|wget|go-http|java/|okhttp|libwww|headless|"
    r"httpclient|axios|node-fetch|phantom",
    re.IGNORECASE,
)


def looks_like_scanner(agent: str | None) -> bool:
    """No user agent, none of a browser (`Mozilla/`), or a scanner or HTTP library's name."""
    if not agent:
        return True
    return "mozilla/" not in agent.lower() or _SCANNER.search(agent) is not None


def is_prefetch(request: Request) -> bool:
    headers = request.headers
    for name in ("sec-purpose", "purpose", "x-moz", "x-purpose"):
        value = headers.get(name, "").lower()
        if "prefetch" in value or "preview" in value:
            return True
    return False


def is_human(
    request: Request, now: datetime, delivered: datetime | None, scanner_seconds: float
) -> bool:
    """Whether a click counts as a person's (the rules in the module's docstring)."""
    if request.method == "HEAD" or is_prefetch(request):
        return False
    recent = delivered is not None and now - delivered <= timedelta(seconds=scanner_seconds)
    return not (recent and looks_like_scanner(request.headers.get("user-agent")))


class Clicks:
    def __init__(self, site: Site) -> None:
        self.site = site

    async def follow(self, request: Request) -> Response:
        try:
            data = read_click_token(self.site.keys, request.path_params["token"])
        except InvalidToken:
            raise BadToken from None
        tracking = self.site.config.tracking
        personal = tracking.clicks == "personal"

        def apply() -> str:
            now = self.site.clock()
            with self.site.database.session() as session:
                url = clicks.target(session, data.issue_id, data.link)
                if url is None:
                    raise BadToken
                reader = None
                if data.delivery_id is not None:
                    reader = clicks.reader(session, data.issue_id, data.delivery_id)
                    if reader is None:  # no delivery of this issue
                        raise BadToken
                delivered = (
                    reader.sent_at
                    if reader is not None
                    else clicks.last_sent(session, data.issue_id, now)
                )
                human = is_human(request, now, delivered, tracking.scanner_seconds)
                clicks.record(
                    session,
                    data.issue_id,
                    data.link,
                    human=human,
                    at=now,
                    reader=reader if personal else None,
                    url=url,
                )
                return url

        url = await run_in_threadpool(apply)
        headers = {
            "Location": url,
            "Cache-Control": "no-store",
            "Referrer-Policy": "no-referrer",
            "X-Robots-Tag": "noindex",
        }
        return Response(status_code=302, headers=headers)
