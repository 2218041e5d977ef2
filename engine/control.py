"""The control API every front-end uses: it returns data, never text, and journals who asked."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import asdict, replace
from datetime import datetime
from typing import TYPE_CHECKING, Protocol

from engine.domain import KILL_SWITCH_REASON, EngineState, Fill, Order, OrderStatus, Side
from engine.events import CommandEvent, Subscription
from engine.reports import (
    CancelReport,
    ChartData,
    ChartMarker,
    ClosedPosition,
    FlattenReport,
    HealthReport,
    JournalEntry,
    PnlReport,
    PositionsReport,
    Quote,
    RiskReport,
    StatusReport,
    SymbolHealth,
)

if TYPE_CHECKING:
    from engine.engine import Engine

log = logging.getLogger(__name__)

ProgressCallback = Callable[[str], Awaitable[None]]


class CommandRefused(Exception):
    """The engine will not do this now; the message says why, in words for the user."""


class ControlAPI(Protocol):
    """What a front-end (console, Telegram) may ask of the engine."""

    @property
    def mode(self) -> str: ...  # "sim", "paper" or "live"

    async def status(self) -> StatusReport: ...
    async def positions(self) -> PositionsReport: ...
    async def orders(self) -> list[Order]: ...
    async def trades(self, n: int = 10) -> list[Fill]: ...
    async def pnl(self) -> PnlReport: ...
    async def risk(self) -> RiskReport: ...
    async def health(self) -> HealthReport: ...
    async def logs(self, n: int = 20) -> list[JournalEntry]: ...
    async def quote(self, symbol: str) -> Quote: ...  # raises KeyError for an unknown symbol
    async def pause(self, by: str, reason: str = "") -> StatusReport: ...
    async def resume(self, by: str) -> StatusReport: ...
    async def flatten(
        self, by: str, scope: str = "bot", progress: ProgressCallback | None = None
    ) -> FlattenReport: ...
    async def cancel_all(self, by: str, scope: str = "bot") -> CancelReport: ...
    async def chart_data(self, symbol: str | None) -> ChartData: ...
    def subscribe(self, maxsize: int = 1000) -> Subscription: ...


class Control:
    """The engine's control API: what front-ends may ask; each acting call is journaled."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._flatten_lock = asyncio.Lock()
        self.last_alert_delivered: datetime | None = None

    @property
    def mode(self) -> str:
        return self._engine.mode

    async def _journal_command(self, command: str, by: str, **args: object) -> None:
        engine = self._engine
        engine.bus.publish(CommandEvent(command, by, engine.clock.now(), dict(args)))
        await engine.journal.log_event(
            "info", "command", f"{command} by {by}", {"by": by, **args}
        )

    # --- read-only ------------------------------------------------------------------------

    async def status(self) -> StatusReport:
        engine = self._engine
        params = engine.settings.strategy_params
        return StatusReport(
            connection=engine.connection,
            mode=self.mode,
            account=engine.account,
            state=engine.risk.state,
            pause_reason=engine.risk.pause_reason,
            strategy=engine.settings.strategy,
            strategy_params=asdict(params),
            symbols=tuple(engine.symbols),
            last_bar_time={s: st.last_bar.time if st.last_bar else None
                           for s, st in engine.symbols.items()},
            equity=engine.portfolio.net_liquidation(),
            today_pnl=engine.today_pnl(),
            uptime_seconds=engine.uptime(),
            broker_time=engine.clock.now() if engine.clock.synced else None,
        )

    async def positions(self) -> PositionsReport:
        engine = self._engine
        positions = []
        for position in engine.portfolio.positions.values():
            price = engine.portfolio.last_price.get(position.symbol, position.market_price)
            unrealized = (
                (price - position.avg_cost) * position.quantity
                if price is not None else position.unrealized_pnl
            )
            positions.append(replace(position, market_price=price, unrealized_pnl=unrealized))
        return PositionsReport(tuple(positions), tuple(engine.symbols))

    async def orders(self) -> list[Order]:
        return self._engine.orders.working()

    async def trades(self, n: int = 10) -> list[Fill]:
        return await self._engine.journal.recent_fills(limit=n)

    async def pnl(self) -> PnlReport:
        engine = self._engine
        portfolio = engine.portfolio
        return PnlReport(
            realized_today=portfolio.realized_today,
            unrealized=portfolio.unrealized(),
            today=portfolio.today_pnl(),
            commissions_today=portfolio.commissions_today,
            net_liquidation=portfolio.net_liquidation(),
            trading_day=engine.trading_day(),
            per_symbol=dict(portfolio.realized_by_symbol),
        )

    async def risk(self) -> RiskReport:
        engine = self._engine
        limits = engine.risk.limits
        now = engine.clock.now()
        today = engine.today_pnl()
        outside = tuple(
            symbol for symbol in engine.symbols
            if (info := engine.contract_info(symbol)) and not info.liquid_hours.is_open(now)
        )
        return RiskReport(
            state=engine.risk.state,
            pause_reason=engine.risk.pause_reason,
            max_position=limits.max_position,
            max_notional=limits.max_notional,
            max_daily_loss=limits.max_daily_loss,
            max_orders_per_minute=limits.max_orders_per_minute,
            orders_last_minute=engine.risk.orders_last_minute(now),
            today_pnl=today,
            loss_remaining=limits.max_daily_loss + min(today, 0.0),
            stale_symbols=tuple(s for s in engine.symbols if engine.is_stale(s)),
            outside_hours_symbols=outside,
            recent_refusals=tuple(engine.recent_refusals),
        )

    async def health(self) -> HealthReport:
        engine = self._engine
        now = engine.clock.now()
        symbols = []
        for symbol, state in engine.symbols.items():
            last = state.last_bar.time if state.last_bar else None
            age = (now - last).total_seconds() if last else None
            symbols.append(SymbolHealth(symbol, last, age, engine.is_stale(symbol)))
        lags = sorted(engine.loop_lag_samples) or [0.0]
        p99 = lags[min(len(lags) - 1, int(len(lags) * 0.99))]
        return HealthReport(
            connection=engine.connection,
            connected_since=engine.connected_since,
            disconnects=engine.disconnects,
            symbols=tuple(symbols),
            loop_lag_ms_p99=p99 * 1000,
            loop_lag_ms_max=lags[-1] * 1000,
            last_alert_delivered=self.last_alert_delivered,
        )

    async def logs(self, n: int = 20) -> list[JournalEntry]:
        rows = await self._engine.journal.recent_events(limit=n, levels=("warning", "error"))
        return [JournalEntry(row.at, row.level, row.kind, row.message) for row in rows]

    async def quote(self, symbol: str) -> Quote:
        engine = self._engine
        symbol = symbol.upper()
        if symbol not in engine.broker.contracts:
            raise KeyError(symbol)
        if not engine.broker.is_connected:
            last = engine.portfolio.last_price.get(symbol)
            return Quote(symbol, None, None, last, None)
        bid, ask, last = await engine.broker.quote(symbol)
        if last is None:
            last = engine.portfolio.last_price.get(symbol)
        return Quote(symbol, bid, ask, last, engine.clock.now())

    async def chart_data(self, symbol: str | None) -> ChartData:
        engine = self._engine
        if symbol is None:
            curve = await engine.journal.equity_curve()
            return ChartData(None, tuple(t for t, _ in curve), tuple(v for _, v in curve))
        state = engine.symbols.get(symbol.upper())
        if state is None:
            raise KeyError(symbol)
        bars = list(state.bars)
        rows = list(state.indicators)[-len(bars):] if bars else []
        names = sorted({name for row in rows for name in row})
        indicators = {name: tuple(row.get(name) for row in rows) for name in names}
        since = bars[0].time if bars else None
        fills = await engine.journal.recent_fills(limit=500, since=since)
        markers = tuple(
            ChartMarker(f.time, f.price, f.side.value) for f in fills if f.symbol == state.symbol
        )
        return ChartData(
            state.symbol,
            tuple(bar.time for bar in bars),
            tuple(bar.close for bar in bars),
            indicators,
            markers,
        )

    def subscribe(self, maxsize: int = 1000) -> Subscription:
        return self._engine.bus.subscribe(maxsize)

    # --- acting ---------------------------------------------------------------------------

    async def pause(self, by: str, reason: str = "") -> StatusReport:
        await self._journal_command("pause", by, reason=reason)
        if self._engine.risk.state is not EngineState.HALTED:
            await self._engine.set_state(EngineState.PAUSED, reason or f"paused by {by}", by)
        return await self.status()

    async def resume(self, by: str) -> StatusReport:
        """Lift a pause; refused (CommandRefused) while a flatten runs."""
        engine = self._engine
        if self._flatten_lock.locked():
            engine.run_aside(self._journal_command("resume", by, refused="flatten in progress"))
            raise CommandRefused("flatten in progress: /resume changes nothing until it is done")
        if engine.fatal is None:
            # In memory at once, before anything awaits, so a /flatten that starts from here
            # on pauses after it; persisted in order with that flatten's pause.
            engine.risk.resume()
            engine.run_aside(engine.persist_state(EngineState.RUNNING, "", by))
        await self._journal_command("resume", by)
        return await self.status()

    async def cancel_all(self, by: str, scope: str = "bot") -> CancelReport:
        """Cancel the bot's (or the account's) orders; waits for a running flatten first, so
        it can never cancel the kill switch's own closing orders."""
        _check_scope(scope)
        await self._journal_command("cancel_all", by, scope=scope)
        async with self._flatten_lock:
            return await self._cancel(scope, flattening=False)

    async def _cancel(self, scope: str, flattening: bool) -> CancelReport:
        """Cancel the working orders, never the kill switch's own closes (a /cancelall must not
        undo a /flatten); while flattening, orders of unknown outcome are left to its report."""
        engine = self._engine
        orders = engine.orders
        engine.adopt_unknown_working()  # e.g. before the first reconciliation after a restart
        closes, working = [], []
        for order in orders.working():
            (closes if order.is_kill_switch else working).append(order)
        # IB's global cancel would cancel the kill switch's closes too: while any is out, only
        # the bot's own orders are cancelled, one by one, and the report says so.
        global_cancel = scope == "account" and not closes
        refs = []
        for order in working:
            if order.status is OrderStatus.INTENT:
                orders.abandon(order, "cancelled before it was sent")  # its sender drops it
            elif not global_cancel and orders.cancel(order.order_ref):
                refs.append(order.order_ref)
        if global_cancel:
            if engine.broker.is_connected:
                engine.broker.global_cancel()  # every client's orders, and those placed by hand
            refs = [order.order_ref for order in working if not order.status.is_done]
        # No answer comes for an order of unknown outcome until IB is back: do not wait for it.
        refs = [ref for ref in refs if not engine.outcome_unknown(orders.orders[ref])]
        await orders.wait_done(refs, timeout=CANCEL_WAIT_SECONDS)
        cancelled = tuple(
            f"{o.symbol} {o.side.value} {o.quantity:g} {o.order_type.value} ({o.order_ref})"
            for o in working if o.status is OrderStatus.CANCELLED
        )
        failed = tuple(
            f"{o.symbol} {o.side.value} {o.quantity:g} ({o.order_ref}): still {o.status.value}"
            + (" (outcome unknown: waits for IB)" if engine.outcome_unknown(o) else "")
            for o in working
            if not o.status.is_done and not (flattening and engine.outcome_unknown(o))
        )
        if not flattening:
            failed += tuple(
                f"{o.symbol} {o.side.value} {o.quantity:g} ({o.order_ref}): the kill switch's "
                f"close, kept ({o.status.value}); cancel it in TWS if you mean to"
                for o in closes
            )
        if scope == "account" and not global_cancel:
            failed += ("orders of other programs and placed by hand: not cancelled, as IB's "
                       "global cancel would cancel the kill switch's closes too; cancel them "
                       "in TWS",)
        return CancelReport(scope, cancelled, failed)

    async def flatten(
        self, by: str, scope: str = "bot", progress: ProgressCallback | None = None
    ) -> FlattenReport:
        """Pause; cancel the orders; close the positions with market orders; wait for fills.

        A second call while one runs waits for it and then finds nothing (or what is left) to
        do; calling it when flat is harmless.
        """
        _check_scope(scope)
        engine = self._engine
        # Act first: a journal that cannot be written must neither stop nor slow the kill
        # switch, so its records are written on the side.
        self._engine.run_aside(self._journal_command("flatten", by, scope=scope))
        async with self._flatten_lock:
            engine.flattening = True
            engine.orders.halt_reason = f"flatten by {by} in progress"
            try:
                return await self._flatten(by, scope, progress)
            finally:
                engine.flattening = False
                engine.orders.halt_reason = None

    async def _flatten(
        self, by: str, scope: str, progress: ProgressCallback | None
    ) -> FlattenReport:
        engine = self._engine

        async def say(text: str) -> None:
            if progress is not None:
                await progress(text)

        engine.risk.pause(f"flatten by {by}")  # at once; persisted on the side
        engine.run_aside(engine.persist_state(EngineState.PAUSED, f"flatten by {by}", by))
        if not engine.broker.is_connected:
            return FlattenReport(scope, (), (), ("not connected to the gateway",), flat=False)
        cancel = await self._cancel(scope, flattening=True)
        if cancel.cancelled:
            await say(f"cancelled {len(cancel.cancelled)} order(s)")
        # A fill that raced the cancel must show in the positions before they are closed.
        await engine.wait_positions_settled(POSITION_SETTLE_SECONDS)
        try:
            current = await engine.broker.fresh_positions()
        except (ConnectionError, TimeoutError) as exc:
            log.warning("fresh positions unavailable (%s); using the last known", exc)
            current = engine.broker.positions()
        positions = [
            p for p in current
            if p.quantity != 0 and (scope == "account" or p.symbol in engine.symbols)
        ]
        # An order whose outcome is unknown may still fill: a close beside it could close twice.
        # Its symbol waits for IB, and the report says so rather than invite another /flatten.
        still_working = {o.symbol: o for o in engine.orders.working()}
        unknown = [o for o in still_working.values() if engine.outcome_unknown(o)]
        waiting = [_waiting_text(o, "outcome unknown", "sent, not seen at the broker")
                   for o in unknown]
        waiting_symbols = {o.symbol for o in unknown}
        if not positions and not cancel.cancelled and not cancel.failed and not waiting:
            return FlattenReport(scope, (), (), (), flat=True, already_flat=True)
        not_closed = list(cancel.failed)
        to_close = []
        for position in positions:
            if position.symbol in waiting_symbols:
                continue  # reported as waiting for IB
            if position.symbol in still_working:
                # Closing now could close twice: that order may still fill.
                why = ("the close of an earlier /flatten is still working; it fills when the "
                       "market takes it" if still_working[position.symbol].is_kill_switch
                       else "an order for it is still working")
                not_closed.append(f"{position.symbol} {position.quantity:g}: {why}")
            elif engine.awaiting_position(position.symbol):
                # The broker has not shown a fill in this position yet: its size is not known.
                not_closed.append(f"{position.symbol} {position.quantity:g}: a fill is not in "
                                  "the positions yet; flatten again")
            elif await engine.broker.ensure_contract(position.symbol):
                to_close.append(position)
            else:
                not_closed.append(f"{position.symbol} {position.quantity:g}: no contract")
        orders = await asyncio.gather(*(
            engine.orders.submit(
                p.symbol, Side.SELL if p.quantity > 0 else Side.BUY, abs(p.quantity),
                f"{KILL_SWITCH_REASON}{by}", outside_rth=True, kill_switch=True,
            )
            for p in to_close
        ))
        closing = []
        for position, order in zip(to_close, orders, strict=True):
            if order.status in (OrderStatus.CANCELLED, OrderStatus.REJECTED):
                detail = order.message or order.status.value
                not_closed.append(f"{position.symbol} {position.quantity:g}: {detail}")
            else:  # working, or already filled while the others were being sent
                closing.append((position, order))
        if closing:
            await say("closing " + ", ".join(f"{p.symbol} {p.quantity:g}" for p, _ in closing))
        # Until each close is done, or its outcome can only be known once IB is back.
        await engine.orders.wait_until(
            lambda: all(o.status.is_done or engine.outcome_unknown(o) for _, o in closing),
            FLATTEN_WAIT_SECONDS,
        )
        closed = []
        for position, order in closing:
            if order.status is OrderStatus.FILLED:
                closed.append(ClosedPosition(position.symbol, position.quantity, order.avg_price))
            elif engine.outcome_unknown(order):
                waiting.append(_waiting_text(order, "close sent now", "IB's servers are away"))
            else:
                detail = order.message or order.status.value
                not_closed.append(f"{position.symbol} {position.quantity:g}: {detail}")
        return FlattenReport(scope, cancel.cancelled, tuple(closed), tuple(not_closed),
                             flat=not not_closed and not waiting,
                             waiting_for_ib=tuple(waiting))


def _waiting_text(order: Order, what: str, why: str) -> str:
    """"AAPL SELL 5 (tb-…): close sent now: IB's servers are away; …" — symbol first; the
    order's own message, when it has one, says why better than `why`."""
    return (f"{order.symbol} {order.side.value} {order.remaining:g} ({order.order_ref}): "
            f"{what}: {order.message or why}; it fills or not when IB is back, and is never "
            "sent twice")


CANCEL_WAIT_SECONDS = 10.0
POSITION_SETTLE_SECONDS = 2.0
FLATTEN_WAIT_SECONDS = 30.0


def _check_scope(scope: str) -> None:
    if scope not in ("bot", "account"):
        raise ValueError(f"scope must be 'bot' or 'account', not {scope!r}")
