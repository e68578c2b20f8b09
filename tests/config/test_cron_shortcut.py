"""The plain cron expressions digest.config.cron.fires_surely lets the configuration accept
without loading APScheduler are all ones APScheduler accepts and fires within the horizon."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from digest.config.cron import check_cron, fires_surely
from digest.config.schema import ScheduleConfig

DAYS = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
PLAIN = st.tuples(
    st.integers(0, 59).map(str),
    st.one_of(st.just("*"), st.integers(0, 23).map(str)),
    st.one_of(st.just("*"), st.integers(1, 28).map(str)),
    st.just("*"),
    st.one_of(st.just("*"), st.lists(st.sampled_from(DAYS), min_size=1, max_size=7).map(",".join)),
).map(" ".join)
MOMENTS = st.datetimes(
    min_value=datetime(1990, 1, 1), max_value=datetime(2090, 1, 1), timezones=st.just(UTC)
)


@settings(max_examples=300, deadline=None)
@given(PLAIN, MOMENTS, st.sampled_from(["UTC", "Asia/Shanghai", "America/New_York"]))
def test_every_plain_expression_fires_for_apscheduler_too(
    expression: str, now: datetime, zone: str
) -> None:
    assert fires_surely(expression)
    check_cron(expression, ZoneInfo(zone), now)  # raises when it would not


def test_the_default_is_plain() -> None:
    assert fires_surely(ScheduleConfig.model_fields["cron"].default)


@pytest.mark.parametrize(
    "expression",
    [
        "0 9 31 2 *",  # no such date: APScheduler decides (and refuses)
        "0 9 29 2 *",
        "0 25 * * *",
        "60 9 * * *",
        "0 9 * * 1",  # weekday numbers: APScheduler's own meaning, so APScheduler reads them
        "0 9 * * MON",
        "0 9 * * mon-fri",
        "*/5 * * * *",
        "0 9 1-7 * mon",
        "0 0 9 * * mon",  # six fields
        "0 9 * *",
        "09 9 * * *",
        "0 9 * 1 *",
    ],
)
def test_anything_else_is_left_to_apscheduler(expression: str) -> None:
    assert not fires_surely(expression)
