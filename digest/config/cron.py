"""Cron expressions as `digest schedule` reads them, and whether one can fire at all.

Five fields (minute hour day month weekday), or six with a leading seconds field (tests fire
within seconds). APScheduler accepts expressions that never fire, such as `0 9 31 2 *` (31
February) or `0 9 30 2 mon`, and then silently schedules nothing; `check_cron` refuses an
expression with no fire time within `HORIZON_YEARS`, so the mistake is a configuration error
when the file is loaded, not a digest that never goes out.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, tzinfo

from apscheduler.triggers.cron import CronTrigger

HORIZON_YEARS = 5  # a leap day comes round within 8 years, any weekday within 5 months


def parse_cron(expression: str, tz: tzinfo) -> CronTrigger:
    """The trigger for `expression`; ValueError with the reason when it is not one."""
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
