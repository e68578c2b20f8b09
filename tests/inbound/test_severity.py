"""Hard or soft from status codes and text; in-session refusals."""

from __future__ import annotations

import pytest

from digest.inbound.severity import classify_refusal, enhanced_code, judge


@pytest.mark.parametrize(
    ("status", "text", "severity"),
    [
        ("5.1.1", "User unknown", "hard"),
        ("5.1.10", "RESOLVER.ADR.RecipientNotFound", "hard"),
        ("5.4.4", "Host or domain name not found", "hard"),
        ("5.4.1", "Recipient address rejected: Access denied", "hard"),
        ("5.2.1", "mailbox disabled", "hard"),
        ("5.2.2", "Mailbox full", "soft"),
        ("5.2.1", "mailbox is full, quota exceeded", "soft"),
        ("5.3.4", "Message too big", "soft"),
        ("5.4.7", "delivery time expired", "soft"),
        ("5.7.1", "Message rejected as spam", "soft"),
        ("5.7.1", "Relay access denied", "soft"),
        ("5.7.1", "<a@b>: Recipient address rejected: User unknown", "hard"),
        ("5.5.0", "protocol error", "soft"),
        ("4.4.1", "Connection timed out", "soft"),
        ("4.1.1", "User unknown", "soft"),  # a 4xx is never hard, whatever it says
        ("5.0.0", "550 Ip frequency limited", "soft"),
        ("5.0.0", "550 5.1.1 <a@b>... User unknown", "hard"),  # the text's code is specific
        ("5.0.0", "unknown user", "hard"),
        ("5.0.0", "", "hard"),
        (None, "550 Requested action not taken: mailbox unavailable", "hard"),
        (None, "This user doesn't have a yahoo.com account", "hard"),
        (None, "Sorry your message cannot be delivered. This account has been disabled", "hard"),
        (None, "550 收件人不存在", "hard"),
        (None, "Storage quota exceeded", "soft"),
        (None, "邮箱已满", "soft"),
        (None, "try again later", "soft"),
        (None, "", "soft"),  # undetermined
        (None, "Sorry, no mailbox here by that name. (#5.1.1)", "hard"),
    ],
)
def test_judge(status: str | None, text: str, severity: str) -> None:
    assert judge(status, text).severity == severity


def test_enhanced_code_ignores_ip_addresses_and_versions() -> None:
    assert enhanced_code("host 192.0.2.1 said 550 5.1.1 nope") == "5.1.1"
    assert enhanced_code("[192.0.2.5] refused") is None
    assert enhanced_code("Exim 4.96.1 here") is None
    assert enhanced_code("see DSN 5.1.10 Errors") == "5.1.10"
    assert enhanced_code("(#5.1.1)") == "5.1.1"


@pytest.mark.parametrize(
    ("code", "text", "enhanced", "outcome"),
    [
        (550, "Requested action not taken: policy", None, "failed"),
        (550, "", None, "failed"),  # a bare 550 is not proof of a dead address
        (554, "Transaction failed", None, "failed"),
        (550, "5.1.1 <a@example.com>: Recipient address rejected: User unknown", None, "bounced"),
        (550, "User unknown", None, "bounced"),
        (550, "No such user here", None, "bounced"),
        (550, "Recipient address rejected", "5.1.1", "bounced"),
        (550, "Message rejected as spam", "5.7.1", "failed"),
        (552, "Mailbox full", "5.2.2", "failed"),
        (450, "User unknown", None, "deferred"),
        (421, "Service not available", "4.3.2", "deferred"),
        (550, "Temporary block", "4.7.1", "deferred"),
    ],
)
def test_classify_refusal(code: int, text: str, enhanced: str | None, outcome: str) -> None:
    assert classify_refusal(code, text, enhanced).outcome == outcome
