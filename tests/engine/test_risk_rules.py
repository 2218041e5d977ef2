"""Every pre-trade risk rule, at its boundary and on both sides of it (engine/risk.py).

Each test is written so that changing the rule by one operator or one name (a slip) fails it:
the position cap is on the position an order leads to, the notional cap never blocks an exit,
a loss exactly at the limit pauses, no bar at all is stale, OUTSIDE_RTH is honoured.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from engine.domain import EngineState, Side
from engine.hours import ALWAYS_OPEN, TradingHours
from engine.risk import PRICE_SANITY_FRACTION, OrderRequest, RiskLimits, RiskManager

NOW = datetime(2026, 11, 20, 15, 0, tzinfo=UTC)
BAR = 60
FRESH = NOW - timedelta(seconds=BAR)  # the bar that just closed
CLOSED_NOW = TradingHours(((NOW + timedelta(hours=1), NOW + timedelta(hours=2)),))
OPEN_NOW = TradingHours(((NOW - timedelta(hours=1), NOW + timedelta(hours=1)),))


def limits(**changes: object) -> RiskLimits:
    values: dict[str, object] = dict(
        max_position=100, max_notional=50_000, max_daily_loss=1000,
        max_orders_per_minute=3, bar_seconds=BAR, outside_rth=False, stale_bars=3,
    )
    values.update(changes)
    return RiskLimits(**values)  # type: ignore[arg-type]


def request(
    side: Side = Side.BUY,
    quantity: float = 10,
    position: float = 0,
    price: float | None = 100,
    limit_price: float | None = None,
) -> OrderRequest:
    return OrderRequest("AAPL", side, quantity, price, position, limit_price)


def check(risk: RiskManager, req: OrderRequest, last_bar: datetime | None = FRESH,
          hours: TradingHours = ALWAYS_OPEN, now: datetime = NOW) -> tuple[bool, str]:
    decision = risk.check(req, now, last_bar, hours)
    return decision.allowed, decision.reason


# --- what counts as an exit ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("side", "quantity", "position", "is_exit"),
    [
        (Side.SELL, 10, 10, True),  # to zero
        (Side.SELL, 4, 10, True),  # part of a long
        (Side.BUY, 4, -10, True),  # part of a short
        (Side.BUY, 10, -10, True),  # short to zero
        (Side.SELL, 11, 10, False),  # flips long to short
        (Side.BUY, 11, -10, False),  # flips short to long
        (Side.BUY, 1, 10, False),  # adds to a long
        (Side.SELL, 1, -10, False),  # adds to a short
        (Side.SELL, 5, 0, False),  # opens from flat
        (Side.BUY, 5, 0, False),
    ],
)
def test_is_exit_only_when_the_position_shrinks_without_flipping(
    side: Side, quantity: float, position: float, is_exit: bool
) -> None:
    assert request(side, quantity, position).is_exit is is_exit


# --- position cap: on the position the order leads to -----------------------------------


def test_position_cap_counts_the_position_the_order_leads_to() -> None:
    risk = RiskManager(limits(max_position=100))
    # 10 more on a position of 95 is 105: over the cap, though the order itself is small.
    allowed, reason = check(risk, request(Side.BUY, 10, position=95))
    assert allowed is False
    assert reason == "position cap: AAPL would be 105, cap 100"
    # Same for a short growing past the cap.
    allowed, reason = check(risk, request(Side.SELL, 10, position=-95))
    assert not allowed and "would be -105" in reason


def test_position_cap_boundary_is_inclusive() -> None:
    risk = RiskManager(limits(max_position=100))
    assert check(risk, request(Side.BUY, 5, position=95))[0]  # exactly at the cap
    assert check(risk, request(Side.SELL, 100, position=0))[0]
    assert not check(risk, request(Side.BUY, 100.01, position=0))[0]


def test_position_cap_tolerates_float_rounding_only() -> None:
    # Quantities are floats: a position off the cap by rounding is at the cap, no further.
    risk = RiskManager(limits(max_position=100, max_notional=1e9))
    assert check(risk, request(Side.BUY, 100 + 1e-9, position=0)) == (True, "")
    assert check(risk, request(Side.BUY, 100 + 1e-6, position=0))[0] is False


def test_position_cap_allows_a_big_order_that_leads_to_a_small_position() -> None:
    # 150 to buy back a short of 100 leaves +50: under the cap, though the order is over it.
    risk = RiskManager(limits(max_position=100, max_notional=1e9))
    assert check(risk, request(Side.BUY, 150, position=-100)) == (True, "")


def test_position_cap_never_blocks_an_exit() -> None:
    # A position over the cap (the cap was lowered) can still be reduced.
    risk = RiskManager(limits(max_position=10))
    assert check(risk, request(Side.SELL, 5, position=50)) == (True, "")


# --- notional cap: entries only --------------------------------------------------------


def test_notional_cap_blocks_an_entry_over_it_with_its_reason() -> None:
    risk = RiskManager(limits(max_notional=50_000))
    allowed, reason = check(risk, request(quantity=10, price=5001))
    assert allowed is False
    assert reason == "notional cap: 50,010.00 over 50,000.00"


def test_notional_cap_boundary_is_inclusive() -> None:
    risk = RiskManager(limits(max_notional=50_000))
    assert check(risk, request(quantity=10, price=5000)) == (True, "")


def test_notional_cap_never_blocks_an_exit() -> None:
    risk = RiskManager(limits(max_notional=1_000, max_position=1000))
    assert check(risk, request(Side.SELL, 500, position=500, price=100)) == (True, "")
    assert check(risk, request(Side.BUY, 500, position=-500, price=100)) == (True, "")


def test_notional_uses_the_limit_price_when_there_is_one() -> None:
    risk = RiskManager(limits(max_notional=1_000))
    # 10 x 100 at the last price is at the cap; the limit 105 is within price sanity but over.
    allowed, reason = check(risk, request(quantity=10, price=100, limit_price=105))
    assert not allowed and reason.startswith("notional cap: 1,050.00")
    assert check(risk, request(quantity=10, price=200, limit_price=100))[0] is False  # sanity


# --- no price --------------------------------------------------------------------------


def test_no_price_blocks_an_entry_but_not_an_exit() -> None:
    risk = RiskManager(limits())
    assert check(risk, request(price=None)) == (False, "no price yet for AAPL")
    assert check(risk, request(Side.SELL, 10, position=10, price=None)) == (True, "")


# --- price sanity ------------------------------------------------------------------------


def test_limit_price_far_from_the_last_price_is_refused_both_ways() -> None:
    risk = RiskManager(limits(max_notional=1e9))
    far = 1 + PRICE_SANITY_FRACTION + 0.001
    near = 1 + PRICE_SANITY_FRACTION - 0.001
    for limit_price in (100 * far, 100 * (2 - far)):
        allowed, reason = check(risk, request(price=100, limit_price=limit_price))
        assert not allowed and reason.startswith("price sanity"), limit_price
    for limit_price in (100 * near, 100 * (2 - near)):
        assert check(risk, request(price=100, limit_price=limit_price)) == (True, ""), limit_price


def test_price_sanity_applies_to_exits_too() -> None:
    # A limit miles from the market is a typo, whichever way the order goes.
    risk = RiskManager(limits())
    allowed, reason = check(risk, request(Side.SELL, 10, position=10, price=100, limit_price=50))
    assert not allowed and reason.startswith("price sanity")


# --- quantity, states --------------------------------------------------------------------


@pytest.mark.parametrize("quantity", [0, -1])
def test_quantity_must_be_positive(quantity: float) -> None:
    risk = RiskManager(limits())
    assert check(risk, request(quantity=quantity)) == (False, "quantity must be positive")


@pytest.mark.parametrize("quantity", [1, 0.5])
def test_one_share_or_a_fraction_of_one_is_a_quantity(quantity: float) -> None:
    assert check(RiskManager(limits()), request(quantity=quantity)) == (True, "")


def test_a_new_manager_runs_with_no_reason() -> None:
    risk = RiskManager(limits())
    assert (risk.state, risk.pause_reason) == (EngineState.RUNNING, "")


def test_paused_blocks_entries_but_lets_exits_out() -> None:
    risk = RiskManager(limits())
    risk.pause("hold on")
    assert risk.state is EngineState.PAUSED
    assert check(risk, request()) == (False, "paused: hold on")
    assert check(risk, request(Side.SELL, 10, position=10)) == (True, "")
    risk.pause("")
    assert check(risk, request()) == (False, "paused: no new entries")


def test_halted_blocks_exits_too_and_pause_does_not_lift_it() -> None:
    risk = RiskManager(limits())
    risk.halt("reconcile mismatch")
    assert check(risk, request()) == (False, "halted: reconcile mismatch")
    risk.pause("later pause")
    assert risk.state is EngineState.HALTED
    assert check(risk, request(Side.SELL, 10, position=10)) == (
        False, "halted: later pause",
    )
    risk.resume()
    assert risk.state is EngineState.RUNNING and risk.pause_reason == ""
    assert check(risk, request()) == (True, "")


# --- daily loss --------------------------------------------------------------------------


def test_a_loss_exactly_at_max_daily_loss_breaches() -> None:
    risk = RiskManager(limits(max_daily_loss=1000))
    assert risk.daily_loss_breached(-1000)
    assert risk.daily_loss_breached(-1000.01)
    assert not risk.daily_loss_breached(-999.99)
    assert not risk.daily_loss_breached(0)
    assert not risk.daily_loss_breached(1000)  # a gain is not a loss


# --- order rate --------------------------------------------------------------------------


def test_order_rate_cap_counts_the_last_minute_only() -> None:
    risk = RiskManager(limits(max_orders_per_minute=3))
    for seconds in (0, 10, 20):
        risk.record_order(NOW + timedelta(seconds=seconds))
    later = NOW + timedelta(seconds=30)
    allowed, reason = check(risk, request(), now=later, last_bar=later - timedelta(seconds=BAR))
    assert (allowed, reason) == (False, "order rate cap: 3 orders in the last minute")
    # An order exactly one minute old no longer counts.
    at_minute = NOW + timedelta(minutes=1)
    assert risk.orders_last_minute(at_minute) == 2
    assert check(risk, request(), now=at_minute, last_bar=at_minute - timedelta(seconds=BAR))[0]


def test_order_rate_cap_under_the_cap_passes() -> None:
    risk = RiskManager(limits(max_orders_per_minute=3))
    risk.record_order(NOW)
    risk.record_order(NOW)
    assert risk.orders_last_minute(NOW) == 2
    assert check(risk, request()) == (True, "")


def test_order_rate_cap_holds_for_exits() -> None:
    risk = RiskManager(limits(max_orders_per_minute=1))
    risk.record_order(NOW)
    assert not check(risk, request(Side.SELL, 10, position=10))[0]


# --- stale data --------------------------------------------------------------------------


def test_a_symbol_with_no_bar_at_all_is_stale() -> None:
    risk = RiskManager(limits())
    assert risk.is_stale(None, NOW)
    assert check(risk, request(), last_bar=None) == (False, "stale data: no recent bar for AAPL")


def test_staleness_boundary() -> None:
    # A bar starting at t closes at t + 60 s; stale once more than 3 bars (180 s) passed since.
    risk = RiskManager(limits(bar_seconds=BAR, stale_bars=3))
    edge = NOW - timedelta(seconds=BAR + 3 * BAR)
    assert not risk.is_stale(edge, NOW)
    assert risk.is_stale(edge - timedelta(seconds=1), NOW)
    assert not risk.is_stale(NOW - timedelta(seconds=BAR), NOW)
    assert check(risk, request(), last_bar=edge) == (True, "")
    assert not check(risk, request(), last_bar=edge - timedelta(seconds=1))[0]


def test_stale_data_does_not_block_an_exit() -> None:
    risk = RiskManager(limits())
    assert check(risk, request(Side.SELL, 10, position=10), last_bar=None) == (True, "")


# --- trading hours / OUTSIDE_RTH --------------------------------------------------------


def test_outside_hours_blocks_an_entry() -> None:
    risk = RiskManager(limits(outside_rth=False))
    assert check(risk, request(), hours=CLOSED_NOW) == (
        False, "outside trading hours for AAPL",
    )
    assert check(risk, request(), hours=OPEN_NOW) == (True, "")


def test_outside_rth_lets_an_entry_out_of_hours() -> None:
    risk = RiskManager(limits(outside_rth=True))
    assert check(risk, request(), hours=CLOSED_NOW) == (True, "")


def test_outside_hours_does_not_block_an_exit() -> None:
    risk = RiskManager(limits(outside_rth=False))
    assert check(risk, request(Side.SELL, 10, position=10), hours=CLOSED_NOW) == (True, "")
