"""The order status table (engine/order_states.py), pair by pair, and its one owner,
OrderManager.transition / on_update, on a real journal: allowed changes apply and wake waiters,
impossible ones are logged and journaled and change nothing, and only fills revive a cancel.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from datetime import UTC, datetime

import pytest

from engine.clock import BrokerClock
from engine.domain import Order, OrderStatus, OrderUpdate, Side
from engine.journal import Journal
from engine.journal_writer import JournalWriter
from engine.order_states import ALLOWED, allowed
from engine.orders import OrderManager
from engine.recorder import Recorder

# The columns of EXPECTED, in order: the status an order goes *to*.
TO = (
    OrderStatus.INTENT, OrderStatus.PENDING, OrderStatus.SUBMITTED, OrderStatus.PARTIAL,
    OrderStatus.FILLED, OrderStatus.CANCELLED, OrderStatus.REJECTED, OrderStatus.UNKNOWN,
)

# Which transition is allowed, written out: "x" allowed, "." not. Staying put always is.
EXPECTED: dict[OrderStatus, str] = {
    #                       to: INT PEN SUB PAR FIL CAN REJ UNK
    # journaled, not sent: placed, dropped unsent, unknown after a restart, or a racing answer
    OrderStatus.INTENT:        " x   x   x   x   x   x   x   x ",
    # sent: any broker answer, UNKNOWN at a drop; never back to an unsent intent
    OrderStatus.PENDING:       " .   x   x   x   x   x   x   x ",
    # at the broker: never back to PendingSubmit either
    OrderStatus.SUBMITTED:     " .   .   x   x   x   x   x   x ",
    OrderStatus.PARTIAL:       " .   .   x   x   x   x   x   x ",
    # outcome unknown: whatever the broker or reconciliation shows, CANCELLED once proven gone
    OrderStatus.UNKNOWN:       " .   x   x   x   x   x   x   x ",
    # final, but an inferred cancel can be wrong: the broker may show it working or filled
    OrderStatus.CANCELLED:     " .   .   x   x   x   x   .   . ",
    # final: nothing follows a fill
    OrderStatus.FILLED:        " .   .   .   .   x   .   .   . ",
    # final, except for executions: a fill is never wrong
    OrderStatus.REJECTED:      " .   .   .   x   x   .   x   . ",
}


def _expected(current: OrderStatus, new: OrderStatus) -> bool:
    return EXPECTED[current].split()[TO.index(new)] == "x"


def test_the_expected_table_names_every_status() -> None:
    assert set(TO) == set(OrderStatus)
    assert set(EXPECTED) == set(OrderStatus) == set(ALLOWED)
    assert all(len(row.split()) == len(TO) for row in EXPECTED.values())


@pytest.mark.parametrize(
    ("current", "new"),
    list(itertools.product(OrderStatus, OrderStatus)),
    ids=lambda status: status.name,
)
def test_allowed(current: OrderStatus, new: OrderStatus) -> None:
    assert allowed(current, new) is _expected(current, new)


# --- OrderManager, the one owner that applies the table --------------------------------------

# transition and on_update never reach the broker: anything they asked of it would raise.
NO_BROKER = object()
AT = datetime(2024, 5, 6, 14, 30, tzinfo=UTC)


@pytest.fixture
def orders(recorder: Recorder) -> OrderManager:  # journal, writer, recorder: conftest.py
    return OrderManager(NO_BROKER, recorder, BrokerClock())  # type: ignore[arg-type]


def _track(orders: OrderManager, status: OrderStatus, filled: float = 0.0) -> Order:
    order = Order("tb-0123456789abcdef", "AAPL", Side.BUY, 10, status=status, filled=filled,
                  avg_price=101.5 if filled else 0.0, message="as it was")
    orders.adopt(order)
    return order


def _update(order: Order, status: OrderStatus, filled: float) -> OrderUpdate:
    return OrderUpdate(order.order_ref, status, filled, order.quantity - filled,
                       avg_price=99.0, time=AT, message="from the broker",
                       ib_order_id=7, perm_id=70)


async def test_an_allowed_transition_applies_and_wakes_waiters(orders: OrderManager) -> None:
    order = _track(orders, OrderStatus.PENDING)
    looked = asyncio.Event()

    def submitted() -> bool:
        looked.set()
        return order.status is OrderStatus.SUBMITTED

    waiter = asyncio.create_task(orders.wait_until(submitted, timeout=1))
    await looked.wait()  # it has looked once and now waits for a change
    assert not waiter.done()

    assert orders.transition(order, OrderStatus.SUBMITTED, filled=0.0, message="working")

    assert await waiter
    assert (order.status, order.message) == (OrderStatus.SUBMITTED, "working")


async def test_an_impossible_transition_is_logged_journaled_and_not_applied(
    orders: OrderManager, writer: JournalWriter, journal: Journal,
    caplog: pytest.LogCaptureFixture,
) -> None:
    order = _track(orders, OrderStatus.FILLED, filled=10)

    with caplog.at_level(logging.WARNING, logger="engine.orders"):
        assert not orders.transition(order, OrderStatus.CANCELLED, filled=0.0, message="late")

    assert (order.status, order.filled, order.message) == (OrderStatus.FILLED, 10, "as it was")
    assert any(order.order_ref in r.getMessage() and "Filled -> Cancelled" in r.getMessage()
               for r in caplog.records if r.levelno == logging.WARNING)
    await writer.flush()
    [row] = await journal.recent_events(limit=10)
    assert (row.level, row.kind) == ("warning", "order_state")
    assert row.details == {"order_ref": order.order_ref, "from": "Filled", "to": "Cancelled"}


@pytest.mark.parametrize("late", [
    pytest.param(OrderStatus.SUBMITTED, id="submitted"),
    pytest.param(OrderStatus.PARTIAL, id="partial"),
    pytest.param(OrderStatus.CANCELLED, id="cancelled"),
    pytest.param(OrderStatus.REJECTED, id="rejected"),
    pytest.param(OrderStatus.PENDING, id="pending"),
])
async def test_a_late_status_after_filled_changes_nothing(
    orders: OrderManager, writer: JournalWriter, journal: Journal, late: OrderStatus,
) -> None:
    order = _track(orders, OrderStatus.FILLED, filled=10)

    orders.on_update(_update(order, late, filled=4), "AAPL")

    assert (order.status, order.filled, order.avg_price, order.message) == (
        OrderStatus.FILLED, 10, 101.5, "as it was")
    assert (order.ib_order_id, order.perm_id, order.updated_at) == (None, None, None)
    await writer.flush()
    assert [row.kind for row in await journal.recent_events(limit=10)] == ["order_state"]


@pytest.mark.parametrize(("status", "filled"), [
    pytest.param(OrderStatus.PARTIAL, 4, id="partly-filled"),
    pytest.param(OrderStatus.FILLED, 10, id="filled"),
])
async def test_a_fill_revives_a_cancelled_order(
    orders: OrderManager, writer: JournalWriter, journal: Journal,
    status: OrderStatus, filled: float,
) -> None:
    # Cancelled on an inference (an error, an absence); the broker's fill proves it wrong.
    order = _track(orders, OrderStatus.CANCELLED)

    orders.on_update(_update(order, status, filled), "AAPL")

    assert (order.status, order.filled, order.avg_price) == (status, filled, 99.0)
    assert (order.ib_order_id, order.perm_id, order.updated_at) == (7, 70, AT)
    await writer.flush()
    assert await journal.recent_events(limit=10) == []  # nothing impossible happened


async def test_a_status_never_lowers_what_is_filled(orders: OrderManager) -> None:
    # Answers can cross: a status sent before the last execution arrives after it.
    order = _track(orders, OrderStatus.PARTIAL, filled=6)

    orders.on_update(_update(order, OrderStatus.SUBMITTED, filled=4), "AAPL")

    assert (order.status, order.filled) == (OrderStatus.SUBMITTED, 6)
