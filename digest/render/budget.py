"""The HTML part under Gmail's clip, measured as it goes out.

Gmail clips a message whose HTML passes about 102 KB: it shows "[Message clipped]" and hides
the rest, the unsubscribe footer included. `render` therefore keeps the HTML part at most
`HTML_LIMIT` bytes (100,000: a margin below the clip, whichever way one counts a KB), measured
as a recipient gets it, which is larger than what `render` itself produces:

- after CSS inlining and folding (the final HTML, not the MJML);
- with CRLF line ends (the message carries every LF as CRLF);
- with every per-recipient placeholder replaced by the longest value it can take: the
  unsubscribe and preferences URLs with the largest ids a token can carry, and the greeting
  with the longest name a subscriber can have, every character of it escaped to its longest
  form (`&quot;`, six bytes).

So no recipient's copy can pass the limit, whoever they are and however many subscribers and
issues the database holds.
"""

from __future__ import annotations

import html
from collections.abc import Mapping

from digest.models import GREETING, PREFERENCES_URL, UNSUBSCRIBE_URL
from digest.render.wrap import html_lines_bound
from digest.tokens import Keyring, make_token

HTML_LIMIT = 100_000
# Database ids are 64-bit signed integers on SQLite and PostgreSQL alike.
MAX_ID = 2**63 - 1
# The longest display name a subscriber can have (digest.store.subscribers.clean_name; a test
# holds the two together).
NAME_MAX_CHARS = 200
# The most bytes one character of a name can take in the HTML part: `&quot;` and `&#x27;`.
ESCAPED_CHAR_MAX_BYTES = 6


def longest_values(web_base_url: str, greeting_named: str) -> dict[str, int]:
    """The most bytes each placeholder can become in the HTML part of one recipient's copy.

    The URLs are built the way the send path builds them (`<web_base_url>/u/<token>`, the
    configured `web.base_url`); the signature's length does not depend on the secret, so any
    key measures it.
    """
    keyring = Keyring(secret="measure")  # never used to sign anything that is sent
    web = web_base_url
    token = make_token(keyring, "unsubscribe", MAX_ID, MAX_ID, "x" * 16)
    preferences = make_token(keyring, "preferences", MAX_ID, MAX_ID, "x" * 16)
    fixed = html.escape(greeting_named % {"name": ""})
    return {
        UNSUBSCRIBE_URL: len(html.escape(f"{web}/u/{token}").encode()),
        PREFERENCES_URL: len(html.escape(f"{web}/p/{preferences}").encode()),
        # a long greeting is cut into lines joined by empty comments (digest.render.wrap.html_lines)
        GREETING: html_lines_bound(len(fixed.encode()) + NAME_MAX_CHARS * ESCAPED_CHAR_MAX_BYTES),
    }


def outgoing_size(markup: str, longest: Mapping[str, int]) -> int:
    """The largest size in bytes the HTML part `markup` can reach in any recipient's copy."""
    size = len(markup.encode()) + markup.count("\n")  # every LF goes out as CRLF
    for placeholder, most in longest.items():
        size += markup.count(placeholder) * (most - len(placeholder))
    return size
