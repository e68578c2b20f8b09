"""Who the web apps believe: which Host names the preview answers, whose proxy headers count.

- The preview (`digest preview`) shows the next digest to whoever can reach it. A web page
  the operator visits could reach it too through DNS rebinding (its own name, re-pointed at
  the preview's address), so the preview answers only to the Host names it is really reached
  by: its bind address, `localhost` (and the loopback literals when it is bound to loopback or
  to every address), and `preview.allowed_hosts`. Whatever it is bound to; anything else
  gets 400.
- The public app (`digest serve`) takes the client address, which the sign-up's per-IP limit
  counts and consent records, from X-Forwarded-For (and the scheme from X-Forwarded-Proto)
  only when the connection comes from `web.trusted_proxies` (default: loopback, the README's
  deployment behind a local HTTPS proxy; `[]` when nothing is in front). From anyone else the
  headers are ignored, so a client cannot choose its own address and escape the limit. The app
  applies this itself (uvicorn's own handling, which trusts 127.0.0.1 or $FORWARDED_ALLOW_IPS,
  is switched off in `digest serve`), so it holds under any ASGI server.
"""

from __future__ import annotations

from collections.abc import Sequence

from starlette.middleware import Middleware
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from digest.links import is_loopback

LOOPBACK_NAMES = ("127.0.0.1", "::1", "[::1]", "localhost")
_EVERY_ADDRESS = ("0.0.0.0", "::", "")


def preview_hosts(bind: str, allowed: Sequence[str] = ()) -> list[str]:
    """The Host names a preview bound to `bind` answers to."""
    names = ["localhost", bind.lower()]
    if ":" in bind:
        names.append(f"[{bind.lower()}]")
    if bind in _EVERY_ADDRESS or is_loopback(bind):
        names += LOOPBACK_NAMES
    names += (name.lower() for name in allowed)
    return list(dict.fromkeys(name for name in names if name))


def proxy_headers(trusted: Sequence[str]) -> list[Middleware]:
    """The middleware that applies X-Forwarded-For/-Proto from `trusted` addresses or
    networks only (none: the headers are never read)."""
    if not trusted:
        return []
    return [Middleware(ProxyHeadersMiddleware, trusted_hosts=list(trusted))]
