"""The settings the audience's modules read, built by the caller from the configuration."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, kw_only=True, slots=True)
class SignupSettings:
    """Sign-up limits (web.confirm_limit_per_address a day, web.confirm_limit_per_ip an
    hour) and the site's rhythms (schedule.frequencies; the first is the default)."""

    per_address: int
    per_ip: int
    frequencies: tuple[str, ...] = ("weekly",)
