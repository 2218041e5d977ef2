"""Futures configured without an expiry follow the front month, and roll only when flat.

IB has no "front" flag (ib_async's ContFuture is for data only, not orderable): a future asked
for without an expiry lists every month, and the front is chosen here by one rule, the usual
volume roll of the equity-index futures: the nearest month whose last trading day is more than
ROLL_DAYS days away (in the exchange's time zone). When the front changes, the symbol switches
to the new month only if the bot holds nothing in the old one (no position, no order working,
no fill waiting for its position). Otherwise the symbol stays on the old month, for exits and
/flatten only: no entry, and no order at all in the new month, until the old one is closed
(by the strategy's exit, /flatten, or by hand); then it switches. Each roll is journaled and
alerted once: when it is held back, and when it happens.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from datetime import date, timedelta
from zoneinfo import ZoneInfo

from engine.clock import BrokerClock
from engine.config import Settings
from engine.events import FrontMonthEvent, Level
from engine.fills import Fills
from engine.market_data import MarketData
from engine.orders import OrderManager
from engine.portfolio import Portfolio
from engine.ports import BrokerPort, ContractInfo
from engine.recorder import Recorder
from engine.tasks import TaskOwner

log = logging.getLogger(__name__)

ROLL_DAYS = 7


def front(chain: Sequence[ContractInfo], today: date, roll_days: int = ROLL_DAYS
          ) -> ContractInfo | None:
    """The month to trade on `today`: the nearest expiry more than `roll_days` days away."""
    months = [m for m in chain if m.expiry is not None and m.expiry - today > timedelta(roll_days)]
    return min(months, key=lambda m: m.expiry or date.max, default=None)


class FrontMonths:
    def __init__(
        self,
        settings: Settings,
        broker: BrokerPort,
        portfolio: Portfolio,
        orders: OrderManager,
        fills: Fills,
        market: MarketData,
        recorder: Recorder,
        clock: BrokerClock,
        tasks: TaskOwner,
    ) -> None:
        self._symbols = [i.symbol for i in settings.symbols if i.follows_front_month]
        self._broker = broker
        self._portfolio = portfolio
        self._orders = orders
        self._fills = fills
        self._market = market
        self._recorder = recorder
        self._clock = clock
        self._tasks = tasks
        # symbol -> the new front, while the bot still holds the old month
        self.held_back: dict[str, ContractInfo] = {}
        # symbol -> its market data starting over on the new month (done once warmed up)
        self.restarts: dict[str, asyncio.Future[None]] = {}

    def update(self) -> None:
        """Follow each symbol's front: at the first ask, and at every watchdog tick after (the
        date moves the front, and a held-back roll goes ahead once the old month is closed)."""
        for symbol in self._symbols:
            chain = self._broker.chain(symbol)
            if symbol not in self._market.symbols or not chain:
                continue
            current = self._broker.contract(symbol)
            # Every month within the roll window (a short chain): the last one listed.
            new = front(chain, self._today(chain[0])) or max(
                chain, key=lambda m: m.expiry or date.min)
            if current is None:
                self._first(symbol, chain, new)
            elif new.con_id == current.con_id:
                self.held_back.pop(symbol, None)
            elif self._holds(symbol):
                if symbol not in self.held_back or self.held_back[symbol].con_id != new.con_id:
                    self.held_back[symbol] = new
                    self._announce(symbol, current, new, switched=False)
            else:
                self._switch(symbol, current, new)

    def entry_refused(self, symbol: str) -> str | None:
        """Why no entry may be sent for `symbol` now (its roll is held back), or None."""
        new = self.held_back.get(symbol)
        if new is None:
            return None
        current = self._broker.contract(symbol)
        old = current.local_symbol if current else "the old month"
        return f"the front month is now {new.local_symbol}; {old} is held: exits only"

    def _first(self, symbol: str, chain: Sequence[ContractInfo], new: ContractInfo) -> None:
        """The first ask: the front, unless the broker shows a position in an earlier month
        (the bot stopped before rolling): that month is followed until it is closed."""
        positions = {p.symbol: p.quantity for p in self._broker.positions()}
        held = sorted(
            (m for m in chain if m.con_id != new.con_id and positions.get(m.local_symbol)),
            key=lambda m: m.expiry or date.max,
        )
        if not held:
            self._broker.follow(symbol, new.con_id)
            return
        old = held[0]
        self._broker.follow(symbol, old.con_id)
        self.held_back[symbol] = new
        self._announce(symbol, old, new, switched=False, held=positions[old.local_symbol])

    def _holds(self, symbol: str) -> bool:
        return bool(
            self._portfolio.position(symbol)
            or self._orders.has_working(symbol)
            or self._fills.awaiting_position(symbol)
        )

    def _switch(self, symbol: str, old: ContractInfo, new: ContractInfo) -> None:
        self.held_back.pop(symbol, None)
        self._broker.follow(symbol, new.con_id)
        self._announce(symbol, old, new, switched=True)
        self.restarts[symbol] = self._tasks.spawn(
            self._market.restart(symbol), f"{symbol} front month {new.local_symbol}")

    def _announce(self, symbol: str, old: ContractInfo, new: ContractInfo, *, switched: bool,
                  held: float | None = None) -> None:
        if held is None:
            held = self._portfolio.position(symbol)
        if switched:
            message = f"{symbol}: front month {old.local_symbol} → {new.local_symbol}; " \
                      f"now trading {new.local_symbol}"
        else:
            message = f"{symbol}: new front month {new.local_symbol}; holding " \
                      f"{old.local_symbol} {held:g}: close or roll by hand (exits only until then)"
        details = {"symbol": symbol, "old": old.local_symbol, "new": new.local_symbol,
                   "old_con_id": old.con_id, "new_con_id": new.con_id, "held": held,
                   "switched": switched}
        self._recorder.record(
            Level.INFO if switched else Level.WARNING, "front_month", message, details,
            event=FrontMonthEvent(symbol, old.local_symbol, new.local_symbol, switched,
                                  self._clock.now(), held),
        )

    def _today(self, month: ContractInfo) -> date:
        try:
            zone = ZoneInfo(month.time_zone)
        except (KeyError, ValueError):
            return self._clock.now().date()
        return self._clock.now().astimezone(zone).date()
