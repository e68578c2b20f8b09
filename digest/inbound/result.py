"""What one returned message (or one provider event) is: the result every reader produces.

Mail (`classify`), Amazon SES and Postmark (`webhooks`) all produce `Classification`, so the
code that records outcomes has one input type. Kinds:

- `hard`: the address is dead (suppress now); `soft`: it failed for now (suppress after
  `bounces.soft_limit` issues in a row);
- `complaint`: the recipient reported the mail as spam (suppress now);
- `unsubscribe`: a mailed unsubscribe request;
- `notice`: a report of no failure (delayed and still retried, relayed, delivered, DMARC
  failure reports, not-spam); `auto_reply`: vacation and other automatic answers.
  Both are discarded, and the message counts as handled;
- `not_ours`: nothing in it concerns our mail (handled: it will not become ours later);
- `unknown`: it looks like a bounce or report but names no recipient we could find: leave it
  unseen for a human, and count it.

Addresses are lowercased (DESIGN.md 8: addresses compare case-insensitively).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from digest.inbound.verp import VerpToken
from digest.tokens import TokenData

Kind = Literal[
    "hard", "soft", "complaint", "unsubscribe", "notice", "auto_reply", "not_ours", "unknown"
]
SUPPRESSING: frozenset[Kind] = frozenset({"hard", "complaint"})
DISCARDED: frozenset[Kind] = frozenset({"notice", "auto_reply", "not_ours"})


@dataclass(frozen=True, slots=True)
class RecipientStatus:
    """One recipient of a delivery report, with the verdict for it."""

    address: str
    action: str  # failed, delayed, delivered, relayed, expanded
    status: str | None  # enhanced status code, e.g. 5.1.1
    diagnostic: str | None
    severity: Literal["hard", "soft"] | None  # None unless action is failed


@dataclass(frozen=True, slots=True)
class Classification:
    """The decision about one message or event, with all the evidence found for it.

    `verp` is a verified envelope token (the delivery, issue and subscriber: prefer it to
    addresses); `subscriber_token` a verified web token (from a mailed unsubscribe request, or
    the List-Unsubscribe header of a quoted original); `addresses` the failed, complaining or
    requesting addresses for when neither token is there. `key` identifies the message for
    idempotence: its Message-ID, else a digest of its bytes (or the provider's event id).
    """

    kind: Kind
    reason: str
    key: str
    source: str  # dsn, prose, arf, jmrp, request, headers, subject, ses, postmark, none
    addresses: tuple[str, ...] = ()
    recipients: tuple[RecipientStatus, ...] = ()
    verp: VerpToken | None = None
    subscriber_token: TokenData | None = None
    status: str | None = None
    diagnostic: str | None = None
    feedback_type: str | None = None
    message_id: str | None = None
    original_message_id: str | None = None
    details: dict[str, str] = field(default_factory=dict)

    @property
    def delivery_id(self) -> int | None:
        return self.verp.delivery_id if self.verp else None

    @property
    def subscriber_id(self) -> int | None:
        """The subscriber a verified token names, if any (VERP first, then the web token)."""
        if self.verp is not None:
            return self.verp.subscriber_id
        return self.subscriber_token.subscriber_id if self.subscriber_token else None

    @property
    def issue_id(self) -> int | None:
        if self.verp is not None and self.verp.issue_id is not None:
            return self.verp.issue_id
        return self.subscriber_token.issue_id if self.subscriber_token else None

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (one row of `digest bounces --json`)."""
        data = asdict(self)
        data["delivery_id"] = self.delivery_id
        data["subscriber_id"] = self.subscriber_id
        data["issue_id"] = self.issue_id
        return data

    def to_json(self) -> str:
        return json.dumps(self.as_dict(), ensure_ascii=False, sort_keys=True)
