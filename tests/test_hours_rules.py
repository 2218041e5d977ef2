"""Trading hours as IB gives them (engine/hours.py): read in the exchange's zone, a session's
end is closed, its start open, CLOSED days skipped, an unknown schedule always open."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from engine.hours import ALWAYS_OPEN, TradingHours, trading_day, utc

NEW_YORK = "America/New_York"
# 2026-11-20 is a Friday; New York is UTC-5 then (standard time).
SCHEDULE = "20261120:0930-20261120:1600;20261121:CLOSED;20261123:0930-20261123:1600"
OPEN_UTC = datetime(2026, 11, 20, 14, 30, tzinfo=UTC)
CLOSE_UTC = datetime(2026, 11, 20, 21, 0, tzinfo=UTC)


def test_session_times_are_read_in_the_exchanges_zone() -> None:
    hours = TradingHours.parse(SCHEDULE, NEW_YORK)
    assert hours.intervals[0] == (OPEN_UTC, CLOSE_UTC)
    # 10:00 UTC is 05:00 in New York: closed, though 10:00 would be open if read as UTC.
    assert not hours.is_open(datetime(2026, 11, 20, 10, 0, tzinfo=UTC))
    assert hours.is_open(datetime(2026, 11, 20, 20, 0, tzinfo=UTC))


def test_summer_time_is_the_exchanges_too() -> None:
    hours = TradingHours.parse("20260715:0930-20260715:1600", NEW_YORK)
    assert hours.intervals == (
        (datetime(2026, 7, 15, 13, 30, tzinfo=UTC), datetime(2026, 7, 15, 20, 0, tzinfo=UTC)),
    )


def test_session_start_is_open_and_its_end_is_not() -> None:
    hours = TradingHours.parse(SCHEDULE, NEW_YORK)
    assert hours.is_open(OPEN_UTC)
    assert not hours.is_open(OPEN_UTC - timedelta(microseconds=1))
    assert hours.is_open(CLOSE_UTC - timedelta(microseconds=1))
    assert not hours.is_open(CLOSE_UTC)


def test_closed_days_and_gaps_between_sessions_are_closed() -> None:
    hours = TradingHours.parse(SCHEDULE, NEW_YORK)
    assert len(hours.intervals) == 2 and hours.known
    assert not hours.is_open(datetime(2026, 11, 21, 15, 0, tzinfo=UTC))  # Saturday: CLOSED
    assert hours.is_open(datetime(2026, 11, 23, 15, 0, tzinfo=UTC))  # the next session
    assert not hours.is_open(datetime(2026, 11, 23, 22, 0, tzinfo=UTC))  # after the last


def test_past_the_last_day_listed_is_unknown_not_closed() -> None:
    """IB lists about a week: a bot that never asked again would refuse every entry as
    "outside trading hours" from the second week on. Past the schedule is unknown (open)."""
    hours = TradingHours.parse(SCHEDULE, NEW_YORK)
    assert hours.known_until == datetime(2026, 11, 24, 5, 0, tzinfo=UTC)  # NY midnight
    assert hours.is_open(datetime(2026, 11, 24, 15, 0, tzinfo=UTC))
    assert hours.is_open(datetime(2026, 12, 1, 3, 0, tzinfo=UTC))  # even at night
    assert hours.stale(datetime(2026, 11, 23, 12, 0, tzinfo=UTC))
    assert not hours.stale(datetime(2026, 11, 20, 12, 0, tzinfo=UTC))


def test_intervals_are_sorted_whatever_the_order_given() -> None:
    hours = TradingHours.parse("20261123:0930-20261123:1600;20261120:0930-20261120:1600", NEW_YORK)
    assert [start.day for start, _ in hours.intervals] == [20, 23]


def test_a_session_over_midnight() -> None:
    hours = TradingHours.parse("20261119:1800-20261120:1700", NEW_YORK)
    assert hours.is_open(datetime(2026, 11, 20, 4, 0, tzinfo=UTC))  # 23:00 New York
    assert not hours.is_open(datetime(2026, 11, 20, 22, 30, tzinfo=UTC))


@pytest.mark.parametrize("text", ["", ";"])
def test_no_session_listed_gives_no_interval(text: str) -> None:
    hours = TradingHours.parse(text, NEW_YORK)
    assert hours.intervals == () and not hours.known


def test_a_schedule_of_holidays_only_is_closed_on_them() -> None:
    """Before: only CLOSED days listed parsed as "unknown", i.e. open: a holiday could trade."""
    hours = TradingHours.parse("20261225:CLOSED;20261226:CLOSED", NEW_YORK)
    assert hours.known and hours.intervals == ()
    christmas_noon = datetime(2026, 12, 25, 17, 0, tzinfo=UTC)  # 12:00 in New York
    assert not hours.is_open(christmas_noon)
    assert not hours.is_open(datetime(2026, 12, 26, 4, 59, tzinfo=UTC))  # 23:59 on the 25th
    assert hours.is_open(datetime(2026, 12, 24, 17, 0, tzinfo=UTC))  # not listed: unknown


def test_an_unknown_schedule_counts_as_open() -> None:
    assert not ALWAYS_OPEN.known
    assert ALWAYS_OPEN.is_open(OPEN_UTC)
    assert TradingHours.parse("", NEW_YORK).is_open(OPEN_UTC)


def test_no_zone_given_means_utc() -> None:
    hours = TradingHours.parse("20261120:0930-20261120:1600", "")
    assert hours.intervals[0][0] == datetime(2026, 11, 20, 9, 30, tzinfo=UTC)


def test_trading_day_is_the_exchanges_date() -> None:
    late_evening_new_york = datetime(2026, 11, 21, 3, 0, tzinfo=UTC)
    assert trading_day(late_evening_new_york, NEW_YORK) == "2026-11-20"
    assert trading_day(late_evening_new_york, "") == "2026-11-21"
    assert trading_day(datetime(2026, 11, 21, 5, 0, tzinfo=UTC), NEW_YORK) == "2026-11-21"


def test_utc_converts_aware_times_and_labels_naive_ones() -> None:
    plus_two = datetime(2026, 11, 20, 12, 0, tzinfo=timezone(timedelta(hours=2)))
    assert utc(plus_two) == datetime(2026, 11, 20, 10, 0, tzinfo=UTC)
    assert utc(plus_two).utcoffset() == timedelta(0)
    assert utc(datetime(2026, 11, 20, 12, 0)) == datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
