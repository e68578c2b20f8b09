"""The HTML part under Gmail's clip, measured as it goes out.

Gmail clips a message whose HTML passes about 102 KB: it shows "[Message clipped]" and hides
the rest, the unsubscribe footer included. `render` therefore keeps the HTML part at most
`HTML_LIMIT` bytes (100,000: a margin below the clip, whichever way one counts a KB), measured
as a recipient gets it, which is larger than what `render` itself produces:

- after CSS inlining and folding (the final HTML, not the MJML);
- with CRLF line ends (the message carries every LF as CRLF);
- with every per-recipient placeholder replaced by the longest value it can take: the
  unsubscribe and preferences URLs with the largest ids a token can carry, each post's click
  link with `tracking.clicks: personal` (`/c/TOKEN` naming the largest issue and delivery
  ids and the link's own index), and the greeting with the longest name a subscriber can
  have, every character of it escaped to its longest form (`&quot;`, six bytes).

So no recipient's copy can pass the limit, whoever they are and however many subscribers and
issues the database holds.
"""

from __future__ import annotations

import html
from collections.abc import Iterable, Mapping

from digest.models import (
    CLICK_PLACEHOLDER,
    GREETING,
    PREFERENCES_URL,
    UNSUBSCRIBE_URL,
    click_url,
)
from digest.render.wrap import html_lines_bound
from digest.tokens import Keyring, make_click_token, make_token

HTML_LIMIT = 100_000
# Database ids are 64-bit signed integers on SQLite and PostgreSQL alike.
MAX_ID = 2**63 - 1
# The longest display name a subscriber can have (digest.store.subscribers.clean_name; a test
# holds the two together).
NAME_MAX_CHARS = 200
# The most bytes one character of a name can take in the HTML part: `&quot;` and `&#x27;`.
ESCAPED_CHAR_MAX_BYTES = 6


def longest_values(
    web_base_url: str, greeting_named: str, links: Iterable[int] = ()
) -> dict[str, int]:
    """The most bytes each placeholder can become in the HTML part of one recipient's copy;
    with `links` (indices of posts whose link is a personal click link) each of their
    placeholders (`digest.models.click_url`) too.

    The URLs are built the way the send path builds them (`<web_base_url>/u/<token>`, the
    configured `web.base_url`); the signature's length does not depend on the secret, so any
    key measures it.
    """
    keyring = Keyring(secret="measure")  # never used to sign anything that is sent
    web = web_base_url
    token = make_token(keyring, "unsubscribe", MAX_ID, MAX_ID, "x" * 16)
    preferences = make_token(keyring, "preferences", MAX_ID, MAX_ID, "x" * 16)
    fixed = html.escape(greeting_named % {"name": ""})
    longest = {
        UNSUBSCRIBE_URL: len(html.escape(f"{web}/u/{token}").encode()),
        PREFERENCES_URL: len(html.escape(f"{web}/p/{preferences}").encode()),
        # a long greeting is cut into lines joined by empty comments (digest.render.wrap.html_lines)
        GREETING: html_lines_bound(len(fixed.encode()) + NAME_MAX_CHARS * ESCAPED_CHAR_MAX_BYTES),
    }
    for link in set(links):
        click = make_click_token(keyring, MAX_ID, link, MAX_ID)
        longest[click_url(link)] = len(html.escape(f"{web}/c/{click}").encode())
    return longest


def outgoing_size(markup: str, longest: Mapping[str, int]) -> int:
    """The largest size in bytes the HTML part `markup` can reach in any recipient's copy.

    A click link's placeholder must be in `longest` (KeyError otherwise: a bound that left it
    out would be no bound)."""
    size = len(markup.encode()) + markup.count("\n")  # every LF goes out as CRLF
    for placeholder, most in longest.items():
        if not CLICK_PLACEHOLDER.fullmatch(placeholder):
            size += markup.count(placeholder) * (most - len(placeholder))
    for match in CLICK_PLACEHOLDER.finditer(markup):  # "x-digest:click-1" is in "…-12" too
        size += longest[match.group(0)] - len(match.group(0))
    return size
