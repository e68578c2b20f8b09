"""Messages people's software sends back: automatic replies and mailed unsubscribe requests.

Auto-replies are recognised by RFC 3834's `Auto-Submitted` (any value but `no`), the
`X-Autoreply`/`X-Autorespond` family, `Precedence: auto_reply`, and vacation subjects in
English and Chinese ("Out of Office", "Automatic reply", "自动回复"...). Delivery reports carry
`Auto-Submitted` too, so the classifier asks about auto-replies only after bounces.

An unsubscribe request is a message to a `mailto:` from our List-Unsubscribe header: the
address may carry an `unsubscribe` VERP token, and the subject (`unsubscribe TOKEN`) or the
first lines of the body a signed web token; either verified token names the subscriber. A
request with no valid token ("unsubscribe" in the subject, or Apple Mail's
`X-Apple-Unsubscribe`) still counts, naming only its From address, which is not authenticated:
the caller decides what such a request may do.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from email.message import Message

from digest.inbound.parts import addresses_in, header_text, report_text
from digest.inbound.verp import VerpToken, envelope_texts, find_verp
from digest.tokens import InvalidToken, Keyring, TokenData, read_token

WEB_TOKEN = re.compile(
    r"(?<![\w.-])([0-9a-z]{1,13}\.(?:[0-9a-z]{1,13}|-)\.[A-Za-z0-9_-]{43})(?![\w-])"
)
_AUTO_HEADERS = (
    "X-Autoreply",
    "X-Autorespond",
    "X-Autoresponder",
    "X-Auto-Reply",
    "X-Mail-Autoreply",
)
_AUTO_SUBJECT = re.compile(
    r"out of (?:the )?office|automatic reply|auto[- ]?reply|auto[- ]?response|autosvar"
    r"|away from (?:the office|my desk|my email)|on vacation|on holiday|vacation (?:reply|notice)"
    r"|abwesenheitsnotiz|r[ée]ponse automatique"
    r"|自动回复|自动答复|自动应答|自動回覆|自動回复|自動返信|休假|外出|不在办公室|不在辦公室",
    re.IGNORECASE,
)
_UNSUBSCRIBE_SUBJECT = re.compile(
    r"^\s*(?:(?:re|fwd?|aw|回复|转发)\s*[:：]\s*)*(?:unsubscribe|退订|取消订阅)\b", re.IGNORECASE
)


def auto_reply_reason(message: Message) -> str | None:
    """Why the message is an automatic reply, or None when nothing says so."""
    submitted = header_text(message, "Auto-Submitted").lower()
    if submitted and not submitted.startswith("no"):
        return f"Auto-Submitted: {submitted}"
    for name in _AUTO_HEADERS:
        value = header_text(message, name).lower()
        if value and value not in ("no", "false", "0"):
            return f"{name}: {value}"
    if header_text(message, "Precedence").lower() == "auto_reply":
        return "Precedence: auto_reply"
    if header_text(message, "X-Auto-Response-Suppress") and header_text(
        message, "X-MS-Exchange-Inbox-Rules-Loop"
    ):
        return "an Exchange inbox rule's reply"
    subject = header_text(message, "Subject")
    if _AUTO_SUBJECT.search(subject):
        return f"the subject {subject!r} reads as an automatic reply"
    return None


def find_web_token(
    texts: list[str], keyring: Keyring, *, now: datetime | None = None
) -> TokenData | None:
    """The first signed unsubscribe token (digest.tokens) in the texts that verifies."""
    for text in texts:
        for match in WEB_TOKEN.finditer(text):
            try:
                return read_token(keyring, "unsubscribe", match.group(1), now=now)
            except InvalidToken:
                continue
    return None


@dataclass(frozen=True, slots=True)
class UnsubscribeRequest:
    verp: VerpToken | None
    token: TokenData | None
    addresses: tuple[str, ...]
    reason: str


def unsubscribe_request(
    message: Message, return_path: str | None, keyring: Keyring, *, now: datetime | None = None
) -> UnsubscribeRequest | None:
    """The request in a message sent to our unsubscribe mailto, or None if it is not one."""
    subject = header_text(message, "Subject")
    verp = None
    if return_path:
        texts = envelope_texts(message)
        verp = find_verp(texts, return_path, keyring, purpose="unsubscribe", now=now)
    asks = bool(_UNSUBSCRIBE_SUBJECT.search(subject)) or bool(message.get("X-Apple-Unsubscribe"))
    if verp is None and not asks:
        return None
    body = "\n".join(report_text(message).splitlines()[:20])
    token = find_web_token([subject, body], keyring, now=now)
    senders = tuple(dict.fromkeys(addresses_in(message, "From")))
    if verp is not None:
        reason = "sent to a signed unsubscribe address"
    elif token is not None:
        reason = "an unsubscribe request with a signed token"
    else:
        reason = "an unsubscribe request without a valid token: only its From address names it"
    return UnsubscribeRequest(verp=verp, token=token, addresses=senders, reason=reason)
