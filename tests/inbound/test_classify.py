"""Classifying returned mail: one fixture per shape real MTAs, providers and people send."""

from __future__ import annotations

import email
from email.message import Message

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from digest.inbound.classify import Context, classify, message_key
from digest.inbound.result import Classification
from digest.tokens import Keyring
from tests.support.bounce_fixtures import (
    CONTEXT,
    DELIVERY,
    ISSUE,
    SUBSCRIBER,
    VERP,
    all_fixtures,
    fixture_bytes,
    fixture_message,
)

# fixture: (kind, addresses, delivery id from VERP, subscriber id from any verified token)
EXPECTED: dict[str, tuple[str, tuple[str, ...], int | None, int | None]] = {
    "postfix-dsn-verp.eml": ("hard", ("wang.lei@mx.example.net",), DELIVERY, SUBSCRIBER),
    "postfix-dsn-no-verp.eml": ("hard", ("alice.smith@example.org",), None, None),
    "postfix-delayed.eml": ("notice", ("li.na@slow.example.net",), DELIVERY, SUBSCRIBER),
    "postfix-mailbox-full.eml": ("soft", ("zhao.min@full.example.net",), DELIVERY, SUBSCRIBER),
    "postfix-policy-block.eml": ("soft", ("chen.yu@qq.example.cn",), DELIVERY, SUBSCRIBER),
    "exim-prose.eml": ("hard", ("olga@mail.example.net",), DELIVERY, SUBSCRIBER),
    "sendmail-dsn.eml": ("hard", ("sun.hao@example.edu",), DELIVERY, SUBSCRIBER),
    "qmail-prose.eml": ("hard", ("ming@example.info",), DELIVERY, SUBSCRIBER),
    "qmail-remote-550.eml": ("hard", ("hong.xu@remote.example.org",), None, None),
    "office365-dsn.eml": ("hard", ("peter.wong@contoso.example",), DELIVERY, SUBSCRIBER),
    "exchange-prose-no-verp.eml": ("hard", ("maria.garcia@corp.example",), None, None),
    "gmail-dsn.eml": ("hard", ("no.such.person.2026@gmail.example",), DELIVERY, SUBSCRIBER),
    "gmail-delay.eml": ("notice", ("guo.jing@slow.example.org",), DELIVERY, SUBSCRIBER),
    "yahoo-prose.eml": ("hard", ("lin.feng.88@yahoo.example",), DELIVERY, SUBSCRIBER),
    "netease-prose-zh.eml": ("hard", ("zhou.qiang@163.example",), None, None),
    "unknown-bounce.eml": ("unknown", (), None, None),
    "not-ours.eml": ("not_ours", (), None, None),
    "arf-yahoo.eml": ("complaint", ("redacted@yahoo.example",), DELIVERY, SUBSCRIBER),
    "arf-redacted-token-only.eml": ("complaint", (), None, SUBSCRIBER),
    "arf-microsoft-jmrp.eml": ("complaint", ("kim.lee@outlook.example",), None, None),
    "arf-auth-failure.eml": ("notice", ("someone@reports.example.org",), None, None),
    "mailto-unsubscribe.eml": ("unsubscribe", ("reader.one@example.net",), None, SUBSCRIBER),
    "mailto-unsubscribe-apple.eml": (
        "unsubscribe",
        ("reader.two@icloud.example",),
        None,
        SUBSCRIBER,
    ),
    "mailto-unsubscribe-no-token.eml": ("unsubscribe", ("carol@example.net",), None, None),
    "mailto-unsubscribe-zh.eml": ("unsubscribe", ("xiaoming@example.cn",), None, SUBSCRIBER),
    "autoreply-zh-gb2312.eml": ("auto_reply", ("zhang.wei@example.cn",), DELIVERY, SUBSCRIBER),
    "autoreply-zh-precedence.eml": ("auto_reply", ("li.ming@example.cn",), None, None),
    "autoreply-outlook.eml": ("auto_reply", ("sam.jones@corp.example",), DELIVERY, SUBSCRIBER),
    "autoreply-vacation.eml": ("auto_reply", ("pat@example.org",), DELIVERY, SUBSCRIBER),
}


def run(name: str, context: Context = CONTEXT) -> Classification:
    raw = fixture_bytes(name)
    return classify(email.message_from_bytes(raw), context, raw=raw)


def test_every_fixture_has_an_expectation() -> None:
    assert sorted(EXPECTED) == all_fixtures()


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_fixture(name: str) -> None:
    kind, addresses, delivery, subscriber = EXPECTED[name]
    result = run(name)
    assert (result.kind, result.addresses) == (kind, addresses), result.reason
    assert result.delivery_id == delivery
    assert result.subscriber_id == subscriber
    if subscriber is not None:
        assert result.issue_id == ISSUE
    if result.message_id is not None:  # qmail writes no Message-ID on its bounces
        assert result.key == result.message_id
    else:
        assert result.key.startswith("sha256:")


def test_status_and_diagnostic_are_reported() -> None:
    result = run("postfix-dsn-verp.eml")
    assert result.status == "5.1.1" and result.source == "dsn"
    assert result.diagnostic is not None and "User unknown" in result.diagnostic
    assert result.original_message_id == "<i7.d1234@blog.example.com>"
    assert [r.severity for r in result.recipients] == ["hard"]
    assert result.message_id == "<20261123011407.4F2A81C0BDE@mail.example.com>"
    assert run("office365-dsn.eml").status == "5.1.10"
    assert run("exim-prose.eml").status == "5.1.1"
    assert run("postfix-mailbox-full.eml").status == "5.2.2"


def test_a_delivery_report_is_not_an_auto_reply() -> None:
    """Office 365 and Postfix mark their reports `Auto-Submitted: auto-replied`."""
    assert fixture_message("office365-dsn.eml")["Auto-Submitted"] == "auto-replied"
    assert run("office365-dsn.eml").kind == "hard"


def test_without_the_secret_a_token_names_nobody_but_the_address_still_counts() -> None:
    stranger = Context(keyring=Keyring("another-secret"), return_path="bounces@example.com")
    result = run("postfix-dsn-verp.eml", stranger)
    assert result.kind == "hard" and result.verp is None and result.subscriber_id is None
    assert result.addresses == ("wang.lei@mx.example.net",)


def test_a_tampered_verp_address_is_ignored() -> None:
    raw = fixture_bytes("postfix-dsn-verp.eml")
    flipped = VERP[:-1] + ("a" if VERP[-1] != "a" else "b")
    message = email.message_from_bytes(raw.replace(VERP.encode(), flipped.encode()))
    result = classify(message, CONTEXT)
    assert result.kind == "hard" and result.verp is None


def test_no_return_path_configured_means_no_verp() -> None:
    result = run("postfix-dsn-verp.eml", Context(keyring=CONTEXT.keyring, return_path=None))
    assert result.verp is None and result.subscriber_id == SUBSCRIBER  # the web token remains


def test_quoted_original_text_does_not_decide_the_verdict() -> None:
    """A post about Postfix may well say "User unknown": only the notice is read."""
    raw = fixture_bytes("qmail-prose.eml").replace(
        b"Sorry, no mailbox here by that name. (#5.1.1)",
        b"Remote host said: 452 4.2.2 Mailbox full, try again later",
    )
    raw = raw.replace(b"LATEST UPDATES", b"Postfix says: 550 5.1.1 User unknown")
    result = classify(email.message_from_bytes(raw), CONTEXT)
    assert result.kind == "soft" and result.status == "4.2.2"


def test_key_without_message_id_is_a_digest_of_the_bytes() -> None:
    raw = fixture_bytes("unknown-bounce.eml").replace(
        b"Message-ID: <nondescript-0001@gateway.example.net>\n", b""
    )
    message = email.message_from_bytes(raw)
    key = message_key(message, raw)
    assert key.startswith("sha256:") and key == message_key(email.message_from_bytes(raw), raw)
    other = raw.replace(b"administrator", b"postmaster")
    assert message_key(email.message_from_bytes(other), other) != key


def test_json_row_carries_the_ids() -> None:
    row = run("postfix-dsn-verp.eml").as_dict()
    assert (row["delivery_id"], row["subscriber_id"], row["issue_id"]) == (
        DELIVERY,
        SUBSCRIBER,
        ISSUE,
    )
    assert row["kind"] == "hard" and row["addresses"] == ("wang.lei@mx.example.net",)
    assert '"kind": "hard"' in run("postfix-dsn-verp.eml").to_json()


def test_multi_recipient_report_takes_the_worst_and_lists_all() -> None:
    raw = fixture_bytes("postfix-mailbox-full.eml").replace(
        b"\n--11AA22BB33.1795500012/mail.example.com--",
        b"\nFinal-Recipient: rfc822; gone@full.example.net\nAction: failed\nStatus: 5.1.1\n"
        b"\n--11AA22BB33.1795500012/mail.example.com--",
    )
    result = classify(email.message_from_bytes(raw), CONTEXT)
    assert result.kind == "hard" and result.status == "5.1.1"
    assert result.addresses == ("zhao.min@full.example.net", "gone@full.example.net")


@settings(max_examples=150, deadline=None)
@given(st.binary(max_size=3000))
def test_garbage_never_raises(data: bytes) -> None:
    message: Message = email.message_from_bytes(data)
    result = classify(message, CONTEXT, raw=data)
    assert result.kind in {
        "hard",
        "soft",
        "complaint",
        "unsubscribe",
        "notice",
        "auto_reply",
        "not_ours",
        "unknown",
    }


@settings(max_examples=60, deadline=None)
@given(
    st.sampled_from(sorted(EXPECTED)), st.integers(min_value=0), st.binary(min_size=1, max_size=40)
)
def test_mangled_fixtures_never_raise(name: str, position: int, junk: bytes) -> None:
    raw = fixture_bytes(name)
    cut = position % len(raw)
    mangled = raw[:cut] + junk + raw[cut:]
    classify(email.message_from_bytes(mangled), CONTEXT, raw=mangled)
