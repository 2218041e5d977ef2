"""The trader: a closed bar → the strategy's signal → risk → an order → its protective orders.

`on_bar` runs the strategy; a signal is turned into at most one order in one synchronous step
(`decide`: every check and the order's registration, so two signals for one symbol can never
both pass), and the order is sent beside the bar's callback (`send`). A refusal is journaled
and published with its reason.
"""

from __future__ import annotations

import dataclasses
from collections import deque
from collections.abc import Callable

from engine.accounting import Accounting
from engine.clock import BrokerClock
from engine.config import Settings
from engine.domain import Bar, Order, OrderType, Side, Signal
from engine.events import Level, RiskEvent, RiskKind
from engine.fills import Fills
from engine.hours import ALWAYS_OPEN
from engine.journal_rows import signal_stmt
from engine.market_data import SymbolState
from engine.orders import OrderManager
from engine.portfolio import Portfolio
from engine.ports import BrokerPort
from engine.recorder import Recorder
from engine.reports import Refusal
from engine.risk import OrderRequest, RiskManager
from engine.tasks import TaskOwner

PROTECTIVE_CANCEL_SECONDS = 5.0


class Trader:
    def __init__(
        self,
        settings: Settings,
        broker: BrokerPort,
        orders: OrderManager,
        risk: RiskManager,
        portfolio: Portfolio,
        fills: Fills,
        accounting: Accounting,
        recorder: Recorder,
        clock: BrokerClock,
        tasks: TaskOwner,
        may_trade: Callable[[], str | None],
        entry_refused: Callable[[str], str | None] = lambda symbol: None,
    ) -> None:
        self._settings = settings
        self._broker = broker
        self._orders = orders
        self._risk = risk
        self._portfolio = portfolio
        self._fills = fills
        self._accounting = accounting
        self._recorder = recorder
        self._clock = clock
        self._tasks = tasks
        self._may_trade = may_trade  # None, or why nothing may be sent now
        self._entry_refused = entry_refused  # None, or why no entry may be sent for a symbol
        self.recent_refusals: deque[Refusal] = deque(maxlen=10)

    def on_bar(self, state: SymbolState, bar: Bar, trade: bool) -> None:
        """A closed bar (a historical one while warming up, when `trade` is False)."""
        signal = state.strategy.on_bar(bar, self._portfolio.position(bar.symbol))
        state.indicators.append(state.strategy.indicator_values())
        if not trade:
            return
        self._accounting.on_trading_bar()
        if signal is not None:
            prepared = self.decide(state, signal)
            if prepared is not None:
                self.send(*prepared)

    def decide(self, state: SymbolState, signal: Signal) -> tuple[Order, OrderRequest] | None:
        """Turn a strategy's target into at most one order, registered before returning."""
        symbol = signal.symbol
        self._recorder.write(signal_stmt(signal))
        blocked = self._may_trade()
        if blocked is not None:
            self._refuse(symbol, blocked)
            return None
        if self._orders.has_working(symbol):
            self._refuse(symbol, "an order for this symbol is still working")
            return None
        if self._fills.awaiting_position(symbol):
            self._refuse(symbol, "waiting for the broker to confirm the position")
            return None
        position = self._portfolio.position(symbol)
        entry_refused = self._entry_refused(symbol)
        if entry_refused is not None and signal.target * position < 0:
            signal = dataclasses.replace(signal, target=0.0)  # a reversal: only its exit half
        info = self._broker.contract(symbol)
        request = order_request(
            signal, position, self._portfolio.last_price.get(symbol),
            info.multiplier if info else 1.0,
            info.instrument.strike if info and info.instrument.sec_type == "OPT" else None,
        )
        if request is None:
            return None
        if entry_refused is not None and not request.is_exit:
            self._refuse(symbol, entry_refused)
            return None
        now = self._clock.now()
        decision = self._risk.check(
            request, now, state.last_bar.time if state.last_bar else None,
            info.liquid_hours if info else ALWAYS_OPEN,
        )
        if not decision.allowed:
            self._refuse(symbol, decision.reason)
            return None
        self._risk.record_order(now)
        return self._orders.prepare(symbol, request.side, request.quantity, signal.reason), request

    def send(self, order: Order, request: OrderRequest) -> None:
        """Start sending a decided order. Never cancelled at stop: an order being sent
        finishes its write-ahead and its sending."""
        name = f"sending {order.symbol}'s order"
        protective = [o for o in self._orders.working(order.symbol) if o.parent_ref]
        if protective or self._wants_bracket(request):
            self._tasks.let_finish(self._send_in_steps(order, request, protective), name)
        else:  # the hot path: the intent's commit starts now, placeOrder follows it
            sent = self._orders.send_soon(order, outside_rth=self._settings.outside_rth)
            self._tasks.let_finish(sent, name)

    async def _send_in_steps(
        self, order: Order, request: OrderRequest, protective: list[Order]
    ) -> None:
        """An entry with protective orders to attach, or an exit whose position's
        protective orders must go first."""
        if protective and not await self._cancel_protective(order, request, protective):
            self._orders.abandon(order, "protective orders changed the position first")
            self._refuse(order.symbol, "protective orders were still working")
            return
        bracket = self._wants_bracket(request)
        await self._orders.send(order, outside_rth=self._settings.outside_rth,
                                transmit=not bracket)
        if bracket and order.ib_order_id:
            await self._protect(order, request)

    async def _cancel_protective(
        self, order: Order, request: OrderRequest, protective: list[Order]
    ) -> bool:
        """The stop-loss / take-profit of the position being closed must not outlive it, or
        it would open a new position when it triggers: cancel them first. True if they are
        gone and the position is still the one the order was decided on."""
        refs = [o.order_ref for o in protective if self._orders.cancel(o.order_ref)]
        return (
            len(refs) == len(protective)
            and await self._orders.wait_done(refs, PROTECTIVE_CANCEL_SECONDS)
            and not any(o.filled > 0 for o in protective)
            and not self._fills.awaiting_position(order.symbol)
            and self._portfolio.position(order.symbol) == request.position
        )

    def _wants_bracket(self, request: OrderRequest) -> bool:
        return wants_bracket(request, self._settings.stop_loss_pct, self._settings.take_profit_pct)

    async def _protect(self, parent: Order, request: OrderRequest) -> None:
        """Attach stop-loss / take-profit children to an entry (sent with the last child)."""
        price = request.reference_price
        info = self._broker.contract(parent.symbol)
        tick = info.min_tick if info else 0.01
        if price is None:
            return
        settings = self._settings
        children = protective_orders(
            parent.side, price, tick, settings.stop_loss_pct, settings.take_profit_pct
        )
        oca = f"oca-{parent.order_ref}"
        for index, (order_type, limit, stop) in enumerate(children):
            await self._orders.submit(
                parent.symbol, parent.side.opposite, parent.quantity,
                f"protective {order_type.value} for {parent.order_ref}",
                order_type, limit, stop, parent=parent,
                transmit=index == len(children) - 1, oca_group=oca,
                outside_rth=settings.outside_rth,
            )

    def _refuse(self, symbol: str, reason: str) -> None:
        now = self._clock.now()
        message = f"{symbol}: order refused: {reason}"
        self.recent_refusals.append(Refusal(now, symbol, reason))
        self._recorder.record(Level.INFO, "risk", message, {"symbol": symbol},
                              event=RiskEvent(RiskKind.REFUSED, message, now, symbol=symbol))


def round_tick(price: float, tick: float) -> float:
    return round(round(price / tick) * tick, 10)


def order_request(
    signal: Signal, position: float, last_price: float | None, multiplier: float = 1.0,
    strike: float | None = None,
) -> OrderRequest | None:
    """The one order that takes `position` to the signal's target, or None when it is there.
    (Live and in backtests: the delta is target − position, sent as one order.)"""
    delta = signal.target - position
    if abs(delta) < 1e-9:
        return None
    side = Side.BUY if delta > 0 else Side.SELL
    return OrderRequest(
        signal.symbol, side, abs(delta), last_price, position, multiplier=multiplier,
        strike=strike,
    )


def wants_bracket(
    request: OrderRequest, stop_loss_pct: float | None, take_profit_pct: float | None
) -> bool:
    """An entry from flat gets protective orders when STOP_LOSS_PCT or TAKE_PROFIT_PCT is set."""
    return not request.is_exit and request.position == 0 and bool(
        stop_loss_pct or take_profit_pct
    )


def protective_orders(
    entry_side: Side, price: float, tick: float,
    stop_loss_pct: float | None, take_profit_pct: float | None,
) -> list[tuple[OrderType, float | None, float | None]]:
    """(type, limit, stop) of an entry's take-profit and stop-loss, from the entry's reference
    price, on the tick; they close the entry, so they go the opposite way."""
    direction = entry_side.sign
    children: list[tuple[OrderType, float | None, float | None]] = []
    if take_profit_pct:
        target = round_tick(price * (1 + direction * take_profit_pct / 100), tick)
        children.append((OrderType.LIMIT, target, None))
    if stop_loss_pct:
        stop = round_tick(price * (1 - direction * stop_loss_pct / 100), tick)
        children.append((OrderType.STOP, None, stop))
    return children
