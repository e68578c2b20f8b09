"""The bounce fixtures of tests/fixtures/bounces/, with their tokens filled in.

Fixtures hold placeholders where a real message would carry our signed tokens, because tokens
depend on the secret: `{{VERP}}` (the envelope token of delivery 1234 to subscriber 42 for
issue 7), `{{VERP_UPPER}}` (the same, as a relay that upper-cases addresses passes it on),
`{{UNSUB_VERP}}`/`{{UNSUB_VERP_UPPER}}` (an unsubscribe address token) and `{{UNSUB_TOKEN}}`
(the web unsubscribe token of subscriber 42, issue 7).
"""

from __future__ import annotations

import email
from email.message import Message

from digest.inbound.classify import Context
from digest.inbound.verp import make_verp_token
from digest.tokens import Keyring, make_token
from tests.support import paths

FIXTURES = paths.TESTS / "fixtures" / "bounces"
KEYS = Keyring("bounce-test-secret")
RETURN_PATH = "bounces@example.com"
CONTEXT = Context(keyring=KEYS, return_path=RETURN_PATH)
SUBSCRIBER, ISSUE, DELIVERY = 42, 7, 1234
VERP = make_verp_token(KEYS, "bounce", SUBSCRIBER, ISSUE, DELIVERY)
UNSUB_VERP = make_verp_token(KEYS, "unsubscribe", SUBSCRIBER, ISSUE)
UNSUB_TOKEN = make_token(KEYS, "unsubscribe", SUBSCRIBER, ISSUE)


def fixture_bytes(name: str) -> bytes:
    text = (FIXTURES / name).read_text(encoding="utf-8")
    for placeholder, value in {
        "{{VERP}}": VERP,
        "{{VERP_UPPER}}": VERP.upper(),
        "{{UNSUB_VERP}}": UNSUB_VERP,
        "{{UNSUB_VERP_UPPER}}": UNSUB_VERP.upper(),
        "{{UNSUB_TOKEN}}": UNSUB_TOKEN,
    }.items():
        text = text.replace(placeholder, value)
    return text.encode("utf-8")


def fixture_message(name: str) -> Message:
    return email.message_from_bytes(fixture_bytes(name))


def all_fixtures() -> list[str]:
    return sorted(path.name for path in FIXTURES.glob("*.eml"))
