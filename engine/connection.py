"""The connection supervisor: the link's state, what each broker error means, and restores.

It owns the link's state (`Link`): connecting, connected, degraded (the socket is up but IB's
servers are away: 1100/2110) or disconnected, and since when IB's servers have been up. Nothing
trades until a connect's set-up (reconciliation and warm-up) is done; CONNECTED comes last, and
only if IB did not report its servers gone meanwhile. Each IB error is journaled and routed by
its class (engine/ib_errors.py): alerted, or acted on (degraded, restored, resync).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from engine.clock import BrokerClock
from engine.domain import ConnectionState
from engine.events import BrokerErrorEvent, ConnectionEvent, Level
from engine.ib_errors import ErrorAction, classify
from engine.market_data import MarketData
from engine.orders import OrderManager
from engine.ports import BrokerPort
from engine.reconciliation import Reconciler, Servers
from engine.recorder import Recorder
from engine.tasks import TaskOwner

log = logging.getLogger(__name__)

_WARNINGS = frozenset({
    ErrorAction.WARNING, ErrorAction.DATA_STALE, ErrorAction.RESTORED,
    ErrorAction.RESTORED_DATA_LOST, ErrorAction.ORDER_CANCELLED,
})


@dataclass(slots=True)
class Link:
    """The connection to the gateway, and IB's servers behind it."""

    state: ConnectionState = ConnectionState.DISCONNECTED
    account: str = ""
    connected_since: datetime | None = None
    disconnected_at: float | None = None  # monotonic
    disconnects: int = 0
    # IB's own servers, as the gateway reports them (1100/2110 lost, 1101/1102 back); a new
    # connection starts from "up" and the gateway says 2110 at once if they are away.
    ib_servers_lost: bool = False
    servers_up_since: float | None = None  # monotonic; None while lost or not set up
    setting_up: bool = False

    @property
    def servers(self) -> Servers:
        return Servers(self.ib_servers_lost, self.servers_up_since)


class ConnectionSupervisor:
    def __init__(
        self,
        broker: BrokerPort,
        orders: OrderManager,
        market: MarketData,
        reconciler: Reconciler,
        recorder: Recorder,
        clock: BrokerClock,
        tasks: TaskOwner,
        link: Link,
        set_up: Callable[[bool], Awaitable[None]],
        away_alert_seconds: float = 15 * 60.0,
    ) -> None:
        self._broker = broker
        self._orders = orders
        self._market = market
        self._reconciler = reconciler
        self._recorder = recorder
        self._clock = clock
        self._tasks = tasks
        self._set_up = set_up  # (reconnect) → after a connect: reconcile, warm up, subscribe
        self.link = link  # this class is its only writer
        self.stopping = False
        self._away_alert_seconds = away_alert_seconds  # broker time
        self._still_away: asyncio.TimerHandle | None = None

    # --- connect and drop ----------------------------------------------------------------

    async def on_connected(self, account: str, reconnect: bool) -> None:
        link = self.link
        downtime = (time.monotonic() - link.disconnected_at
                    if link.disconnected_at is not None else None)
        link.account = account
        if self._still_away is not None:
            self._still_away.cancel()
            self._still_away = None
        if link.state is not ConnectionState.DEGRADED:  # 2110 may have come already
            link.state = ConnectionState.CONNECTING
        link.connected_since = datetime.now(UTC)
        link.setting_up = True
        try:
            await self._set_up(reconnect)
        finally:
            link.setting_up = False
        if not self._broker.is_connected:
            return  # dropped during the set-up: the next connection sets up again
        if link.ib_servers_lost:
            link.state = ConnectionState.DEGRADED
        else:
            self._servers_up()
        event = None
        if reconnect and link.state is ConnectionState.CONNECTED:
            event = ConnectionEvent(ConnectionState.CONNECTED, self._clock.now(), downtime,
                                    f"account {account}")
        await self._recorder.record_durable(
            Level.INFO, "connection",
            f"connected to {self._broker.host}:{self._broker.port}",
            {"account": account, "reconnect": reconnect, "downtime": downtime}, event=event,
        )

    def _servers_up(self) -> None:
        self.link.state = ConnectionState.CONNECTED
        self.link.servers_up_since = time.monotonic()

    def on_disconnected(self, reason: str) -> None:
        link = self.link
        if link.state is ConnectionState.DISCONNECTED or self.stopping:
            return
        link.state = ConnectionState.DISCONNECTED
        # The next connection hears from the gateway (2110) whether IB's servers are away.
        link.ib_servers_lost = False
        link.servers_up_since = None
        link.disconnects += 1
        link.disconnected_at = time.monotonic()
        self._recorder.record(
            Level.WARNING, "connection", reason,
            event=ConnectionEvent(ConnectionState.DISCONNECTED, self._clock.now(),
                                  detail=reason),
        )
        self._market.reset_builders()
        self._orders.abandon_unsent("the connection was lost before it was sent")
        self._orders.lost_in_flight()
        # Told once now, once more if it lasts, once when back: never at every retry.
        self._still_away = asyncio.get_running_loop().call_later(
            self._clock.wall_seconds(self._away_alert_seconds), self._tell_still_away
        )

    def _tell_still_away(self) -> None:
        self._still_away = None
        link = self.link
        if self.stopping or link.state in (ConnectionState.CONNECTED, ConnectionState.DEGRADED):
            return
        minutes = self._away_alert_seconds / 60
        message = (f"the gateway has been away for {minutes:g} minutes; still retrying (IB's "
                   "daily restart, or the weekly login?)")
        self._recorder.record(
            Level.ERROR, "connection", message,
            event=ConnectionEvent(ConnectionState.DISCONNECTED, self._clock.now(),
                                  detail=message),
        )

    def on_connect_failed(self, error: str, retry_in: float) -> None:
        self.link.state = ConnectionState.CONNECTING
        log.warning("cannot connect to %s:%s (%s); retrying in %.1fs",
                    self._broker.host, self._broker.port, error, retry_in)

    def on_client_id_in_use(self, client_id: int, give_up_in: float) -> None:
        message = (f"client id {client_id} is in use at the gateway (a second tradebot, or IB "
                   f"still holding the last session); retrying for {give_up_in:.0f}s, then "
                   "stopping: check IB_CLIENT_ID")
        self._recorder.record(
            Level.ERROR, "connection", message, {"code": 326},
            event=BrokerErrorEvent(326, message, classify(326).meaning, Level.ERROR,
                                   self._clock.now()),
        )

    # --- IB's errors ----------------------------------------------------------------------

    def on_error(self, code: int, message: str, req_id: int, order_ref: str | None) -> None:
        info = classify(code)
        action = info.action
        if action is ErrorAction.INFO:
            return
        level = Level.WARNING if action in _WARNINGS else Level.ERROR
        details = {"code": code, "req_id": req_id, "order_ref": order_ref}
        self._recorder.record(level, "ib_error", f"{code}: {message}", details)
        if action is ErrorAction.ORDER_CANCELLED or (
            action is ErrorAction.ORDER_REJECTED and order_ref
        ):
            return  # the order's own status update carries it to the front-ends
        if action is ErrorAction.DEGRADED:
            self._servers_lost(message)
        elif action in (ErrorAction.RESTORED, ErrorAction.RESTORED_DATA_LOST):
            self._servers_back(action is ErrorAction.RESTORED_DATA_LOST, message)
        else:
            if action is ErrorAction.RESYNC:
                self._tasks.spawn(self._resync(code), "resync")
            self._recorder.publish(BrokerErrorEvent(code, message, info.meaning, level,
                                                    self._clock.now(), req_id))

    async def _resync(self, code: int) -> None:
        try:
            await self._reconciler.reconcile()
        except (ConnectionError, TimeoutError) as exc:
            # The connection dropped (or the bot is stopping): the next connect reconciles.
            log.warning("re-sync after IB error %s skipped (%s); the next connection "
                         "reconciles", code, exc)

    def _servers_lost(self, message: str) -> None:
        link = self.link
        link.ib_servers_lost = True
        link.servers_up_since = None
        link.state = ConnectionState.DEGRADED
        self._orders.notify_changed()  # orders in flight now have an unknown outcome
        self._orders.abandon_unsent("IB lost its servers before it was sent",
                                    keep_kill_switch=True)
        self._recorder.publish(ConnectionEvent(ConnectionState.DEGRADED, self._clock.now(),
                                               detail=message))

    def _servers_back(self, data_lost: bool, message: str) -> None:
        self.link.ib_servers_lost = False
        # Still DEGRADED until reconciliation says what happened while IB was away
        # (and still CONNECTING if the connect's own set-up is running).
        if self.link.state is not ConnectionState.CONNECTING:
            self.link.state = ConnectionState.DEGRADED
        self._tasks.spawn(self._after_restore(data_lost, message), "restore")

    async def _after_restore(self, data_lost: bool, message: str) -> None:
        try:
            await self._reconciler.reconcile()
        except ConnectionError:
            return  # the connection dropped meanwhile: the next one sets up from scratch
        except Exception as exc:
            # Whatever it was, a fresh connection runs the whole set-up again.
            self._recorder.failure("reconciliation after IB came back", exc)
            self._broker.reconnect()
            return
        if data_lost:
            self._market.resubscribe_all()
        link = self.link
        if (link.state is ConnectionState.DEGRADED and not link.setting_up
                and not link.ib_servers_lost):
            self._servers_up()
            self._recorder.publish(ConnectionEvent(ConnectionState.CONNECTED,
                                                   self._clock.now(), detail=message))
