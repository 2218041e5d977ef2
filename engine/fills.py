"""Fills: executions paired with their commissions, and positions confirmed by the broker.

A fill is journaled once (by exec id), announced when its commission report comes (or after
COMMISSION_WAIT_SECONDS without it), and counted in today's PnL exactly once, recovered ones
too. A fill the broker's position may not show yet marks its symbol "awaiting position": the
trader sends nothing for it, and the kill switch does not guess its size, until a position
update (or a fresh positions request) confirms it.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Container
from dataclasses import dataclass

from engine.clock import BrokerClock
from engine.domain import Fill, Position
from engine.events import FillEvent
from engine.orders import OrderManager
from engine.portfolio import Portfolio
from engine.ports import BrokerPort
from engine.recorder import Recorder
from engine.retention import EXEC_ID_RETENTION, Expiring

log = logging.getLogger(__name__)

# How long a fill waits for its commission report before it is announced without it.
COMMISSION_WAIT_SECONDS = 2.0
# A fill whose position update has not come within this long makes the engine ask for positions.
POSITION_CONFIRM_SECONDS = 3.0


@dataclass(slots=True)
class AwaitedPosition:
    """A fill seen that the broker's position may not show yet."""

    since: float  # monotonic
    expected: float | None  # what the position will be once it shows the fills, when known


class Fills:
    def __init__(
        self,
        orders: OrderManager,
        portfolio: Portfolio,
        broker: BrokerPort,
        recorder: Recorder,
        traded: Container[str],
        on_realized: Callable[[], None],
        clock: BrokerClock | None = None,
    ) -> None:
        self._orders = orders
        self._portfolio = portfolio
        self._broker = broker
        self._recorder = recorder
        self._traded = traded  # the symbols the bot trades
        self._on_realized = on_realized  # today's PnL changed (the daily loss check)
        self._pending: dict[str, tuple[Fill, asyncio.TimerHandle]] = {}  # commission to come
        self._clock = clock or BrokerClock()
        # Exec ids whose PnL is counted, for the retention (the journal dedupes beyond it).
        self._counted: Expiring[str] = Expiring(EXEC_ID_RETENTION)
        self._uncounted: dict[str, Fill] = {}  # recovered, commission still to come
        self._awaiting: dict[str, AwaitedPosition] = {}
        self._settled = asyncio.Event()
        self._settled.set()

    # --- executions and commissions -----------------------------------------------------

    def on_fill(self, fill: Fill) -> None:
        if not self._orders.on_fill(fill):
            return
        self.await_position(fill.symbol, fill.side.sign * fill.quantity)
        timer = asyncio.get_running_loop().call_later(
            COMMISSION_WAIT_SECONDS, self._commission_timeout, fill.exec_id
        )
        self._pending[fill.exec_id] = (fill, timer)

    def on_commission(self, exec_id: str, commission: float, realized_pnl: float | None) -> None:
        self._orders.on_commission(exec_id, commission, realized_pnl)
        pending = self._pending.pop(exec_id, None)
        if pending is None:
            recovered = self._uncounted.pop(exec_id, None)
            if recovered is not None:  # a fill found by reconciliation, commission came later
                self._count(exec_id, recovered.symbol, realized_pnl, commission)
            return
        fill, timer = pending
        timer.cancel()
        completed = Fill(
            fill.exec_id, fill.order_ref, fill.perm_id, fill.time, fill.symbol, fill.side,
            fill.quantity, fill.price, commission, realized_pnl,
        )
        self._announce(completed)  # first: a fill is never lost to a failing sum
        self._count(exec_id, fill.symbol, realized_pnl, commission)

    def count_recovered(self, fill: Fill) -> None:
        """Count a recovered fill's commission and PnL once, now or when its report comes."""
        if fill.exec_id in self._counted:
            return
        if fill.commission is None:
            self._uncounted[fill.exec_id] = fill
            return
        self._portfolio.add_realized(fill.symbol, fill.realized_pnl, fill.commission)
        self._counted_now(fill.exec_id)

    def _count(self, exec_id: str, symbol: str, pnl: float | None, commission: float) -> None:
        self._portfolio.add_realized(symbol, pnl, commission)
        self._counted_now(exec_id)
        self._on_realized()

    def _counted_now(self, exec_id: str) -> None:
        now = self._clock.now()
        self._counted.note(exec_id, now)
        self._counted.expire(now)

    def _commission_timeout(self, exec_id: str) -> None:
        pending = self._pending.pop(exec_id, None)
        if pending is not None:
            self._announce(pending[0])

    def _announce(self, fill: Fill) -> None:
        expected = self._portfolio.position(fill.symbol)
        if fill.symbol in self._awaiting:
            expected += fill.side.sign * fill.quantity
        self._recorder.publish(FillEvent(fill, expected))

    def announce_pending(self) -> None:
        """At shutdown: announce the fills still waiting for their commission."""
        for fill, timer in list(self._pending.values()):
            timer.cancel()
            self._announce(fill)
        self._pending.clear()

    # --- positions ----------------------------------------------------------------------

    def await_position(self, symbol: str, change: float | None = None) -> None:
        """Note a fill the broker's position may not show yet; `change` is its signed
        quantity when known (an execution), so the position that shows it is recognised."""
        if symbol not in self._traded:
            return
        awaited = self._awaiting.get(symbol)
        expected = awaited.expected if awaited else None
        if change is not None:
            base = expected if expected is not None else self._portfolio.position(symbol)
            expected = base + change
        self._awaiting[symbol] = AwaitedPosition(time.monotonic(), expected)
        self._settled.clear()

    def on_position(self, position: Position) -> None:
        self._portfolio.set_position(position)
        awaited = self._awaiting.get(position.symbol)
        if awaited is None:
            return
        # A position reflecting only an earlier execution of the order does not settle it.
        if awaited.expected is None or abs(position.quantity - awaited.expected) < 1e-9:
            self._confirmed(position.symbol)

    def _confirmed(self, symbol: str) -> None:
        self._awaiting.pop(symbol, None)
        if not self._awaiting:
            self._settled.set()

    def awaiting_position(self, symbol: str) -> bool:
        return symbol in self._awaiting

    async def refresh_if_stuck(self) -> None:
        """Ask the broker for positions when an expected position update has not come."""
        stuck = time.monotonic() - POSITION_CONFIRM_SECONDS
        if not any(a.since < stuck for a in self._awaiting.values()):
            return
        asked = time.monotonic()
        try:
            positions = await self._broker.fresh_positions()
        except (ConnectionError, TimeoutError) as exc:
            log.warning("position refresh failed: %s", exc)
            return
        self._portfolio.replace_positions(positions)
        for symbol, awaited in list(self._awaiting.items()):
            if awaited.since < asked:
                self._confirmed(symbol)

    async def wait_positions_settled(self, timeout: float) -> None:
        """Wait (bounded) until every fill seen has shown up in the broker's positions."""
        try:
            await asyncio.wait_for(self._settled.wait(), timeout)
        except TimeoutError:
            log.warning("positions not confirmed by the broker within %.1fs", timeout)
