"""The Content-Security-Policies of what digest shows in a browser, and a file's own copy.

The served preview and archive send these as headers (digest.web.pages). A file opened from
disk, such as the dry run's `preview.html`, has no headers: `with_csp_meta` puts the email
policy into the page itself as `<meta http-equiv="Content-Security-Policy">`, first in its
head, so a script that slipped into the HTML never runs there either. (A meta policy cannot
carry `sandbox` or `frame-ancestors`, which browsers ignore there; the rest is the same.)
"""

from __future__ import annotations

import re
from html import escape

# The app's own pages: no script at all, frames only from this app, never framed elsewhere.
PAGE_CSP = (
    "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; frame-src 'self'; "
    "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
# An email shown as a page: sandboxed even when opened directly; links may open a new tab.
EMAIL_CSP = (
    "sandbox allow-popups allow-popups-to-escape-sandbox; default-src 'none'; "
    "style-src 'unsafe-inline'; img-src https: http: data:; form-action 'none'; "
    "frame-ancestors 'self'"
)
_META_IGNORED = ("sandbox", "frame-ancestors")
_HEAD = re.compile(r"<head(?:\s[^>]*)?>", re.IGNORECASE)


def meta_policy(policy: str = EMAIL_CSP) -> str:
    """`policy` without the directives a meta element cannot carry."""
    kept = [
        part.strip()
        for part in policy.split(";")
        if part.strip() and part.split()[0] not in _META_IGNORED
    ]
    return "; ".join(kept)


def with_csp_meta(html: str, policy: str = EMAIL_CSP) -> str:
    """`html` with the policy as the first element of its head (or at the very start)."""
    meta = f'<meta http-equiv="Content-Security-Policy" content="{escape(meta_policy(policy))}">'
    head = _HEAD.search(html)
    if head is None:
        return meta + html
    return html[: head.end()] + meta + html[head.end() :]
