"""The schedule as `digest schedule` reads it: cron expressions, presets, the rhythms.

Every rule about `schedule.*` is here, in one place: the configuration checks `schedule.cron`
with `check_cron` when the file is loaded, and `rhythms` turns the whole section into the
triggers the scheduler installs (digest.issues.schedule), refusing a bad preset or offered
frequency with a ConfigError naming the key (`digest schedule` and `digest status` call it).


Five fields (minute hour day month weekday), or six with a leading seconds field (tests fire
within seconds). APScheduler accepts expressions that never fire, such as `0 9 31 2 *` (31
February) or `0 9 30 2 mon`, and then silently schedules nothing; `check_cron` refuses an
expression with no fire time within `HORIZON_YEARS`, so the mistake is a configuration error
when the file is loaded, not a digest that never goes out.

A preset (`weekly: monday 09:00`, `daily: 07:30`, `monthly: first monday 09:00`) is a cron
expression said in words; the frequencies offered besides the main one fire at the main
one's time of day (a monthly issue on the first such weekday of the month).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo
from typing import TYPE_CHECKING, Protocol
from zoneinfo import ZoneInfo

from digest.errors import ConfigError

if TYPE_CHECKING:
    from apscheduler.triggers.cron import CronTrigger

HORIZON_YEARS = 5  # a leap day comes round within 8 years, any weekday within 5 months


def parse_cron(expression: str, tz: tzinfo) -> CronTrigger:
    """The trigger for `expression`; ValueError with the reason when it is not one."""
    from apscheduler.triggers.cron import CronTrigger  # APScheduler loads asyncio: on use

    fields = expression.split()
    if len(fields) == 5:
        return CronTrigger.from_crontab(expression, timezone=tz)
    if len(fields) == 6:
        second, minute, hour, day, month, dow = fields
        return CronTrigger(
            second=second,
            minute=minute,
            hour=hour,
            day=day,
            month=month,
            day_of_week=dow,
            timezone=tz,
        )
    raise ValueError("a cron expression has 5 fields (minute hour day month weekday)")


# The plain kind of cron expression (a minute; an hour or any; a day of the month up to the
# 28th or any; any month; any weekday or named weekdays): valid, and firing within months.
_PLAIN = (
    re.compile(r"[0-9]|[1-5][0-9]"),
    re.compile(r"\*|[0-9]|1[0-9]|2[0-3]"),
    re.compile(r"\*|[1-9]|1[0-9]|2[0-8]"),
    re.compile(r"\*"),
    re.compile(r"\*|(?:mon|tue|wed|thu|fri|sat|sun)(?:,(?:mon|tue|wed|thu|fri|sat|sun))*"),
)


def fires_surely(expression: str) -> bool:
    """Whether `expression` is of the plain kind above, which `check_cron` always accepts
    (tests/config/test_cron_shortcut.py checks it against APScheduler): loading the
    configuration then needs no scheduler, whose import costs more than the rest of a
    warm `digest posts`."""
    fields = expression.split()
    return len(fields) == 5 and all(
        pattern.fullmatch(field) for pattern, field in zip(_PLAIN, fields, strict=True)
    )


def check_cron(expression: str, tz: tzinfo = UTC, now: datetime | None = None) -> datetime:
    """The next fire time of `expression`; ValueError when it is invalid or never fires
    within HORIZON_YEARS."""
    try:
        trigger = parse_cron(expression, tz)
    except ValueError as exc:
        raise ValueError(f"{expression!r} is not a valid cron expression: {exc}") from None
    start = now or datetime.now(UTC)
    horizon = start + timedelta(days=366 * HORIZON_YEARS)
    fire: datetime | None = trigger.get_next_fire_time(None, start)
    if fire is None or fire > horizon:
        raise ValueError(
            f"{expression!r} does not fire within the next {HORIZON_YEARS} years (no such date)"
        )
    return fire


_DAYS = {
    "monday": "mon",
    "tuesday": "tue",
    "wednesday": "wed",
    "thursday": "thu",
    "friday": "fri",
    "saturday": "sat",
    "sunday": "sun",
}
_PRESET = re.compile(
    r"^\s*(?P<freq>daily|weekly|monthly)\s*:\s*(?:(?P<first>first)\s+)?(?P<day>[a-z]+)?\s*"
    r"(?P<hour>\d{1,2}):(?P<minute>\d{2})\s*$",
    re.IGNORECASE,
)


def preset_frequency(preset: str) -> str:
    """The frequency a preset starts with (the configuration checks it when loaded, the rest
    of the preset when `rhythms` reads it); ValueError when it names none."""
    head = preset.split(":", 1)[0].strip().lower()
    if head not in ("daily", "weekly", "monthly"):
        raise ValueError(f"preset {preset!r} must start with daily, weekly or monthly")
    return head


@dataclass(frozen=True, slots=True)
class Rhythm:
    """When one frequency's digest goes out: a cron trigger in the schedule's time zone."""

    frequency: str
    trigger: CronTrigger


def _cron(expression: str, tz: ZoneInfo, where: str) -> CronTrigger:
    try:
        return parse_cron(expression, tz)
    except ValueError as exc:
        if len(expression.split()) not in (5, 6):
            raise ConfigError(
                f"{where}: {expression!r} needs 5 fields (minute hour day month weekday)."
            ) from None
        raise ConfigError(
            f"{where}: {expression!r} is not a valid cron expression: {exc}."
        ) from None


def _preset(text: str, tz: ZoneInfo) -> tuple[str, CronTrigger, str]:
    match = _PRESET.match(text)
    if match is None:
        raise ConfigError(
            f"schedule.preset: {text!r} is not like 'weekly: monday 09:00', 'daily: 09:00' or "
            "'monthly: first monday 09:00'."
        )
    frequency, hour, minute = match["freq"].lower(), int(match["hour"]), int(match["minute"])
    day = (match["day"] or "").lower()
    if hour > 23 or minute > 59 or (day and day not in _DAYS) or (frequency != "daily" and not day):
        raise ConfigError(f"schedule.preset: {text!r} names no valid day and time.")
    dow = _DAYS.get(day, "*")
    day_of_month = "1-7" if frequency == "monthly" else "*"
    cron = f"{minute} {hour} {day_of_month} * {dow if frequency != 'daily' else '*'}"
    return frequency, _cron(cron, tz, "schedule.preset"), cron


class ScheduleSection(Protocol):
    """What `rhythms` reads of the `schedule:` section (digest.config.schema.ScheduleConfig),
    named by shape so that the schema may import this module and not the other way round."""

    @property
    def preset(self) -> str | None: ...
    @property
    def frequency(self) -> str: ...
    @property
    def cron(self) -> str: ...
    @property
    def offer(self) -> Sequence[str]: ...


def rhythms(schedule: ScheduleSection, tz: ZoneInfo) -> list[Rhythm]:
    """The main rhythm (from `cron` or `preset`) and those subscribers may choose instead,
    their triggers in the schedule's time zone `tz`."""
    if schedule.preset:
        frequency, trigger, cron = _preset(schedule.preset, tz)
    else:
        frequency, cron = schedule.frequency, schedule.cron
        trigger = _cron(cron, tz, "schedule.cron")
    result = [Rhythm(frequency, trigger)]
    fields = cron.split()
    minute, hour = fields[-5], fields[-4]
    dow = fields[-1] if fields[-1] != "*" else "mon"
    derived = {
        "daily": f"{minute} {hour} * * *",
        "weekly": f"{minute} {hour} * * {dow}",
        "monthly": f"{minute} {hour} 1-7 * {dow}",
    }
    for other in schedule.offer:
        if other != frequency:
            result.append(Rhythm(other, _cron(derived[other], tz, "schedule.offer")))
    return result
