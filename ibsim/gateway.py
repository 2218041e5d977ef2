"""SimGateway: the simulated IB Gateway process — the TCP server, the client sessions' life
cycle, and the wiring of the server state, the market driver, the fan-outs, persistence, the
fault injector and the control channel."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import time
from collections.abc import Sequence
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from . import persistence
from .account import Account
from .account_fanout import AccountFanout
from .broker import Broker
from .bulletin_fanout import BulletinFanout
from .bulletins import REGULAR, Bulletin, BulletinBoard, ScheduledBulletin, parse_scheduled
from .clients import Clients
from .clock import SimClock, default_start
from .contracts import DEFAULT_SYMBOLS, ContractSpec, Universe, build_universe
from .control import ControlServer
from .fault_state import FaultState
from .faults import FaultInjector
from .handlers import HANDLERS, greeting
from .hooks import ClientEvent, Hooks
from .market import Market
from .news import NewsDesk
from .option_listing import OptionListing
from .order_fanout import OrderFanout
from .order_gate import OrderGate
from .orders import Execution, SimOrder
from .pricepath import ReplayPath
from .rhythm import GATEWAY_TZ, Downtime, time_of_day, weekly_time
from .scanner_fanout import refresh_scanners
from .session import ClientSession
from .sessions import next_session
from .settlement import Settlement
from .state import ServerState
from .streaming import MarketStreamer

log = logging.getLogger("ibsim")


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


def _replay_start(market: Market, default: float) -> float:
    """With CSV replay and no explicit start, begin one day into the earliest data."""
    firsts = [
        (src.first_time(), src.spec)
        for src in market.sources.values()
        if isinstance(src, ReplayPath)
    ]
    if not firsts:
        return default
    first, spec = min(firsts, key=lambda x: x[0])
    return next_session(spec.schedule, first + 86400, False).start


class SimGateway:
    """A simulated IB Gateway speaking the TWS API on a loopback port.

    Use as ``async with SimGateway(seed=1, speed=60) as gw: ...`` and connect ib_async to
    ``127.0.0.1:gw.port``. ``speed`` is simulated seconds per wall second; 0 freezes the
    clock so tests can drive it with ``await gw.advance(seconds)``. Faults: ``gw.faults``.
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
        daily_restart: str | None = None,
        restart_minutes: float = 3.0,
        weekly_outage: str | None = None,
        outage_hours: float = 2.0,
        gateway_tz: str = GATEWAY_TZ,
        bulletins: Sequence[ScheduledBulletin | tuple[object, str, str]] = (),
        news_providers: Sequence[str] | None = None,
    ) -> None:
        self.host = host
        self._requested_port = port
        self._control_requested = control_port
        self.seed = seed
        self.max_server_version = max_server_version
        self.state_file = Path(state_file) if state_file else None
        account_names = [account] if isinstance(account, str) else list(account)
        if not account_names:
            raise ValueError("at least one account is required")

        saved = persistence.load(self.state_file) if self.state_file else None
        start_time = _to_epoch(start) or default_start()
        today = dt.datetime.fromtimestamp(start_time, ZoneInfo("US/Eastern")).date()
        specs = list(contracts) if contracts else build_universe(symbols or DEFAULT_SYMBOLS, today)
        universe = Universe(specs)
        market = Market(universe, seed, Path(data_dir) if data_dir else None)
        if start is None:
            start_time = _replay_start(market, start_time)
        if saved is not None:
            resume = persistence.resume_time(saved)
            start_time = max(start_time, resume) if start is not None else resume
        self.option_listing = OptionListing(universe, market)
        self.option_listing.run(start_time)  # before the clock starts running
        clock = SimClock(start_time, speed)
        accounts = {name: Account(name, cash) for name in account_names}
        broker = Broker(universe, market, clock, accounts, time_zone=gateway_tz)
        if saved is not None:
            persistence.restore(saved, accounts, broker, self.state_file)

        # The wiring: each piece gets what it works on; the broker's news goes out through the
        # order fan-out, which refreshes accounts and has the state file saved.
        faults = FaultState()
        self.saver = persistence.StateSaver(self.state_file, clock, accounts, broker)
        gate = OrderGate(faults, after=self.saver.mark_dirty)
        self.state = ServerState(
            universe, market, clock, accounts, broker, gate, faults, Clients(), Hooks(),
            gateway_tz, BulletinBoard([_scheduled(b, start_time) for b in bulletins]),
            NewsDesk(seed, news_providers),
        )
        self.account_fanout = AccountFanout(
            self.state, account_update_interval, account_value_throttle
        )
        self.order_fanout = OrderFanout(self.state, self.account_fanout, self.saver)
        broker.listener = self.order_fanout
        self.settlement = Settlement(self.state, self._settled)
        self.streamer = MarketStreamer(self.state, self._step_done)
        self.faults = FaultInjector(self.state, self)
        self.bulletin_fanout = BulletinFanout(self.state)
        self.rhythm = _rhythm(
            daily_restart, restart_minutes, weekly_outage, outage_hours, gateway_tz
        )
        self._server: asyncio.Server | None = None
        self._control: ControlServer | None = None
        self.port = 0
        self.control_port: int | None = None

    # --- lifecycle ---------------------------------------------------------------------------

    async def start(self) -> SimGateway:
        await self._listen(self._requested_port)
        self.port = self._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        if self._control_requested is not None:
            self._control = ControlServer(self)
            # Loopback only, whatever --host says: it injects faults and moves the clock.
            self.control_port = await self._control.start("127.0.0.1", self._control_requested)
        self.saver.start()  # before the market driver: no time goes out past the saved mark
        self.streamer.start()
        self.clock.on_change(self._clock_moved)  # after the streamer: a jump is caught up first
        self._clock_moved()  # options that expired while the simulator was down
        self.bulletin_fanout.start()
        for downtime in self.rhythm:
            self.faults.schedule(downtime)
        log.info(
            "ibsim listening on %s:%d (clock %s, speed %gx, accounts %s)",
            self.host, self.port, self.now.isoformat(), self.clock.speed,
            ",".join(self.account_names),
        )  # fmt: skip
        return self

    async def _listen(self, port: int) -> None:
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            lambda: ClientSession(self, self.max_server_version), self.host, port,
            reuse_address=True,
        )  # fmt: skip

    async def close(self) -> None:
        self.streamer.stop()
        self.bulletin_fanout.close()
        self.faults.close()
        self.state.order_gate.close()
        self.account_fanout.close()
        if self._control is not None:
            await self._control.close()
        self.order_fanout.commit()  # what is held for the disk is saved and goes out first
        for s in self.state.clients.sockets():
            s.close()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
        self.saver.close()

    async def __aenter__(self) -> SimGateway:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # faults.Listening: faults and downtimes close the listening socket for a while.

    def stop_listening(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None

    async def listen_again(self) -> None:
        if self._server is None:
            await self._listen(self.port)

    @property
    def listening(self) -> bool:
        return self._server is not None

    # --- session.SessionListener -------------------------------------------------------------

    def session_opened(self, session: ClientSession) -> bool:
        if self.state.faults.port_closed:
            return False
        self.state.clients.opened(session)
        return True

    def server_time(self) -> float:
        return self.state.clock.now()

    def client_in_use(self, client_id: int) -> bool:
        return self.state.clients.in_use(client_id)

    def session_ready(self, session: ClientSession) -> None:
        assert session.client_id is not None
        self.state.clients.ready(session)
        session.write_many(greeting(self.state, session))
        log.info(
            "client %d connected from %s (server version %d)",
            session.client_id, session.peer, session.version,
        )  # fmt: skip
        self.hooks.client_connected.emit(
            ClientEvent(time.perf_counter(), session.client_id, session.peer)
        )

    def session_closed(self, session: ClientSession) -> None:
        if self.state.clients.closed(session):
            assert session.client_id is not None
            log.info("client %d disconnected", session.client_id)
            self.hooks.client_disconnected.emit(
                ClientEvent(time.perf_counter(), session.client_id, session.peer)
            )

    def request(self, session: ClientSession, req: object) -> None:
        # Account updates owed from earlier fills go out before any later answer.
        self.account_fanout.flush()
        HANDLERS[type(req)](self.state, session, req)

    # --- read access for tests ---------------------------------------------------------------

    @property
    def universe(self) -> Universe:
        return self.state.universe

    @property
    def market(self) -> Market:
        return self.state.market

    @property
    def clock(self) -> SimClock:
        return self.state.clock

    @property
    def accounts(self) -> dict[str, Account]:
        return self.state.accounts

    @property
    def account_names(self) -> list[str]:
        return self.state.account_names

    @property
    def broker(self) -> Broker:
        return self.state.broker

    @property
    def hooks(self) -> Hooks:
        return self.state.hooks

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
        return self.state.clients.ids()

    def account(self, name: str | None = None) -> Account:
        return self.accounts[name or self.account_names[0]]

    def positions(self, account: str | None = None) -> dict[str, float]:
        """Non-zero positions of an account by symbol (options by their OCC local symbol)."""
        out = {}
        for pos in self.account(account).positions.values():
            spec = self.universe.get(pos.con_id)
            if spec is not None and pos.quantity:
                out[spec.local_symbol if spec.sec_type == "OPT" else spec.symbol] = pos.quantity
        return out

    def spec(self, symbol: str) -> ContractSpec:
        return self.state.spec(symbol)

    def price(self, symbol: str) -> float:
        """Current trade price of a symbol on the simulated market."""
        spec = self.spec(symbol)
        return round(self.market.price_ticks(spec, self.clock.now()) * spec.min_tick, 10)

    # --- clock -------------------------------------------------------------------------------

    def _settled(self, account: str, con_id: int) -> None:
        self.account_fanout.position_changed(account, con_id)
        self.saver.mark_dirty()

    def _step_done(self, t: float) -> None:
        self.settlement.run(t)
        self.option_listing.run(t)
        self.account_fanout.step_done(t)
        refresh_scanners(self.state, t)

    def _clock_moved(self) -> None:
        now = self.clock.now()
        self.settlement.run(now)
        self.option_listing.run(now)

    async def advance(self, seconds: float) -> None:
        """Move the simulated clock forward; every step in between is streamed and matched."""
        self.clock.advance(seconds)
        await asyncio.sleep(0)

    def set_speed(self, speed: float) -> None:
        self.clock.set_speed(speed)

    # --- persistence ---------------------------------------------------------------------------

    def save_state(self) -> None:
        """Write the state file now (also done before order news goes out, shortly after other
        changes, every wall second while the clock runs, and on close)."""
        self.saver.save()

    # --- faults, kept here for their many callers: the work is in `self.faults` ----------------

    def bulletin(self, message: str, exchange: str = "", msg_type: int = REGULAR) -> Bulletin:
        """Post a news bulletin now (to every client subscribed with reqNewsBulletins)."""
        return self.bulletin_fanout.publish(message, exchange, msg_type)

    def drop_connections(self) -> None:
        self.faults.drop_connections()

    def refuse_connections(self, seconds: float) -> None:
        self.faults.refuse_connections(seconds)

    def connectivity_lost(self, seconds: float, data_maintained: bool = True) -> None:
        self.faults.connectivity_lost(seconds, data_maintained)

    def restore_connectivity(self) -> None:
        self.faults.restore_connectivity()

    def data_farm_flap(self, seconds: float = 1.0, farm: str = "usfarm") -> None:
        self.faults.data_farm_flap(seconds, farm)

    def reject_next_order(self, reason: str = "Simulated rejection by ibsim") -> None:
        self.faults.reject_next_order(reason)

    def pacing_violation_next(self) -> None:
        self.faults.pacing_violation_next()

    def delay_order_acks(self, ms: float) -> None:
        self.faults.delay_order_acks(ms)

    def stall_market_data(self, symbol: str, seconds: float | None = None) -> None:
        self.faults.stall_market_data(symbol, seconds)

    def resume_market_data(self, symbol: str) -> None:
        self.faults.resume_market_data(symbol)

    def competing_session(self, seconds: float = 1.0) -> None:
        self.faults.competing_session(seconds)

    def restart_gateway(self, minutes: float = 3.0) -> None:
        self.faults.restart_gateway(minutes)

    def outage(self, hours: float = 2.0) -> None:
        self.faults.outage(hours)

    def end_outage(self) -> None:
        self.faults.end_outage()


def _scheduled(
    item: ScheduledBulletin | tuple[object, str, str], start: float
) -> ScheduledBulletin:
    """A scripted bulletin: as given, or ``(at, exchange, message)`` with ``at`` a datetime,
    epoch seconds, an ISO string or ``+SECONDS`` after the start."""
    if isinstance(item, ScheduledBulletin):
        return item
    at, exchange, message = item
    if isinstance(at, str):
        return parse_scheduled(at, exchange, message, start)
    when = _to_epoch(at)  # type: ignore[arg-type]
    if when is None:
        raise ValueError(f"a scripted bulletin needs a time, got {at!r}")
    return ScheduledBulletin(when, message, exchange)


def _rhythm(
    daily_restart: str | None,
    restart_minutes: float,
    weekly_outage: str | None,
    outage_hours: float,
    time_zone: str,
) -> list[Downtime]:
    """The gateway's scheduled downtimes (ValueError on a time that does not parse)."""
    try:
        ZoneInfo(time_zone)  # an unknown zone fails here, not at the first restart
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {time_zone!r}") from None
    out = []
    if daily_restart is not None:
        out.append(Downtime("daily restart", time_of_day(daily_restart), restart_minutes * 60,
                            None, time_zone))  # fmt: skip
    if weekly_outage is not None:
        weekday, at = weekly_time(weekly_outage)
        out.append(Downtime("weekly login", at, outage_hours * 3600, weekday, time_zone))
    return out


__all__ = ["SimGateway"]

