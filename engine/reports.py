"""What the control API returns: data for front-ends to turn into words."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import datetime

from engine.domain import (
    AccountSummary,
    ConnectionState,
    EngineState,
    Headline,
    NewsProvider,
    OptionQuote,
    Order,
    OrderStatus,
    OrderType,
    Position,
    ScanRow,
    Side,
)


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
class NewsReport:
    symbol: str
    headlines: tuple[Headline, ...]  # newest first
    providers: tuple[NewsProvider, ...]  # the ones subscribed to (they name the codes)


@dataclass(frozen=True, slots=True)
class ScanReport:
    code: str
    rows: tuple[ScanRow, ...]  # best first


@dataclass(frozen=True, slots=True)
class ChainRow:
    """One strike of an expiry: its call's and its put's quotes (None without a snapshot)."""

    strike: float
    call: OptionQuote | None
    put: OptionQuote | None


@dataclass(frozen=True, slots=True)
class ChainReport:
    """An underlying's options: without `expiry`, the next expiries and the strikes near the
    money; with one, that expiry's strikes near the money, quoted when the snapshot came."""

    underlying: str
    underlying_price: float | None
    multiplier: float
    exchange: str
    expirations: tuple[str, ...]  # YYYYMMDD: the next ones, or the one asked for
    strikes: tuple[float, ...]  # ascending, near the money
    expiry: str | None = None
    rows: tuple[ChainRow, ...] = ()  # with an expiry and its snapshot: one per strike


class NoSuchExpiry(Exception):
    """No options of `underlying` expire on `expiry`; `nearest` are the closest that do."""

    def __init__(self, underlying: str, expiry: str, nearest: tuple[str, ...]) -> None:
        super().__init__(f"no {underlying} options expire on {expiry}")
        self.underlying, self.expiry, self.nearest = underlying, expiry, nearest


class ChainBusy(Exception):
    """Another expiry's chain is being fetched: one at a time, so that its snapshot requests
    do not queue the orders' behind them in the broker's request throttle."""


class ScanBusy(Exception):
    """Another scan is being taken: one at a time, for the same reason (a scan of 50 rows is
    a snapshot request each)."""


@dataclass(frozen=True, slots=True)
class AccountReport:
    account: str
    summary: AccountSummary
    time: datetime  # when it was asked (the broker may have summed up to 3 minutes before)


@dataclass(frozen=True, slots=True)
class ClosedPosition:
    symbol: str
    quantity: float  # signed quantity that was closed
    avg_price: float | None


@dataclass(frozen=True, slots=True)
class OrderSummary:
    """An order as it stood when a report was made (the `Order` itself goes on changing)."""

    order_ref: str
    symbol: str
    side: Side
    quantity: float
    order_type: OrderType
    status: OrderStatus

    @classmethod
    def of(cls, order: Order) -> OrderSummary:
        return cls(order.order_ref, order.symbol, order.side, order.quantity, order.order_type,
                   order.status)


class NotClosedReason(enum.StrEnum):
    NOT_CONNECTED = "not_connected"  # nothing was tried: no link to the gateway
    EARLIER_CLOSE_WORKING = "earlier_close_working"  # an earlier /flatten's close rests
    ORDER_WORKING = "order_working"  # a close beside it could close twice
    FILL_NOT_IN_POSITIONS = "fill_not_in_positions"  # the position's size is not known yet
    NO_CONTRACT = "no_contract"
    CLOSE_FAILED = "close_failed"  # the close was rejected or cancelled
    CLOSE_WORKING = "close_working"  # the close is out, not filled within the wait (it rests)


@dataclass(frozen=True, slots=True)
class NotClosed:
    """A position the kill switch did not close, and why."""

    symbol: str | None  # None with NOT_CONNECTED: no position was looked at
    quantity: float | None  # signed, as held
    reason: NotClosedReason
    order: OrderSummary | None = None  # the order in the way, or the close that failed
    detail: str = ""  # CLOSE_FAILED, CLOSE_WORKING: the close's message (the broker's)


class NotCancelledReason(enum.StrEnum):
    STILL_WORKING = "still_working"  # no cancel confirmed in time
    KILL_SWITCH_CLOSE = "kill_switch_close"  # kept: a /cancelall never undoes a /flatten
    # The account's other orders (other programs, placed by hand): IB's global cancel would
    # cancel the kill switch's closes too, so it was not used.
    OTHER_PROGRAMS = "other_programs"


@dataclass(frozen=True, slots=True)
class NotCancelled:
    """An order (or, with OTHER_PROGRAMS, a group of them) a cancel left working."""

    order: OrderSummary | None  # None with OTHER_PROGRAMS
    reason: NotCancelledReason
    outcome_unknown: bool = False  # sent, not seen at the broker: its answer waits for IB


class WaitingKind(enum.StrEnum):
    OUTCOME_UNKNOWN = "outcome_unknown"  # an order already out, not seen at the broker
    CLOSE_SENT = "close_sent"  # a close sent by this flatten while IB's servers are away


@dataclass(frozen=True, slots=True)
class WaitingForIB:
    """An order of unknown outcome: its symbol is not closed again until IB settles it."""

    order: OrderSummary
    remaining: float
    kind: WaitingKind
    message: str = ""  # the order's own message, when it has one


@dataclass(frozen=True, slots=True)
class FlattenReport:
    scope: str  # "bot" or "account"
    cancelled_orders: tuple[OrderSummary, ...]
    closed: tuple[ClosedPosition, ...]
    not_closed: tuple[NotClosed, ...]
    flat: bool
    already_flat: bool = False
    # Orders of unknown outcome (IB away, or a drop or restart with them in flight): their
    # symbols are not closed again.
    waiting_for_ib: tuple[WaitingForIB, ...] = ()
    not_cancelled: tuple[NotCancelled, ...] = ()  # the cancels that failed; not flat either


@dataclass(frozen=True, slots=True)
class CancelReport:
    scope: str
    cancelled: tuple[OrderSummary, ...]
    failed: tuple[NotCancelled, ...]


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
    """Series for a chart: a symbol's bars (`times` their starts, `values` the closes, and the
    opens, highs, lows and volumes beside them) with indicator lines and trade markers, or, with
    `symbol` None, the equity curve in `values`."""

    symbol: str | None
    times: tuple[datetime, ...]
    values: tuple[float, ...]
    indicators: dict[str, tuple[float | None, ...]] = field(default_factory=dict)
    markers: tuple[ChartMarker, ...] = ()
    opens: tuple[float, ...] = ()
    highs: tuple[float, ...] = ()
    lows: tuple[float, ...] = ()
    volumes: tuple[float, ...] = ()
