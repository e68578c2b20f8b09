"""Provider webhooks as pure functions: Amazon SES (through SNS) and Postmark payloads in,
the same `Classification` results as for mail out. No web framework here: `digest serve`
routes call these.

SNS messages are verified before anything in them is used: the signature (SignatureVersion 1,
SHA1withRSA, or 2, SHA256withRSA, over the fields AWS documents for each message type) must
check against the certificate at `SigningCertURL`, which must be `https://` on an
`sns.<region>.amazonaws.com` host (path ending `.pem`, no user or port) and be valid now. The
certificate fetcher is injectable; the default one downloads over verified HTTPS and caches
per URL. An optional allow-list of topic ARNs refuses other topics. Postmark webhooks carry
no signature: they are protected by HTTP basic auth, checked in constant time.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import json
import re
import urllib.request
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any
from urllib.parse import urlsplit

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from digest.inbound.classify import Context
from digest.inbound.replies import find_web_token
from digest.inbound.result import Classification, Kind, RecipientStatus
from digest.inbound.severity import Severity, enhanced_code, judge
from digest.inbound.verp import InvalidVerp, find_verp, read_verp_token

CertificateFetcher = Callable[[str], bytes]
_SNS_HOST = re.compile(r"sns\.[a-z0-9-]+\.amazonaws\.com(?:\.cn)?")
_SIGNED_FIELDS = {
    "Notification": ("Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type"),
    "SubscriptionConfirmation": (
        "Message",
        "MessageId",
        "SubscribeURL",
        "Timestamp",
        "Token",
        "TopicArn",
        "Type",
    ),
    "UnsubscribeConfirmation": (
        "Message",
        "MessageId",
        "SubscribeURL",
        "Timestamp",
        "Token",
        "TopicArn",
        "Type",
    ),
}
_HASHES: dict[str, Callable[[], hashes.HashAlgorithm]] = {"1": hashes.SHA1, "2": hashes.SHA256}


class WebhookError(Exception):
    """A payload refused: the sentence is for the log; answer the sender with a plain 4xx."""


@dataclass(frozen=True, slots=True)
class SesOutcome:
    """What one SNS delivery means: results to record, or a subscription to confirm."""

    results: list[Classification] = field(default_factory=list)
    confirm_url: str | None = None  # GET it to confirm a SubscriptionConfirmation


def allowed_sns_url(url: str) -> bool:
    """True for `https://sns.<region>.amazonaws.com/....pem` with no user, port or tricks."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return False
    return (
        parts.scheme == "https"
        and port is None
        and "@" not in parts.netloc
        and _SNS_HOST.fullmatch(parts.hostname or "") is not None
        and parts.path.endswith(".pem")
    )


@lru_cache(maxsize=16)
def fetch_certificate(url: str) -> bytes:
    """The default fetcher: the PEM at an allow-listed URL, over verified HTTPS, cached."""
    if not allowed_sns_url(url):
        raise WebhookError(f"SigningCertURL {url!r} is not an allow-listed SNS address")
    with urllib.request.urlopen(url, timeout=10) as response:
        data: bytes = response.read(65536)
    return data


def verify_sns(
    payload: dict[str, Any],
    fetcher: CertificateFetcher = fetch_certificate,
    *,
    topic_arns: Collection[str] = (),
    now: datetime | None = None,
) -> None:
    """Raise WebhookError unless the SNS message is authentic (see the module doc)."""
    kind = payload.get("Type")
    fields = _SIGNED_FIELDS.get(kind) if isinstance(kind, str) else None
    if fields is None:
        raise WebhookError(f"unknown SNS message type {kind!r}")
    make_hash = _HASHES.get(str(payload.get("SignatureVersion")))
    if make_hash is None:
        raise WebhookError(f"unsupported SignatureVersion {payload.get('SignatureVersion')!r}")
    url = payload.get("SigningCertURL")
    if not isinstance(url, str) or not allowed_sns_url(url):
        raise WebhookError(f"SigningCertURL {url!r} is not an allow-listed SNS address")
    if topic_arns and payload.get("TopicArn") not in topic_arns:
        raise WebhookError(f"topic {payload.get('TopicArn')!r} is not in bounces.ses_topic_arns")
    text = "".join(
        f"{name}\n{payload[name]}\n" for name in fields if isinstance(payload.get(name), str)
    )
    try:
        signature = base64.b64decode(str(payload.get("Signature", "")), validate=True)
        certificate = x509.load_pem_x509_certificate(fetcher(url))
    except (binascii.Error, ValueError) as exc:
        raise WebhookError(f"unreadable SNS signature or certificate: {exc}") from None
    moment = now or datetime.now(UTC)
    if not certificate.not_valid_before_utc <= moment <= certificate.not_valid_after_utc:
        raise WebhookError("the SNS signing certificate is not valid now")
    key = certificate.public_key()
    if not isinstance(key, rsa.RSAPublicKey):
        raise WebhookError("the SNS signing certificate does not hold an RSA key")
    try:
        key.verify(signature, text.encode("utf-8"), padding.PKCS1v15(), make_hash())
    except InvalidSignature:
        raise WebhookError("the SNS signature does not verify") from None


def _dict(value: object) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _load(body: bytes | str) -> dict[str, Any]:
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise WebhookError("the body is not JSON") from None
    if not isinstance(data, dict):
        raise WebhookError("the body is not a JSON object")
    return data


def parse_ses(
    body: bytes | str,
    context: Context,
    fetcher: CertificateFetcher = fetch_certificate,
    *,
    topic_arns: Collection[str] = (),
    now: datetime | None = None,
) -> SesOutcome:
    """Verify an SNS POST body and turn its SES bounce or complaint into results."""
    payload = _load(body)
    verify_sns(payload, fetcher, topic_arns=topic_arns, now=now)
    if payload["Type"] == "SubscriptionConfirmation":
        url = str(payload.get("SubscribeURL", ""))
        if urlsplit(url).scheme != "https" or not _SNS_HOST.fullmatch(urlsplit(url).hostname or ""):
            raise WebhookError(f"SubscribeURL {url!r} is not an SNS address")
        return SesOutcome(confirm_url=url)
    if payload["Type"] != "Notification":
        return SesOutcome()
    event = _load(str(payload.get("Message", "")))
    result = _ses_event(event, str(payload.get("MessageId", "")), context)
    return SesOutcome(results=[result] if result is not None else [])


def _ses_event(event: dict[str, Any], sns_id: str, context: Context) -> Classification | None:
    kind_name = event.get("notificationType") or event.get("eventType")
    mail = _dict(event.get("mail"))
    headers = {
        str(h.get("name", "")).lower(): str(h.get("value", ""))
        for h in mail.get("headers", [])
        if isinstance(h, dict)
    }
    source = [str(mail.get("source", "")), headers.get("return-path", "")]
    verp = (
        find_verp(source, context.return_path, context.keyring, purpose="bounce", now=context.now)
        if context.return_path
        else None
    )
    common = _dict(mail.get("commonHeaders"))
    original_id = headers.get("message-id") or (
        str(common.get("messageId")) if common.get("messageId") else None
    )
    token = find_web_token([headers.get("list-unsubscribe", "")], context.keyring, now=context.now)
    base: dict[str, Any] = {
        "verp": verp,
        "subscriber_token": token,
        "original_message_id": original_id,
        "message_id": sns_id or None,
    }
    if kind_name == "Bounce":
        bounce = _dict(event.get("bounce"))
        recipients = [r for r in bounce.get("bouncedRecipients", []) if isinstance(r, dict)]
        statuses = []
        for r in recipients:
            diag = str(r.get("diagnosticCode") or "") or None
            status = str(r.get("status") or "") or enhanced_code(diag)
            severity = _ses_severity(str(bounce.get("bounceType")), status, diag)
            statuses.append(
                RecipientStatus(
                    str(r.get("emailAddress", "")).lower(), "failed", status, diag, severity
                )
            )
        kind: Kind = "hard" if any(s.severity == "hard" for s in statuses) else "soft"
        first = next((s for s in statuses if s.severity == kind), statuses[0] if statuses else None)
        return Classification(
            kind=kind,
            reason=f"SES {bounce.get('bounceType')}/{bounce.get('bounceSubType')} bounce",
            key=f"ses:{bounce.get('feedbackId') or sns_id}",
            source="ses",
            addresses=tuple(dict.fromkeys(s.address for s in statuses if s.address)),
            recipients=tuple(statuses),
            status=first.status if first else None,
            diagnostic=first.diagnostic if first else None,
            **base,
        )
    if kind_name == "Complaint":
        complaint = _dict(event.get("complaint"))
        feedback = str(complaint.get("complaintFeedbackType") or "abuse").lower()
        addresses = tuple(
            dict.fromkeys(
                str(r.get("emailAddress", "")).lower()
                for r in complaint.get("complainedRecipients", [])
                if isinstance(r, dict)
            )
        )
        return Classification(
            kind="notice" if feedback == "not-spam" else "complaint",
            reason=f"SES complaint ({feedback})",
            key=f"ses:{complaint.get('feedbackId') or sns_id}",
            source="ses",
            addresses=addresses,
            feedback_type=feedback,
            **base,
        )
    if kind_name == "DeliveryDelay":
        delay = _dict(event.get("deliveryDelay"))
        addresses = tuple(
            str(r.get("emailAddress", "")).lower()
            for r in delay.get("delayedRecipients", [])
            if isinstance(r, dict)
        )
        return Classification(
            kind="notice",
            reason="SES delivery delay: still being retried",
            key=f"ses:{sns_id}",
            source="ses",
            addresses=addresses,
            **base,
        )
    return None  # Delivery, Send, Open, Click...: nothing that changes an audience


def _ses_severity(bounce_type: str, status: str | None, diagnostic: str | None) -> Severity:
    """SES says Permanent, Transient or Undetermined; our code rules win where there is a code."""
    if bounce_type != "Permanent":
        return "soft"
    return judge(status, diagnostic).severity if status else "hard"


# Postmark bounce types (their TypeCode in the comment) and what each is here
POSTMARK_KINDS: dict[str, Kind] = {
    "HardBounce": "hard",  # 1
    "BadEmailAddress": "hard",  # 100000
    "ManuallyDeactivated": "hard",  # 100002
    "Transient": "soft",  # 2
    "SoftBounce": "soft",  # 4096
    "DnsError": "soft",  # 256
    "SpamNotification": "soft",  # 512
    "VirusNotification": "soft",  # 8192
    "Blocked": "soft",  # 100006
    "DMARCPolicy": "soft",  # 100009
    "SpamComplaint": "complaint",  # 100001
    "Unsubscribe": "unsubscribe",  # 16
    "AutoResponder": "auto_reply",  # 64
    "ChallengeVerification": "auto_reply",  # 16384
    "Unknown": "unknown",  # 2048
}


def parse_postmark(body: bytes | str, context: Context) -> list[Classification]:
    """A Postmark bounce or spam-complaint webhook body as results (others: none)."""
    data = _load(body)
    record = data.get("RecordType")
    if record not in ("Bounce", "SpamComplaint"):
        return []
    kind: Kind = (
        "complaint"
        if record == "SpamComplaint"
        else POSTMARK_KINDS.get(str(data.get("Type")), "notice")
    )
    details = str(data.get("Details") or data.get("Description") or "") or None
    status = enhanced_code(details)
    if kind == "hard" and status and judge(status, details).severity == "soft":
        kind = "soft"  # a policy code under a "hard" label: our rules (docs/bounces.md) decide
    metadata = _dict(data.get("Metadata"))
    verp = None
    if metadata.get("verp"):
        try:
            verp = read_verp_token(context.keyring, str(metadata["verp"]), now=context.now)
        except InvalidVerp:
            verp = None
    address = str(data.get("Email") or "").lower()
    return [
        Classification(
            kind=kind,
            reason=f"Postmark {data.get('Type')} ({data.get('TypeCode')})",
            key=f"postmark:{record}:{data.get('ID')}",
            source="postmark",
            addresses=(address,) if address else (),
            verp=verp if verp is not None and verp.purpose == "bounce" else None,
            status=status,
            diagnostic=details,
            message_id=str(data.get("MessageID")) if data.get("MessageID") else None,
        )
    ]


def check_basic_auth(header: str | None, user: str, password: str) -> bool:
    """True when an `Authorization: Basic ...` header names exactly this user and password.

    Both parts are compared in constant time, and both always, so timing tells nothing.
    """
    if not header or not user or not password:
        return False
    scheme, _, encoded = header.strip().partition(" ")
    try:
        given = (
            base64.b64decode(encoded.strip(), validate=True) if scheme.lower() == "basic" else b""
        )
    except (binascii.Error, ValueError):
        given = b""
    given_user, _, given_password = given.partition(b":")
    ok_user = hmac.compare_digest(given_user, user.encode("utf-8"))
    ok_password = hmac.compare_digest(given_password, password.encode("utf-8"))
    return ok_user and ok_password and scheme.lower() == "basic"
