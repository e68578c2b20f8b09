"""What comes back: VERP tokens, classification of returned mail, mailboxes, webhooks.

No database here except in `process` (not imported by this package), the one path that
records `Classification` results through `digest.store.bounces` for `digest bounces`, the
scheduler and the web hooks. See docs/bounces.md for the rules.
"""

from digest.inbound.classify import Context, classify, context_from_config, message_key
from digest.inbound.mailbox import Imap, Incoming, Mailbox, MailboxError, Maildir, Mbox, Skipped
from digest.inbound.result import DISCARDED, SUPPRESSING, Classification, Kind, RecipientStatus
from digest.inbound.status import Refusal, classify_refusal, judge
from digest.inbound.verp import (
    InvalidVerp,
    VerpToken,
    bounce_address,
    make_verp_token,
    read_verp_token,
    unsubscribe_mailto,
)
from digest.inbound.webhooks import (
    SesOutcome,
    WebhookError,
    check_basic_auth,
    parse_postmark,
    parse_ses,
    verify_sns,
)

__all__ = [
    "DISCARDED",
    "SUPPRESSING",
    "Classification",
    "Context",
    "Imap",
    "Incoming",
    "InvalidVerp",
    "Kind",
    "Mailbox",
    "MailboxError",
    "Maildir",
    "Mbox",
    "RecipientStatus",
    "Refusal",
    "SesOutcome",
    "Skipped",
    "VerpToken",
    "WebhookError",
    "bounce_address",
    "check_basic_auth",
    "classify",
    "classify_refusal",
    "context_from_config",
    "judge",
    "make_verp_token",
    "message_key",
    "parse_postmark",
    "parse_ses",
    "read_verp_token",
    "unsubscribe_mailto",
    "verify_sns",
]
