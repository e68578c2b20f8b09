"""Complaint reports: RFC 5965 ARF feedback reports, and Microsoft's JMRP format.

An ARF report is `multipart/report; report-type=feedback-report` with a human part, a
`message/feedback-report` part (`Feedback-Type`, `User-Agent`, `Original-Mail-From`,
`Original-Rcpt-To`...) and the reported message or its headers. Microsoft's junk mail
reporting program (JMRP) sends no feedback-report part: the reported message is attached,
with the complaining recipient in its `X-HmXmrOriginalRecipient` header.

Providers often redact the recipient (Yahoo does), which is why the caller also looks for our
VERP address and signed tokens in the attached original.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from email.message import Message
from email.parser import HeaderParser

from digest.inbound.parts import (
    address_of,
    addresses_in,
    header_text,
    original_headers,
    part_text,
    parts_of_type,
)

# RFC 5965 6.3, RFC 6591 (auth-failure), RFC 6650 (not-spam); opt-out is an older draft's
COMPLAINT_TYPES = frozenset({"abuse", "fraud", "virus", "other"})
OPT_OUT_TYPES = frozenset({"opt-out", "opt-out-list"})


@dataclass(frozen=True, slots=True)
class FeedbackReport:
    """What a complaint report says. `feedback_type` is lowercased (`abuse`, `jmrp`, ...)."""

    feedback_type: str
    user_agent: str | None
    original_mail_from: str | None
    recipients: tuple[str, ...]
    original: Message | None
    fields: dict[str, str] = field(default_factory=dict)


def _report_fields(part: Message) -> Message:
    payload = part.get_payload()
    if isinstance(payload, list) and payload and isinstance(payload[0], Message):
        return payload[0]
    return HeaderParser().parsestr(part_text(part).lstrip(), headersonly=True)


def feedback_report(message: Message) -> FeedbackReport | None:
    """The ARF or JMRP report in the message, or None when it is neither."""
    parts = parts_of_type(message, "message/feedback-report")
    original = original_headers(message)
    if parts:
        fields = _report_fields(parts[0])
        recipients = [
            address
            for value in fields.get_all("Original-Rcpt-To", [])
            if (address := address_of(str(value)))
        ]
        if not recipients and original is not None:
            recipients = addresses_in(original, "To")
        mail_from = fields.get("Original-Mail-From")
        return FeedbackReport(
            feedback_type=(header_text(fields, "Feedback-Type") or "other").lower(),
            user_agent=header_text(fields, "User-Agent") or None,
            original_mail_from=address_of(str(mail_from)) if mail_from else None,
            recipients=tuple(dict.fromkeys(recipients)),
            original=original,
            fields={name: " ".join(str(value).split()) for name, value in fields.items()},
        )
    if original is not None and original.get("X-HmXmrOriginalRecipient"):
        recipients = addresses_in(original, "X-HmXmrOriginalRecipient")
        return FeedbackReport(
            feedback_type="jmrp",
            user_agent=header_text(message, "From") or None,
            original_mail_from=None,
            recipients=tuple(dict.fromkeys(recipients or addresses_in(original, "To"))),
            original=original,
        )
    return None
