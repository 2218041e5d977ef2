"""The backtest loop: each bar through the live strategy, the live risk checks and the
simulated broker, in the order a live engine meets them.

For bar i: the broker first fills what was working against bar i (its open, high, low); then
bar i closes: its close is the last price, a new trading day starts the day's PnL afresh, the
daily loss limit is checked (`RiskManager.daily_loss_breached`, pausing as live does), and the
strategy gets `on_bar(bar, position)`. A signal becomes at most one order as
`engine.trader.Trader.decide` makes it: refused while an order for the symbol is working, the
delta target − position as one order (`engine.trader.order_request`), `RiskManager.check` with
the bar's close time as "now", and the entry's stop-loss / take-profit (STOP_LOSS_PCT,
TAKE_PROFIT_PCT) attached as live (`engine.trader.protective_orders`). The order is placed at
bar i's close and fills from bar i + 1 on: the strategy never sees a bar before it closed, and
no order fills at a price from before it was decided.

Two differences from live, both for a history without an operator: trading hours are those of
the data (every bar is a bar the market traded), and a pause for the daily loss limit ends when
the next trading day begins (an operator's /resume the next morning).
"""

from __future__ import annotations

import itertools
import math
import operator
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd

from backtest.broker import Commission, SimulatedBroker
from backtest.data import BarData
from backtest.metrics import Summary, periods_per_year, round_trips, summarize
from engine.domain import EngineState, Fill, Order, OrderType, Position, Side, Signal, bar_maker
from engine.hours import ALWAYS_OPEN
from engine.portfolio import Portfolio
from engine.reports import Refusal
from engine.risk import RiskLimits, RiskManager
from engine.strategies import create
from engine.strategies.base import StrategyParams
from engine.trader import order_request, protective_orders, wants_bracket

# The trading day (for the daily loss limit) is the exchange's; live takes the time zone from
# the contract, and uses this one until it knows.
DEFAULT_EXCHANGE_TZ = "America/New_York"
PROGRESS_EVERY = 8192  # bars between progress calls: a power of two, tested with a mask
# Risk limits that never refuse: for tests and the bench that study the strategy alone.
NO_LIMITS = dict(max_position=1e9, max_notional=1e15, max_daily_loss=1e15,
                 max_orders_per_minute=100_000)


@dataclass(frozen=True, slots=True)
class BacktestConfig:
    strategy: str
    params: StrategyParams
    quantity: float
    max_position: float
    max_notional: float
    max_daily_loss: float
    max_orders_per_minute: int
    cash: float = 100_000.0
    commission: Commission = field(default_factory=Commission)
    stop_loss_pct: float | None = None
    take_profit_pct: float | None = None
    exchange_tz: str = DEFAULT_EXCHANGE_TZ
    record_indicators: bool = False  # each bar's indicator values (for charts)


@dataclass(slots=True)
class BacktestResult:
    data: BarData
    config: BacktestConfig
    fills: list[Fill]
    fill_bars: list[int]  # the index of the bar each fill happened in
    refusals: list[Refusal]
    pauses: list[tuple[pd.Timestamp, str]]
    indicators: list[dict[str, float | None]]
    position: np.ndarray = field(init=False)  # at each bar's close
    equity: np.ndarray = field(init=False)  # cash + position at the close, at each bar's close

    def __post_init__(self) -> None:
        n = len(self.data)
        closes = self.data.frame["close"].to_numpy()
        traded = np.zeros(n)
        cash_flow = np.zeros(n)
        for index, fill in zip(self.fill_bars, self.fills, strict=True):
            signed = fill.side.sign * fill.quantity
            traded[index] += signed
            cash_flow[index] -= signed * fill.price + (fill.commission or 0.0)
        self.position = np.cumsum(traded)
        self.equity = self.config.cash + np.cumsum(cash_flow) + self.position * closes

    def summary(self, start: int = 0, stop: int | None = None) -> Summary:
        """The summary of bars [start, stop): equity from the close before `start`; the trades
        that ended in these bars."""
        stop = len(self.data) if stop is None else stop
        times = self.data.frame.index
        initial = self.config.cash if start == 0 else float(self.equity[start - 1])
        inside = [f for f, b in zip(self.fills, self.fill_bars, strict=True) if b < stop]
        before = sum(1 for b in self.fill_bars if b < start)
        trades_all = round_trips(inside)
        trades_before = len(round_trips(inside[:before]))
        return summarize(
            times[start:stop], self.data.bar_seconds, self.equity[start:stop],
            self.position[start:stop], initial, trades_all[trades_before:],
            sum(f.commission or 0.0 for f in inside[before:]), periods_per_year(times),
        )

    def split(self, fraction: float) -> tuple[Summary, Summary]:
        """The summaries of the first `fraction` of the bars and of the rest: one run, the
        strategy warm across the cut, each part judged on its own bars."""
        cut = int(len(self.data) * fraction)
        if not 0 < cut < len(self.data):
            raise ValueError(f"a split at {fraction:g} leaves one part without bars")
        return self.summary(0, cut), self.summary(cut)


def run(
    data: BarData, config: BacktestConfig, progress: Callable[[int], None] | None = None
) -> BacktestResult:
    """Run the strategy over `data`; `progress(bars_done)` is called every few thousand bars."""
    return _Backtest(data, config).run(progress)


class _Backtest:
    def __init__(self, data: BarData, config: BacktestConfig) -> None:
        self.data = data
        self.config = config
        self.symbol = data.symbol
        self.strategy = create(config.strategy, data.symbol, config.params, config.quantity)
        self.risk = RiskManager(RiskLimits(
            max_position=config.max_position, max_notional=config.max_notional,
            max_daily_loss=config.max_daily_loss,
            max_orders_per_minute=config.max_orders_per_minute,
            bar_seconds=data.bar_seconds, outside_rth=True,
        ))
        self.portfolio = Portfolio()
        self.broker = SimulatedBroker((data.symbol,), config.cash, config.commission)
        self.fills: list[Fill] = []
        self.fill_bars: list[int] = []
        self.refusals: list[Refusal] = []
        self.pauses: list[tuple[pd.Timestamp, str]] = []
        self._orders = 0

    def run(self, progress: Callable[[int], None] | None) -> BacktestResult:
        frame = self.data.frame
        index = frame.index
        starts = _bar_starts(index)
        length = timedelta(seconds=self.data.bar_seconds)  # a bar closes one length after it starts
        # Plain lists of floats: indexing them is several times faster than numpy scalars.
        opens, highs, lows = frame["open"].tolist(), frame["high"].tolist(), frame["low"].tolist()
        prices, volumes = frame["close"].tolist(), frame["volume"].tolist()
        day_starts = _trading_day_starts(index, self.data.bar_seconds, self.config.exchange_tz)
        symbol, strategy, broker = self.symbol, self.strategy, self.broker
        last_price = self.portfolio.last_price
        indicators: list[dict[str, float | None]] = []
        record = indicators.append if self.config.record_indicators else None
        mask = PROGRESS_EVERY - 1

        position = 0.0
        # Closes at or beyond which today's PnL may reach the daily loss limit; between them
        # the full check (the live code) cannot pause, so it runs only outside them.
        below, above = -math.inf, math.inf
        make_bar = bar_maker(symbol)
        on_bar = strategy.on_bar
        bars = zip(starts, opens, highs, lows, prices, volumes, strict=True)
        # Orders come and go only in broker.match and in _decide: asked after each, not per bar.
        has_orders = broker.has_orders
        for i, (start, open_, high, low, close, volume) in enumerate(bars):
            changed = False
            if has_orders:
                for fill in broker.match(i, symbol, start, open_, high, low):
                    self._on_fill(fill, i)
                    changed = True
                has_orders = broker.has_orders
            last_price[symbol] = close
            if i in day_starts:
                self._start_day(day_starts[i])
                changed = True
            if changed:
                position = broker.position(symbol)
                self._check_daily_loss(start + length)
                below, above = self._loss_triggers()
            elif not below < close < above:
                self._check_daily_loss(start + length)
            signal = on_bar(make_bar(start, open_, high, low, close, volume), position)
            if record is not None:
                record(strategy.indicator_values())
            if signal is not None:
                broker.bar_index = i  # orders placed now fill from the next bar
                self._decide(signal, start, start + length)
                has_orders = broker.has_orders
            if progress is not None and not i & mask:
                progress(i)
        if progress is not None:
            progress(len(starts))
        return BacktestResult(self.data, self.config, self.fills, self.fill_bars,
                              self.refusals, self.pauses, indicators)

    def _on_fill(self, fill: Fill, index: int) -> None:
        self.fills.append(fill)
        self.fill_bars.append(index)
        held = [p for p in self.broker.positions() if p.symbol == fill.symbol]
        self.portfolio.set_position(held[0] if held else Position(fill.symbol, 0.0, 0.0))
        self.portfolio.add_realized(fill.symbol, fill.realized_pnl, fill.commission or 0.0)

    def _start_day(self, day: str) -> None:
        self.portfolio.start_day(day)
        if self.risk.state is EngineState.PAUSED:
            self.risk.resume()

    def _check_daily_loss(self, now: datetime) -> None:
        # As engine.accounting.Accounting.check_daily_loss, without the journal.
        if self.risk.state is not EngineState.RUNNING:
            return
        pnl = self.portfolio.today_pnl()
        if self.risk.daily_loss_breached(pnl):
            reason = (f"daily loss limit: today's PnL {pnl:,.2f} reached "
                      f"-{self.config.max_daily_loss:,.2f}")
            self.risk.pause(reason)
            self.pauses.append((pd.Timestamp(now), reason))

    def _loss_triggers(self) -> tuple[float, float]:
        """The closes between which today's PnL stays above the daily loss limit, with the
        position, its cost and today's realized PnL as they are now."""
        held = self.portfolio.positions.get(self.symbol)
        if held is None or self.risk.state is not EngineState.RUNNING:
            return -math.inf, math.inf
        portfolio = self.portfolio
        # today_pnl = realized + (close − cost) × quantity − unrealized at the day's start
        allowed = (-self.config.max_daily_loss - portfolio.realized_today
                   + (portfolio.unrealized_at_day_start or 0.0))
        price = held.avg_cost + allowed / held.quantity
        margin = abs(price) * 1e-9 + 1e-12  # float rounding: check a hair early, never late
        if held.quantity > 0:
            return price + margin, math.inf
        return -math.inf, price - margin

    def _decide(self, signal: Signal, bar_time: datetime, now: datetime) -> None:
        """As engine.trader.Trader.decide and send, against the simulated broker."""
        symbol = signal.symbol
        broker = self.broker
        if broker.has_working(symbol):
            self._refuse(now, symbol, "an order for this symbol is still working")
            return
        request = order_request(
            signal, broker.position(symbol), self.portfolio.last_price.get(symbol)
        )
        if request is None:
            return
        decision = self.risk.check(request, now, bar_time, ALWAYS_OPEN)
        if not decision.allowed:
            self._refuse(now, symbol, decision.reason)
            return
        self.risk.record_order(now)
        # An exit's protective orders go first, so they cannot outlive the position.
        for protective in [o for o in broker.working(symbol) if o.parent_ref]:
            broker.cancel(protective.order_ref)
        order = self._order(symbol, request.side, request.quantity, signal.reason, now)
        parent_id = broker.place(order)
        config = self.config
        price = request.reference_price
        if price is None or not wants_bracket(request, config.stop_loss_pct,
                                              config.take_profit_pct):
            return
        info = broker.contract(symbol)
        children = protective_orders(request.side, price, info.min_tick if info else 0.01,
                                     config.stop_loss_pct, config.take_profit_pct)
        for kind, limit, stop in children:
            child = self._order(symbol, request.side.opposite, request.quantity,
                                f"protective {kind.value} for {order.order_ref}", now, kind,
                                limit, stop, parent=order.order_ref)
            broker.place(child, parent_id=parent_id, oca_group=f"oca-{order.order_ref}")

    def _order(self, symbol: str, side: Side, quantity: float, reason: str, now: datetime,
               kind: OrderType = OrderType.MARKET, limit: float | None = None,
               stop: float | None = None, parent: str | None = None) -> Order:
        self._orders += 1
        return Order(f"bt-{self._orders}", symbol, side, quantity, kind, limit, stop, reason,
                     parent_ref=parent, created_at=now)

    def _refuse(self, now: datetime, symbol: str, reason: str) -> None:
        self.refusals.append(Refusal(now, symbol, reason))


def _bar_starts(index: pd.DatetimeIndex) -> list[datetime]:
    """`index.to_pydatetime()` as a list, three or four times faster: the first start converted,
    each next one by adding the gap to it (whole microseconds, as datetime keeps them; a bar
    series has few distinct gaps, each made into a timedelta once)."""
    first = index[:1].to_pydatetime().tolist()
    if len(index) < 2 or first[0].tzinfo not in (None, UTC):
        return index.to_pydatetime().tolist()  # a zone with offsets that change: not additive
    micros = index.tz_localize(None).to_numpy().astype("datetime64[us]").astype(np.int64)
    gaps, which = np.unique(np.diff(micros), return_inverse=True)
    steps = [timedelta(microseconds=gap) for gap in gaps.tolist()]
    return list(itertools.accumulate(
        map(steps.__getitem__, which.tolist()), operator.add, initial=first[0]))


def _trading_day_starts(index: pd.DatetimeIndex, bar_seconds: int, tz: str) -> dict[int, str]:
    """{bar index: trading day} for each bar whose close begins a new trading day."""
    local = (index + pd.Timedelta(seconds=bar_seconds)).tz_convert(tz)
    # The local calendar day of each close: the wall-clock time floored to days (numpy does in
    # a few ms what DatetimeIndex.normalize does in tens).
    days = local.tz_localize(None).to_numpy().astype("datetime64[D]")
    changed = np.flatnonzero(np.concatenate(([True], days[1:] != days[:-1])))
    return {int(i): str(days[i]) for i in changed}
