"""Domain types the engine speaks: instruments, bars, orders, fills, positions.

Plain dataclasses with no dependency on ib_async; the broker adapter translates at the edge.
Times are timezone-aware UTC. Prices, money and quantities are floats (IB allows fractional
quantities for crypto and some stocks).
"""

from __future__ import annotations

import enum
import re
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from datetime import date, datetime


class Side(enum.StrEnum):
    BUY = "BUY"
    SELL = "SELL"

    @property
    def sign(self) -> int:
        return 1 if self is Side.BUY else -1

    @property
    def opposite(self) -> Side:
        return Side.SELL if self is Side.BUY else Side.BUY


class OrderType(enum.StrEnum):
    MARKET = "MKT"
    LIMIT = "LMT"
    STOP = "STP"
    STOP_LIMIT = "STP LMT"


@dataclass(frozen=True, slots=True)
class Instrument:
    """A tradable thing as the user configured it in SYMBOLS. A future's `expiry` (YYYYMM or
    YYYYMMDD) is empty when the bot follows the front month. An option (`OPT`) has its
    `underlying`'s symbol, its expiry (YYYYMMDD), `strike` and `right` ("C" or "P"); its
    `symbol`, the bot's name for it, is `option_name(...)`: "AAPL 20261218 200C"."""

    symbol: str
    sec_type: str = "STK"
    exchange: str = "SMART"
    currency: str = "USD"
    expiry: str = ""
    strike: float = 0.0  # an option's
    right: str = ""  # an option's: "C" or "P"
    underlying: str = ""  # an option's underlying symbol

    @property
    def follows_front_month(self) -> bool:
        return self.sec_type == "FUT" and not self.expiry

    @classmethod
    def option(
        cls, underlying: str, expiry: str, strike: float, right: str, exchange: str = "SMART",
        currency: str = "USD",
    ) -> Instrument:
        """An option (expiry YYYYMMDD, right "C" or "P"), named by `option_name`."""
        return cls(option_name(underlying, expiry, strike, right), "OPT", exchange, currency,
                   expiry, strike, right, underlying)

    @property
    def ib_symbol(self) -> str:
        """The symbol IB knows the contract by (an option's is its underlying's)."""
        return self.underlying or self.symbol

    def __str__(self) -> str:
        return self.symbol


def expiry_date(text: str) -> date | None:
    """An expiry written YYYYMMDD as IB and SYMBOLS write it, or None when it is not one."""
    if not re.fullmatch(r"[0-9]{8}", text):
        return None
    try:
        return date(int(text[:4]), int(text[4:6]), int(text[6:]))
    except ValueError:
        return None


def option_name(underlying: str, expiry: str, strike: float, right: str) -> str:
    """The bot's name for an option, in journal, messages and commands: "AAPL 20261218 200C"
    (the strike as short as it reads: 200, 192.5)."""
    return f"{underlying} {expiry} {strike:g}{right}"


@dataclass(frozen=True, slots=True)
class Bar:
    """One OHLCV bar; `time` is the bar's start, UTC."""

    symbol: str
    time: datetime
    open: float
    high: float
    low: float
    close: float
    volume: float = 0.0


BarMaker = Callable[[datetime, float, float, float, float, float], Bar]


def bar_maker(symbol: str) -> BarMaker:
    """`make(time, open, high, low, close, volume)`: the same `Bar(symbol, ...)`, built about
    twice as fast, for loops that make one per bar (the backtester). The frozen dataclass's
    `__init__` sets each field through `object.__setattr__`; this sets the slots directly."""
    slots = {name: Bar.__dict__[name].__set__ for name in _BAR_FIELDS}
    set_symbol, set_time, set_open = slots["symbol"], slots["time"], slots["open"]
    set_high, set_low, set_close, set_volume = (
        slots["high"], slots["low"], slots["close"], slots["volume"])
    new = object.__new__

    def make(time: datetime, open_: float, high: float, low: float, close: float,
             volume: float) -> Bar:
        bar = new(Bar)
        set_symbol(bar, symbol)
        set_time(bar, time)
        set_open(bar, open_)
        set_high(bar, high)
        set_low(bar, low)
        set_close(bar, close)
        set_volume(bar, volume)
        return bar

    return make


_BAR_FIELDS = ("symbol", "time", "open", "high", "low", "close", "volume")
# bar_maker sets these slots and runs nothing else: a field (or a __post_init__) added to Bar
# must be added there too.
if tuple(f.name for f in fields(Bar)) != _BAR_FIELDS or hasattr(Bar, "__post_init__"):
    raise TypeError("bar_maker does not build the Bar defined above")


KILL_SWITCH_REASON = "flatten by "
# Every order the bot places carries an orderRef starting with this; orders without it are
# someone else's (placed by hand, or by another program).
ORDER_REF_PREFIX = "tb-"


class OrderStatus(enum.StrEnum):
    """Our view of an order's life; IB's statuses map onto these."""

    INTENT = "Intent"  # journaled, not yet sent to the broker
    PENDING = "PendingSubmit"
    SUBMITTED = "Submitted"
    PARTIAL = "PartiallyFilled"
    FILLED = "Filled"
    CANCELLED = "Cancelled"
    REJECTED = "Rejected"
    UNKNOWN = "Unknown"  # sent, outcome not known (disconnect): never retried blindly

    @property
    def is_done(self) -> bool:
        return self in (OrderStatus.FILLED, OrderStatus.CANCELLED, OrderStatus.REJECTED)


@dataclass(slots=True)
class Order:
    """An order the engine placed (or adopted), keyed by our own `order_ref`."""

    order_ref: str
    symbol: str
    side: Side
    quantity: float
    order_type: OrderType = OrderType.MARKET
    limit_price: float | None = None
    stop_price: float | None = None
    reason: str = ""
    status: OrderStatus = OrderStatus.INTENT
    filled: float = 0.0
    avg_price: float = 0.0
    ib_order_id: int | None = None
    perm_id: int | None = None
    parent_ref: str | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None
    message: str = ""

    @property
    def remaining(self) -> float:
        return max(self.quantity - self.filled, 0.0)

    @property
    def is_kill_switch(self) -> bool:
        """A closing order of /flatten (its reason says so, in the journal too)."""
        return self.reason.startswith(KILL_SWITCH_REASON)


@dataclass(frozen=True, slots=True)
class OrderUpdate:
    """A status change the broker reported for one of our orders."""

    order_ref: str
    status: OrderStatus
    filled: float
    remaining: float
    avg_price: float
    time: datetime
    message: str = ""
    ib_order_id: int | None = None
    perm_id: int | None = None


@dataclass(frozen=True, slots=True)
class Fill:
    """One execution, with its commission once the broker reported it."""

    exec_id: str
    order_ref: str
    perm_id: int
    time: datetime
    symbol: str
    side: Side
    quantity: float
    price: float
    commission: float | None = None
    realized_pnl: float | None = None


@dataclass(frozen=True, slots=True)
class Position:
    """A position as the broker reports it."""

    symbol: str
    quantity: float
    avg_cost: float
    market_price: float | None = None
    unrealized_pnl: float | None = None
    realized_pnl: float | None = None
    sec_type: str = "STK"
    multiplier: float = 1.0  # a future's: IB's avg_cost is per contract (price × multiplier)


class ConnectionState(enum.StrEnum):
    CONNECTING = "connecting"
    CONNECTED = "connected"
    DEGRADED = "degraded"  # socket up, IB's servers unreachable (1100)
    DISCONNECTED = "disconnected"


class EngineState(enum.StrEnum):
    RUNNING = "RUNNING"
    PAUSED = "PAUSED"  # no new entries; exits and protective orders still work
    HALTED = "HALTED"  # nothing new at all


class BulletinKind(enum.StrEnum):
    NEWS = "news"  # a notice: system maintenance, a trading halt, a rule change
    EXCHANGE_UNAVAILABLE = "exchange_unavailable"  # the exchange no longer trades
    EXCHANGE_AVAILABLE = "exchange_available"  # it trades again


@dataclass(frozen=True, slots=True)
class Settlement:
    """An option the broker settled at expiry: `quantity` held before (signed); `delivered`
    the underlying's shares it moved (0: expired worthless, or into an underlying the bot does
    not trade, so not known here)."""

    option: str
    quantity: float
    underlying: str
    delivered: float = 0.0


@dataclass(frozen=True, slots=True)
class Bulletin:
    """One of IB's news bulletins, as the broker sent it."""

    msg_id: int
    kind: BulletinKind
    message: str
    exchange: str  # where it originates; "" for one of IB's own


@dataclass(frozen=True, slots=True)
class NewsProvider:
    code: str  # "BRFG"
    name: str  # "Briefing.com General Market Columns"


@dataclass(frozen=True, slots=True)
class Headline:
    time: datetime  # aware, UTC
    provider: str  # the provider's code
    article_id: str
    text: str


@dataclass(frozen=True, slots=True)
class ScanRow:
    """One line of a market scanner's ranking."""

    rank: int  # 1 = first
    symbol: str
    last: float | None
    change_pct: float | None  # since the previous close
    volume: float | None  # today's, in shares (contracts)


@dataclass(frozen=True, slots=True)
class OptionChain:
    """What options an underlying has: every expiry (YYYYMMDD, ascending) and every strike
    (ascending) listed on `exchange`, with the contracts' multiplier."""

    underlying: str
    exchange: str
    multiplier: float
    expirations: tuple[str, ...]
    strikes: tuple[float, ...]


@dataclass(frozen=True, slots=True)
class Greeks:
    """One of IB's option computations; None where IB sent none."""

    implied_vol: float | None = None  # a fraction: 0.25 is 25 %
    delta: float | None = None
    gamma: float | None = None
    theta: float | None = None  # per day
    vega: float | None = None  # per volatility point
    underlying_price: float | None = None
    option_price: float | None = None  # the model's price


@dataclass(frozen=True, slots=True)
class OptionQuote:
    """An option's market: prices, and greeks from IB's model ticks (bid or ask greeks when
    IB sent no model ones)."""

    symbol: str  # option_name(...)
    bid: float | None
    ask: float | None
    last: float | None
    greeks: Greeks
    multiplier: float = 100.0


@dataclass(frozen=True, slots=True)
class AccountSummary:
    """The account's money as the broker sums it up, in `currency`; None: a value the broker
    did not send."""

    currency: str
    net_liquidation: float | None = None
    cash: float | None = None
    buying_power: float | None = None
    init_margin: float | None = None  # margin required to open what is held
    maint_margin: float | None = None  # margin required to keep it
    available_funds: float | None = None  # net liquidation less initial margin
    excess_liquidity: float | None = None  # net liquidation less maintenance margin
    realized_pnl: float | None = None  # today's
    unrealized_pnl: float | None = None
    gross_position_value: float | None = None


@dataclass(frozen=True, slots=True)
class Signal:
    """What a strategy wants: a target position for a symbol, with its reason."""

    symbol: str
    time: datetime
    target: float
    reason: str
    details: dict[str, float] = field(default_factory=dict)
