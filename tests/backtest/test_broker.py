"""The fill convention: a market order decided at a bar's close fills at the next bar's open;
limit and stop orders at their price when a later bar reaches it, at the open when it gaps."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from backtest.broker import Commission, SimulatedBroker
from engine.domain import Order, OrderStatus, OrderType, Side

T = datetime(2026, 1, 5, 15, 0, tzinfo=UTC)


def _broker(commission: Commission | None = None) -> SimulatedBroker:
    broker = SimulatedBroker(("TEST",), 10_000.0, commission or Commission())
    broker.bar_index = 0  # orders are placed at bar 0's close
    return broker


def _order(side: Side, kind: OrderType = OrderType.MARKET, limit: float | None = None,
           stop: float | None = None, ref: str = "o1") -> Order:
    return Order(ref, "TEST", side, 10.0, kind, limit, stop)


def test_a_market_order_fills_at_the_next_bars_open() -> None:
    broker = _broker()
    broker.place(_order(Side.BUY))
    assert broker.match(0, "TEST", T, 100.0, 101.0, 99.0) == []  # not the bar it was decided at
    [fill] = broker.match(1, "TEST", T, 102.0, 105.0, 98.0)
    assert (fill.side, fill.quantity, fill.price, fill.time) == (Side.BUY, 10.0, 102.0, T)
    assert broker.position("TEST") == 10.0
    assert broker.cash == pytest.approx(10_000.0 - 1020.0)


@pytest.mark.parametrize(
    ("side", "kind", "price", "bar", "expected"),
    [
        # (open, high, low) of the next bar; expected fill price or None
        (Side.BUY, OrderType.LIMIT, 99.0, (100.0, 101.0, 98.5), 99.0),  # reached: at the limit
        (Side.BUY, OrderType.LIMIT, 99.0, (97.0, 98.0, 96.0), 97.0),  # gapped below: the open
        (Side.BUY, OrderType.LIMIT, 99.0, (100.0, 101.0, 99.5), None),  # not reached
        (Side.SELL, OrderType.LIMIT, 101.0, (100.0, 101.5, 99.0), 101.0),
        (Side.SELL, OrderType.LIMIT, 101.0, (103.0, 104.0, 102.0), 103.0),
        (Side.SELL, OrderType.STOP, 99.0, (100.0, 101.0, 98.0), 99.0),  # reached: at the stop
        (Side.SELL, OrderType.STOP, 99.0, (96.0, 97.0, 95.0), 96.0),  # gapped through: the open
        (Side.SELL, OrderType.STOP, 99.0, (100.0, 101.0, 99.5), None),
        (Side.BUY, OrderType.STOP, 101.0, (100.0, 101.2, 99.0), 101.0),
        (Side.BUY, OrderType.STOP, 101.0, (103.0, 104.0, 102.0), 103.0),
    ],
)
def test_limit_and_stop_orders_fill_at_their_price_or_the_gap_open(
    side: Side, kind: OrderType, price: float, bar: tuple[float, float, float],
    expected: float | None,
) -> None:
    broker = _broker()
    limit, stop = (price, None) if kind is OrderType.LIMIT else (None, price)
    order = _order(side, kind, limit, stop)
    broker.place(order)
    fills = broker.match(1, "TEST", T, *bar)
    if expected is None:
        assert fills == [] and order.status is OrderStatus.SUBMITTED
    else:
        assert [f.price for f in fills] == [expected]


def test_protective_orders_wait_for_the_parent_then_one_cancels_the_other() -> None:
    broker = _broker()
    parent = _order(Side.BUY)
    parent_id = broker.place(parent)
    take = _order(Side.SELL, OrderType.LIMIT, limit=110.0, ref="tp")
    stop = _order(Side.SELL, OrderType.STOP, stop=95.0, ref="sl")
    broker.place(take, parent_id=parent_id, oca_group="g")
    broker.place(stop, parent_id=parent_id, oca_group="g")
    # The parent fills at the open; the same bar then reaches both: the stop is taken (the
    # worse), and the take-profit is cancelled with it.
    fills = broker.match(1, "TEST", T, 100.0, 111.0, 94.0)
    assert [(f.order_ref, f.price) for f in fills] == [("o1", 100.0), ("sl", 95.0)]
    assert take.status is OrderStatus.CANCELLED
    assert broker.position("TEST") == 0.0 and broker.working_orders() == []


def test_cancelling_a_parent_cancels_its_waiting_children() -> None:
    broker = _broker()
    parent_id = broker.place(_order(Side.BUY, OrderType.LIMIT, limit=90.0))
    broker.place(_order(Side.SELL, OrderType.STOP, stop=85.0, ref="sl"), parent_id=parent_id)
    assert broker.cancel("o1")
    assert broker.working_orders() == []


def test_commission_per_share_with_a_minimum() -> None:
    assert Commission(0.005, 1.0).of(100) == 1.0
    assert Commission(0.005, 1.0).of(1000) == 5.0
    assert Commission().of(1000) == 0.0
    broker = _broker(Commission(0.01, 2.0))
    broker.place(_order(Side.BUY))
    [fill] = broker.match(1, "TEST", T, 100.0, 100.0, 100.0)
    assert fill.commission == 2.0 and fill.realized_pnl == -2.0
    assert broker.cash == pytest.approx(10_000.0 - 1000.0 - 2.0)


def test_realized_pnl_at_average_cost() -> None:
    broker = _broker()
    broker.place(_order(Side.BUY))
    broker.match(1, "TEST", T, 100.0, 100.0, 100.0)
    broker.bar_index = 1
    broker.place(_order(Side.BUY, ref="o2"))
    broker.match(2, "TEST", T, 110.0, 110.0, 110.0)
    [held] = broker.positions()
    assert (held.quantity, held.avg_cost) == (20.0, 105.0)
    broker.bar_index = 2
    broker.place(Order("o3", "TEST", Side.SELL, 20.0))
    [fill] = broker.match(3, "TEST", T, 120.0, 120.0, 120.0)
    assert fill.realized_pnl == pytest.approx(300.0)
    assert broker.positions() == []
