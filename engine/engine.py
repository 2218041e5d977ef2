"""The trading engine: bars → strategy → risk → orders, reconciled with the broker.

The engine listens to the broker adapter (domain types only), keeps the per-symbol market
state, asks each symbol's strategy what it wants at every closed bar, checks risk, and places
orders through the order manager. Everything a person should know is published on the event
bus; every decision is journaled.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
import traceback
from collections import deque
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from engine import strategies
from engine.bars import REALTIME_BAR_SECONDS, BarBuilder, bad_bar_reason
from engine.broker import (
    ORDER_REF_PREFIX,
    AccountNotFound,
    BrokerOrder,
    BrokerRequestError,
    BrokerSnapshot,
    ClientIdInUse,
    ContractInfo,
    IBBroker,
    LiveTradingRefused,
)
from engine.clock import BrokerClock
from engine.config import Settings
from engine.domain import (
    Bar,
    ConnectionState,
    EngineState,
    Fill,
    Order,
    OrderStatus,
    OrderType,
    OrderUpdate,
    Position,
    Side,
    Signal,
)
from engine.events import (
    BrokerErrorEvent,
    ConnectionEvent,
    DataEvent,
    EventBus,
    FillEvent,
    Level,
    LifecycleEvent,
    ReconcileEvent,
    RiskEvent,
)
from engine.hours import ALWAYS_OPEN, trading_day
from engine.ib_errors import ErrorAction, classify
from engine.journal import (
    Journal,
    Statement,
    equity_stmt,
    event_stmt,
    fill_stmt,
    insert_order_stmt,
    signal_stmt,
    state_stmt,
    update_order_stmt,
)
from engine.journal_writer import JournalWriter
from engine.orders import OrderManager
from engine.portfolio import Portfolio
from engine.risk import OrderRequest, RiskLimits, RiskManager
from engine.strategies.base import Strategy
from engine.tasks import KeptAlive

log = logging.getLogger(__name__)

# How long a fill waits for its commission report before it is announced without it.
COMMISSION_WAIT_SECONDS = 2.0
# A symbol with no 5-second bar for this long (broker time, trading hours) is resubscribed.
QUIET_SECONDS = 60.0
# Bad bars are alerted once per burst: again only after this long without one.
BAD_BAR_BURST_SECONDS = 300.0
CHART_BARS = 500
PROTECTIVE_CANCEL_SECONDS = 5.0
ASIDE_WAIT_SECONDS = 2.0
JOURNAL_FAILURES_ALERT = 5
# A fill whose position update has not come within this long makes the engine ask for positions.
POSITION_CONFIRM_SECONDS = 3.0
# An order sent but not found at the broker stays "unknown" this long before it is written off.
NO_TRACE_GRACE_SECONDS = 10.0
# A failing handler or task is alerted at most this often per kind (it is journaled every time).
FAILURE_ALERT_SECONDS = 3600.0


@dataclass(slots=True)
class NoTrace:
    """An order sent but not found at the broker: since when, and the symbol's position then."""

    since: float  # monotonic
    position: float


@dataclass(slots=True)
class SymbolState:
    """Everything the engine keeps about one traded symbol."""

    symbol: str
    strategy: Strategy
    builder: BarBuilder
    last_bar: Bar | None = None
    last_small_bar: Bar | None = None
    last_small_wall: float = 0.0
    warm: bool = False
    bars: deque[Bar] = field(default_factory=lambda: deque(maxlen=CHART_BARS))
    indicators: deque[dict[str, float | None]] = field(
        default_factory=lambda: deque(maxlen=CHART_BARS)
    )
    last_bad_bar_alert: float = -math.inf
    bad_bars_in_burst: int = 0
    awaiting_position: bool = False  # a fill seen that the broker's position may not show
    awaiting_since: float = 0.0
    expected_position: float | None = None  # what the position will be once it shows the fills


class Engine:
    """One trading engine, from connect to shutdown. Implements BrokerListener."""

    def __init__(
        self,
        settings: Settings,
        journal: Journal,
        bus: EventBus | None = None,
        *,
        host: str | None = None,
        port: int | None = None,
        mode: str | None = None,
        clock_speed: float = 1.0,
        backoff_initial: float = 1.0,
        no_trace_grace: float = NO_TRACE_GRACE_SECONDS,
    ) -> None:
        self.settings = settings
        self.no_trace_grace = no_trace_grace
        self.journal = journal
        self.bus = bus or EventBus()
        self.mode = mode or settings.trading_mode
        self.clock = BrokerClock(clock_speed)
        self.broker = IBBroker(
            self,
            host=host or settings.ib_host or "127.0.0.1",
            port=port or settings.ib_port,
            client_id=settings.ib_client_id,
            account=settings.ib_account,
            allow_live=settings.trading_mode == "live",
            backoff_initial=backoff_initial,
        )
        self.writer = JournalWriter(journal.path)
        self.writer.on_death = self.on_task_died
        self.orders = OrderManager(self.broker, self.writer, self.bus, self.clock)
        self.portfolio = Portfolio()
        self.risk = RiskManager(
            RiskLimits(
                max_position=settings.max_position,
                max_notional=settings.max_notional,
                max_daily_loss=settings.max_daily_loss,
                max_orders_per_minute=settings.max_orders_per_minute,
                bar_seconds=settings.bar_seconds,
                outside_rth=settings.outside_rth,
            )
        )
        self.symbols: dict[str, SymbolState] = {
            instrument.symbol: SymbolState(
                instrument.symbol,
                strategies.create(
                    settings.strategy,
                    instrument.symbol,
                    settings.strategy_params,
                    settings.order_quantity,
                ),
                BarBuilder(instrument.symbol, settings.bar_seconds),
            )
            for instrument in settings.symbols
        }
        self.connection = ConnectionState.DISCONNECTED
        self.connected_since: datetime | None = None
        self.disconnected_at: float | None = None
        self.disconnects = 0
        self.account = ""
        self.started_wall = time.monotonic()
        self.recent_refusals: deque[str] = deque(maxlen=10)
        self.ready = asyncio.Event()  # connected, reconciled and warmed up
        self.fatal: BaseException | None = None
        self._stopped = asyncio.Event()
        self._stopping = False
        self._pending_fills: dict[str, tuple[Fill, asyncio.TimerHandle]] = {}
        self._tasks: set[asyncio.Future[object]] = set()  # short-lived, supervised
        self._kept: list[KeptAlive] = []  # long-lived, restarted if they die
        self._failure_alerted: dict[str, float] = {}  # kind -> when last alerted (monotonic)
        self._last_equity_at: datetime | None = None
        self._exchange_tz = "America/New_York"
        self.loop_lag_samples: deque[float] = deque(maxlen=600)
        self._no_trace: dict[str, NoTrace] = {}
        # IB's own servers, as the gateway reports them (1100/2110 lost, 1101/1102 back); a new
        # connection starts from "up" and the gateway says 2110 at once if they are away.
        self.ib_servers_lost = False
        self._servers_up_since: float | None = None  # monotonic; None while lost or not set up
        self._recheck: asyncio.Future[None] | None = None
        self._reconcile_lock = asyncio.Lock()
        self._setting_up = False
        self._journal_alerted = False
        self._counted_exec_ids: set[str] = set()  # fills whose PnL is in today's figures
        self._uncounted_fills: dict[str, Fill] = {}  # recovered, commission still to come
        self._aside: set[asyncio.Future[object]] = set()
        self.flattening = False  # while true the strategy places nothing
        self._positions_settled = asyncio.Event()
        self._positions_settled.set()

    # --- life cycle ---------------------------------------------------------------------

    async def start(self) -> None:
        """Restore the persisted state and start connecting (returns at once)."""
        state = await self.journal.get_state("engine_state", EngineState.RUNNING.value)
        reason = await self.journal.get_state("pause_reason", "") or ""
        if state == EngineState.PAUSED.value:
            self.risk.pause(reason or "paused before the restart")
        elif state == EngineState.HALTED.value:
            self.risk.halt(reason or "halted before the restart")
        await self._load_unfinished_orders()
        await self.writer.start()
        self._keep_alive("broker", self._run_broker)
        self._keep_alive("watchdog", self._watchdog)
        self._keep_alive("loop-lag", self._measure_loop_lag)

    async def _load_unfinished_orders(self) -> None:
        """Orders the journal left unfinished are of unknown outcome until reconciliation says
        otherwise: tracked from the start, so they block their symbols (for the strategy and
        the kill switch) even before the first reconciliation, and are never sent again. An
        intent too: the last run may have sent it after journaling it, so it is never taken
        for one still to send (which a drop or a /flatten would drop as "not sent")."""
        for order in await self.journal.open_orders():
            order.status = OrderStatus.UNKNOWN
            order.message = "unfinished before the restart; waits for the broker to show it"
            self.orders.adopt(order)

    def run_aside(self, work: Coroutine[object, object, object]) -> None:
        """Run bookkeeping (journaling) beside the caller; stop() waits for it (bounded)."""
        task = asyncio.ensure_future(work)
        self._aside.add(task)
        task.add_done_callback(self._aside.discard)
        self._supervise(task, "journaling")

    def _keep_alive(self, name: str, factory: Callable[[], Coroutine[Any, Any, None]]) -> None:
        kept = KeptAlive(f"engine:{name}", factory, on_death=self.on_task_died)
        self._kept.append(kept)
        kept.start()

    def _spawn(self, coroutine: Coroutine[Any, Any, object], name: str) -> asyncio.Future[object]:
        """Run a short task that stop() cancels; its failure is reported, never silent."""
        task = asyncio.ensure_future(coroutine)
        task.set_name(name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        self._supervise(task, name)
        return task

    def _supervise(self, task: asyncio.Future[object], name: str) -> None:
        def ended(task: asyncio.Future[object]) -> None:
            if not task.cancelled() and task.exception() is not None:
                self.report_failure(name, task.exception())  # type: ignore[arg-type]

        task.add_done_callback(ended)

    def on_task_died(self, name: str, error: BaseException) -> None:
        """A long-lived task died (KeptAlive logged it and restarts it): journal and alert."""
        self.report_failure(name, error, logged=True)

    def on_handler_failed(self, kind: str, error: BaseException) -> None:
        """A broker event handler raised: what the rest of the event could do was done."""
        self.report_failure(f"{kind} handler", error)

    def report_failure(self, what: str, error: BaseException, logged: bool = False) -> None:
        """A bug or an unexpected value: logged with its traceback, journaled, and alerted
        once per kind an hour, so a failure that repeats on every bar does not flood."""
        if not logged:
            log.error("%s failed", what, exc_info=error)
        message = f"{what} failed: {type(error).__name__}: {error}"
        trace = "".join(traceback.format_exception(error))
        self.writer.write(event_stmt("error", "internal_error", message, {"traceback": trace}))
        now = time.monotonic()
        last = self._failure_alerted.get(what)
        if last is None or now - last >= FAILURE_ALERT_SECONDS:
            self._failure_alerted[what] = now
            self.bus.publish(RiskEvent(
                "internal_error", f"{message} (see the log; alerted at most hourly)",
                self.clock.now(),
            ))

    async def _run_broker(self) -> None:
        try:
            await self.broker.run()
        except (LiveTradingRefused, AccountNotFound, ClientIdInUse) as exc:
            # Retrying cannot fix these: the user must change a setting or stop a program.
            self.fatal = exc
            self.risk.halt(str(exc))
            self._stopped.set()
            self.bus.publish(RiskEvent("halted", str(exc), self.clock.now(),
                                       state=EngineState.HALTED))
            self.writer.write(event_stmt("error", "fatal", str(exc)))

    async def wait_stopped(self) -> None:
        await self._stopped.wait()

    async def stop(self) -> None:
        """Stop new orders, flush the journal, disconnect."""
        self._stopping = True
        self.risk.halt("shutting down")
        for fill, timer in list(self._pending_fills.values()):
            timer.cancel()
            self._announce_fill(fill)
        self.broker.stop()
        if self._aside:
            await asyncio.wait(set(self._aside), timeout=ASIDE_WAIT_SECONDS)
        if self._recheck is not None:
            self._recheck.cancel()
        for kept in self._kept:
            await kept.stop()
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await self.writer.stop(timeout=2.0)
        self._stopped.set()

    async def set_state(self, state: EngineState, reason: str, by: str) -> None:
        if state is EngineState.RUNNING:
            self.risk.resume()
        elif state is EngineState.PAUSED:
            self.risk.pause(reason)
        else:
            self.risk.halt(reason)
        await self.persist_state(state, reason, by)

    async def persist_state(self, state: EngineState, reason: str, by: str) -> None:
        """Journal a state already applied in memory (so a restart resumes it)."""
        for statement in _state_statements(state, reason, by):
            await self.journal.execute(statement)

    # --- BrokerListener: connection --------------------------------------------------------

    async def on_connected(self, account: str, reconnect: bool) -> None:
        downtime = (
            time.monotonic() - self.disconnected_at if self.disconnected_at is not None else None
        )
        self.account = account
        # Nothing trades until reconciliation and warm-up are done: CONNECTED comes last,
        # and only if IB did not report its servers gone (1100) meanwhile.
        if self.connection is not ConnectionState.DEGRADED:  # 2110 may have come already
            self.connection = ConnectionState.CONNECTING
        self.connected_since = datetime.now(UTC)
        self._setting_up = True
        try:
            self.clock.sync(await self.broker.current_time())
            if not self.broker.contracts:
                await self._qualify()
            await self.reconcile()
            await self._warm_up(backfill=reconnect)
            for symbol in self.symbols:
                self.broker.subscribe_bars(symbol, use_rth=not self.settings.outside_rth)
                self.symbols[symbol].last_small_wall = time.monotonic()
        finally:
            self._setting_up = False
        if not self.broker.is_connected:
            return  # dropped during the set-up: the next connection sets up again
        if self.ib_servers_lost:
            self.connection = ConnectionState.DEGRADED
        else:
            self._servers_up()
        await self.journal.log_event(
            "info", "connection", f"connected to {self.broker.host}:{self.broker.port}",
            {"account": account, "reconnect": reconnect, "downtime": downtime},
        )
        if reconnect and self.connection is ConnectionState.CONNECTED:
            self.bus.publish(
                ConnectionEvent(ConnectionState.CONNECTED, self.clock.now(), downtime,
                                f"account {account}")
            )
        if not self.ready.is_set():
            self.ready.set()
            self.bus.publish(
                LifecycleEvent(
                    "startup",
                    self.clock.now(),
                    {
                        "mode": self.mode,
                        "account": account,
                        "symbols": list(self.symbols),
                        "strategy": self.settings.strategy,
                        "state": self.risk.state.value,
                    },
                )
            )

    def _servers_up(self) -> None:
        self.connection = ConnectionState.CONNECTED
        self._servers_up_since = time.monotonic()

    def on_disconnected(self, reason: str) -> None:
        if self.connection is ConnectionState.DISCONNECTED or self._stopping:
            return
        self.connection = ConnectionState.DISCONNECTED
        # The next connection hears from the gateway (2110) whether IB's servers are away.
        self.ib_servers_lost = False
        self._servers_up_since = None
        self.disconnects += 1
        self.disconnected_at = time.monotonic()
        self.writer.write(event_stmt("warning", "connection", reason))
        self.bus.publish(ConnectionEvent(ConnectionState.DISCONNECTED, self.clock.now(),
                                         detail=reason))
        for state in self.symbols.values():
            state.builder.reset()  # the bar in progress will not be seen whole
        self._abandon_unsent("the connection was lost before it was sent")
        for order in self.orders.working():
            if order.status is OrderStatus.PENDING:
                # Sent, but no answer: its outcome is unknown until reconciliation.
                order.status = OrderStatus.UNKNOWN
        self.orders.notify_changed()

    def _abandon_unsent(self, reason: str, keep_kill_switch: bool = False) -> None:
        """Orders decided but not sent yet will not be sent on what is now old data (the kill
        switch's closes still go when only IB's servers are away: the gateway holds them)."""
        for order in self.orders.working():
            if order.status is OrderStatus.INTENT and not (
                keep_kill_switch and order.is_kill_switch
            ):
                self.orders.abandon(order, reason)

    def on_setup_failed(self, error: BaseException) -> None:
        self.report_failure("connect set-up", error)

    def on_client_id_in_use(self, client_id: int, give_up_in: float) -> None:
        message = (f"client id {client_id} is in use at the gateway (a second tradebot, or IB "
                   f"still holding the last session); retrying for {give_up_in:.0f}s, then "
                   "stopping: check IB_CLIENT_ID")
        self.writer.write(event_stmt("error", "connection", message, {"code": 326}))
        self.bus.publish(BrokerErrorEvent(326, message, classify(326).meaning, Level.ERROR,
                                          self.clock.now()))

    def on_connect_failed(self, error: str, retry_in: float) -> None:
        self.connection = ConnectionState.CONNECTING
        log.warning(
            "cannot connect to %s:%s (%s); retrying in %.1fs",
            self.broker.host, self.broker.port, error, retry_in,
        )

    async def _qualify(self) -> None:
        unknown = await self.broker.qualify(tuple(self.settings.symbols))
        for symbol in unknown:
            message = f"{symbol}: the gateway does not know this contract (error 200); not traded"
            await self.journal.log_event("error", "config", message)
            self.bus.publish(BrokerErrorEvent(200, message, classify(200).meaning, Level.ERROR,
                                              self.clock.now()))
            self.symbols.pop(symbol, None)
        if self.symbols:
            first = next(iter(self.symbols))
            self._exchange_tz = self.broker.contract_info[first].time_zone

    def contract_info(self, symbol: str) -> ContractInfo | None:
        return self.broker.contract_info.get(symbol)

    # --- reconciliation -----------------------------------------------------------------

    async def reconcile(self) -> list[str]:
        """Match the journal with the broker: adopt orders, recover fills, close unknowns.

        One at a time: ib_async keeps one answer per kind of order request, so two
        overlapping snapshots would leave one of them waiting forever.
        """
        async with self._reconcile_lock:
            return await self._reconcile()

    async def _reconcile(self) -> list[str]:
        snapshot: BrokerSnapshot = await self.broker.snapshot()
        self.portfolio.replace_positions(list(snapshot.positions))
        self.portfolio.account_values.update(self.broker.account_values())
        differences: list[str] = []
        positions = {p.symbol: p.quantity for p in snapshot.positions}
        open_by_ref = {o.order_ref: o for o in snapshot.open_orders if o.order_ref}
        done_by_ref = {o.order_ref: o for o in snapshot.completed_orders if o.order_ref}
        fills_by_ref: dict[str, list[Fill]] = {}
        for fill in snapshot.fills:
            fills_by_ref.setdefault(fill.order_ref, []).append(fill)

        adopted = 0
        # Every unfinished order is in memory (the journal's were loaded at start), and memory
        # is newer than the journal, whose copy may still miss a fill's status queued for disk.
        candidates = {ref: o for ref, o in self.orders.orders.items() if not o.status.is_done}
        for ref in self.orders.sending:  # being written right now: not at the broker yet
            candidates.pop(ref, None)
        for ref, order in candidates.items():
            if ref in open_by_ref:
                found = open_by_ref[ref]
                order.status, order.filled = found.status, found.filled
                order.ib_order_id, order.perm_id = found.ib_order_id, found.perm_id
                adopted += 1
            elif ref in done_by_ref:
                found = done_by_ref[ref]
                # Completed orders carry no filled quantity: the executions tell it.
                executed = sum(f.quantity for f in fills_by_ref.get(ref, ()))
                order.status, order.filled = found.status, max(found.filled, executed)
                order.perm_id = found.perm_id or order.perm_id
                differences.append(f"{ref} {order.symbol}: {found.status.value} while away")
            elif ref in fills_by_ref:
                order.filled = sum(f.quantity for f in fills_by_ref[ref])
                if order.filled >= order.quantity - 1e-9:
                    order.status = OrderStatus.FILLED
                    differences.append(f"{ref} {order.symbol}: filled while away")
                else:  # the rest may still be working somewhere the broker does not list
                    order.status = OrderStatus.UNKNOWN
                    order.message = f"{order.filled:g} of {order.quantity:g} filled; rest unknown"
                    differences.append(f"{ref} {order.symbol}: {order.message}")
                    self._schedule_recheck()
            else:
                # No open order, no completed order, no execution. Absence is no proof: it may
                # be held by a gateway that lost IB's servers, or still in flight across a drop
                # or a restart. It stays unknown, blocking its symbol (the kill switch's too),
                # until executions settle it, or until IB's servers have been up and the
                # symbol's position unchanged for a whole grace period without a trace of it.
                position = positions.get(order.symbol, 0.0)
                missing = self._no_trace.get(ref)
                if missing is None:
                    differences.append(
                        f"{ref} {order.symbol}: not seen at the broker; waiting for IB to "
                        "settle it (not sent again)"
                    )
                if missing is None or missing.position != position:
                    missing = self._no_trace[ref] = NoTrace(time.monotonic(), position)
                if self._absence_settles(missing):
                    order.status = OrderStatus.CANCELLED
                    order.message = "no trace at the broker; not working"
                    differences.append(f"{ref} {order.symbol}: no trace at the broker")
                    self._no_trace.pop(ref, None)
                else:
                    order.status = OrderStatus.UNKNOWN
                    order.message = (
                        "sent while IB's servers were away; waits for IB"
                        if self.ib_servers_lost else "sent, not seen at the broker yet"
                    )
                    self._schedule_recheck()
            # Through the writer, after any older status of this order still queued there.
            await self.writer.write_durable(
                update_order_stmt(
                    ref, order.status, ib_order_id=order.ib_order_id, perm_id=order.perm_id
                ),
                urgent=False,
            )
            self.orders.adopt(order)
            if order.status is not OrderStatus.UNKNOWN:
                self._no_trace.pop(ref, None)

        for ref, found in open_by_ref.items():
            if not ref.startswith(ORDER_REF_PREFIX) or ref in candidates:
                continue
            if found.client_id != self.broker.client_id:
                # Only the placing client can modify or cancel it, and only it hears its fills.
                differences.append(
                    f"{ref} {found.symbol}: open under client id {found.client_id}, not "
                    f"{self.broker.client_id}; not adopted (IB_CLIENT_ID changed?)"
                )
                continue
            if await self.journal.order(ref) is None:
                order = _order_from_broker(found, self.clock.now())
                await self.writer.write_durable(insert_order_stmt(order), urgent=False)
                self.orders.adopt(order)
                adopted += 1
                differences.append(f"{ref} {found.symbol}: open at the broker, not journaled")

        # Orders settled by a live status since they were last missed need no re-check.
        for ref in list(self._no_trace):
            order = self.orders.orders.get(ref)
            if order is None or order.status is not OrderStatus.UNKNOWN:
                del self._no_trace[ref]

        recovered = 0
        for fill in snapshot.fills:
            if not fill.order_ref.startswith(ORDER_REF_PREFIX):
                continue
            self.orders.mark_seen(fill.exec_id)
            # Through the writer, so a commission report arriving later lands after it.
            if await self.writer.write_durable(fill_stmt(fill), urgent=False) == 1:
                recovered += 1
                self._count_realized(fill)
        if recovered:
            differences.append(f"{recovered} fill(s) recovered from the broker")

        await self.journal.log_event(
            "warning" if differences else "info", "reconcile",
            f"reconciled: {adopted} order(s) adopted, {len(differences)} difference(s)",
            {"differences": differences},
        )
        if differences:
            self.bus.publish(ReconcileEvent(tuple(differences), adopted, self.clock.now()))
        return differences

    def _absence_settles(self, missing: NoTrace) -> bool:
        """Whether an order's absence at the broker now shows it is not working: IB's servers
        up, and no trace of it, no change in its symbol's position, for a whole grace period."""
        if self._servers_up_since is None or self.ib_servers_lost:
            return False
        start = max(missing.since, self._servers_up_since)
        return time.monotonic() - start >= self.no_trace_grace

    def outcome_unknown(self, order: Order) -> bool:
        """Sent, and whether it is at IB or will fill cannot be known yet: unknown since a
        drop or restart, or waiting for an answer while IB's servers are away."""
        return order.status is OrderStatus.UNKNOWN or (
            order.status is OrderStatus.PENDING and self.ib_servers_lost
        )

    def _schedule_recheck(self) -> None:
        if self._recheck is not None and not self._recheck.done():
            return

        async def recheck() -> None:
            # Until every order sent but not seen at the broker is settled one way or the
            # other (a reconcile run from here cannot schedule the next check itself).
            while True:
                await asyncio.sleep(self.no_trace_grace)
                if self.broker.is_connected:
                    try:
                        await self.reconcile()
                    except (ConnectionError, TimeoutError) as exc:
                        log.warning("order recheck failed: %s", exc)
                if not self._no_trace:
                    return

        self._recheck = asyncio.ensure_future(recheck())
        self._supervise(self._recheck, "order recheck")

    # --- market data --------------------------------------------------------------------

    async def _warm_up(self, backfill: bool) -> None:
        settings = self.settings
        for symbol, state in self.symbols.items():
            needed = state.strategy.warmup_bars + 2
            try:
                history = await self.broker.history(
                    symbol, settings.bar_size, settings.bar_seconds, needed,
                    use_rth=not settings.outside_rth,
                )
            except BrokerRequestError as exc:
                message = f"{symbol}: no history ({exc}); warming up from live bars"
                await self.journal.log_event("warning", "warmup", message)
                self.bus.publish(DataEvent("no_history", symbol, message, self.clock.now()))
                history = []
            now = self.clock.now()
            step = timedelta(seconds=settings.bar_seconds)
            complete = [bar for bar in history if bar.time + step <= now]
            partial = [bar for bar in history if bar.time + step > now]
            if backfill and state.last_bar is not None:
                last = state.last_bar.time
                complete = [bar for bar in complete if bar.time > last]
            for bar in complete[-max(needed, CHART_BARS):] if not backfill else complete:
                self._on_bar(state, bar, trade=False)
            if partial:
                state.builder.seed(partial[-1])
            if history:
                self.portfolio.last_price.setdefault(symbol, history[-1].close)
            state.warm = True
            await self.journal.log_event(
                "info", "warmup",
                f"{symbol}: {len(complete)} historical bars"
                + (" (backfill)" if backfill else ""),
            )

    def on_realtime_bar(self, bar: Bar) -> None:
        state = self.symbols.get(bar.symbol)
        if state is None:
            return
        self.clock.sync(bar.time + timedelta(seconds=REALTIME_BAR_SECONDS))
        reason = bad_bar_reason(bar, state.last_small_bar)
        if reason is not None:
            self._bad_bar(state, bar, reason)
            return
        state.last_small_bar = bar
        state.last_small_wall = time.monotonic()
        self.portfolio.last_price[bar.symbol] = bar.close
        for closed in state.builder.add(bar):
            self._on_bar(state, closed, trade=state.warm)

    def _bad_bar(self, state: SymbolState, bar: Bar, reason: str) -> None:
        message = f"{bar.symbol}: bad bar at {bar.time.isoformat()} dropped ({reason})"
        details = {"symbol": bar.symbol, "time": bar.time.isoformat(), "reason": reason,
                   "bar": [bar.open, bar.high, bar.low, bar.close, bar.volume]}
        self.writer.write(event_stmt("warning", "bad_bar", message, details))
        now = time.monotonic()
        state.bad_bars_in_burst += 1
        if now - state.last_bad_bar_alert >= self.clock.wall_seconds(BAD_BAR_BURST_SECONDS):
            self.bus.publish(DataEvent("bad_bar", bar.symbol, message, self.clock.now(),
                                       state.bad_bars_in_burst))
            state.bad_bars_in_burst = 0
        state.last_bad_bar_alert = now

    def _on_bar(self, state: SymbolState, bar: Bar, trade: bool) -> None:
        reason = bad_bar_reason(bar, state.last_bar)
        if reason is not None:
            self._bad_bar(state, bar, reason)
            return
        previous = state.last_bar
        if previous is not None and trade:
            missing = int((bar.time - previous.time).total_seconds()
                          // self.settings.bar_seconds) - 1
            info = self.contract_info(bar.symbol)
            hours = info.trading_hours if info else ALWAYS_OPEN
            gap_start = previous.time + timedelta(seconds=self.settings.bar_seconds)
            if missing > 0 and hours.is_open(gap_start):
                message = f"{bar.symbol}: {missing} bar(s) missing before {bar.time.isoformat()}"
                self.writer.write(event_stmt("warning", "gap", message,
                                             {"symbol": bar.symbol, "missing": missing}))
        state.last_bar = bar
        state.bars.append(bar)
        position = self.portfolio.position(bar.symbol)
        signal = state.strategy.on_bar(bar, position)
        state.indicators.append(state.strategy.indicator_values())
        if trade:
            try:
                self._maybe_snapshot_equity()
            except Exception as exc:  # bookkeeping: the bar's decision goes on without it
                self.report_failure("equity snapshot", exc)
            self._check_daily_loss()
            if signal is not None:
                self._spawn_signal(state, signal)

    def _spawn_signal(self, state: SymbolState, signal: Signal) -> None:
        prepared = self._decide(state, signal)
        if prepared is not None:
            # Not cancelled at stop: an order being sent finishes its write-ahead and sending.
            task = asyncio.ensure_future(self._send_entry(*prepared))
            self._supervise(task, f"sending {state.symbol}'s order")

    def _decide(self, state: SymbolState, signal: Signal) -> tuple[Order, OrderRequest] | None:
        """Turn a strategy's target into at most one order, registered before returning.

        This is synchronous: every check and the order's registration happen in one step,
        so two signals for one symbol can never both pass, with no lock and no waiting.
        """
        symbol = signal.symbol
        self.writer.write(signal_stmt(signal))
        if self.flattening:
            self._refuse(symbol, "flatten in progress")
            return None
        if self.connection is not ConnectionState.CONNECTED:
            self._refuse(symbol, "not connected to the gateway")
            return None
        if self.orders.has_working(symbol):
            self._refuse(symbol, "an order for this symbol is still working")
            return None
        if state.awaiting_position:
            self._refuse(symbol, "waiting for the broker to confirm the position")
            return None
        position = self.portfolio.position(symbol)
        delta = signal.target - position
        if abs(delta) < 1e-9:
            return None
        side = Side.BUY if delta > 0 else Side.SELL
        request = OrderRequest(symbol, side, abs(delta), self.portfolio.last_price.get(symbol),
                               position)
        info = self.contract_info(symbol)
        now = self.clock.now()
        decision = self.risk.check(
            request, now, state.last_bar.time if state.last_bar else None,
            info.liquid_hours if info else ALWAYS_OPEN,
        )
        if not decision.allowed:
            self._refuse(symbol, decision.reason)
            return None
        self.risk.record_order(now)
        return self.orders.prepare(symbol, side, abs(delta), signal.reason), request

    async def _send_entry(self, order: Order, request: OrderRequest) -> None:
        protective = [o for o in self.orders.working(order.symbol) if o.parent_ref]
        if protective:
            # The stop-loss / take-profit of the position being closed must not outlive it,
            # or it would open a new position when it triggers.
            refs = [o.order_ref for o in protective if self.orders.cancel(o.order_ref)]
            state = self.symbols.get(order.symbol)
            if (
                len(refs) != len(protective)
                or not await self.orders.wait_done(refs, PROTECTIVE_CANCEL_SECONDS)
                or any(o.filled > 0 for o in protective)
                or (state is not None and state.awaiting_position)
                or self.portfolio.position(order.symbol) != request.position
            ):
                self.orders.abandon(order, "protective orders changed the position first")
                self._refuse(order.symbol, "protective orders were still working")
                return
        bracket = self._wants_bracket(request)
        await self.orders.send(order, outside_rth=self.settings.outside_rth, transmit=not bracket)
        if bracket and order.ib_order_id:
            await self._protect(order, request)

    def _wants_bracket(self, request: OrderRequest) -> bool:
        settings = self.settings
        return not request.is_exit and request.position == 0 and bool(
            settings.stop_loss_pct or settings.take_profit_pct
        )

    async def _protect(self, parent: Order, request: OrderRequest) -> None:
        """Attach stop-loss / take-profit children to an entry (sent with the last child)."""
        price = request.reference_price
        info = self.contract_info(parent.symbol)
        tick = info.min_tick if info else 0.01
        if price is None:
            return
        direction = parent.side.sign
        children: list[tuple[OrderType, float | None, float | None]] = []
        if self.settings.take_profit_pct:
            target = _round_tick(price * (1 + direction * self.settings.take_profit_pct / 100),
                                 tick)
            children.append((OrderType.LIMIT, target, None))
        if self.settings.stop_loss_pct:
            stop = _round_tick(price * (1 - direction * self.settings.stop_loss_pct / 100), tick)
            children.append((OrderType.STOP, None, stop))
        oca = f"oca-{parent.order_ref}"
        for index, (order_type, limit, stop) in enumerate(children):
            await self.orders.submit(
                parent.symbol, parent.side.opposite, parent.quantity,
                f"protective {order_type.value} for {parent.order_ref}",
                order_type, limit, stop, parent=parent,
                transmit=index == len(children) - 1, oca_group=oca,
                outside_rth=self.settings.outside_rth,
            )

    def _refuse(self, symbol: str, reason: str) -> None:
        message = f"{symbol}: order refused: {reason}"
        self.recent_refusals.append(f"{self.clock.now():%H:%M:%S} {message}")
        self.writer.write(event_stmt("info", "risk", message, {"symbol": symbol}))
        self.bus.publish(RiskEvent("refused", message, self.clock.now(), symbol=symbol))

    # --- BrokerListener: orders, fills, account ---------------------------------------------

    def on_order_update(self, update: OrderUpdate, symbol: str) -> None:
        order = self.orders.orders.get(update.order_ref)
        filled_before = order.filled if order is not None else 0.0
        self.orders.on_update(update, symbol)
        if update.status is OrderStatus.UNKNOWN:
            self._schedule_recheck()  # held, or a cancel that may not have happened
        if order is not None and order.filled > filled_before:
            # IB may report the fill in the status before the execution or the position.
            self._await_position(order.symbol)

    def _await_position(self, symbol: str, change: float | None = None) -> None:
        """Note a fill the broker's position may not show yet; `change` is its signed
        quantity when known (an execution), so the position that shows it is recognised."""
        state = self.symbols.get(symbol)
        if state is None:
            return
        if change is not None:
            base = state.expected_position
            if not state.awaiting_position or base is None:
                base = self.portfolio.position(symbol)
            state.expected_position = base + change
        state.awaiting_position = True
        state.awaiting_since = time.monotonic()
        self._positions_settled.clear()

    def on_fill(self, fill: Fill) -> None:
        if not self.orders.on_fill(fill):
            return
        self._await_position(fill.symbol, fill.side.sign * fill.quantity)
        loop = asyncio.get_running_loop()
        timer = loop.call_later(COMMISSION_WAIT_SECONDS, self._commission_timeout, fill.exec_id)
        self._pending_fills[fill.exec_id] = (fill, timer)

    def on_commission(self, exec_id: str, commission: float, realized_pnl: float | None) -> None:
        self.orders.on_commission(exec_id, commission, realized_pnl)
        pending = self._pending_fills.pop(exec_id, None)
        if pending is None:
            recovered = self._uncounted_fills.pop(exec_id, None)
            if recovered is not None:  # a fill found by reconciliation, commission came later
                self.portfolio.add_realized(recovered.symbol, realized_pnl, commission)
                self._counted_exec_ids.add(exec_id)
                self._check_daily_loss()
            return
        fill, timer = pending
        timer.cancel()
        completed = Fill(
            fill.exec_id, fill.order_ref, fill.perm_id, fill.time, fill.symbol, fill.side,
            fill.quantity, fill.price, commission, realized_pnl,
        )
        self._announce_fill(completed)  # first: a fill is never lost to a failing sum
        self.portfolio.add_realized(fill.symbol, realized_pnl, commission)
        self._counted_exec_ids.add(exec_id)
        self._check_daily_loss()

    def _count_realized(self, fill: Fill) -> None:
        """Count a recovered fill's commission and PnL once, now or when its report comes."""
        if fill.exec_id in self._counted_exec_ids:
            return
        if fill.commission is None:
            self._uncounted_fills[fill.exec_id] = fill
            return
        self.portfolio.add_realized(fill.symbol, fill.realized_pnl, fill.commission)
        self._counted_exec_ids.add(fill.exec_id)

    def _commission_timeout(self, exec_id: str) -> None:
        pending = self._pending_fills.pop(exec_id, None)
        if pending is not None:
            self._announce_fill(pending[0])

    def _announce_fill(self, fill: Fill) -> None:
        expected = self.portfolio.position(fill.symbol)
        state = self.symbols.get(fill.symbol)
        if state is not None and state.awaiting_position:
            expected += fill.side.sign * fill.quantity
        self.bus.publish(FillEvent(fill, expected))

    def on_position(self, position: Position) -> None:
        self.portfolio.set_position(position)
        state = self.symbols.get(position.symbol)
        if state is None or not state.awaiting_position:
            return
        expected = state.expected_position
        # A position reflecting only an earlier execution of the order does not settle it.
        if expected is None or abs(position.quantity - expected) < 1e-9:
            self._position_confirmed(position.symbol)

    def _position_confirmed(self, symbol: str) -> None:
        state = self.symbols.get(symbol)
        if state is not None:
            state.awaiting_position = False
            state.expected_position = None
            if not any(s.awaiting_position for s in self.symbols.values()):
                self._positions_settled.set()

    async def _refresh_positions(self) -> None:
        """Ask the broker for positions when an expected position update has not come."""
        asked = time.monotonic()
        try:
            positions = await self.broker.fresh_positions()
        except (ConnectionError, TimeoutError) as exc:
            log.warning("position refresh failed: %s", exc)
            return
        self.portfolio.replace_positions(positions)
        for symbol, state in self.symbols.items():
            if state.awaiting_position and state.awaiting_since < asked:
                self._position_confirmed(symbol)

    def awaiting_position(self, symbol: str) -> bool:
        state = self.symbols.get(symbol)
        return state is not None and state.awaiting_position

    def adopt_unknown_working(self) -> int:
        """Track the bot's orders ib_async knows as open but the engine does not (yet):
        after a restart, before reconciliation adopted them. Returns how many."""
        adopted = 0
        for found in self.broker.working_orders():
            ref = found.order_ref
            if not ref.startswith(ORDER_REF_PREFIX):
                continue
            known = self.orders.orders.get(ref)
            if known is None:
                self.orders.adopt(_order_from_broker(found, self.clock.now()))
                adopted += 1
            elif known.status is OrderStatus.UNKNOWN:  # the broker shows it: it is working
                known.status, known.filled = found.status, max(known.filled, found.filled)
                known.ib_order_id = found.ib_order_id or known.ib_order_id
                known.message = ""
                self.orders.notify_changed()
        return adopted

    async def wait_positions_settled(self, timeout: float) -> None:
        """Wait (bounded) until every fill seen has shown up in the broker's positions."""
        try:
            await asyncio.wait_for(self._positions_settled.wait(), timeout)
        except TimeoutError:
            log.warning("positions not confirmed by the broker within %.1fs", timeout)

    def on_account_value(self, tag: str, value: str, currency: str) -> None:
        if currency not in ("USD", "BASE", ""):
            return
        try:
            self.portfolio.account_values[tag] = float(value)
        except ValueError:
            return

    def on_error(self, code: int, message: str, req_id: int, order_ref: str | None) -> None:
        info = classify(code)
        action = info.action
        if action is ErrorAction.INFO:
            return
        level = Level.WARNING if action in (
            ErrorAction.WARNING, ErrorAction.DATA_STALE, ErrorAction.RESTORED,
            ErrorAction.RESTORED_DATA_LOST, ErrorAction.ORDER_CANCELLED,
        ) else Level.ERROR
        details = {"code": code, "req_id": req_id, "order_ref": order_ref}
        self.writer.write(event_stmt(level.value, "ib_error", f"{code}: {message}", details))
        if action is ErrorAction.ORDER_CANCELLED or (
            action is ErrorAction.ORDER_REJECTED and order_ref
        ):
            return  # the order's own status update carries it to the front-ends
        now = self.clock.now()
        if action is ErrorAction.DEGRADED:
            self.ib_servers_lost = True
            self._servers_up_since = None
            self.connection = ConnectionState.DEGRADED
            self.orders.notify_changed()  # orders in flight now have an unknown outcome
            self._abandon_unsent("IB lost its servers before it was sent", keep_kill_switch=True)
            self.bus.publish(ConnectionEvent(ConnectionState.DEGRADED, now, detail=message))
            return
        if action in (ErrorAction.RESTORED, ErrorAction.RESTORED_DATA_LOST):
            self.ib_servers_lost = False
            # Still DEGRADED until reconciliation says what happened while IB was away
            # (and still CONNECTING if the connect's own set-up is running).
            if self.connection is not ConnectionState.CONNECTING:
                self.connection = ConnectionState.DEGRADED
            self._spawn(self._after_restore(action is ErrorAction.RESTORED_DATA_LOST, message),
                        "restore")
            return
        if action is ErrorAction.RESYNC:
            self._spawn(self.reconcile(), "resync")
        self.bus.publish(BrokerErrorEvent(code, message, info.meaning, level, now, req_id))

    async def _after_restore(self, data_lost: bool, message: str) -> None:
        try:
            await self.reconcile()
        except ConnectionError:
            return  # the connection dropped meanwhile: the next one sets up from scratch
        except Exception as exc:
            # Whatever it was, a fresh connection runs the whole set-up again.
            self.report_failure("reconciliation after IB came back", exc)
            self.broker.ib.disconnect()
            return
        if data_lost:
            for symbol, state in self.symbols.items():
                state.builder.reset()
                self.broker.subscribe_bars(symbol, use_rth=not self.settings.outside_rth)
        if (
            self.connection is ConnectionState.DEGRADED
            and not self._setting_up
            and not self.ib_servers_lost
        ):
            self._servers_up()
            self.bus.publish(ConnectionEvent(ConnectionState.CONNECTED, self.clock.now(),
                                             detail=message))

    # --- housekeeping ---------------------------------------------------------------------

    async def _watchdog(self) -> None:
        """Close bars whose interval ended, and resubscribe symbols gone quiet."""
        interval = min(max(self.clock.wall_seconds(REALTIME_BAR_SECONDS) / 2, 0.02), 1.0)
        while True:
            await asyncio.sleep(interval)
            if self.connection is not ConnectionState.CONNECTED or not self.ready.is_set():
                continue
            now = self.clock.now()
            self._check_journal()
            stuck = time.monotonic() - POSITION_CONFIRM_SECONDS
            if any(s.awaiting_position and s.awaiting_since < stuck
                   for s in self.symbols.values()):
                await self._refresh_positions()
            for state in list(self.symbols.values()):
                # Allow one 5-second bar of slack for the last bar of the interval to arrive.
                closed = state.builder.flush(now - timedelta(seconds=REALTIME_BAR_SECONDS))
                if closed is not None:
                    self._on_bar(state, closed, trade=state.warm)
                self._check_quiet(state, now)

    def _check_journal(self) -> None:
        failing = self.writer.failures >= JOURNAL_FAILURES_ALERT
        if failing and not self._journal_alerted:
            self.bus.publish(RiskEvent(
                "journal", "the journal cannot be written (disk full or busy); new orders wait "
                "until it can", self.clock.now()))
        self._journal_alerted = failing

    def _check_quiet(self, state: SymbolState, now: datetime) -> None:
        info = self.contract_info(state.symbol)
        if info is not None and not info.trading_hours.is_open(now):
            return
        quiet_wall = time.monotonic() - state.last_small_wall
        if quiet_wall * self.clock.speed < QUIET_SECONDS:
            return
        message = f"{state.symbol}: no market data for {QUIET_SECONDS:.0f}s; resubscribed"
        state.last_small_wall = time.monotonic()
        state.builder.reset()
        self.broker.subscribe_bars(state.symbol, use_rth=not self.settings.outside_rth)
        self.writer.write(event_stmt("warning", "quiet", message))
        self.bus.publish(DataEvent("quiet", state.symbol, message, now))

    async def _measure_loop_lag(self) -> None:
        period = 0.05
        while True:
            before = time.perf_counter()
            await asyncio.sleep(period)
            self.loop_lag_samples.append(max(time.perf_counter() - before - period, 0.0))

    def _maybe_snapshot_equity(self) -> None:
        now = self.clock.now()
        day = trading_day(now, self._exchange_tz)
        if self.portfolio.start_day(day):
            self.writer.write(state_stmt("trading_day", day))
        interval = timedelta(minutes=self.settings.equity_snapshot_minutes)
        if self._last_equity_at is not None and now - self._last_equity_at < interval:
            return
        self._last_equity_at = now
        net = self.portfolio.net_liquidation()
        realized = self.portfolio.realized_today
        unrealized = self.portfolio.unrealized()
        self.writer.write(equity_stmt(now, net, realized, unrealized))

    def _check_daily_loss(self) -> None:
        if self.risk.state is not EngineState.RUNNING:
            return
        pnl = self.portfolio.today_pnl()
        if not self.risk.daily_loss_breached(pnl):
            return
        reason = (f"daily loss limit: today's PnL {pnl:,.2f} reached "
                  f"-{self.settings.max_daily_loss:,.2f}")
        self.risk.pause(reason)
        for statement in _state_statements(EngineState.PAUSED, reason, "risk"):
            self.writer.write(statement)
        self.bus.publish(RiskEvent("paused", reason, self.clock.now(), state=EngineState.PAUSED))

    def today_pnl(self) -> float:
        return self.portfolio.today_pnl()

    def trading_day(self) -> str:
        return trading_day(self.clock.now(), self._exchange_tz)

    def is_stale(self, symbol: str) -> bool:
        state = self.symbols.get(symbol)
        return self.risk.is_stale(state.last_bar.time if state and state.last_bar else None,
                                  self.clock.now())

    def uptime(self) -> float:
        return time.monotonic() - self.started_wall


def _order_from_broker(found: BrokerOrder, now: datetime) -> Order:
    known_type = found.order_type in OrderType._value2member_map_
    return Order(
        order_ref=found.order_ref, symbol=found.symbol, side=found.side,
        quantity=found.quantity,
        order_type=OrderType(found.order_type) if known_type else OrderType.MARKET,
        limit_price=found.limit_price, stop_price=found.stop_price,
        reason="adopted from the broker", status=found.status, filled=found.filled,
        ib_order_id=found.ib_order_id, perm_id=found.perm_id, created_at=now,
    )


def _state_statements(state: EngineState, reason: str, by: str) -> list[Statement]:
    return [
        state_stmt("engine_state", state.value),
        state_stmt("pause_reason", reason),
        event_stmt("info", "state", f"{state.value} by {by}: {reason}"),
    ]


def _round_tick(price: float, tick: float) -> float:
    return round(round(price / tick) * tick, 10)

