"""Market data: 5-second bars in, checked bars of the strategy's size out.

Owns each traded symbol's bar state: building bars from the broker's 5-second bars, dropping
bad ones (journaled, alerted once per burst), noting gaps, resubscribing symbols gone quiet,
warming up from history after a (re)connect, and the bars kept for charts. Every closed bar
goes to `on_closed(state, bar, trade)`; `trade` is False while warming up.
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from engine import strategies
from engine.bars import REALTIME_BAR_SECONDS, BarBuilder, bad_bar_reason
from engine.clock import BrokerClock
from engine.config import Settings
from engine.domain import Bar
from engine.events import DataEvent, DataKind, Level
from engine.hours import ALWAYS_OPEN
from engine.portfolio import Portfolio
from engine.ports import BrokerPort, BrokerRequestError
from engine.recorder import Recorder
from engine.strategies.base import Strategy

# A symbol with no 5-second bar for this long (broker time, trading hours) is resubscribed.
QUIET_SECONDS = 60.0
# Bad bars are alerted once per burst: again only after this long without one.
BAD_BAR_BURST_SECONDS = 300.0
CHART_BARS = 500


@dataclass(slots=True)
class SymbolState:
    """One traded symbol's bars and strategy. Market data writes the bars; the trader runs
    the strategy and keeps its indicator values beside them, for charts."""

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


ClosedBarHandler = Callable[[SymbolState, Bar, bool], None]


class MarketData:
    def __init__(
        self,
        settings: Settings,
        broker: BrokerPort,
        recorder: Recorder,
        clock: BrokerClock,
        portfolio: Portfolio,
    ) -> None:
        self._settings = settings
        self._broker = broker
        self._recorder = recorder
        self._clock = clock
        self._portfolio = portfolio
        self.on_closed: ClosedBarHandler = lambda state, bar, trade: None
        self.symbols: dict[str, SymbolState] = {
            instrument.symbol: self._new_state(instrument.symbol)
            for instrument in settings.symbols
        }

    def _new_state(self, symbol: str) -> SymbolState:
        settings = self._settings
        return SymbolState(
            symbol,
            strategies.create(
                settings.strategy, symbol, settings.strategy_params, settings.order_quantity
            ),
            BarBuilder(symbol, settings.bar_seconds),
        )

    # --- the stream ---------------------------------------------------------------------

    def on_realtime_bar(self, bar: Bar) -> None:
        state = self.symbols.get(bar.symbol)
        if state is None:
            return
        self._clock.sync(bar.time + timedelta(seconds=REALTIME_BAR_SECONDS))
        reason = bad_bar_reason(bar, state.last_small_bar)
        if reason is not None:
            self._bad_bar(state, bar, reason)
            return
        state.last_small_bar = bar
        state.last_small_wall = time.monotonic()
        self._portfolio.last_price[bar.symbol] = bar.close
        for closed in state.builder.add(bar):
            self._close(state, closed, trade=state.warm)

    def flush(self, now: datetime) -> None:
        """Close the bars whose interval ended (one 5-second bar of slack for the last bar of
        the interval to arrive), and resubscribe symbols gone quiet."""
        for state in list(self.symbols.values()):
            closed = state.builder.flush(now - timedelta(seconds=REALTIME_BAR_SECONDS))
            if closed is not None:
                self._close(state, closed, trade=state.warm)
            self._check_quiet(state, now)

    def _close(self, state: SymbolState, bar: Bar, trade: bool) -> None:
        reason = bad_bar_reason(bar, state.last_bar)
        if reason is not None:
            self._bad_bar(state, bar, reason)
            return
        previous = state.last_bar
        if previous is not None and trade:
            self._note_gap(previous, bar)
        state.last_bar = bar
        state.bars.append(bar)
        self.on_closed(state, bar, trade)

    def _note_gap(self, previous: Bar, bar: Bar) -> None:
        seconds = self._settings.bar_seconds
        missing = int((bar.time - previous.time).total_seconds() // seconds) - 1
        info = self._broker.contract(bar.symbol)
        hours = info.trading_hours if info else ALWAYS_OPEN
        if missing > 0 and hours.is_open(previous.time + timedelta(seconds=seconds)):
            self._recorder.record(
                Level.WARNING, "gap",
                f"{bar.symbol}: {missing} bar(s) missing before {bar.time.isoformat()}",
                {"symbol": bar.symbol, "missing": missing},
            )

    def _bad_bar(self, state: SymbolState, bar: Bar, reason: str) -> None:
        message = f"{bar.symbol}: bad bar at {bar.time.isoformat()} dropped ({reason})"
        details = {"symbol": bar.symbol, "time": bar.time.isoformat(), "reason": reason,
                   "bar": [bar.open, bar.high, bar.low, bar.close, bar.volume]}
        now = time.monotonic()
        state.bad_bars_in_burst += 1
        alert = None
        if now - state.last_bad_bar_alert >= self._clock.wall_seconds(BAD_BAR_BURST_SECONDS):
            alert = DataEvent(DataKind.BAD_BAR, bar.symbol, message, self._clock.now(),
                              state.bad_bars_in_burst)
            state.bad_bars_in_burst = 0
        state.last_bad_bar_alert = now
        self._recorder.record(Level.WARNING, "bad_bar", message, details, event=alert)

    def _check_quiet(self, state: SymbolState, now: datetime) -> None:
        info = self._broker.contract(state.symbol)
        if info is not None and not info.trading_hours.is_open(now):
            # Silence counts only while the market is open: at the next open the first bar
            # is due after the open, not since the last bar before the close.
            state.last_small_wall = time.monotonic()
            return
        quiet_wall = time.monotonic() - state.last_small_wall
        if quiet_wall * self._clock.speed < QUIET_SECONDS:
            return
        message = f"{state.symbol}: no market data for {QUIET_SECONDS:.0f}s; resubscribed"
        state.last_small_wall = time.monotonic()
        state.builder.reset()
        self._subscribe(state.symbol)
        self._recorder.record(Level.WARNING, "quiet", message,
                              event=DataEvent(DataKind.QUIET, state.symbol, message, now))

    # --- (re)connects -------------------------------------------------------------------

    def forget(self, symbol: str) -> None:
        """Stop trading a symbol the broker does not know."""
        self.symbols.pop(symbol, None)

    def subscribe_all(self) -> None:
        for state in self.symbols.values():
            self._subscribe(state.symbol)
            state.last_small_wall = time.monotonic()

    def resubscribe_all(self) -> None:
        """After IB lost market data: the bars in progress are incomplete."""
        for state in self.symbols.values():
            state.builder.reset()
            self._subscribe(state.symbol)

    def reset_builders(self) -> None:
        """The connection dropped: the bars in progress will not be seen whole."""
        for state in self.symbols.values():
            state.builder.reset()

    def _subscribe(self, symbol: str) -> None:
        self._broker.subscribe_bars(symbol, use_rth=not self._settings.outside_rth)

    async def warm_up(self, backfill: bool) -> None:
        """Feed the strategies history (a backfill after a reconnect: the bars missed)."""
        for symbol, state in list(self.symbols.items()):
            await self._warm_up(symbol, state, backfill)

    async def restart(self, symbol: str) -> None:
        """The symbol now trades another contract (a future's new front month): its bars and
        its strategy start over, from that contract's history, then its stream."""
        if symbol not in self.symbols:
            return
        self._broker.unsubscribe_bars(symbol)
        self._portfolio.last_price.pop(symbol, None)
        self.symbols[symbol] = state = self._new_state(symbol)
        try:
            await self._warm_up(symbol, state, backfill=False)
        except (ConnectionError, TimeoutError) as exc:  # the next connect warms every symbol
            self._recorder.record(Level.WARNING, "warmup", f"{symbol}: warm-up failed ({exc})")
            return
        if self.symbols.get(symbol) is state:
            self._subscribe(symbol)
            state.last_small_wall = time.monotonic()

    async def _warm_up(self, symbol: str, state: SymbolState, backfill: bool) -> None:
        settings = self._settings
        needed = state.strategy.warmup_bars + 2
        try:
            history = await self._broker.history(
                symbol, settings.bar_size, settings.bar_seconds, needed,
                use_rth=not settings.outside_rth,
            )
        except BrokerRequestError as exc:
            message = f"{symbol}: no history ({exc}); warming up from live bars"
            self._recorder.record(
                Level.WARNING, "warmup", message,
                event=DataEvent(DataKind.NO_HISTORY, symbol, message, self._clock.now()),
            )
            history = []
        now = self._clock.now()
        step = timedelta(seconds=settings.bar_seconds)
        complete = [bar for bar in history if bar.time + step <= now]
        partial = [bar for bar in history if bar.time + step > now]
        if backfill and state.last_bar is not None:
            last = state.last_bar.time
            complete = [bar for bar in complete if bar.time > last]
        for bar in complete[-max(needed, CHART_BARS):] if not backfill else complete:
            self._close(state, bar, trade=False)
        if partial:
            state.builder.seed(partial[-1])
        if history:
            self._portfolio.last_price.setdefault(symbol, history[-1].close)
        state.warm = True
        self._recorder.record(
            Level.INFO, "warmup",
            f"{symbol}: {len(complete)} historical bars" + (" (backfill)" if backfill else ""),
        )

    # --- reading ------------------------------------------------------------------------

    def last_bar_time(self, symbol: str) -> datetime | None:
        state = self.symbols.get(symbol)
        return state.last_bar.time if state and state.last_bar else None
