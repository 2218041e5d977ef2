"""The broker port: what the engine needs from a broker, and what it hears back.

Everything here is in the engine's domain types. `IBBroker` (engine/broker.py) implements
`BrokerPort` over ib_async for a live or paper gateway; a backtest's simulated broker is the
other implementation. Nothing in this module may be shaped by ib_async: an order is an `Order`,
a contract is a symbol, a time is an aware UTC datetime.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Protocol

from engine.domain import (
    AccountSummary,
    Bar,
    Bulletin,
    Fill,
    Headline,
    Instrument,
    NewsProvider,
    OptionChain,
    OptionQuote,
    Order,
    OrderStatus,
    OrderUpdate,
    Position,
    ScanRow,
    Side,
)
from engine.errors import ConfigurationError
from engine.hours import TradingHours

# Account values count in the account's own currency only ("BASE" is IB's sum over
# currencies, "" a value without one): a value in another currency would be added as dollars.
ACCOUNT_CURRENCIES = frozenset({"USD", "BASE", ""})


class LiveTradingRefused(Exception):
    """The gateway's account is a live one and live trading is not enabled."""


class AccountNotFound(Exception):
    """The configured account is not among the gateway's accounts."""


class ClientIdInUse(ConfigurationError):
    """The gateway kept refusing the client id (326): another program holds it."""


class BrokerRequestError(Exception):
    """The broker answered a request with an error (code and message as it gave them)."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code


class NoNewsSubscription(Exception):
    """The account has no subscription to a news provider asked for (or to none at all);
    `detail` is the broker's own word on it, if any."""

    def __init__(self, detail: str = "") -> None:
        super().__init__(detail or "no news provider subscribed")
        self.detail = detail


@dataclass(frozen=True, slots=True)
class ContractInfo:
    instrument: Instrument
    con_id: int
    min_tick: float
    time_zone: str
    liquid_hours: TradingHours
    trading_hours: TradingHours
    long_name: str = ""
    local_symbol: str = ""  # IB's name of this very contract: ESH7 for ES March 2027
    expiry: date | None = None  # a future's or an option's last trading day
    multiplier: float = 1.0  # IB's: 100 for a US stock option, 50 for ES; prices are per unit


@dataclass(frozen=True, slots=True)
class BrokerOrder:
    """An order as the broker knows it (ours or anyone's), for reconciliation."""

    order_ref: str
    ib_order_id: int
    perm_id: int
    client_id: int
    symbol: str
    side: Side
    quantity: float
    filled: float
    status: OrderStatus
    order_type: str
    limit_price: float | None
    stop_price: float | None
    avg_price: float = 0.0


@dataclass(frozen=True, slots=True)
class BrokerSnapshot:
    """Everything the broker knows at one moment: the inputs of reconciliation."""

    open_orders: tuple[BrokerOrder, ...]
    completed_orders: tuple[BrokerOrder, ...]
    fills: tuple[Fill, ...]
    positions: tuple[Position, ...]
    account_values: dict[str, float] = field(default_factory=dict)


class BrokerListener(Protocol):
    """What the engine hears from the broker, already in domain types."""

    async def on_connected(self, account: str, reconnect: bool) -> None: ...
    def on_disconnected(self, reason: str) -> None: ...
    def on_connect_failed(self, error: str, retry_in: float) -> None: ...
    def on_order_update(self, update: OrderUpdate, symbol: str) -> None: ...
    def on_fill(self, fill: Fill) -> None: ...
    def on_commission(
        self, exec_id: str, commission: float, realized_pnl: float | None
    ) -> None: ...
    def on_error(self, code: int, message: str, req_id: int, order_ref: str | None) -> None: ...
    def on_realtime_bar(self, bar: Bar) -> None: ...
    def on_position(self, position: Position) -> None: ...
    def on_account_value(self, tag: str, value: float) -> None:
        """An account value in the account's currency (ACCOUNT_CURRENCIES), as a number."""
    def on_bulletin(self, bulletin: Bulletin) -> None:
        """One of IB's news bulletins (each told once, though IB sends the day's again after
        every connect)."""
    def on_handler_failed(self, kind: str, error: BaseException) -> None:
        """One of the handlers above raised (a bug, or a value nobody expected)."""
    def on_client_id_in_use(self, client_id: int, give_up_in: float) -> None:
        """The gateway refused the client id (326), for the first time since connected."""
    def on_setup_failed(self, error: BaseException) -> None:
        """Setting up after a connect raised; the broker reconnects (with growing backoff)."""


class BrokerPort(Protocol):
    """What the engine asks of a broker. Calls that need the connection raise ConnectionError
    (or TimeoutError) when it is not there; nothing here retries on its own."""

    host: str
    port: int
    client_id: int

    @property
    def is_connected(self) -> bool: ...

    # --- life cycle ---
    async def run(self, listener: BrokerListener) -> None:
        """Connect, call `listener.on_connected`, and reconnect after every drop until stop().
        Raises LiveTradingRefused, AccountNotFound or ClientIdInUse: retrying cannot help."""
    def stop(self) -> None: ...
    def reconnect(self) -> None:
        """Drop the connection; run() connects again and the listener sets up from scratch."""
    async def current_time(self) -> datetime: ...

    # --- contracts and market data ---
    async def qualify(self, instruments: tuple[Instrument, ...]) -> list[str]:
        """Look the instruments up; return the symbols the broker does not know."""
    def contract(self, symbol: str) -> ContractInfo | None:
        """The contract `symbol` trades now (for a front-month future, the month followed)."""
    def chain(self, symbol: str) -> tuple[ContractInfo, ...]:
        """A front-month future's listed months, as last qualified (empty for the others)."""
    def follow(self, symbol: str, con_id: int) -> None:
        """Make the month `con_id` of `symbol`'s chain the contract `symbol` trades."""
    def knows(self, symbol: str) -> bool:
        """Whether orders can be placed for `symbol` (configured, or a position's contract)."""
    async def ensure_contract(self, symbol: str) -> bool: ...
    async def history(
        self, symbol: str, bar_size: str, bar_seconds: int, bars_needed: int, use_rth: bool
    ) -> list[Bar]: ...
    def subscribe_bars(self, symbol: str, use_rth: bool) -> None: ...
    def unsubscribe_bars(self, symbol: str) -> None: ...
    async def quote(self, symbol: str) -> tuple[float | None, float | None, float | None]: ...

    # --- news ---
    async def news_providers(self) -> list[NewsProvider]:
        """The news providers the account subscribes to."""
    async def headlines(self, symbol: str, n: int, providers: Sequence[str]) -> list[Headline]:
        """The latest `n` headlines about `symbol` (a symbol it `knows`) from `providers`
        (codes), newest first. Raises NoNewsSubscription for a provider not subscribed to."""

    # --- market scanner ---
    async def scan_codes(self) -> list[str]:
        """The scan codes the broker's scanner knows."""
    async def scan(self, code: str, n: int) -> list[ScanRow]:
        """The first `n` US stocks of scan `code`, with last price, change and volume."""

    # --- options ---
    async def option_chain(self, underlying: str) -> tuple[OptionChain, float | None]:
        """The stock `underlying`'s options (expiries, strikes, multiplier) and the stock's
        last price, None without one. Raises KeyError when the broker knows no such stock or
        no options on it."""
    async def option_quotes(self, options: Sequence[Instrument]) -> list[OptionQuote | None]:
        """A snapshot of each option (OPT instruments), with its greeks; None for an option
        the broker does not know (no such expiry or strike)."""

    # --- the account ---
    async def account_summary(self) -> AccountSummary:
        """The account's net liquidation, cash, buying power, margins, funds and PnL, in the
        account's currency (ACCOUNT_CURRENCIES); None for a value the broker did not send."""

    # --- orders ---
    def place(
        self, order: Order, *, parent_id: int = 0, transmit: bool = True,
        oca_group: str = "", outside_rth: bool = False,
    ) -> int:
        """Send a new order; return the broker's order id."""
    def modify(
        self, order_ref: str, quantity: float | None = None,
        limit_price: float | None = None, stop_price: float | None = None,
    ) -> bool: ...
    def cancel(self, order_ref: str, ib_order_id: int | None = None) -> bool: ...
    def global_cancel(self) -> None: ...
    def working_orders(self) -> list[BrokerOrder]:
        """This client's open orders as the broker connection tracks them now."""

    # --- account ---
    async def snapshot(self) -> BrokerSnapshot: ...
    def positions(self) -> list[Position]: ...
    async def fresh_positions(self) -> list[Position]: ...
