"""The fault injector: breaks the simulated gateway the ways IB Gateway breaks — dropped and
refused connections, lost connectivity to IB's servers, data-farm flaps, rejected orders, pacing
violations, delayed order acks, stalled market data, a competing live session — and keeps its
rhythm: the daily restart and the weekly login (clients dropped, the API port closed for
simulated minutes or hours, at a local time each day or week, or on demand). Each fault sets
the FaultState the rest of the server reads, tells the clients what TWS would, and ends itself
after its duration (wall seconds; the gateway's own downtimes in simulated time)."""

from __future__ import annotations

import asyncio
import datetime as dt
import heapq
import itertools
import logging
from collections.abc import Callable
from typing import Protocol

from . import messages as msg
from .rhythm import Downtime
from .state import ServerState

log = logging.getLogger("ibsim")


class Listening(Protocol):
    """The server's listening socket, which `refuse_connections` and the gateway's downtimes
    close for a while."""

    def stop_listening(self) -> None: ...

    async def listen_again(self) -> None: ...

    @property
    def listening(self) -> bool: ...


class FaultInjector:
    def __init__(self, state: ServerState, server: Listening) -> None:
        self.state = state
        self._server = server
        self._timers: set[asyncio.TimerHandle] = set()
        self._tasks: set[asyncio.Task] = set()
        self._restore_connectivity: Callable[[], None] | None = None
        # (simulated time, tie-break, callback): what happens at a time of the simulated clock.
        self._at_times: list[tuple[float, int, Callable[[], None]]] = []
        self._order = itertools.count()
        self._at_handle: asyncio.TimerHandle | None = None
        self._running_due = False
        self._opened = asyncio.Event()  # set each time the port opens again
        state.clock.on_change(self._run_due)

    def close(self) -> None:
        """Cancel every pending end of a fault (the gateway is closing)."""
        for handle in list(self._timers):
            handle.cancel()
        self._timers.clear()
        for task in list(self._tasks):
            task.cancel()
        self._at_times.clear()
        if self._at_handle is not None:
            self._at_handle.cancel()
            self._at_handle = None

    # --- connections ---------------------------------------------------------------------------

    def drop_connections(self) -> None:
        """Abort every client socket (as when the gateway process dies)."""
        sockets = self.state.clients.sockets()
        log.warning("fault: dropping %d connection(s)", len(sockets))
        for s in sockets:
            s.abort()

    def refuse_connections(self, seconds: float) -> None:
        """Stop listening for ``seconds``: connects fail with ECONNREFUSED meanwhile."""
        log.warning("fault: refusing connections for %gs", seconds)
        self.state.faults.refusing = True
        self._server.stop_listening()

        def reopen() -> None:
            self.state.faults.refusing = False
            self._port_maybe_open()

        self._later(seconds, reopen)

    # --- the gateway's rhythm: daily restart, weekly login -------------------------------------

    def restart_gateway(self, minutes: float = 3.0) -> None:
        """The daily restart, now: every client dropped, the API port closed for ``minutes``
        of simulated time."""
        self._gateway_down("restart", self.state.clock.now() + max(0.0, minutes) * 60)

    def outage(self, hours: float = 2.0) -> None:
        """The weekly login, now: clients dropped, the port closed for ``hours`` (simulated)
        until someone confirms the login on the phone."""
        self._gateway_down("outage", self.state.clock.now() + max(0.0, hours) * 3600)

    def end_outage(self) -> None:
        """Bring the gateway back now (a restart or an outage ends early)."""
        if self.state.faults.down_until is not None:
            self.state.faults.down_until = None
            self._port_maybe_open()

    @property
    def port_open(self) -> bool:
        """Connection attempts are accepted (no fault closes the port, and it is listening)."""
        return self._server.listening and not self.state.faults.port_closed

    async def port_settled(self) -> None:
        """Wait until a reopening of the port that has begun is done."""
        while self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)

    async def wait_port_open(self) -> None:
        """Wait until the port is open (at once if it is)."""
        while not self.port_open:
            self._opened.clear()
            await self._opened.wait()

    def schedule(self, downtime: Downtime) -> None:
        """Go down at every start of ``downtime`` from now on, each time for its length."""

        def arm(after: float) -> None:
            start = downtime.next_start(after)

            def begin() -> None:
                self._gateway_down(downtime.what, start + downtime.seconds)
                arm(start + 1)

            self._at(start, begin)

        arm(self.state.clock.now())

    def _gateway_down(self, what: str, until: float) -> None:
        faults = self.state.faults
        faults.down_until = max(until, faults.down_until or until)
        log.warning(
            "gateway %s: clients dropped, API port closed until %s", what,
            dt.datetime.fromtimestamp(faults.down_until, dt.UTC).isoformat(),
        )  # fmt: skip
        self._server.stop_listening()
        self.drop_connections()
        self._at(faults.down_until, self._gateway_back)

    def _gateway_back(self) -> None:
        faults = self.state.faults
        if faults.down_until is not None and faults.down_until <= self.state.clock.now():
            faults.down_until = None
            self._port_maybe_open()

    def _port_maybe_open(self) -> None:
        if self.state.faults.port_closed:
            return
        task = asyncio.get_running_loop().create_task(self._reopen())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _reopen(self) -> None:
        await self._server.listen_again()
        if self.state.faults.port_closed:  # closed again while it was opening
            self._server.stop_listening()
            return
        self._opened.set()
        log.warning("fault over: accepting connections again")

    # --- IB's servers --------------------------------------------------------------------------

    def connectivity_lost(self, seconds: float, data_maintained: bool = True) -> None:
        """1100 now; 1102 (data maintained) or 1101 (data lost) after ``seconds``. In between
        no market data flows and order requests are held."""
        log.warning("fault: IB connectivity lost for %gs", seconds)
        state = self.state
        state.faults.connectivity_lost = True
        state.clients.broadcast(
            lambda s: msg.error(
                -1, 1100, "Connectivity between IB and Trader Workstation has been lost.",
                s.version,
            )
        )  # fmt: skip

        def restore() -> None:
            state.faults.connectivity_lost = False
            if data_maintained:
                code, text = 1102, "data maintained"
            else:
                code, text = 1101, "data lost"
                for s in state.clients.sessions():
                    s.subs.clear_market_data()
                state.clients.subscriptions_changed()
            state.clients.broadcast(
                lambda s: msg.error(
                    -1, code,
                    f"Connectivity between IB and Trader Workstation has been restored - {text}.",
                    s.version,
                )
            )  # fmt: skip
            state.order_gate.release()

        self._restore_connectivity = restore
        self._later(seconds, self.restore_connectivity)

    def restore_connectivity(self) -> None:
        """End a `connectivity_lost` fault now (1102 or 1101; held order requests go on)."""
        restore, self._restore_connectivity = self._restore_connectivity, None
        if restore is not None:
            restore()

    # --- market data ---------------------------------------------------------------------------

    def data_farm_flap(self, seconds: float = 1.0, farm: str = "usfarm") -> None:
        """2103 (farm broken, market data pauses) then 2104 after ``seconds``."""
        state = self.state
        state.faults.farm_broken = True
        state.clients.broadcast(
            lambda s: msg.error(
                -1, 2103, f"Market data farm connection is broken:{farm}", s.version
            )
        )

        def restore() -> None:
            state.faults.farm_broken = False
            state.clients.broadcast(
                lambda s: msg.error(
                    -1, 2104, f"Market data farm connection is OK:{farm}", s.version
                )
            )

        self._later(seconds, restore)

    def pacing_violation_next(self) -> None:
        """162 on the next historical data request."""
        self.state.faults.pacing_next = True

    def stall_market_data(self, symbol: str, seconds: float | None = None) -> None:
        """Silently stop all market data for a symbol (no error: a "soft disconnect")."""
        self.state.faults.stalled.add(self.state.spec(symbol).con_id)
        if seconds is not None:
            self._later(seconds, lambda: self.resume_market_data(symbol))

    def resume_market_data(self, symbol: str) -> None:
        self.state.faults.stalled.discard(self.state.spec(symbol).con_id)

    def competing_session(self, seconds: float = 1.0) -> None:
        """10197 on every market data request; data stops for ``seconds``."""
        state = self.state
        state.faults.competing_session = True
        text = "No market data during competing live session"
        for s in state.clients.sessions():
            for req_id in [*s.subs.mkt_data, *s.subs.realtime, *s.subs.keep_up]:
                s.send_error(req_id, 10197, text)

        def restore() -> None:
            state.faults.competing_session = False

        self._later(seconds, restore)

    # --- orders --------------------------------------------------------------------------------

    def reject_next_order(self, reason: str = "Simulated rejection by ibsim") -> None:
        """201 with ``reason`` for the next placeOrder."""
        self.state.broker.reject_next = reason

    def delay_order_acks(self, ms: float) -> None:
        """Hold every placeOrder/cancelOrder for ``ms`` milliseconds (0 turns it off)."""
        self.state.faults.ack_delay = max(0.0, ms) / 1000.0

    # --- timers ----------------------------------------------------------------------------------

    def _at(self, when: float, callback: Callable[[], None]) -> None:
        """Run ``callback`` when the simulated clock reaches ``when`` (at once if it has; a
        jump of the clock runs everything it passes, in time order)."""
        heapq.heappush(self._at_times, (when, next(self._order), callback))
        if not self._running_due:
            self._run_due()

    def _run_due(self) -> None:
        if self._at_handle is not None:
            self._at_handle.cancel()
            self._at_handle = None
        clock = self.state.clock
        self._running_due = True
        try:
            while self._at_times and self._at_times[0][0] <= clock.now():
                heapq.heappop(self._at_times)[2]()
        finally:
            self._running_due = False
        if self._at_times:
            delay = clock.wall_delay(self._at_times[0][0])
            if delay is not None:  # None: a frozen clock; a jump calls this again
                self._at_handle = asyncio.get_running_loop().call_later(delay, self._run_due)

    def _later(self, seconds: float, callback: Callable[[], None]) -> None:
        loop = asyncio.get_running_loop()
        handle: asyncio.TimerHandle

        def run() -> None:
            self._timers.discard(handle)
            callback()

        handle = loop.call_later(max(0.0, seconds), run)
        self._timers.add(handle)
