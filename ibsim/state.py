"""ServerState: everything the simulated server knows, in one place — the listed contracts, the
market, the clock, the accounts, the broker's order book and its gate, what is broken, the
connected clients and the observation hooks. Handlers, the streamer, the fan-outs and the fault
injector work on it; none of them knows the gateway."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

from .account import Account
from .broker import Broker
from .bulletins import BulletinBoard
from .clients import Clients
from .clock import SimClock
from .contracts import ContractSpec, Universe
from .fault_state import FaultState
from .hooks import Hooks
from .market import Market
from .news import NewsDesk
from .order_gate import OrderGate
from .rhythm import GATEWAY_TZ


@dataclass(eq=False, slots=True)
class ServerState:
    universe: Universe
    market: Market
    clock: SimClock
    accounts: dict[str, Account]  # by name, in the order the gateway was given them
    broker: Broker
    order_gate: OrderGate
    faults: FaultState
    clients: Clients
    hooks: Hooks
    time_zone: str = GATEWAY_TZ  # the gateway's: where its trading day starts
    bulletins: BulletinBoard = field(default_factory=BulletinBoard)
    news: NewsDesk = field(default_factory=NewsDesk)

    def day_start(self) -> float:
        """Midnight of the gateway's current day (simulated epoch seconds). IB lists the
        executions and the completed orders of the current day only."""
        zone = ZoneInfo(self.time_zone)
        today = dt.datetime.fromtimestamp(self.clock.now(), zone).date()
        return dt.datetime.combine(today, dt.time(), tzinfo=zone).timestamp()

    @property
    def account_names(self) -> list[str]:
        return list(self.accounts)

    def spec(self, symbol: str) -> ContractSpec:
        spec = self.universe.by_symbol(symbol.upper())
        if spec is None:
            raise KeyError(f"{symbol} is not in the universe")
        return spec
