"""Hard or soft: what a failed delivery's status code and diagnostic text say about the address.

The rules (docs/bounces.md states them for users):

- An enhanced status code (RFC 3463) decides when there is one: `4.x.x` is soft; `5.1.x`
  (bad mailbox, bad domain) and `5.4.x` routing failures (no such domain; Office 365's 5.4.1
  "recipient address rejected") are hard, except `5.4.6` (routing loop) and `5.4.7`
  (delivery time expired after retries), which are soft; `5.2.2` (mailbox full), `5.2.3` and
  `5.3.4` (message too large), `5.3.1`/`5.3.2` (system full or not accepting), and the
  `5.5.x` (protocol), `5.6.x` (content) and `5.7.x` (policy, spam, authentication) classes
  are soft: they say nothing against the address, and a list that suppressed on them would
  lose its audience on one bad day of its own reputation. Any other `5.x.x` is hard.
- Text can overrule a soft 5.x.x code only when it plainly says the user does not exist
  ("user unknown", "no such user", "does not exist"); a full mailbox is never hard.
- A generic code (`5.0.0`, `5.x.0`) is read with the text: quota and policy words make it soft.
- Without any code, only text that names an unknown user or domain is hard; quota, policy or
  temporary wording is soft, and so is a failure nothing explains ("undetermined").
- In-session refusals (`classify_refusal`): 4xx is deferred; a 5xx is `bounced` only when it
  is hard by the rules above; a bare 5xx without an enhanced code is `failed` unless its text
  reads as an unknown user or domain (a bare `550` is often a policy refusal).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

Severity = Literal["hard", "soft"]

_ENHANCED = re.compile(r"(?<![\d.])([245])\.([0-7])\.(\d{1,3})(?!\.?\d)")
_STRONG_UNKNOWN = re.compile(
    r"user(?:name)? (?:is )?unknown|unknown (?:user|recipient|mailbox|local[- ]part|address|alias)"
    r"|no such (?:user|mailbox|recipient|address|account|person|local user|e-?mail)"
    r"|(?:does not|doesn't|doesn’t|did not|not) exist|not a valid (?:user|mailbox|recipient)"
    r"|recipient not found|user not found|mailbox not found|address not found|account not found"
    r"|recipnotfound|no mailbox here|invalid (?:recipient|mailbox|user)|illegal user"
    r"|doesn't have an? [\w.-]+ account|not our customer|address (?:is )?no longer (?:valid|in use)"
    r"|(?:account|mailbox|address) (?:has been |is )?(?:disabled|deactivated|discontinued"
    r"|closed|terminated|suspended|removed|deleted|expired)"
    r"|用户不存在|收件人不存在|邮箱不存在|账号不存在|帐号不存在|账户不存在|无此用户|地址不存在",
    re.IGNORECASE,
)
_WEAK_UNKNOWN = re.compile(
    r"mailbox (?:is )?unavailable|undeliverable address|unrouteable address|unroutable address"
    r"|host or domain name not found|domain (?:name )?(?:not found|does not exist)|no mx record"
    r"|name service error|bad destination mailbox|recipient address rejected",
    re.IGNORECASE,
)
_QUOTA = re.compile(
    r"quota|mailbox (?:is )?full|full mailbox|mailbox size|storage (?:space|allocation|limit)"
    r"|insufficient (?:system )?storage|too much mail|mailbox (?:is )?over|容量|已满|空间不足",
    re.IGNORECASE,
)
_SOFT_WORDS = re.compile(
    r"try (?:again )?later|temporar|greylist|graylist|rate.?limit|frequency limit|too many"
    r"|throttl|defer|timed? ?out|connection (?:refused|reset|lost|closed)|spam|blocked"
    r"|block ?list|black ?list|\bRBL\b|policy|reputation|dmarc|\bspf\b|\bdkim\b"
    r"|not authori[sz]ed|content rejected|virus|message (?:is )?too (?:big|large)|size limit"
    r"|exceeds? (?:the )?(?:maximum )?(?:message )?size|loop",
    re.IGNORECASE,
)
_SOFT_CODES = {"2.2", "2.3", "3.1", "3.2", "3.4", "4.6", "4.7"}
_SOFT_SUBJECTS = {"5", "6", "7"}
_HARD_SUBJECTS = {"1", "4"}


@dataclass(frozen=True, slots=True)
class Verdict:
    """Hard or soft, with the evidence in a few words (shown by `digest bounces --json`)."""

    severity: Severity
    reason: str


def enhanced_code(text: str | None) -> str | None:
    """The first RFC 3463 enhanced status code in the text (`5.1.1`), ignoring IP addresses."""
    match = _ENHANCED.search(text or "")
    return ".".join(match.groups()) if match else None


def reads_unknown_user(text: str | None) -> bool:
    """True when the text says the recipient (or its domain) does not exist."""
    return bool(text) and bool(
        _STRONG_UNKNOWN.search(text or "") or _WEAK_UNKNOWN.search(text or "")
    )


def judge(status: str | None, diagnostic: str | None) -> Verdict:
    """Hard or soft for one recipient reported as failed (the rules in this module's doc)."""
    text = " ".join((diagnostic or "").split())
    code = enhanced_code(status) or enhanced_code(text)
    in_text = enhanced_code(text)
    if code and in_text and code.endswith(".0.0") and in_text[0] == code[0]:
        code = in_text  # Status: 5.0.0 beside "550 5.1.1 ..." in the diagnostic: be specific
    if code is None:
        return _judge_text(text)
    klass, subject, detail = code.split(".")
    key = f"{subject}.{detail}"
    if klass == "4":
        return Verdict("soft", f"{code} is a temporary failure")
    if klass == "2":
        return Verdict("soft", f"{code} reports success, not a failure")
    if key == "2.2" or (subject == "2" and _QUOTA.search(text)):
        return Verdict("soft", f"{code}: the mailbox is full")
    if key in _SOFT_CODES or subject in _SOFT_SUBJECTS:
        if _STRONG_UNKNOWN.search(text):
            return Verdict("hard", f"{code}, and the text says the user does not exist")
        return Verdict("soft", f"{code} says nothing against the address")
    if subject in _HARD_SUBJECTS or detail != "0":
        return Verdict("hard", f"{code} is a permanent address failure")
    if _QUOTA.search(text):
        return Verdict("soft", f"{code}: the text says the mailbox is full")
    if reads_unknown_user(text):
        return Verdict("hard", f"{code}, and the text says the user does not exist")
    if _SOFT_WORDS.search(text):
        return Verdict("soft", f"{code} with policy or temporary wording")
    return Verdict("hard", f"{code} is a permanent failure")


def _judge_text(text: str) -> Verdict:
    if reads_unknown_user(text):
        return Verdict("hard", "the text says the user or domain does not exist")
    if _QUOTA.search(text):
        return Verdict("soft", "the text says the mailbox is full")
    if _SOFT_WORDS.search(text):
        return Verdict("soft", "the text reads as a temporary or policy failure")
    return Verdict("soft", "undetermined failure")


RefusalOutcome = Literal["bounced", "failed", "deferred"]


@dataclass(frozen=True, slots=True)
class Refusal:
    """How to record an in-session SMTP refusal; `bounced` suppresses the subscriber."""

    outcome: RefusalOutcome
    reason: str


def classify_refusal(code: int, text: str = "", enhanced: str | None = None) -> Refusal:
    """An SMTP reply refusing a recipient or message, during the session.

    4xx is `deferred` (retried). A 5xx with an enhanced code follows `judge`: hard is
    `bounced`, soft is `failed`. A bare 5xx is `failed` unless the text reads as an unknown
    user or domain: many servers answer a plain `550` to policy refusals too.
    """
    if 400 <= code < 500:
        return Refusal("deferred", f"{code} is a temporary refusal")
    found = enhanced_code(enhanced) or enhanced_code(text)
    if found is not None:
        if found.startswith("4."):
            return Refusal("deferred", f"{code} {found} is a temporary refusal")
        verdict = judge(found, text)
        return Refusal("bounced" if verdict.severity == "hard" else "failed", verdict.reason)
    if reads_unknown_user(text):
        return Refusal("bounced", f"{code}: the text says the user or domain does not exist")
    return Refusal(
        "failed", f"{code} without an enhanced status code is not proof of a dead address"
    )
