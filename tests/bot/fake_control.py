"""An in-memory ControlAPI for front-end tests: scriptable positions and orders, an EventBus to
publish events, and a flatten that can be made slow or partly failing. Records every call."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta

from engine.domain import (
    ConnectionState,
    EngineState,
    Fill,
    Order,
    OrderStatus,
    OrderType,
    Position,
    Side,
)
from engine.events import EventBus, Subscription
from engine.kill_switch import ProgressCallback
from engine.reports import (
    CancelReport,
    ChartData,
    ChartMarker,
    ClosedPosition,
    FlattenReport,
    HealthReport,
    JournalEntry,
    NotClosed,
    NotClosedReason,
    OrderSummary,
    PnlReport,
    PositionsReport,
    Quote,
    Refusal,
    RiskReport,
    StatusReport,
    SymbolHealth,
)

T0 = datetime(2024, 5, 1, 14, 30, tzinfo=UTC)


def make_order(ref: str, symbol: str, side: Side = Side.BUY, quantity: float = 10) -> Order:
    return Order(
        ref,
        symbol,
        side,
        quantity,
        OrderType.LIMIT,
        limit_price=100.0,
        status=OrderStatus.SUBMITTED,
        created_at=T0,
    )


def make_fill(
    symbol: str = "AAPL",
    side: Side = Side.BUY,
    quantity: float = 10,
    price: float = 187.25,
    commission: float | None = 1.0,
    realized_pnl: float | None = None,
    exec_id: str = "e1",
) -> Fill:
    return Fill(
        exec_id,
        f"ref-{exec_id}",
        1,
        datetime.now(UTC),
        symbol,
        side,
        quantity,
        price,
        commission,
        realized_pnl,
    )


@dataclass
class FakeControl:
    """Implements engine.control.ControlAPI in memory."""

    mode: str = "sim"
    symbols: tuple[str, ...] = ("AAPL", "MSFT")
    positions_list: list[Position] = field(default_factory=list)
    orders_list: list[Order] = field(default_factory=list)
    fills: list[Fill] = field(default_factory=list)
    state: EngineState = EngineState.RUNNING
    pause_reason: str = ""
    flatten_delay: float = 0.0  # seconds per closed position
    flatten_fail: set[str] = field(default_factory=set)  # symbols that cannot be closed
    flatten_error: Exception | None = None  # raised by flatten, e.g. the broker went away
    calls: list[tuple[str, tuple[object, ...]]] = field(default_factory=list)
    bus: EventBus = field(default_factory=EventBus)

    def __post_init__(self) -> None:
        self.flatten_started = asyncio.Event()
        self.flatten_finished = asyncio.Event()

    async def status(self) -> StatusReport:
        self.calls.append(("status", ()))
        return StatusReport(
            connection=ConnectionState.CONNECTED,
            mode=self.mode,
            account="DU123456",
            state=self.state,
            pause_reason=self.pause_reason,
            strategy="sma_cross",
            strategy_params={"fast": 10, "slow": 30},
            symbols=self.symbols,
            last_bar_time={s: T0 for s in self.symbols},
            equity=100_000.0,
            today_pnl=-12.5,
            uptime_seconds=3725,
            broker_time=T0,
        )

    async def positions(self) -> PositionsReport:
        self.calls.append(("positions", ()))
        return PositionsReport(tuple(self.positions_list), self.symbols)

    async def orders(self) -> list[Order]:
        self.calls.append(("orders", ()))
        return list(self.orders_list)

    async def trades(self, n: int = 10) -> list[Fill]:
        self.calls.append(("trades", (n,)))
        return self.fills[-n:]

    async def pnl(self) -> PnlReport:
        self.calls.append(("pnl", ()))
        return PnlReport(40.0, -52.5, -12.5, 3.0, 100_000.0, "2024-05-01", {"AAPL": -12.5})

    async def risk(self) -> RiskReport:
        self.calls.append(("risk", ()))
        return RiskReport(
            self.state,
            self.pause_reason,
            100,
            50_000,
            1_000,
            10,
            2,
            -12.5,
            987.5,
            (),
            (),
            (Refusal(T0, "MSFT", "max position"),),
        )

    async def health(self) -> HealthReport:
        self.calls.append(("health", ()))
        symbols = tuple(SymbolHealth(s, T0, 12.0, s == "MSFT") for s in self.symbols)
        return HealthReport(ConnectionState.CONNECTED, T0, 1, symbols, 1.2, 4.8)

    async def logs(self, n: int = 20) -> list[JournalEntry]:
        self.calls.append(("logs", (n,)))
        return [JournalEntry(T0, "warning", "data", "AAPL bar dropped: high < low")][:n]

    async def quote(self, symbol: str) -> Quote:
        self.calls.append(("quote", (symbol,)))
        if symbol not in self.symbols:
            raise KeyError(symbol)
        return Quote(symbol, 187.2, 187.3, 187.25, T0)

    async def pause(self, by: str, reason: str = "") -> StatusReport:
        self.calls.append(("pause", (by, reason)))
        self.state, self.pause_reason = EngineState.PAUSED, reason
        return await self.status()

    async def resume(self, by: str) -> StatusReport:
        self.calls.append(("resume", (by,)))
        self.state, self.pause_reason = EngineState.RUNNING, ""
        return await self.status()

    async def flatten(
        self, by: str, scope: str = "bot", progress: ProgressCallback | None = None
    ) -> FlattenReport:
        self.calls.append(("flatten", (by, scope)))
        self.flatten_started.set()
        if self.flatten_error is not None:
            raise self.flatten_error
        self.state = EngineState.PAUSED
        cancelled = _cancel(self.orders_list)
        if progress and cancelled:
            await progress(f"cancelled {len(cancelled)} orders")
        closed, not_closed, kept = [], [], []
        had_positions = bool(self.positions_list)
        for position in self.positions_list:
            if scope == "bot" and position.symbol not in self.symbols:
                kept.append(position)
                continue
            await asyncio.sleep(self.flatten_delay)
            if position.symbol in self.flatten_fail:
                not_closed.append(NotClosed(position.symbol, position.quantity,
                                            NotClosedReason.CLOSE_FAILED, detail="order rejected"))
                kept.append(position)
                continue
            closed.append(ClosedPosition(position.symbol, position.quantity, 100.0))
            if progress:
                await progress(f"closed {position.symbol} {position.quantity:g}")
        self.positions_list = kept
        self.flatten_finished.set()
        return FlattenReport(
            scope,
            cancelled,
            tuple(closed),
            tuple(not_closed),
            not not_closed,
            already_flat=not had_positions and not cancelled,
        )

    async def cancel_all(self, by: str, scope: str = "bot") -> CancelReport:
        self.calls.append(("cancel_all", (by, scope)))
        return CancelReport(scope, _cancel(self.orders_list), ())

    async def chart_data(self, symbol: str | None) -> ChartData:
        self.calls.append(("chart_data", (symbol,)))
        if symbol is not None and symbol not in self.symbols:
            raise KeyError(symbol)
        times = tuple(T0 + timedelta(minutes=i) for i in range(120))
        values = tuple(100 + (i % 17) * 0.3 for i in range(120))
        markers = (
            ChartMarker(times[20], values[20], "BUY"),
            ChartMarker(times[70], values[70], "SELL"),
        )
        sma = tuple(None if i < 10 else sum(values[i - 10 : i]) / 10 for i in range(120))
        if symbol is None:
            return ChartData(None, times, values)
        opens = (values[0], *values[:-1])
        return ChartData(
            symbol, times, values, {"sma10": sma}, markers,
            opens=opens,
            highs=tuple(max(o, c) + 0.1 for o, c in zip(opens, values, strict=True)),
            lows=tuple(min(o, c) - 0.1 for o, c in zip(opens, values, strict=True)),
            volumes=tuple(1000.0 + 10 * i for i in range(120)),
        )

    def subscribe(self, maxsize: int = 1000) -> Subscription:
        return self.bus.subscribe(maxsize)

    def publish(self, event: object) -> None:
        self.bus.publish(event)

    def called(self, name: str) -> list[tuple[object, ...]]:
        return [args for call, args in self.calls if call == name]


def _cancel(orders: list[Order]) -> tuple[OrderSummary, ...]:
    """Cancels every order: they leave the list, and the report names them."""
    cancelled = tuple(OrderSummary.of(replace(o, status=OrderStatus.CANCELLED)) for o in orders)
    orders.clear()
    return cancelled
