"""SimGateway: the simulated IB Gateway process — TCP server, sessions, market driver, broker,
accounts, faults, hooks and persistence wired together."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import time
from collections import deque
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from . import messages as msg
from . import persistence
from .account import Account, Position
from .broker import Broker
from .clock import SimClock, default_start
from .contracts import DEFAULT_SYMBOLS, ContractSpec, Universe, build_universe
from .faults import FaultState
from .handlers import HANDLERS
from .hooks import ClientEvent, FillRecord, Hooks
from .market import Market
from .orders import Execution, OrderTicket, SimOrder
from .pricepath import ReplayPath
from .session import ClientSession
from .sessions import Session, hours_string, next_session
from .streaming import MarketStreamer

log = logging.getLogger("ibsim")

_ACCOUNT_PUSH_DELAY = 0.02  # wall seconds: coalesce account/portfolio pushes after fills
_SAVE_DELAY = 0.25  # wall seconds: coalesce state-file writes


def _to_epoch(start: dt.datetime | float | str | None) -> float | None:
    if start is None:
        return None
    if isinstance(start, int | float):
        return float(start)
    if isinstance(start, str):
        start = dt.datetime.fromisoformat(start)
    if start.tzinfo is None:
        start = start.replace(tzinfo=dt.UTC)
    return start.timestamp()


class SimGateway:
    """A simulated IB Gateway speaking the TWS API on a loopback port.

    Use as ``async with SimGateway(seed=1, speed=60) as gw: ...`` and connect ib_async to
    ``127.0.0.1:gw.port``. ``speed`` is simulated seconds per wall second; 0 freezes the
    clock so tests can drive it with ``await gw.advance(seconds)``.
    """

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        seed: int = 1,
        speed: float = 60.0,
        start: dt.datetime | float | str | None = None,
        symbols: Sequence[str] | None = None,
        contracts: Sequence[ContractSpec] | None = None,
        data_dir: str | Path | None = None,
        account: str | Sequence[str] = "DU1234567",
        cash: float = 1_000_000.0,
        state_file: str | Path | None = None,
        control_port: int | None = None,
        max_server_version: int = 178,
        account_update_interval: float = 180.0,
        account_value_throttle: float = 0.25,
    ) -> None:
        self.host = host
        self._requested_port = port
        self._control_requested = control_port
        self.seed = seed
        self.max_server_version = max_server_version
        self.account_update_interval = account_update_interval
        self.account_value_throttle = account_value_throttle
        self._last_values_push = float("-inf")
        self.state_file = Path(state_file) if state_file else None
        self.account_names = [account] if isinstance(account, str) else list(account)
        if not self.account_names:
            raise ValueError("at least one account is required")

        state = persistence.load(self.state_file) if self.state_file else None
        start_time = _to_epoch(start) or default_start()
        today = dt.datetime.fromtimestamp(start_time, ZoneInfo("US/Eastern")).date()
        specs = list(contracts) if contracts else build_universe(symbols or DEFAULT_SYMBOLS, today)
        self.universe = Universe(specs)
        self.market = Market(self.universe, seed, Path(data_dir) if data_dir else None)
        if start is None:
            start_time = self._replay_start(start_time)
        if state is not None:
            start_time = max(start_time, state["clock"]) if start is not None else state["clock"]
        self.clock = SimClock(start_time, speed)
        self.accounts = {name: Account(name, cash) for name in self.account_names}
        self.faults = FaultState()
        self.hooks = Hooks()
        self.broker = Broker(self.universe, self.market, self.clock, self.accounts, self)
        if state is not None:
            persistence.restore(state, self.accounts, self.broker, self.state_file)
        self.streamer = MarketStreamer(self)
        self.sessions: set[ClientSession] = set()
        self._by_client: dict[int, ClientSession] = {}
        self._server: asyncio.Server | None = None
        self._control: Any = None
        self.port = 0
        self.control_port: int | None = None
        self._timers: set[asyncio.TimerHandle] = set()
        self._restore_connectivity: Callable[[], None] | None = None
        self._tasks: set[asyncio.Task] = set()
        self._actions: deque[tuple[float, Callable[[], None]]] = deque()
        self._action_timer: asyncio.TimerHandle | None = None
        self._dirty_accounts: set[str] = set()
        self._dirty_positions: set[tuple[str, int]] = set()
        self._push_handle: asyncio.TimerHandle | None = None
        self._save_handle: asyncio.TimerHandle | None = None
        self._last_periodic = (self.clock.now(), time.monotonic())
        self._offsets: dict[tuple[str, float], float] = {}

    def _replay_start(self, default: float) -> float:
        """With CSV replay and no explicit start, begin one day into the earliest data."""
        firsts = [
            (src.first_time(), src.spec)
            for src in self.market.sources.values()
            if isinstance(src, ReplayPath)
        ]
        if not firsts:
            return default
        first, spec = min(firsts, key=lambda x: x[0])
        return next_session(spec.schedule, first + 86400, False).start

    # --- lifecycle ---------------------------------------------------------------------------

    async def start(self) -> SimGateway:
        await self._listen(self._requested_port)
        self.port = self._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        if self._control_requested is not None:
            from .control import ControlServer

            self._control = ControlServer(self)
            # Loopback only, whatever --host says: it injects faults and moves the clock.
            self.control_port = await self._control.start("127.0.0.1", self._control_requested)
        self.streamer.start()
        log.info(
            "ibsim listening on %s:%d (clock %s, speed %gx, accounts %s)",
            self.host, self.port, self.now.isoformat(), self.clock.speed,
            ",".join(self.account_names),
        )  # fmt: skip
        return self

    async def _listen(self, port: int) -> None:
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            lambda: ClientSession(self), self.host, port, reuse_address=True
        )

    async def close(self) -> None:
        self.streamer.stop()
        for handle in list(self._timers):
            handle.cancel()
        self._timers.clear()
        for task in list(self._tasks):
            task.cancel()
        for handle in (self._action_timer, self._push_handle, self._save_handle):
            if handle is not None:
                handle.cancel()
        if self._control is not None:
            await self._control.close()
        for s in list(self.sessions):
            s.close()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
        self.save_state()

    async def __aenter__(self) -> SimGateway:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # --- read access for tests ---------------------------------------------------------------

    @property
    def now(self) -> dt.datetime:
        """Simulated time (UTC)."""
        return self.clock.now_datetime()

    @property
    def orders(self) -> list[SimOrder]:
        return sorted(self.broker.orders.values(), key=lambda o: o.perm_id)

    @property
    def open_orders(self) -> list[SimOrder]:
        return self.broker.open_orders()

    @property
    def executions(self) -> list[Execution]:
        return list(self.broker.executions)

    @property
    def clients(self) -> list[int]:
        return sorted(self._by_client)

    def account(self, name: str | None = None) -> Account:
        return self.accounts[name or self.account_names[0]]

    def positions(self, account: str | None = None) -> dict[str, float]:
        """Non-zero positions of an account by symbol."""
        out = {}
        for pos in self.account(account).positions.values():
            spec = self.universe.get(pos.con_id)
            if spec is not None and pos.quantity:
                out[spec.symbol] = pos.quantity
        return out

    def spec(self, symbol: str) -> ContractSpec:
        spec = self.universe.by_symbol(symbol.upper())
        if spec is None:
            raise KeyError(f"{symbol} is not in the universe")
        return spec

    def price(self, symbol: str) -> float:
        """Current trade price of a symbol on the simulated market."""
        spec = self.spec(symbol)
        return round(self.market.price_ticks(spec, self.clock.now()) * spec.min_tick, 10)

    # --- clock -------------------------------------------------------------------------------

    async def advance(self, seconds: float) -> None:
        """Move the simulated clock forward; every step in between is streamed and matched."""
        self.clock.advance(seconds)
        await asyncio.sleep(0)

    def set_speed(self, speed: float) -> None:
        self.clock.set_speed(speed)

    # --- sessions ----------------------------------------------------------------------------

    def client_in_use(self, client_id: int) -> bool:
        return client_id in self._by_client

    def session_ready(self, s: ClientSession) -> None:
        assert s.client_id is not None
        self._by_client[s.client_id] = s
        out = [
            msg.managed_accounts(self.account_names),
            msg.next_valid_id(self.broker.next_order_id(s.client_id)),
        ]
        for code, text in (
            (2104, "Market data farm connection is OK:usfarm"),
            (2106, "HMDS data farm connection is OK:ushmds"),
            (2158, "Sec-def data farm connection is OK:secdefnj"),
        ):
            out.append(msg.error(-1, code, text, s.version))
        if self.faults.connectivity_lost:
            # As TWS does: a client connecting while the servers are away is told so.
            out.append(msg.error(
                -1, 2110,
                "Connectivity between Trader Workstation and server is broken. "
                "It will be restored automatically.",
                s.version,
            ))  # fmt: skip
        s.write_many(out)
        log.info("client %d connected from %s (server version %d)", s.client_id, s.peer, s.version)
        self.hooks.client_connected.emit(ClientEvent(time.perf_counter(), s.client_id, s.peer))

    def session_closed(self, s: ClientSession) -> None:
        self.sessions.discard(s)
        if s.client_id is not None and self._by_client.get(s.client_id) is s:
            del self._by_client[s.client_id]
            log.info("client %d disconnected", s.client_id)
            self.hooks.client_disconnected.emit(
                ClientEvent(time.perf_counter(), s.client_id, s.peer)
            )
            self.subscriptions_changed()

    def ready_sessions(self) -> list[ClientSession]:
        return list(self._by_client.values())

    def handle(self, s: ClientSession, req: object) -> None:
        if self._push_handle is not None:
            # Account updates owed from earlier fills go out before any later answer, so a
            # client's round trip (e.g. reqCurrentTime) also waits for them.
            self._push_handle.cancel()
            self._push_accounts()
        HANDLERS[type(req)](self, s, req)

    def subscriptions_changed(self) -> None:
        self.streamer.invalidate()

    def _broadcast(self, fields: list[str] | Callable[[ClientSession], list[str]]) -> None:
        for s in self.ready_sessions():
            s.write(fields(s) if callable(fields) else fields)

    # --- orders ------------------------------------------------------------------------------

    def log_order(self, client_id: int, req: OrderTicket) -> None:
        prices = " ".join(
            f"{name}={value:g}"
            for name, value in (("lmt", req.lmt_price), ("aux", req.aux_price))
            if value is not None
        )
        log.info(
            "client %d placeOrder %d: %s %g %s %s %s tif=%s ref=%r%s",
            client_id, req.order_id, req.action, req.total_quantity,
            req.contract.symbol or req.contract.con_id, req.order_type, prices, req.tif,
            req.order_ref, "" if req.transmit else " (not transmitted)",
        )  # fmt: skip

    def run_order_action(self, action: Callable[[], None]) -> None:
        """Run an order request now, or later when acks are delayed or IB is unreachable."""
        if not self._actions and not self.faults.ack_delay and not self.faults.connectivity_lost:
            action()
            self._mark_dirty()
            return
        self._actions.append((time.monotonic() + self.faults.ack_delay, action))
        self._arm_actions()

    def _arm_actions(self) -> None:
        if self._action_timer is not None or not self._actions:
            return
        if self.faults.connectivity_lost:
            return  # drained when connectivity is restored
        delay = max(0.0, self._actions[0][0] - time.monotonic())
        self._action_timer = asyncio.get_running_loop().call_later(delay, self._drain_actions)

    def _drain_actions(self) -> None:
        self._action_timer = None
        now = time.monotonic()
        while self._actions and self._actions[0][0] <= now and not self.faults.connectivity_lost:
            _, action = self._actions.popleft()
            action()
            self._mark_dirty()
        self._arm_actions()

    def open_order_messages(self, s: ClientSession, orders: list[SimOrder]) -> list[list[str]]:
        out = []
        for order in sorted(orders, key=lambda o: o.perm_id):
            spec = self.universe.get(order.con_id)
            if spec is not None:
                out.append(msg.open_order(order, spec, s.version))
                out.append(msg.order_status(order))
                s.known_orders.add(order.perm_id)
        out.append(msg.open_order_end())
        return out

    # BrokerListener ----------------------------------------------------------------------------

    def order_changed(self, order: SimOrder, open_order: bool) -> None:
        s = self._by_client.get(order.client_id)
        spec = self.universe.get(order.con_id)
        if s is not None and spec is not None:
            out = []
            if open_order or order.perm_id not in s.known_orders:
                out.append(msg.open_order(order, spec, s.version))
                s.known_orders.add(order.perm_id)
            out.append(msg.order_status(order))
            s.write_many(out)
        self._mark_dirty()

    def order_filled(self, order: SimOrder, execution: Execution) -> None:
        s = self._by_client.get(order.client_id)
        spec = self.universe.get(order.con_id)
        if s is not None and spec is not None:
            out = []
            if order.perm_id not in s.known_orders:
                out.append(msg.open_order(order, spec, s.version))
                s.known_orders.add(order.perm_id)
            out += [
                msg.exec_details(-1, execution, spec, s.version),
                msg.order_status(order),
                msg.commission_report(execution),
            ]
            s.write_many(out)
        log.info(
            "fill %s: %s %g %s @ %g (order %d of client %d, %s)",
            execution.exec_id, execution.side, execution.shares, spec.symbol if spec else "?",
            execution.price, order.order_id, order.client_id, order.status,
        )  # fmt: skip
        self.hooks.fill.emit(FillRecord(time.perf_counter(), execution))
        self._dirty_accounts.add(order.account)
        self._dirty_positions.add((order.account, order.con_id))
        self._schedule_push()
        self._mark_dirty()

    def order_error(self, client_id: int, order_id: int, code: int, message: str) -> None:
        s = self._by_client.get(client_id)
        if s is not None:
            s.send_error(order_id, code, message)
        if code not in (202,):
            log.info("client %d order %d: error %d %s", client_id, order_id, code, message)

    # --- accounts ----------------------------------------------------------------------------

    def mark(self, spec: ContractSpec) -> float:
        """Mark price: the last trade, or the last session's close while the market is shut."""
        now = self.clock.now()
        if not self.market.is_open(spec, now):
            sess = self.market.last_session(spec, now)
            now = sess.end - 5
        return self.market.price_ticks(spec, now) * spec.min_tick

    def account_value_rows(self, account: str) -> list[tuple[str, str, str]]:
        values = self.accounts[account].values(self.universe.get, self.mark)
        rows = [("AccountCode", account, ""), ("AccountType", "INDIVIDUAL", ""),
                ("Currency", "USD", "USD")]  # fmt: skip
        rows += [(tag, f"{value:.2f}", "USD") for tag, value in values.tags()]
        rows += [("CashBalance", f"{values.cash:.2f}", "BASE"),
                 ("NetLiquidationByCurrency", f"{values.net_liquidation:.2f}", "BASE")]  # fmt: skip
        return rows

    def account_value_messages(self, account: str) -> list[list[str]]:
        return [
            msg.update_account_value(key, value, cur, account)
            for key, value, cur in self.account_value_rows(account)
        ]

    def portfolio_messages(self, account: str, con_ids: set[int] | None = None):
        out = []
        for pos in self.accounts[account].positions.values():
            spec = self.universe.get(pos.con_id)
            if spec is None or (con_ids is not None and pos.con_id not in con_ids):
                continue
            if not pos.quantity and con_ids is None:
                continue
            price = self.mark(spec)
            value = pos.quantity * price * spec.multiplier_value
            out.append(
                msg.update_portfolio(
                    spec,
                    pos.quantity,
                    round(price, spec.price_digits + 1),
                    value,
                    pos.avg_cost,
                    value - pos.quantity * pos.avg_cost,
                    pos.realized_pnl,
                    account,
                )
            )
        return out

    def account_summary_messages(self, req_id: int, tags: str) -> list[list[str]]:
        wanted = {t.strip() for t in tags.split(",") if t.strip()}
        ledger = any(t.startswith("$LEDGER") for t in wanted)
        out = []
        for account in self.account_names:
            for key, value, cur in self.account_value_rows(account):
                if key in wanted or (ledger and key in ("CashBalance", "NetLiquidationByCurrency")):
                    out.append(msg.account_summary(req_id, account, key, value, cur))
        return out

    def position_rows(self) -> list[tuple[str, ContractSpec, Position]]:
        rows = []
        for account in self.account_names:
            for pos in self.accounts[account].positions.values():
                spec = self.universe.get(pos.con_id)
                if spec is not None and pos.quantity:
                    rows.append((account, spec, pos))
        return rows

    def pnl_message(self, req_id: int, account: str) -> list[str]:
        acct = self.accounts.get(account) or self.account()
        values = acct.values(self.universe.get, self.mark)
        return msg.pnl(req_id, values.unrealized_pnl + values.realized_pnl, values.unrealized_pnl,
                       values.realized_pnl)  # fmt: skip

    def pnl_single_message(self, req_id: int, account: str, con_id: int) -> list[str]:
        acct = self.accounts.get(account) or self.account()
        pos = acct.positions.get(con_id)
        spec = self.universe.get(con_id)
        if pos is None or spec is None:
            return msg.pnl_single(req_id, 0, 0, 0, 0, 0)
        value = pos.quantity * self.mark(spec) * spec.multiplier_value
        unrealized = value - pos.quantity * pos.avg_cost
        return msg.pnl_single(req_id, pos.quantity, unrealized + pos.realized_pnl, unrealized,
                              pos.realized_pnl, value)  # fmt: skip

    def _schedule_push(self) -> None:
        if self._push_handle is None:
            loop = asyncio.get_running_loop()
            self._push_handle = loop.call_later(_ACCOUNT_PUSH_DELAY, self._push_accounts)

    def _push_accounts(self, periodic: bool = False) -> None:
        """Send what IB streams after account changes: portfolio, positions and PnL for the
        changed positions at once; the account values at most every ``account_value_throttle``
        wall seconds (IB itself refreshes them only every few minutes)."""
        self._push_handle = None
        wall = time.monotonic()
        values_due = periodic or (
            bool(self._dirty_accounts)
            and wall - self._last_values_push >= self.account_value_throttle
        )
        accounts: set[str] = set()
        if values_due:
            accounts = set(self.account_names) if periodic else set(self._dirty_accounts)
            self._dirty_accounts.clear()
            self._last_values_push = wall
        positions = self._dirty_positions
        self._dirty_positions = set()
        now = self.clock.now()
        for s in self.ready_sessions():
            out: list[list[str]] = []
            acct = s.subs.account_updates
            if acct is not None:
                if acct in accounts:
                    out += self.account_value_messages(acct)
                changed = {c for a, c in positions if a == acct}
                if periodic or changed:
                    out += self.portfolio_messages(acct, None if periodic else changed)
                if out:
                    out.append(msg.update_account_time(now))
            for req_id, name in s.subs.account_multi.items():
                for account in self.account_names if name in ("", "All") else [name]:
                    if account in accounts:
                        out += [
                            msg.account_update_multi(req_id, account, "", k, v, c)
                            for k, v, c in self.account_value_rows(account)
                        ]
            if s.subs.positions:
                for account, con_id in sorted(positions):
                    spec = self.universe.get(con_id)
                    pos = self.accounts[account].positions.get(con_id)
                    if spec is not None and pos is not None:
                        out.append(msg.position(account, spec, pos.quantity, pos.avg_cost))
            if positions or periodic:
                for req_id, account in s.subs.pnl.items():
                    out.append(self.pnl_message(req_id, account))
                for req_id, (account, con_id) in s.subs.pnl_single.items():
                    out.append(self.pnl_single_message(req_id, account, con_id))
            s.write_many(out)
        if self._dirty_accounts:
            delay = self.account_value_throttle - (wall - self._last_values_push)
            self._push_handle = asyncio.get_running_loop().call_later(
                max(delay, _ACCOUNT_PUSH_DELAY), self._push_accounts
            )

    def step_done(self, t: float) -> None:
        """Called by the market driver after each step: periodic account refresh."""
        last_sim, last_wall = self._last_periodic
        if t - last_sim >= self.account_update_interval and time.monotonic() - last_wall >= 1.0:
            self._last_periodic = (t, time.monotonic())
            self._push_accounts(periodic=True)

    # --- contracts -----------------------------------------------------------------------------

    def hours(self, spec: ContractSpec, t: float) -> tuple[str, str]:
        return hours_string(spec.schedule, t, False), hours_string(spec.schedule, t, True)

    def session_offset(self, spec: ContractSpec, session: Session) -> float:
        key = (spec.time_zone, session.start)
        offset = self._offsets.get(key)
        if offset is None:
            local = dt.datetime.fromtimestamp(session.start, ZoneInfo(spec.time_zone))
            offset = local.utcoffset().total_seconds()  # type: ignore[union-attr]
            self._offsets[key] = offset
        return offset

    # --- persistence ---------------------------------------------------------------------------

    def _mark_dirty(self) -> None:
        if self.state_file is None or self._save_handle is not None:
            return
        loop = asyncio.get_running_loop()
        self._save_handle = loop.call_later(_SAVE_DELAY, self.save_state)

    def save_state(self) -> None:
        """Write the state file now (also done shortly after every order change and on close)."""
        self._save_handle = None
        if self.state_file is None:
            return
        persistence.save(
            self.state_file, persistence.snapshot(self.clock.now(), self.accounts, self.broker)
        )

    # --- faults --------------------------------------------------------------------------------

    def _later(self, seconds: float, callback: Callable[[], None]) -> None:
        loop = asyncio.get_running_loop()
        handle: asyncio.TimerHandle

        def run() -> None:
            self._timers.discard(handle)
            callback()

        handle = loop.call_later(max(0.0, seconds), run)
        self._timers.add(handle)

    def drop_connections(self) -> None:
        """Abort every client socket (as when the gateway process dies)."""
        log.warning("fault: dropping %d connection(s)", len(self.sessions))
        for s in list(self.sessions):
            s.abort()

    def refuse_connections(self, seconds: float) -> None:
        """Stop listening for ``seconds``: connects fail with ECONNREFUSED meanwhile."""
        log.warning("fault: refusing connections for %gs", seconds)
        self.faults.refusing = True
        if self._server is not None:
            self._server.close()
            self._server = None

        def reopen() -> None:
            task = asyncio.get_running_loop().create_task(self._reopen())
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

        self._later(seconds, reopen)

    async def _reopen(self) -> None:
        await self._listen(self.port)
        self.faults.refusing = False
        log.warning("fault over: accepting connections again")

    def connectivity_lost(self, seconds: float, data_maintained: bool = True) -> None:
        """1100 now; 1102 (data maintained) or 1101 (data lost) after ``seconds``. In between
        no market data flows and order requests are held."""
        log.warning("fault: IB connectivity lost for %gs", seconds)
        self.faults.connectivity_lost = True
        self._broadcast(
            lambda s: msg.error(
                -1, 1100, "Connectivity between IB and Trader Workstation has been lost.",
                s.version,
            )
        )  # fmt: skip

        def restore() -> None:
            self.faults.connectivity_lost = False
            if data_maintained:
                code, text = 1102, "data maintained"
            else:
                code, text = 1101, "data lost"
                for s in self.ready_sessions():
                    s.subs.clear_market_data()
                self.subscriptions_changed()
            self._broadcast(
                lambda s: msg.error(
                    -1, code,
                    f"Connectivity between IB and Trader Workstation has been restored - {text}.",
                    s.version,
                )
            )  # fmt: skip
            self._arm_actions()

        self._restore_connectivity = restore
        self._later(seconds, self.restore_connectivity)

    def restore_connectivity(self) -> None:
        """End a `connectivity_lost` fault now (1102 or 1101; held order requests go on)."""
        restore, self._restore_connectivity = self._restore_connectivity, None
        if restore is not None:
            restore()

    def data_farm_flap(self, seconds: float = 1.0, farm: str = "usfarm") -> None:
        """2103 (farm broken, market data pauses) then 2104 after ``seconds``."""
        self.faults.farm_broken = True
        self._broadcast(
            lambda s: msg.error(
                -1, 2103, f"Market data farm connection is broken:{farm}", s.version
            )
        )

        def restore() -> None:
            self.faults.farm_broken = False
            self._broadcast(
                lambda s: msg.error(
                    -1, 2104, f"Market data farm connection is OK:{farm}", s.version
                )
            )

        self._later(seconds, restore)

    def reject_next_order(self, reason: str = "Simulated rejection by ibsim") -> None:
        self.broker.reject_next = reason

    def pacing_violation_next(self) -> None:
        self.faults.pacing_next = True

    def delay_order_acks(self, ms: float) -> None:
        """Hold every placeOrder/cancelOrder for ``ms`` milliseconds (0 turns it off)."""
        self.faults.ack_delay = max(0.0, ms) / 1000.0

    def stall_market_data(self, symbol: str, seconds: float | None = None) -> None:
        """Silently stop all market data for a symbol (no error: a "soft disconnect")."""
        self.faults.stalled.add(self.spec(symbol).con_id)
        if seconds is not None:
            self._later(seconds, lambda: self.resume_market_data(symbol))

    def resume_market_data(self, symbol: str) -> None:
        self.faults.stalled.discard(self.spec(symbol).con_id)

    def competing_session(self, seconds: float = 1.0) -> None:
        """10197 on every market data request; data stops for ``seconds``."""
        self.faults.competing_session = True
        text = "No market data during competing live session"
        for s in self.ready_sessions():
            for req_id in [*s.subs.mkt_data, *s.subs.realtime, *s.subs.keep_up]:
                s.send_error(req_id, 10197, text)

        def restore() -> None:
            self.faults.competing_session = False

        self._later(seconds, restore)


__all__ = ["SimGateway"]
