"""Contract details, kept fresh: asked for at every connect, at the start of every trading
day, and again when the trading hours known end within a day.

IB sends about a week of `liquidHours` / `tradingHours`; a bot that asked once would, from the
second week on, refuse every entry as "outside trading hours". A symbol the gateway does not
know at the first ask is not traded (error 200, alerted); a later ask that fails keeps what
was known.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime, timedelta

from engine.accounting import Accounting
from engine.clock import BrokerClock
from engine.config import Settings
from engine.domain import Instrument
from engine.events import BrokerErrorEvent, Level
from engine.ib_errors import classify
from engine.market_data import MarketData
from engine.option_expiry import expires_at
from engine.ports import BrokerPort
from engine.recorder import Recorder
from engine.tasks import TaskOwner

log = logging.getLogger(__name__)

# Trading hours that end within a day are asked for again at most this often (broker time).
RETRY = timedelta(hours=1)


class ContractDetails:
    def __init__(
        self,
        settings: Settings,
        broker: BrokerPort,
        market: MarketData,
        accounting: Accounting,
        recorder: Recorder,
        clock: BrokerClock,
        tasks: TaskOwner,
    ) -> None:
        self._settings = settings
        self._broker = broker
        self._market = market
        self._accounting = accounting
        self._recorder = recorder
        self._clock = clock
        self._tasks = tasks
        self.asked = 0  # how many times the details were asked for
        self._day = ""  # the trading day they were last asked for
        self._asked_at: datetime | None = None  # broker time
        self._refreshing: asyncio.Future[None] | None = None

    async def ask(self) -> None:
        """Ask for the traded symbols' contract details (raises ConnectionError or
        TimeoutError when the broker cannot answer)."""
        market = self._market
        traded = tuple(i for i in self._settings.symbols if i.symbol in market.symbols)
        first = self.asked == 0
        if first:
            traded = await self._drop_expired(traded)
        unknown = await self._broker.qualify(traded)
        self.asked += 1
        self._day = self._accounting.trading_day()
        self._asked_at = self._clock.now()
        if not first:
            for symbol in unknown:
                log.warning("%s: contract details not refreshed; keeping the last known", symbol)
            return
        for symbol in unknown:
            await self._not_traded(
                symbol, f"{symbol}: the gateway does not know this contract (error 200); "
                "not traded")
        if market.symbols:
            symbol = next(iter(market.symbols))
            # A front-month future follows no month yet: any month tells the time zone.
            info = self._broker.contract(symbol) or next(iter(self._broker.chain(symbol)), None)
            if info is not None:
                self._accounting.exchange_tz = info.time_zone

    async def _drop_expired(self, traded: tuple[Instrument, ...]) -> tuple[Instrument, ...]:
        """Options of SYMBOLS already past their expiry: told once, not traded (IB knows them
        no more). Not a settings error: a restart after an expiry must not stop the bot."""
        now = self._clock.now()
        kept = []
        for instrument in traded:
            ends = expires_at(instrument)
            if ends is not None and now >= ends:
                await self._not_traded(
                    instrument.symbol, f"{instrument.symbol}: expired on {ends:%Y-%m-%d}; not "
                    "traded (remove it from SYMBOLS)")
            else:
                kept.append(instrument)
        return tuple(kept)

    async def _not_traded(self, symbol: str, message: str) -> None:
        await self._recorder.record_durable(
            Level.ERROR, "config", message,
            event=BrokerErrorEvent(200, message, classify(200).meaning, Level.ERROR,
                                   self._clock.now()),
        )
        self._market.forget(symbol)

    def refresh_when_due(self) -> None:
        """At a new trading day, or when the hours known end within a day, ask again (beside
        the caller; one ask at a time)."""
        if self._refreshing is not None and not self._refreshing.done():
            return
        now = self._clock.now()
        stale = any(
            (info := self._broker.contract(symbol)) is not None
            and (info.trading_hours.stale(now) or info.liquid_hours.stale(now))
            for symbol in self._market.symbols
        )
        asked = self._asked_at
        retry = stale and (asked is None or now - asked >= RETRY)
        if retry or self._accounting.trading_day() != self._day:
            self._day = self._accounting.trading_day()
            self._asked_at = now
            self._refreshing = self._tasks.spawn(self._refresh(), "contract details refresh")

    async def _refresh(self) -> None:
        try:
            await self.ask()
        except (ConnectionError, TimeoutError) as exc:  # the next day, or a reconnect, asks
            log.warning("contract details refresh failed: %s", exc)
