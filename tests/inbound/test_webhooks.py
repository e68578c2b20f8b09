"""Amazon SES through SNS (signatures checked against a certificate we make) and Postmark."""

from __future__ import annotations

import base64
import datetime
import json
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID

from digest.inbound.webhooks import (
    WebhookError,
    allowed_sns_url,
    check_basic_auth,
    parse_postmark,
    parse_ses,
    verify_sns,
)
from tests.support.bounce_fixtures import CONTEXT, DELIVERY, ISSUE, SUBSCRIBER, fixture_bytes

CERT_URL = "https://sns.us-east-1.amazonaws.com/SimpleNotificationService-0000000000000000.pem"
TOPIC = "arn:aws:sns:us-east-1:123456789012:digest-bounces"
NOW = datetime.datetime(2026, 11, 30, 12, 0, tzinfo=datetime.UTC)
KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)


def certificate(not_after: datetime.datetime = NOW + datetime.timedelta(days=30)) -> bytes:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "sns.amazonaws.com")])
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(KEY.public_key())
        .serial_number(1)
        .not_valid_before(NOW - datetime.timedelta(days=1))
        .not_valid_after(not_after)
        .sign(KEY, hashes.SHA256())
    )
    return cert.public_bytes(serialization.Encoding.PEM)


class Fetcher:
    def __init__(self, pem: bytes | None = None) -> None:
        self.pem = pem or certificate()
        self.urls: list[str] = []

    def __call__(self, url: str) -> bytes:
        self.urls.append(url)
        return self.pem


FIELDS = {
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
}


def sns(
    message: str, *, kind: str = "Notification", version: str = "1", **extra: str
) -> dict[str, Any]:
    """An SNS message signed the way AWS documents it."""
    payload: dict[str, Any] = {
        "Type": kind,
        "MessageId": "22b80b92-fdea-4c2c-8f9d-bdfb0c7bf324",
        "TopicArn": TOPIC,
        "Message": message,
        "Timestamp": "2026-11-30T11:59:59.000Z",
        "SignatureVersion": version,
        "SigningCertURL": CERT_URL,
        **extra,
    }
    text = "".join(f"{k}\n{payload[k]}\n" for k in FIELDS[kind] if k in payload)
    digest = hashes.SHA1() if version == "1" else hashes.SHA256()
    payload["Signature"] = base64.b64encode(
        KEY.sign(text.encode(), padding.PKCS1v15(), digest)
    ).decode()
    return payload


def ses_body(name: str, **extra: str) -> str:
    return json.dumps(sns(fixture_bytes(name).decode(), **extra))


@pytest.mark.parametrize("version", ["1", "2"])
def test_ses_permanent_bounce(version: str) -> None:
    fetcher = Fetcher()
    outcome = parse_ses(
        ses_body("ses-bounce-permanent.json", version=version), CONTEXT, fetcher, now=NOW
    )
    assert fetcher.urls == [CERT_URL] and outcome.confirm_url is None
    [result] = outcome.results
    assert (result.kind, result.addresses, result.status) == (
        "hard",
        ("ann.lee@example.net",),
        "5.1.1",
    )
    assert (result.delivery_id, result.subscriber_id, result.issue_id) == (
        DELIVERY,
        SUBSCRIBER,
        ISSUE,
    )
    assert result.subscriber_token is not None
    assert result.key == "ses:0100019a1b2c3d4e-aaaa-bbbb-cccc-000000000001-000000"
    assert result.original_message_id == "<i7.d1234@blog.example.com>"


def test_ses_transient_complaint_and_delivery() -> None:
    [soft] = parse_ses(ses_body("ses-bounce-transient.json"), CONTEXT, Fetcher(), now=NOW).results
    assert soft.kind == "soft" and soft.delivery_id == DELIVERY
    [complaint] = parse_ses(ses_body("ses-complaint.json"), CONTEXT, Fetcher(), now=NOW).results
    assert (complaint.kind, complaint.addresses, complaint.feedback_type) == (
        "complaint",
        ("grumpy@example.org",),
        "abuse",
    )
    assert parse_ses(ses_body("ses-delivery.json"), CONTEXT, Fetcher(), now=NOW).results == []


def test_subscription_confirmation_gives_the_url_to_visit() -> None:
    url = "https://sns.us-east-1.amazonaws.com/?Action=ConfirmSubscription&Token=abc"
    body = json.dumps(
        sns(
            "You have chosen to subscribe",
            kind="SubscriptionConfirmation",
            SubscribeURL=url,
            Token="abc",
        )
    )
    outcome = parse_ses(body, CONTEXT, Fetcher(), now=NOW)
    assert outcome.confirm_url == url and outcome.results == []


def test_tampering_is_refused() -> None:
    payload = sns(fixture_bytes("ses-complaint.json").decode())
    payload["Message"] = payload["Message"].replace(
        "Grumpy@example.org", "someone.else@example.org"
    )
    with pytest.raises(WebhookError, match="does not verify"):
        verify_sns(payload, Fetcher(), now=NOW)
    payload = sns("x")
    payload["TopicArn"] = "arn:aws:sns:us-east-1:999999999999:other"
    with pytest.raises(WebhookError, match="does not verify"):
        verify_sns(payload, Fetcher(), now=NOW)


def test_another_key_is_refused() -> None:
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "evil")])
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(other.public_key())
        .serial_number(2)
        .not_valid_before(NOW - datetime.timedelta(days=1))
        .not_valid_after(NOW + datetime.timedelta(days=1))
        .sign(other, hashes.SHA256())
    )
    with pytest.raises(WebhookError, match="does not verify"):
        verify_sns(sns("x"), Fetcher(cert.public_bytes(serialization.Encoding.PEM)), now=NOW)


def test_expired_certificate_is_refused() -> None:
    with pytest.raises(WebhookError, match="not valid now"):
        verify_sns(sns("x"), Fetcher(certificate(NOW - datetime.timedelta(hours=1))), now=NOW)


@pytest.mark.parametrize(
    "url",
    [
        "http://sns.us-east-1.amazonaws.com/cert.pem",
        "https://sns.us-east-1.amazonaws.com.evil.example/cert.pem",
        "https://evil.example/sns.us-east-1.amazonaws.com/cert.pem",
        "https://sns.us-east-1.amazonaws.com@evil.example/cert.pem",
        "https://user@sns.us-east-1.amazonaws.com/cert.pem",
        "https://sns.us-east-1.amazonaws.com:8443/cert.pem",
        "https://sns.us-east-1.amazonaws.com/cert.txt",
        "https://s3.amazonaws.com/cert.pem",
        "https://sns.us-east-1.amazonaws.com:bad/cert.pem",
    ],
)
def test_certificate_urls_off_the_allow_list_are_never_fetched(url: str) -> None:
    assert not allowed_sns_url(url)
    fetcher = Fetcher()
    payload = sns("x")
    payload["SigningCertURL"] = url
    with pytest.raises(WebhookError, match="not an allow-listed SNS address"):
        verify_sns(payload, fetcher, now=NOW)
    assert fetcher.urls == []


def test_allowed_urls() -> None:
    assert allowed_sns_url(CERT_URL)
    assert allowed_sns_url("https://sns.cn-north-1.amazonaws.com.cn/x.pem")


def test_unknown_version_type_topic_and_garbage() -> None:
    payload = sns("x")
    payload["SignatureVersion"] = "3"
    with pytest.raises(WebhookError, match="SignatureVersion"):
        verify_sns(payload, Fetcher(), now=NOW)
    with pytest.raises(WebhookError, match="unknown SNS message type"):
        verify_sns({**sns("x"), "Type": "Other"}, Fetcher(), now=NOW)
    with pytest.raises(WebhookError, match=r"not in bounces\.ses_topic_arns"):
        verify_sns(sns("x"), Fetcher(), topic_arns=["arn:aws:sns:eu-west-1:1:mine"], now=NOW)
    verify_sns(sns("x"), Fetcher(), topic_arns=[TOPIC], now=NOW)
    for body in ("", "[]", "{not json", b"\xff\xfe"):
        with pytest.raises(WebhookError):
            parse_ses(body, CONTEXT, Fetcher(), now=NOW)
    with pytest.raises(WebhookError, match="unreadable"):
        verify_sns({**sns("x"), "Signature": "***"}, Fetcher(), now=NOW)


def test_postmark_payloads() -> None:
    [hard] = parse_postmark(fixture_bytes("postmark-hard-bounce.json"), CONTEXT)
    assert (hard.kind, hard.addresses, hard.status, hard.delivery_id) == (
        "hard",
        ("gone@example.com",),
        "5.1.1",
        DELIVERY,
    )
    assert hard.key == "postmark:Bounce:4323372036854775807"
    [soft] = parse_postmark(fixture_bytes("postmark-soft-bounce.json"), CONTEXT)
    assert (soft.kind, soft.status, soft.verp) == ("soft", "4.2.2", None)
    [spam] = parse_postmark(fixture_bytes("postmark-spam-complaint.json"), CONTEXT)
    assert (spam.kind, spam.addresses) == ("complaint", ("annoyed@example.com",))
    assert parse_postmark(json.dumps({"RecordType": "Delivery", "Email": "x@y"}), CONTEXT) == []
    with pytest.raises(WebhookError):
        parse_postmark(b"nope", CONTEXT)


def test_postmark_forged_metadata_token_names_nobody() -> None:
    body = json.loads(fixture_bytes("postmark-hard-bounce.json"))
    body["Metadata"]["verp"] = "aaaaaaaaaaaaaaaaaaaaaaaa"
    [result] = parse_postmark(json.dumps(body), CONTEXT)
    assert result.verp is None and result.kind == "hard"


def test_basic_auth() -> None:
    good = "Basic " + base64.b64encode(b"hook:s3cret").decode()
    assert check_basic_auth(good, "hook", "s3cret")
    for header in (
        None,
        "",
        "Basic",
        "Bearer abc",
        "Basic !!!",
        "Basic " + base64.b64encode(b"hook:wrong").decode(),
        "Basic " + base64.b64encode(b"other:s3cret").decode(),
        "Basic " + base64.b64encode(b"hook:s3cret:extra").decode(),
        "Digest " + base64.b64encode(b"hook:s3cret").decode(),
    ):
        assert not check_basic_auth(header, "hook", "s3cret"), header
    assert not check_basic_auth(good, "hook", "")  # no password configured: refuse all
