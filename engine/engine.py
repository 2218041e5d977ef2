"""The trading engine: its parts, wired together, from start to stop.

A bar's path: broker → MarketData (checks, builds the strategy's bars) → Trader (strategy,
risk, one order) → OrderManager (write-ahead journal, placeOrder). The broker's answers come
back through the same listener methods below to the one part that owns each: order statuses
to OrderManager, executions and positions to Fills, connection and errors to the
ConnectionSupervisor. Everything a person should know is recorded (journaled and published) by
the Recorder. docs/architecture.md draws the whole map.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from datetime import datetime

from engine.accounting import Accounting
from engine.bars import REALTIME_BAR_SECONDS
from engine.clock import BrokerClock
from engine.config import Settings
from engine.connection import ConnectionSupervisor, Link
from engine.contracts import ContractDetails
from engine.domain import (
    Bar,
    Bulletin,
    BulletinKind,
    ConnectionState,
    EngineState,
    Fill,
    OrderStatus,
    OrderUpdate,
    Position,
)
from engine.events import (
    BulletinEvent,
    Difference,
    EventBus,
    Level,
    LifecycleEvent,
    LifecycleKind,
    RiskEvent,
    RiskKind,
)
from engine.fills import Fills
from engine.front_month import FrontMonths
from engine.journal import Journal
from engine.journal_writer import JournalWriter
from engine.kill_switch import KillSwitch
from engine.market_data import MarketData, SymbolState
from engine.orders import OrderManager
from engine.portfolio import Portfolio
from engine.ports import AccountNotFound, BrokerPort, ClientIdInUse, LiveTradingRefused
from engine.position_audit import PositionAudit
from engine.reconciliation import NO_TRACE_GRACE_SECONDS, Reconciler
from engine.recorder import Recorder
from engine.reports import Refusal
from engine.risk import RiskLimits, RiskManager, option_expiring
from engine.tasks import TaskOwner
from engine.trader import Trader
from engine.trading_state import TradingState

log = logging.getLogger(__name__)

ASIDE_WAIT_SECONDS = 2.0
JOURNAL_FAILURES_ALERT = 5


class Engine:
    """One trading engine, from connect to shutdown; the broker's listener."""

    def __init__(
        self,
        settings: Settings,
        journal: Journal,
        broker: BrokerPort,
        bus: EventBus | None = None,
        *,
        mode: str | None = None,
        clock_speed: float = 1.0,
        no_trace_grace: float = NO_TRACE_GRACE_SECONDS,
    ) -> None:
        self.settings = settings
        self.journal = journal
        self.broker = broker
        self.bus = bus or EventBus()
        self.mode = mode or settings.trading_mode
        self.clock = BrokerClock(clock_speed)
        self.writer = JournalWriter(journal.path)
        self.recorder = Recorder(self.writer, self.bus, self.clock)
        self.tasks = TaskOwner("engine", self.recorder.failure)
        self.writer.on_death = lambda name, error: self.recorder.failure(name, error, True)
        self.link = link = Link()
        self.portfolio = Portfolio()
        self.risk = RiskManager(RiskLimits(
            max_position=settings.max_position,
            max_notional=settings.max_notional,
            max_daily_loss=settings.max_daily_loss,
            max_orders_per_minute=settings.max_orders_per_minute,
            bar_seconds=settings.bar_seconds,
            outside_rth=settings.outside_rth,
        ))
        self.trading_state = TradingState(self.risk, self.recorder)
        self.orders = OrderManager(broker, self.recorder, self.clock,
                                   ib_servers_lost=lambda: link.ib_servers_lost)
        self.market = MarketData(settings, broker, self.recorder, self.clock, self.portfolio)
        self.accounting = Accounting(settings, self.portfolio, self.risk, self.recorder,
                                     self.clock)
        self.contracts = ContractDetails(settings, broker, self.market, self.accounting,
                                         self.recorder, self.clock, self.tasks)
        self.fills = Fills(self.orders, self.portfolio, broker, self.recorder,
                           traded=self.market.symbols,
                           on_realized=self.accounting.check_daily_loss, clock=self.clock)
        self.reconciler = Reconciler(broker, journal, self.orders, self.portfolio, self.fills,
                                     self.recorder, self.clock, self.tasks,
                                     servers=lambda: link.servers, grace=no_trace_grace)
        self.kill_switch = KillSwitch(broker, self.orders, self.fills, self.risk,
                                      self.trading_state, self.tasks, self.market.symbols,
                                      self.reconciler.adopt_working)
        self.front_months = FrontMonths(settings, broker, self.portfolio, self.orders,
                                        self.fills, self.market, self.recorder, self.clock,
                                        self.tasks)
        self.trader = Trader(settings, broker, self.orders, self.risk, self.portfolio,
                             self.fills, self.accounting, self.recorder, self.clock, self.tasks,
                             may_trade=self._why_not_trading,
                             entry_refused=self._entry_refused)
        self.market.on_closed = self.trader.on_bar
        self.position_audit = PositionAudit(journal, broker, self.orders, self.risk,
                                            self.trading_state, self.recorder, self.clock,
                                            self.market.symbols,
                                            self.fills.awaiting_position,
                                            instruments={i.symbol: i for i in settings.symbols},
                                            multiplier=self._multiplier,
                                            price=self.portfolio.last_price.get)
        self.reconciler.after = self._spawn_audit
        self.reconciler.on_unexplained = lambda fills: self.tasks.spawn(
            self.position_audit.unexplained_executions(fills), "unexplained executions")
        self.connection_supervisor = ConnectionSupervisor(
            broker, self.orders, self.market, self.reconciler, self.recorder, self.clock,
            self.tasks, link, set_up=self._set_up,
            away_alert_seconds=settings.gateway_away_alert_minutes * 60,
        )
        self.started_wall = time.monotonic()
        self.ready = asyncio.Event()  # connected, reconciled and warmed up
        self.fatal: BaseException | None = None
        self.loop_lag_samples: deque[float] = deque(maxlen=600)
        self._stopped = asyncio.Event()
        self._journal_alerted = False

    # --- life cycle: the table of contents --------------------------------------------------

    async def start(self) -> None:
        """Restore the persisted state and start connecting (returns at once)."""
        await self.trading_state.restore(self.journal)
        await self._load_unfinished_orders()
        await self.writer.start()
        self.tasks.keep_alive("broker", self._run_broker)
        self.tasks.keep_alive("watchdog", self._watchdog)
        self.tasks.keep_alive("loop-lag", self._measure_loop_lag)

    async def _load_unfinished_orders(self) -> None:
        """Orders the journal left unfinished are of unknown outcome until reconciliation says
        otherwise: tracked from the start, so they block their symbols (for the strategy and
        the kill switch) even before the first reconciliation, and are never sent again. An
        intent too: the last run may have sent it after journaling it."""
        for order in await self.journal.open_orders():
            self.orders.adopt_unfinished(
                order, "unfinished before the restart; waits for the broker to show it"
            )

    async def _run_broker(self) -> None:
        try:
            await self.broker.run(self)
        except (LiveTradingRefused, AccountNotFound, ClientIdInUse) as exc:
            # Retrying cannot fix these: the user must change a setting or stop a program.
            self.fatal = exc
            self.risk.halt(str(exc))
            self._stopped.set()
            self.recorder.record(Level.ERROR, "fatal", str(exc), event=RiskEvent(
                RiskKind.HALTED, str(exc), self.clock.now(), state=EngineState.HALTED))

    async def _set_up(self, reconnect: bool) -> None:
        """After every connect, before anything trades: the broker's time, the contracts
        (and the month each front-month future trades), reconciliation, warm-up (a backfill
        after a reconnect), the bar streams."""
        self.clock.sync(await self.broker.current_time())
        await self.contracts.ask()  # every time: the trading hours IB sends cover a week
        self.front_months.update()  # a future without an expiry: which month it trades
        await self.reconciler.reconcile()
        await self.position_audit.ensure_baseline()
        await self.market.warm_up(backfill=reconnect)
        self.market.subscribe_all()

    async def on_connected(self, account: str, reconnect: bool) -> None:
        await self.connection_supervisor.on_connected(account, reconnect)
        if self.broker.is_connected and not self.ready.is_set():
            self.ready.set()
            self.recorder.publish(LifecycleEvent(LifecycleKind.STARTUP, self.clock.now(), {
                "mode": self.mode,
                "account": account,
                "symbols": list(self.market.symbols),
                "strategy": self.settings.strategy,
                "state": self.risk.state.value,
            }))

    async def wait_stopped(self) -> None:
        await self._stopped.wait()

    async def stop(self) -> None:
        """Stop new orders, flush the journal, disconnect; the goodbye goes out first (the
        front-ends stop after the engine and deliver what is queued)."""
        self.connection_supervisor.stopping = True
        self.risk.halt("shutting down")
        self.recorder.publish(LifecycleEvent(LifecycleKind.SHUTDOWN, self.clock.now(), {
            "uptime": f"{self.uptime() / 3600:.1f} h",
            "working orders": len(self.orders.working()),
        }))
        self.fills.announce_pending()
        self.broker.stop()
        await self.tasks.wait_aside(ASIDE_WAIT_SECONDS)
        await self.tasks.stop()
        await self.writer.stop(timeout=2.0)
        self._stopped.set()

    def _spawn_audit(self, shown: tuple[Fill, ...]) -> None:
        self.tasks.spawn(self.position_audit.check(), "position audit")
        self.tasks.spawn(self.position_audit.missing_executions(shown), "execution audit")

    def _entry_refused(self, symbol: str) -> str | None:
        """Why no entry may be sent for `symbol`: a front-month roll held back, or an option
        on its last day."""
        held_back = self.front_months.entry_refused(symbol)
        info = self.broker.contract(symbol)
        if held_back is not None or info is None or info.instrument.sec_type != "OPT":
            return held_back
        return option_expiring(symbol, info.expiry, info.time_zone, self.clock.now())

    def _why_not_trading(self) -> str | None:
        """Why the trader may send nothing now, or None."""
        if self.kill_switch.flattening:
            return "flatten in progress"
        if self.link.state is not ConnectionState.CONNECTED:
            return "not connected to the gateway"
        return None

    # --- the broker's listener: each event to the part that owns it -------------------------

    def on_disconnected(self, reason: str) -> None:
        self.connection_supervisor.on_disconnected(reason)

    def on_connect_failed(self, error: str, retry_in: float) -> None:
        self.connection_supervisor.on_connect_failed(error, retry_in)

    def on_client_id_in_use(self, client_id: int, give_up_in: float) -> None:
        self.connection_supervisor.on_client_id_in_use(client_id, give_up_in)

    def on_setup_failed(self, error: BaseException) -> None:
        self.recorder.failure("connect set-up", error)

    def on_handler_failed(self, kind: str, error: BaseException) -> None:
        """A broker event handler raised: what the rest of the event could do was done."""
        self.recorder.failure(f"{kind} handler", error)

    def on_error(self, code: int, message: str, req_id: int, order_ref: str | None) -> None:
        self.connection_supervisor.on_error(code, message, req_id, order_ref)

    def on_realtime_bar(self, bar: Bar) -> None:
        self.market.on_realtime_bar(bar)

    def on_order_update(self, update: OrderUpdate, symbol: str) -> None:
        order = self.orders.orders.get(update.order_ref)
        filled_before = order.filled if order is not None else 0.0
        self.orders.on_update(update, symbol)
        if update.status is OrderStatus.UNKNOWN:
            self.reconciler.schedule_recheck()  # held, or a cancel that may not have happened
        elif order is None and not update.status.is_done:
            # Working, but not in memory: one written off long ago (its cancel inferred) and
            # forgotten since; reconciliation revives it from the journal.
            self.reconciler.schedule_recheck()
        if order is not None and order.filled > filled_before:
            # IB may report the fill in the status before the execution or the position.
            self.fills.await_position(order.symbol)

    def on_fill(self, fill: Fill) -> None:
        self.fills.on_fill(fill)

    def on_commission(self, exec_id: str, commission: float, realized_pnl: float | None) -> None:
        self.fills.on_commission(exec_id, commission, realized_pnl)

    def on_position(self, position: Position) -> None:
        self.fills.on_position(position)
        if self.position_audit.is_option(position.symbol):  # an expiry settles it flat
            if position.quantity:
                self.position_audit.option_held(position.symbol)
            else:
                self.tasks.spawn(self.position_audit.option_went_flat(position.symbol),
                                 "option went flat")

    def on_account_value(self, tag: str, value: float) -> None:
        self.portfolio.account_values[tag] = value

    def on_bulletin(self, bulletin: Bulletin) -> None:
        level = Level.WARNING if bulletin.kind is BulletinKind.EXCHANGE_UNAVAILABLE else Level.INFO
        self.recorder.record(
            level, "bulletin", bulletin.message,
            {"msg_id": bulletin.msg_id, "kind": bulletin.kind.value, "exchange": bulletin.exchange},
            event=BulletinEvent(bulletin, self.clock.now()),
        )  # fmt: skip

    # --- housekeeping ---------------------------------------------------------------------

    async def _watchdog(self) -> None:
        """Close bars whose interval ended, resubscribe symbols gone quiet, ask for positions
        a fill should have changed, and say when the journal cannot be written."""
        interval = min(max(self.clock.wall_seconds(REALTIME_BAR_SECONDS) / 2, 0.02), 1.0)
        while True:
            await asyncio.sleep(interval)
            if self.link.state is not ConnectionState.CONNECTED or not self.ready.is_set():
                continue
            self._check_journal()
            self.contracts.refresh_when_due()
            self.front_months.update()
            await self.fills.refresh_if_stuck()
            self.market.flush(self.clock.now())

    def _check_journal(self) -> None:
        failing = self.writer.failures >= JOURNAL_FAILURES_ALERT
        if failing and not self._journal_alerted:
            self.recorder.publish(RiskEvent(
                RiskKind.JOURNAL, "the journal cannot be written (disk full or busy); new "
                "orders wait until it can", self.clock.now()))
        self._journal_alerted = failing

    async def _measure_loop_lag(self) -> None:
        period = 0.05
        while True:
            before = time.perf_counter()
            await asyncio.sleep(period)
            self.loop_lag_samples.append(max(time.perf_counter() - before - period, 0.0))

    # --- what front-ends read -------------------------------------------------------------

    async def reconcile(self) -> list[Difference]:
        return await self.reconciler.reconcile()

    def _multiplier(self, symbol: str) -> float:
        info = self.broker.contract(symbol)
        return info.multiplier if info is not None else 1.0

    @property
    def symbols(self) -> dict[str, SymbolState]:
        return self.market.symbols

    @property
    def connection(self) -> ConnectionState:
        return self.link.state

    @property
    def account(self) -> str:
        return self.link.account

    @property
    def connected_since(self) -> datetime | None:
        return self.link.connected_since

    @property
    def disconnects(self) -> int:
        return self.link.disconnects

    @property
    def ib_servers_lost(self) -> bool:
        return self.link.ib_servers_lost

    @property
    def flattening(self) -> bool:
        return self.kill_switch.flattening

    @property
    def recent_refusals(self) -> deque[Refusal]:
        return self.trader.recent_refusals

    def awaiting_position(self, symbol: str) -> bool:
        return self.fills.awaiting_position(symbol)

    async def wait_positions_settled(self, timeout: float) -> None:
        await self.fills.wait_positions_settled(timeout)

    def today_pnl(self) -> float:
        return self.portfolio.today_pnl()

    def trading_day(self) -> str:
        return self.accounting.trading_day()

    def is_stale(self, symbol: str) -> bool:
        return self.risk.is_stale(self.market.last_bar_time(symbol), self.clock.now())

    def uptime(self) -> float:
        return time.monotonic() - self.started_wall
