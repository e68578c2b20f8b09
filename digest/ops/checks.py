"""One line of `digest doctor`: what was checked, pass / warn / fail, and what to do."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any


class Verdict(StrEnum):
    PASS = "pass"
    WARN = "warn"
    FAIL = "fail"


@dataclass(frozen=True, slots=True, kw_only=True)
class Check:
    """`name` is stable (scripts and alerts key on it); `summary` says what was found, `fix`
    what to do about a warning or a failure: the exact DNS record to publish, or the setting
    to change."""

    name: str
    verdict: Verdict
    summary: str
    fix: str | None = None

    @property
    def failed(self) -> bool:
        return self.verdict == Verdict.FAIL

    def as_json(self) -> dict[str, Any]:
        return {"check": self.name, "verdict": str(self.verdict), "summary": self.summary} | (
            {"fix": self.fix} if self.fix else {}
        )


def passed(name: str, summary: str) -> Check:
    return Check(name=name, verdict=Verdict.PASS, summary=summary)


def warned(name: str, summary: str, fix: str | None = None) -> Check:
    return Check(name=name, verdict=Verdict.WARN, summary=summary, fix=fix)


def failed(name: str, summary: str, fix: str | None = None) -> Check:
    return Check(name=name, verdict=Verdict.FAIL, summary=summary, fix=fix)


def txt_record(name: str, value: str) -> str:
    """A zone-file line publishing `value` at `name`, split into quoted strings of at most
    255 characters (one DNS character-string each) when it is longer."""
    chunks = [value[i : i + 255] for i in range(0, len(value), 255)] or [""]
    quoted = " ".join(
        '"' + chunk.replace("\\", "\\\\").replace('"', '\\"') + '"' for chunk in chunks
    )
    return f"{name.rstrip('.')}. IN TXT {quoted}"
