"""What the control API returns: data for front-ends to turn into words."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from engine.domain import ConnectionState, EngineState, Position


@dataclass(frozen=True, slots=True)
class StatusReport:
    connection: ConnectionState
    mode: str  # "sim", "paper" or "live"
    account: str
    state: EngineState
    pause_reason: str
    strategy: str
    strategy_params: dict[str, float | int | bool | str]
    symbols: tuple[str, ...]
    last_bar_time: dict[str, datetime | None]
    equity: float | None
    today_pnl: float | None
    uptime_seconds: float
    broker_time: datetime | None


@dataclass(frozen=True, slots=True)
class PositionsReport:
    positions: tuple[Position, ...]
    bot_symbols: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class PnlReport:
    realized_today: float
    unrealized: float
    today: float
    commissions_today: float
    net_liquidation: float | None
    trading_day: str  # the exchange's trading day, ISO date
    per_symbol: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Refusal:
    """An order the strategy wanted and a rule refused."""

    time: datetime  # broker time
    symbol: str
    reason: str


@dataclass(frozen=True, slots=True)
class RiskReport:
    state: EngineState
    pause_reason: str
    max_position: float
    max_notional: float
    max_daily_loss: float
    max_orders_per_minute: int
    orders_last_minute: int
    today_pnl: float
    loss_remaining: float
    stale_symbols: tuple[str, ...]
    outside_hours_symbols: tuple[str, ...]
    recent_refusals: tuple[Refusal, ...]


@dataclass(frozen=True, slots=True)
class SymbolHealth:
    symbol: str
    last_bar_time: datetime | None
    age_seconds: float | None  # in broker time
    stale: bool


@dataclass(frozen=True, slots=True)
class HealthReport:
    connection: ConnectionState
    connected_since: datetime | None
    disconnects: int
    symbols: tuple[SymbolHealth, ...]
    loop_lag_ms_p99: float
    loop_lag_ms_max: float
    last_alert_delivered: datetime | None = None


@dataclass(frozen=True, slots=True)
class Quote:
    symbol: str
    bid: float | None
    ask: float | None
    last: float | None
    time: datetime | None


@dataclass(frozen=True, slots=True)
class ClosedPosition:
    symbol: str
    quantity: float  # signed quantity that was closed
    avg_price: float | None


@dataclass(frozen=True, slots=True)
class FlattenReport:
    scope: str  # "bot" or "account"
    cancelled_orders: tuple[str, ...]
    closed: tuple[ClosedPosition, ...]
    not_closed: tuple[str, ...]  # "MSFT 20: order rejected (reason)"
    flat: bool
    already_flat: bool = False
    # Orders of unknown outcome (IB away, or a drop or restart with them in flight): their
    # symbols are not closed again; "AAPL SELL 5 (tb-…): why".
    waiting_for_ib: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class CancelReport:
    scope: str
    cancelled: tuple[str, ...]
    failed: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class JournalEntry:
    at: datetime
    level: str
    kind: str
    message: str


@dataclass(frozen=True, slots=True)
class ChartMarker:
    time: datetime
    price: float
    side: str  # "BUY" or "SELL"


@dataclass(frozen=True, slots=True)
class ChartData:
    """Series for a chart: a symbol's closes with indicator lines and trade markers, or, with
    `symbol` None, the equity curve in `values`."""

    symbol: str | None
    times: tuple[datetime, ...]
    values: tuple[float, ...]
    indicators: dict[str, tuple[float | None, ...]] = field(default_factory=dict)
    markers: tuple[ChartMarker, ...] = ()
