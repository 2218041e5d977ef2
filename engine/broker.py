"""The broker adapter: the only module that owns the ib_async `IB` object.

It connects (and reconnects with backoff), refuses a live account unless live trading is
enabled, makes the requests the engine asks for, and delivers ib_async's events to a
`BrokerListener` in the engine's domain types. The translation itself is in ib_translate.py,
the contracts and their names in ib_contracts.py; nothing else in the engine imports ib_async.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections import OrderedDict
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

from ib_async import (
    IB,
    Contract,
    ExecutionFilter,
    NewsBulletin,
    RequestError,
    Trade,
)
from ib_async import Fill as IBFill
from ib_async import Order as IBOrder
from ib_async import Position as IBPosition
from ib_async.objects import CommissionReport, RealTimeBarList

from engine import ib_translate as translate
from engine.config import Settings
from engine.domain import (
    ORDER_REF_PREFIX,
    AccountSummary,
    Bar,
    Fill,
    Headline,
    Instrument,
    NewsProvider,
    OptionChain,
    OptionQuote,
    Order,
    Position,
    ScanRow,
)
from engine.ib_connect import (
    CLIENT_ID_IN_USE,
    CONNECT_ERRORS,
    NOT_LISTENING,
    IBConnector,
    OneOffListener,
)
from engine.ib_contracts import ContractBook
from engine.ib_lookup import ContractLookup
from engine.ib_memory import DoneTrades
from engine.ib_research import IBResearch
from engine.ports import (
    BrokerListener,
    BrokerOrder,
    BrokerRequestError,
    BrokerSnapshot,
    ContractInfo,
)

log = logging.getLogger(__name__)

# Bulletins already told, by (msgId, text): IB sends the day's again after every connect.
BULLETINS_REMEMBERED = 1000


class IBBroker:
    """Connection, orders, market data and account data through ib_async."""

    def __init__(
        self,
        host: str,
        port: int,
        client_id: int,
        account: str = "",
        allow_live: bool = False,
        connect_timeout: float = 10.0,
        request_timeout: float = 30.0,
        backoff_initial: float = 1.0,
        backoff_max: float = 60.0,
    ) -> None:
        self.ib = IB()
        self.ib.RaiseRequestErrors = True
        self._listener: BrokerListener = NOT_LISTENING
        self.host, self.port, self.client_id = host, port, client_id
        self._connector = IBConnector(
            self.ib, host, port, client_id, account, allow_live, connect_timeout
        )
        self._request_timeout = request_timeout
        self._backoff_initial, self._backoff_max = backoff_initial, backoff_max
        self.account = ""
        self.contracts = ContractBook()
        self._trades: dict[str, Trade] = {}  # order_ref -> the live Trade of this session
        self.done_trades = DoneTrades(self.ib, self._trades)
        self._bar_subscriptions: dict[str, RealTimeBarList] = {}
        self._disconnected = asyncio.Event()
        self._stopping = asyncio.Event()
        self._positions_lock = asyncio.Lock()
        self._time_lock = asyncio.Lock()
        self.connected_once = False
        self._bulletins_told: OrderedDict[tuple[int, str], None] = OrderedDict()
        self.lookup = ContractLookup(self.ib, self.contracts, request_timeout)
        self.research = IBResearch(self.ib, self.contracts, request_timeout)
        self._wire()

    @classmethod
    def from_settings(
        cls, settings: Settings, *, host: str | None = None, port: int | None = None,
        backoff_initial: float = 1.0,
    ) -> IBBroker:
        """The broker the settings describe (`host`/`port` override them, for tests)."""
        return cls(
            host=host or settings.ib_host or "127.0.0.1",
            port=port or settings.ib_port,
            client_id=settings.ib_client_id,
            account=settings.ib_account,
            allow_live=settings.trading_mode == "live",
            backoff_initial=backoff_initial,
        )

    # --- connection ---------------------------------------------------------------------

    def _wire(self) -> None:
        ib = self.ib
        ib.disconnectedEvent += self._guarded("disconnect", self._on_disconnected)
        ib.orderStatusEvent += self._guarded("order status", self._on_order_status)
        ib.execDetailsEvent += self._guarded("execution", self._on_exec_details)
        ib.commissionReportEvent += self._guarded("commission", self._on_commission)
        ib.errorEvent += self._guarded("error", self._on_error)
        ib.positionEvent += self._guarded("position", self._on_position)
        ib.accountValueEvent += self._guarded("account value", self._on_account_value)
        ib.newsBulletinEvent += self._guarded("bulletin", self._on_bulletin)

    def _guarded(self, kind: str, handler: Callable[..., None]) -> Callable[..., None]:
        """`handler`, with what it raises logged and reported to the listener. eventkit hands a
        handler's exception to an error event nobody listens to: unguarded, it would vanish."""

        def guarded(*args: Any) -> None:
            try:
                handler(*args)
            except Exception as exc:
                try:
                    self._listener.on_handler_failed(kind, exc)
                except Exception:
                    log.exception("the %s handler failed, and so did reporting it", kind)

        return guarded

    @property
    def last_connect_attempt(self) -> float | None:
        """When the last connect attempt began (monotonic): the reconnect loop's pulse."""
        return self._connector.last_attempt

    @property
    def is_connected(self) -> bool:
        return self.ib.isConnected()

    async def run(self, listener: BrokerListener) -> None:
        """Connect, hand over to the listener, and reconnect after every drop until stopped.

        Raises LiveTradingRefused, AccountNotFound or ClientIdInUse: configuration errors
        that retrying cannot fix.
        """
        self._listener = listener
        delay = self._backoff_initial
        if self.ib.isConnected():  # run again after it died: start from a fresh connection
            self.ib.disconnect()
        while not self._stopping.is_set():
            try:
                await self._connector.connect()
            except CONNECT_ERRORS as exc:
                self.ib.disconnect()
                self._connector.check_refused(self._listener.on_client_id_in_use)
                retry_in = delay * random.uniform(0.8, 1.2)
                self._listener.on_connect_failed(str(exc) or type(exc).__name__, retry_in)
                await self._sleep_unless_stopped(retry_in)
                delay = min(delay * 2, self._backoff_max)
                continue
            self._disconnected.clear()
            self._connector.connected()
            self.account = self._connector.choose_account()
            reconnect = self.connected_once
            self.connected_once = True
            # All of the day's: one that came while away (a halt) is news too; the rest are
            # known and not told again.
            self.ib.reqNewsBulletins(True)
            try:
                await self._listener.on_connected(self.account, reconnect)
            except Exception as exc:
                if self._stopping.is_set():
                    return  # stopped while setting up: nothing failed
                if isinstance(exc, ConnectionError | TimeoutError) and not self.is_connected:
                    # The gateway went away meanwhile (its daily restart): nothing failed.
                    log.warning("the connection dropped while setting up (%s); reconnecting",
                                exc)
                else:
                    # Setting up after a connect failed (a bug, or IB answering oddly): start
                    # over on a fresh connection rather than trade half set up.
                    log.warning("setting up after the connect failed; reconnecting")
                    self._listener.on_setup_failed(exc)
                self.ib.disconnect()
                await self._sleep_unless_stopped(delay * random.uniform(0.8, 1.2))
                delay = min(delay * 2, self._backoff_max)
                continue
            delay = self._backoff_initial
            stop = asyncio.ensure_future(self._stopping.wait())
            drop = asyncio.ensure_future(self._disconnected.wait())
            await asyncio.wait({stop, drop}, return_when=asyncio.FIRST_COMPLETED)
            stop.cancel()
            drop.cancel()
            if not self._stopping.is_set():
                # A fresh socket with the same client id can be refused for a moment (326).
                await self._sleep_unless_stopped(self._backoff_initial * random.uniform(0.8, 1.2))

    async def _sleep_unless_stopped(self, seconds: float) -> None:
        try:
            await asyncio.wait_for(self._stopping.wait(), seconds)
        except TimeoutError:
            pass

    async def connect_once(self) -> None:
        """Connect for a one-off command (`tradebot download`): no listener, no reconnects.
        Raises ConnectionError (326 included), OSError or TimeoutError when it cannot."""
        self._listener = OneOffListener()
        await self._connector.connect()

    def stop(self) -> None:
        self._stopping.set()
        self.ib.disconnect()

    def reconnect(self) -> None:
        """Drop the connection; run() connects again and the listener sets up from scratch."""
        self.ib.disconnect()

    def _on_disconnected(self) -> None:
        if self._disconnected.is_set():
            return  # ib_async has been seen firing this twice
        self._disconnected.set()
        # Trade objects die with the connection; fresh ones come with the re-sync.
        self._trades.clear()
        self.done_trades.clear()
        self._bar_subscriptions.clear()
        self.research.connection_lost()
        self._listener.on_disconnected("connection to the gateway lost")

    async def current_time(self) -> datetime:
        """IB's clock. One request at a time: ib_async keeps one pending (a second replaces
        the first's, which would then wait out its timeout)."""
        async with self._time_lock:
            now = await asyncio.wait_for(self.ib.reqCurrentTimeAsync(), self._request_timeout)
        return now.astimezone(UTC)

    # --- contracts and market data -------------------------------------------------------

    async def qualify(self, instruments: tuple[Instrument, ...]) -> list[str]:
        """Look every instrument up; return the symbols IB does not know or finds ambiguous."""
        return await self.lookup.qualify(instruments)

    def contract(self, symbol: str) -> ContractInfo | None:
        return self.contracts.info(symbol)

    def chain(self, symbol: str) -> tuple[ContractInfo, ...]:
        return self.contracts.chain(symbol)

    def follow(self, symbol: str, con_id: int) -> None:
        self.contracts.follow(symbol, con_id)

    def knows(self, symbol: str) -> bool:
        return symbol in self.contracts

    async def history(
        self, symbol: str, bar_size: str, bar_seconds: int, bars_needed: int, use_rth: bool
    ) -> list[Bar]:
        duration = translate.history_duration(bars_needed, bar_seconds)
        return await self._history(symbol, bar_size, duration, "", use_rth)

    async def history_window(
        self, symbol: str, bar_size: str, duration: str, end: datetime, use_rth: bool
    ) -> list[Bar]:
        """The bars of `duration` (IB's text, "1 D") ending at `end`: one request, for
        `tradebot download`, which paces them."""
        end_text = end.astimezone(UTC).strftime("%Y%m%d-%H:%M:%S")
        return await self._history(symbol, bar_size, duration, end_text, use_rth)

    async def _history(
        self, symbol: str, bar_size: str, duration: str, end: str, use_rth: bool
    ) -> list[Bar]:
        """IB's "no data" is an empty list."""
        contract = self.contracts[symbol]
        request = self.ib.reqHistoricalDataAsync(
            contract,
            endDateTime=end,
            durationStr=duration,
            barSizeSetting=bar_size,
            whatToShow=translate.what_to_show(contract),
            useRTH=use_rth,
            formatDate=2,
        )
        try:
            # The warm-up relies on ib_async's own timeout (an empty list after 60 s).
            bars = await (asyncio.wait_for(request, self._request_timeout) if end else request)
        except RequestError as exc:
            if exc.code == 162 and "no data" in exc.message.lower():
                return []  # IB's way of saying the period is empty
            raise BrokerRequestError(exc.code, exc.message) from None
        return [translate.historical_bar(symbol, bar) for bar in bars]

    def subscribe_bars(self, symbol: str, use_rth: bool) -> None:
        """Stream 5-second bars for `symbol` to the listener (again after a reconnect)."""
        self.unsubscribe_bars(symbol)
        contract = self.contracts[symbol]
        bars = self.ib.reqRealTimeBars(contract, 5, translate.what_to_show(contract), use_rth)

        def on_update(bar_list: RealTimeBarList, has_new_bar: bool) -> None:
            if has_new_bar and bar_list:
                self._listener.on_realtime_bar(translate.realtime_bar(symbol, bar_list[-1]))
                # Keep memory flat over weeks of streaming.
                if len(bar_list) > 100:
                    del bar_list[:-10]

        bars.updateEvent += self._guarded("bar", on_update)
        self._bar_subscriptions[symbol] = bars

    def unsubscribe_bars(self, symbol: str) -> None:
        bars = self._bar_subscriptions.pop(symbol, None)
        if bars is not None and self.is_connected:
            self.ib.cancelRealTimeBars(bars)

    # --- orders -------------------------------------------------------------------------

    def place(
        self,
        order: Order,
        *,
        parent_id: int = 0,
        transmit: bool = True,
        oca_group: str = "",
        outside_rth: bool = False,
    ) -> int:
        """Send a new order; return IB's order id. Raises ConnectionError when not connected."""
        if not self.is_connected:
            raise ConnectionError("not connected to the gateway")
        ib_order = translate.ib_order(
            order, self.account, parent_id=parent_id, transmit=transmit, oca_group=oca_group,
            outside_rth=outside_rth,
        )
        trade = self.ib.placeOrder(self.contracts[order.symbol], ib_order)
        self._trades[order.order_ref] = trade
        return trade.order.orderId

    def modify(
        self,
        order_ref: str,
        quantity: float | None = None,
        limit_price: float | None = None,
        stop_price: float | None = None,
    ) -> bool:
        trade = self._trade(order_ref)
        if trade is None or trade.isDone():
            return False
        if quantity is not None:
            trade.order.totalQuantity = quantity
        if limit_price is not None:
            trade.order.lmtPrice = limit_price
        if stop_price is not None:
            trade.order.auxPrice = stop_price
        self.ib.placeOrder(trade.contract, trade.order)
        return True

    def cancel(self, order_ref: str, ib_order_id: int | None = None) -> bool:
        """Ask IB to cancel an order; by its id (this client's) when ib_async no longer knows
        it, or thinks it done: after a drop or a restart, an order of unknown outcome can
        still be cancelled."""
        trade = self._trade(order_ref)
        if trade is not None and not trade.isDone():
            self.ib.cancelOrder(trade.order)
            return True
        # Unknown to ib_async, or its Trade says done while the engine has the order working
        # (a status lost with a connection): IB knows it by its id, and says if it is gone.
        if not ib_order_id or not self.is_connected:
            return False
        self.ib.cancelOrder(IBOrder(orderId=ib_order_id, clientId=self.client_id))
        return True

    def global_cancel(self) -> None:
        self.ib.reqGlobalCancel()

    def _trade(self, order_ref: str) -> Trade | None:
        trade = self._trades.get(order_ref)
        if trade is None:
            for candidate in self.ib.openTrades():
                if candidate.order.orderRef == order_ref:
                    self._trades[order_ref] = trade = candidate
                    break
        return trade

    def working_orders(self) -> list[BrokerOrder]:
        """This client's open orders as ib_async tracks them now."""
        return [self._broker_order(trade) for trade in self.ib.openTrades()]

    # --- snapshot for reconciliation -------------------------------------------------------

    async def snapshot(self) -> BrokerSnapshot:
        """Everything the broker knows: all open orders, completed orders, executions,
        positions — the inputs of reconciliation."""
        timeout = self._request_timeout
        open_trades = await asyncio.wait_for(self.ib.reqAllOpenOrdersAsync(), timeout)
        completed = await asyncio.wait_for(self.ib.reqCompletedOrdersAsync(False), timeout)
        # ib_async keeps the completed orders (its own connect-time request asks for them
        # too), done as they are: its stored Trade is the one to forget.
        stored = self.ib.wrapper.permId2Trade
        for trade in completed:
            self.done_trades.note(stored.get(trade.order.permId) or trade)
        ib_fills = await asyncio.wait_for(self.ib.reqExecutionsAsync(ExecutionFilter()), timeout)
        # The connect-time sync may already hold these executions with their commissions.
        known = {fill.execution.execId: fill for fill in self.ib.fills()}
        for trade in open_trades:
            ref = trade.order.orderRef
            if ref and trade.order.clientId == self.client_id:
                # ib_async's own Trade for this client's order carries live updates.
                live = next(
                    (t for t in self.ib.openTrades() if t.order.orderRef == ref), trade
                )
                self._trades[ref] = live
        fills = []
        for ib_fill in ib_fills:
            fill = self._fill(ib_fill)
            report = ib_fill.commissionReport
            if not report.execId and ib_fill.execution.execId in known:
                report = known[ib_fill.execution.execId].commissionReport
            if report.execId:
                fill = translate.with_commission(fill, report)
            fills.append(fill)
        self.done_trades.forget_orphan_fills(ib_fills)
        return BrokerSnapshot(
            open_orders=tuple(self._broker_order(trade) for trade in open_trades),
            completed_orders=tuple(self._broker_order(trade) for trade in completed),
            fills=tuple(fills),
            positions=tuple(self.positions()),
            account_values=self.account_values(),
        )

    def positions(self) -> list[Position]:
        portfolio = {item.contract.conId: item for item in self.ib.portfolio(self.account)}
        return [
            translate.position(
                position, self._symbol(position.contract), portfolio.get(position.contract.conId)
            )
            for position in self.ib.positions(self.account)
        ]

    def account_values(self) -> dict[str, float]:
        values: dict[str, float] = {}
        for value in self.ib.accountValues(self.account):
            number = translate.account_number(value.value, value.currency)
            if number is not None and value.tag not in values:
                values[value.tag] = number
        return values

    async def fresh_positions(self) -> list[Position]:
        """Positions asked of the broker now, not ib_async's running copy."""
        # ib_async keeps one pending positions request: two at once would orphan one.
        async with self._positions_lock:
            await asyncio.wait_for(self.ib.reqPositionsAsync(), self._request_timeout)
        return self.positions()

    # --- quotes, news, the scanner, the account summary (ib_research.py) ------------------

    async def quote(self, symbol: str) -> tuple[float | None, float | None, float | None]:
        return await self.research.quote(symbol)

    async def news_providers(self) -> list[NewsProvider]:
        return await self.research.news_providers()

    async def headlines(self, symbol: str, n: int, providers: Sequence[str]) -> list[Headline]:
        return await self.research.headlines(symbol, n, providers)

    async def scan_codes(self) -> list[str]:
        return await self.research.scan_codes()

    async def scan(self, code: str, n: int) -> list[ScanRow]:
        return await self.research.scan(code, n)

    # --- options (ib_research.py) -----------------------------------------------------------

    async def option_chain(self, underlying: str) -> tuple[OptionChain, float | None]:
        return await self.research.option_chain(underlying)

    async def option_quotes(self, options: Sequence[Instrument]) -> list[OptionQuote | None]:
        return await self.research.option_quotes(options)

    # --- the account (ib_research.py) -------------------------------------------------------

    async def account_summary(self) -> AccountSummary:
        return await self.research.account_summary(self.account)

    async def ensure_contract(self, symbol: str) -> bool:
        """Make sure a position's contract can be traded (flatten all closes positions in
        symbols the bot does not trade); False if it cannot be found."""
        if symbol in self.contracts:
            return True
        for position in self.ib.positions(self.account):
            if self._symbol(position.contract) == symbol:
                return await self.lookup.position_contract(symbol, position)
        return False

    # --- events, in domain types --------------------------------------------------------

    def _symbol(self, contract: Contract) -> str:
        return self.contracts.symbol(contract)

    def _broker_order(self, trade: Trade) -> BrokerOrder:
        return translate.broker_order(trade, self._symbol(trade.contract))

    def _fill(self, ib_fill: IBFill) -> Fill:
        return translate.fill(ib_fill, self._symbol(ib_fill.contract))

    def _on_order_status(self, trade: Trade) -> None:
        if trade.isDone():
            self.done_trades.note(trade)
        ref = trade.order.orderRef
        if not ref or not ref.startswith(ORDER_REF_PREFIX):
            return
        if trade.orderStatus.status == "ValidationError":
            # ib_async's mark for a warning (399, 110, ...) on the order: not a state of it.
            return
        self._listener.on_order_update(
            translate.order_update(trade, datetime.now(UTC)), self._symbol(trade.contract)
        )

    def _on_exec_details(self, trade: Trade, ib_fill: IBFill) -> None:
        if (ib_fill.execution.orderRef or "").startswith(ORDER_REF_PREFIX):
            self._listener.on_fill(self._fill(ib_fill))

    def _on_commission(self, trade: Trade, ib_fill: IBFill, report: CommissionReport) -> None:
        self.done_trades.forget_due()
        if (ib_fill.execution.orderRef or "").startswith(ORDER_REF_PREFIX):
            self._listener.on_commission(
                report.execId, float(report.commission), translate.price(report.realizedPNL)
            )

    def _on_error(self, req_id: int, code: int, message: str, contract: Contract | None) -> None:
        if code == CLIENT_ID_IN_USE:
            self._connector.client_id_refused()  # the connect fails at once, handled there
            return
        order_ref = None
        if req_id > 0:
            trade = self.ib.wrapper.trades.get((self.client_id, req_id))
            if trade is not None:
                order_ref = trade.order.orderRef or None
        self._listener.on_error(code, message, req_id, order_ref)

    def _on_position(self, position: IBPosition) -> None:
        if self.account and position.account != self.account:
            return
        self._listener.on_position(translate.position(position, self._symbol(position.contract)))

    def _on_account_value(self, value: object) -> None:
        number = translate.account_number(
            getattr(value, "value", ""), getattr(value, "currency", "")
        )
        if number is not None:
            self._listener.on_account_value(getattr(value, "tag", ""), number)

    def _on_bulletin(self, ib_bulletin: NewsBulletin) -> None:
        key = (ib_bulletin.msgId, ib_bulletin.message)
        if key in self._bulletins_told:
            return
        self._bulletins_told[key] = None
        if len(self._bulletins_told) > BULLETINS_REMEMBERED:
            self._bulletins_told.popitem(last=False)
        self._listener.on_bulletin(translate.bulletin(ib_bulletin))

