"""Decide what one returned message is: bounce (hard or soft), complaint, unsubscribe, other.

The order matters and is fixed: a complaint report (ARF, JMRP) first, then RFC 3464 delivery
status, then prose bounces (flufl.bounce's detectors find the failed addresses; our own rules
in `status` read hard or soft from the text), then mailed unsubscribe requests, then
auto-replies (checked late because delivery reports carry `Auto-Submitted` too). A message
that looks like a bounce but names nobody is `unknown` (left for a human), unless its VERP
address names the delivery, which makes it an undetermined, soft bounce.

The VERP token is looked for in the envelope headers of the report, in the quoted original's
headers and in the report's text; a signed web token in the quoted original's headers
(List-Unsubscribe). Only tokens that verify count, so loose searching is safe.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, replace
from datetime import datetime
from email.message import Message
from typing import Any

import flufl.bounce

from digest.inbound.arf import COMPLAINT_TYPES, OPT_OUT_TYPES, FeedbackReport, feedback_report
from digest.inbound.dsn import DsnRecipient, delivery_status
from digest.inbound.parts import (
    addresses_in,
    header_block_text,
    header_text,
    original_headers,
    report_text,
    split_quote,
)
from digest.inbound.prose import listed_failures
from digest.inbound.replies import auto_reply_reason, find_web_token, unsubscribe_request
from digest.inbound.result import Classification, Kind, RecipientStatus
from digest.inbound.severity import enhanced_code, judge
from digest.inbound.verp import VerpToken, envelope_texts, find_verp
from digest.tokens import Keyring

_DAEMON = re.compile(
    r"^(?:mailer-daemon|mail-daemon|maildaemon|postmaster|mailer|mdaemon|mail\.?delivery"
    r"|bounces?)@",
    re.IGNORECASE,
)
_BOUNCE_SUBJECT = re.compile(
    r"undeliver|undelivered|delivery (?:status|failure|failed|has failed|problem|notification"
    r"|report|delayed)|failure notice|returned mail|returned to sender|mail delivery"
    r"|could not be delivered|non-?delivery|nondeliverable|delayed mail|warning: could not send"
    r"|退信|无法投递|投递失败|未能送达|邮件被退回|发送失败",
    re.IGNORECASE,
)
_DELAY = re.compile(
    r"delayed|still being retried|will (?:continue to )?(?:be )?retr|not yet been delivered"
    r"|warning: could not send|warning (?:message )?only|\(delay\)|延迟|延遲",
    re.IGNORECASE,
)
_DIAGNOSTIC_CHARS = 400


@dataclass(frozen=True, slots=True)
class Context:
    """What classifying needs from the configuration: the keys and our return path."""

    keyring: Keyring
    return_path: str | None = None
    now: datetime | None = None


def message_key(message: Message, raw: bytes | None = None) -> str:
    """The idempotence key: the Message-ID, else a SHA-256 of the message's bytes."""
    message_id = _message_id(message)
    if message_id:
        return message_id
    if raw is None:
        try:
            raw = message.as_bytes()
        except (UnicodeError, LookupError, ValueError, TypeError):
            raw = str(message).encode("utf-8", errors="replace")
    return "sha256:" + hashlib.sha256(raw).hexdigest()


def _message_id(message: Message | None) -> str | None:
    if message is None:
        return None
    value = " ".join(str(message.get("Message-ID", "")).split())
    return value or None


def looks_like_bounce(message: Message) -> bool:
    """A delivery report by its shape: report type, daemon sender, null path or bounce subject."""
    if message.get_content_type() == "multipart/report" or message.get("X-Failed-Recipients"):
        return True
    if str(message.get("Return-Path", "")).strip() in ("<>", "", "<MAILER-DAEMON>") and (
        message.get("Return-Path") is not None
    ):
        return True
    senders = addresses_in(message, "From")
    if any(_DAEMON.match(sender) for sender in senders):
        return True
    return bool(_BOUNCE_SUBJECT.search(header_text(message, "Subject")))


def classify(message: Message, context: Context, *, raw: bytes | None = None) -> Classification:
    """The decision for one message; never raises on malformed mail (it becomes `unknown`)."""
    try:
        return _classify(message, context, raw)
    except Exception as exc:  # hostile input through third-party heuristics: never crash a run
        return Classification(
            kind="unknown",
            reason=f"could not be read ({type(exc).__name__}: {exc})",
            key=message_key(message, raw),
            source="none",
            message_id=_message_id(message),
        )


def _classify(message: Message, context: Context, raw: bytes | None) -> Classification:
    original = original_headers(message)
    report = feedback_report(message)
    verp = _find_verp(message, original, report, context)
    quoted = [header_text(original, "List-Unsubscribe"), header_block_text(original)]
    common = Classification(
        kind="unknown",
        reason="",
        key=message_key(message, raw),
        source="none",
        message_id=_message_id(message),
        original_message_id=_message_id(original),
        verp=verp,
        subscriber_token=find_web_token(quoted, context.keyring, now=context.now)
        if original is not None
        else None,
    )
    if report is not None:
        return _complaint(report, common)
    records = delivery_status(message)
    failed = [r for r in records if r.action == "failed"]
    if failed:
        return _from_dsn(records, failed, common)
    if records:
        actions = sorted({r.action for r in records})
        return _make(
            "notice",
            f"a delivery report of {', '.join(actions)}: no failure",
            "dsn",
            common,
            addresses=_unique(a for r in records for a in r.addresses),
            recipients=tuple(_status(r) for r in records),
        )
    if looks_like_bounce(message):
        prose = _from_prose(message, original, common)
        if prose is not None:
            return prose
    request = unsubscribe_request(message, context.return_path, context.keyring, now=context.now)
    if request is not None:
        common = replace(common, verp=request.verp, subscriber_token=request.token)
        return _make("unsubscribe", request.reason, "request", common, addresses=request.addresses)
    reason = auto_reply_reason(message)
    if reason is not None:
        return _make(
            "auto_reply",
            reason,
            "headers",
            common,
            addresses=_unique(addresses_in(message, "From")),
        )
    if looks_like_bounce(message):
        if verp is not None:
            return _make(
                "soft",
                "a bounce naming no failure, but its VERP address names the delivery",
                "verp",
                common,
            )
        return _make(
            "unknown", "looks like a delivery report but names no failed recipient", "none", common
        )
    return _make("not_ours", "neither a report, a request nor an automatic reply", "none", common)


def _make(
    kind: Kind, reason: str, source: str, common: Classification, **fields: Any
) -> Classification:
    return replace(common, kind=kind, reason=reason, source=source, **fields)


def _unique(addresses: object) -> tuple[str, ...]:
    return tuple(dict.fromkeys(addresses))  # type: ignore[call-overload]


def _find_verp(
    message: Message, original: Message | None, report: FeedbackReport | None, context: Context
) -> VerpToken | None:
    if not context.return_path:
        return None
    texts = envelope_texts(message)
    if report is not None and report.original_mail_from:
        texts.append(report.original_mail_from)
    if original is not None:
        texts += [
            str(v)
            for name in ("Return-Path", "Errors-To", "Sender")
            for v in original.get_all(name, [])
        ]
        texts.append(header_block_text(original))
    texts.append(report_text(message))
    return find_verp(texts, context.return_path, context.keyring, purpose="bounce", now=context.now)


def _complaint(report: FeedbackReport, common: Classification) -> Classification:
    kind: Kind
    if report.feedback_type in COMPLAINT_TYPES or report.feedback_type == "jmrp":
        kind, reason = "complaint", f"a complaint report ({report.feedback_type})"
    elif report.feedback_type in OPT_OUT_TYPES:
        kind, reason = "unsubscribe", "an opt-out feedback report"
    else:
        kind, reason = (
            "notice",
            f"a feedback report of type {report.feedback_type}, not a complaint",
        )
    return _make(
        kind,
        reason,
        "jmrp" if report.feedback_type == "jmrp" else "arf",
        common,
        addresses=report.recipients,
        feedback_type=report.feedback_type,
        details=dict(report.fields),
    )


def _status(record: DsnRecipient) -> RecipientStatus:
    severity = (
        judge(record.status, record.diagnostic).severity if record.action == "failed" else None
    )
    return RecipientStatus(
        record.address, record.action, record.status, record.diagnostic, severity
    )


def _from_dsn(
    records: list[DsnRecipient], failed: list[DsnRecipient], common: Classification
) -> Classification:
    verdicts = [(r, judge(r.status, r.diagnostic)) for r in failed]
    decisive = next(((r, v) for r, v in verdicts if v.severity == "hard"), verdicts[0])
    record, verdict = decisive
    return _make(
        verdict.severity,
        f"{record.address}: {verdict.reason}",
        "dsn",
        common,
        addresses=_unique(a for r in failed for a in r.addresses),
        recipients=tuple(_status(r) for r in records),
        status=record.status or enhanced_code(record.diagnostic),
        diagnostic=record.diagnostic,
    )


def _from_prose(
    message: Message, original: Message | None, common: Classification
) -> Classification | None:
    temporary, permanent = flufl.bounce.all_failures(message)
    notice, _ = split_quote(report_text(message))
    found = _decode(permanent) or _unique(addresses_in(message, "X-Failed-Recipients"))
    if not found and temporary:
        return _make(
            "notice",
            "a delay warning: delivery is still being retried",
            "prose",
            common,
            addresses=_decode(temporary),
        )
    found = found or listed_failures(notice, message, original)
    if not found:
        return None
    if _DELAY.search(header_text(message, "Subject")) or _DELAY.search(notice[:2000]):
        return _make(
            "notice",
            "a delay warning: delivery is still being retried",
            "prose",
            common,
            addresses=found,
        )
    judged = []
    for address in found:
        text = _around(notice, address, single=len(found) == 1)
        code = enhanced_code(text)
        verdict = judge(code, text)
        judged.append(
            (RecipientStatus(address, "failed", code, _trim(text), verdict.severity), verdict)
        )
    decisive, verdict = next(((r, v) for r, v in judged if v.severity == "hard"), judged[0])
    return _make(
        verdict.severity,
        f"{decisive.address}: {verdict.reason}",
        "prose",
        common,
        addresses=found,
        recipients=tuple(r for r, _ in judged),
        status=decisive.status,
        diagnostic=decisive.diagnostic,
    )


def _decode(addresses: frozenset[bytes]) -> tuple[str, ...]:
    return tuple(
        sorted({a.decode("ascii", errors="replace").lower() for a in addresses if b"@" in a})
    )


def _around(notice: str, address: str, *, single: bool) -> str:
    """The report text about one address: all of it for one address, else what follows it."""
    if single:
        return notice
    windows = [
        notice[m.start() : m.start() + 600]
        for m in re.finditer(re.escape(address), notice, re.IGNORECASE)
    ]
    return "\n".join(windows) or notice


def _trim(text: str) -> str | None:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    useful = [line for line in lines if enhanced_code(line) or re.search(r"\b[45]\d\d\b", line)]
    trimmed = " ".join(useful or lines)
    return trimmed[:_DIAGNOSTIC_CHARS] or None
