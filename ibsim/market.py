"""The simulated market: quotes, 5-second steps, sessions and history for every contract."""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass, field
from pathlib import Path
from zoneinfo import ZoneInfo

from .bars import (
    MONTH,
    WEEK,
    BarRequestError,
    BarSize,
    Duration,
    RawBar,
    aggregate,
    combine,
    months_back,
)
from .contracts import ContractSpec, Universe
from .option_pricing import Greeks
from .options import OptionPath, greeks_at
from .pricepath import STEP, STEPS_PER_DAY, PathCache, PathSource, ReplayPath, SyntheticPath
from .sessions import Session, next_session, session_at, sessions_before, sessions_between

WHAT_TO_SHOW = ("TRADES", "MIDPOINT", "BID", "ASK")
_ONE_GROUP = 10**9  # an alignment longer than any session: one bar per session


@dataclass(slots=True)
class Quote:
    bid: float
    ask: float
    last: float
    bid_size: float
    ask_size: float
    last_size: float
    volume: float  # so far in the current (or last) session
    open: float
    high: float
    low: float
    prev_close: float
    time: float  # start of the step the quote belongs to
    greeks: list[tuple[int, Greeks]] = field(default_factory=list)  # options: IB's computations


@dataclass(slots=True)
class StepBar:
    """One completed 5-second step of a contract, in ticks."""

    k: int
    open: int
    high: int
    low: int
    close: int
    volume: float


class Market:
    """Everything price-related, all derived from the per-contract step paths."""

    def __init__(
        self, universe: Universe, seed: int, data_dir: Path | None = None, max_chunks: int = 96
    ) -> None:
        self.universe = universe
        self.sources: dict[int, PathSource] = {}
        for spec in universe:
            csv = _find_csv(data_dir, spec) if data_dir else None
            self.sources[spec.con_id] = ReplayPath(spec, csv) if csv else SyntheticPath(spec, seed)
        self.cache = PathCache(max_chunks)
        self._daily: dict[tuple[int, dt.date, bool], RawBar | None] = {}
        self._open: dict[tuple[int, bool], tuple[float, float, bool]] = {}
        self._used: dict[int, tuple[int, float]] = {}

    def source(self, spec: ContractSpec) -> PathSource:
        """The contract's path; an option's is derived from its underlying's on first use."""
        found = self.sources.get(spec.con_id)
        if found is None:
            if spec.sec_type != "OPT":
                raise KeyError(f"no price path for conId {spec.con_id}")
            under = self.universe.get(spec.under_con_id)
            assert under is not None
            under_source = self.source(under)
            found = OptionPath(
                spec, under, lambda day: self.cache.chunk(under_source, day),
                under_source.first_time(),
            )  # fmt: skip
            self.sources[spec.con_id] = found
        return found

    # --- steps and prices -------------------------------------------------------------------

    def step(self, spec: ContractSpec, k: int) -> StepBar | None:
        day, i = divmod(k, STEPS_PER_DAY)
        ch = self.cache.chunk(self.source(spec), day)
        if not ch.valid[i]:
            return None
        return StepBar(
            k, int(ch.open[i]), int(ch.high[i]), int(ch.low[i]), int(ch.close[i]),
            float(ch.volume[i]),
        )  # fmt: skip

    def price_ticks(self, spec: ContractSpec, t: float) -> int:
        """The trade price at time t: the open of the step containing t."""
        day, i = divmod(int(t // STEP), STEPS_PER_DAY)
        ch = self.cache.chunk(self.source(spec), day)
        return int(ch.open[i])

    def to_price(self, spec: ContractSpec, ticks: float) -> float:
        return round(ticks * spec.min_tick, spec.price_digits + 1)

    @staticmethod
    def shift(spec: ContractSpec, what: str) -> float:
        """Offset in ticks of a BID/ASK/MIDPOINT series from the trade price."""
        s = spec.spread_ticks
        below = s // 2
        return {"TRADES": 0.0, "BID": -below, "ASK": s - below, "MIDPOINT": s / 2 - below}[what]

    def bid_ask(self, spec: ContractSpec, ticks: int) -> tuple[float, float]:
        below = spec.spread_ticks // 2
        return (
            self.to_price(spec, ticks - below),
            self.to_price(spec, ticks - below + spec.spread_ticks),
        )

    def quote(self, spec: ContractSpec, t: float) -> Quote:
        k = int(t // STEP)
        session = self.session_at(spec, t, False) or self.last_session(spec, t)
        k0 = math.ceil(session.start / STEP)
        k1 = min(k, int(session.end // STEP))
        steps = self.cache.steps(self.source(spec), k0, max(k0, k1))
        at = min(t, session.end - STEP) if k1 < k else t
        price = self.price_ticks(spec, at)
        bid, ask = self.bid_ask(spec, price)
        prev = self.last_session(spec, session.start)
        prev_close = self.price_ticks(spec, prev.end - STEP)
        cur_volume = self.step(spec, k)
        lot = spec.size_increment
        base = max(lot, round((cur_volume.volume if cur_volume else 100 * lot) / 8 / lot) * lot)
        if len(steps) and steps.valid.any():
            volume = float(steps.volume[steps.valid].sum())
            day_open = float(steps.open[steps.valid][0])
            high = float(steps.high[steps.valid].max())
            low = float(steps.low[steps.valid].min())
            last_size = float(steps.volume[steps.valid][-1])
        else:
            volume, day_open, high, low, last_size = 0.0, price, price, price, 0.0
        quote = Quote(
            bid=bid,
            ask=ask,
            last=self.to_price(spec, price),
            bid_size=base,
            ask_size=max(lot, round(base * 1.3 / lot) * lot),
            last_size=max(lot, round(last_size / 20 / lot) * lot) if last_size else lot,
            volume=volume,
            open=self.to_price(spec, day_open),
            high=self.to_price(spec, high),
            low=self.to_price(spec, low),
            prev_close=self.to_price(spec, prev_close),
            time=k * float(STEP),
        )
        if spec.sec_type == "OPT":
            under = self.universe.get(spec.under_con_id)
            assert under is not None
            spot = self.price_ticks(under, at) * under.min_tick
            quote.greeks = list(greeks_at(spec, spot, t, quote.bid, quote.ask, quote.last))
        return quote

    # --- sessions ---------------------------------------------------------------------------

    def session_at(self, spec: ContractSpec, t: float, rth: bool) -> Session | None:
        return session_at(spec.schedule, t, rth)

    def is_open(self, spec: ContractSpec, t: float, rth: bool = False) -> bool:
        """Whether the market trades at t; cached because the driver asks every step."""
        key = (spec.con_id, rth)
        cached = self._open.get(key)
        if cached is not None and cached[0] <= t < cached[1]:
            return cached[2]
        s = session_at(spec.schedule, t, rth)
        if s is not None:
            self._open[key] = (s.start, s.end, True)
            return True
        nxt = next_session(spec.schedule, t, rth)
        self._open[key] = (t, nxt.start, False)
        return False

    def last_session(self, spec: ContractSpec, t: float) -> Session:
        """The last session that started before t."""
        return sessions_before(spec.schedule, t, 1, False)[0]

    # --- volume available to orders -----------------------------------------------------------

    def available(self, spec: ContractSpec, k: int) -> float:
        bar = self.step(spec, k)
        if bar is None:
            return 0.0
        used_k, used = self._used.get(spec.con_id, (k, 0.0))
        return max(0.0, bar.volume - (used if used_k == k else 0.0))

    def consume(self, spec: ContractSpec, k: int, qty: float) -> None:
        used_k, used = self._used.get(spec.con_id, (k, 0.0))
        self._used[spec.con_id] = (k, (used if used_k == k else 0.0) + qty)

    # --- history -----------------------------------------------------------------------------

    def head_timestamp(self, spec: ContractSpec) -> float:
        return self.source(spec).first_time()

    def history(
        self,
        spec: ContractSpec,
        end: float,
        duration: Duration,
        size: BarSize,
        rth: bool,
        include_partial: bool,
    ) -> list[RawBar]:
        """Bars (in ticks) of the trade-price path ending at ``end`` (completed steps only)."""
        sched = spec.schedule
        if duration.unit == "S":
            start = end - duration.count
        elif duration.unit == "D":
            start = sessions_before(sched, end, duration.count, rth)[0].start
        elif duration.unit == "W":
            start = end - duration.count * 7 * 86400
        elif duration.unit == "M":
            start = months_back(end, duration.count, spec.time_zone)
        else:
            start = months_back(end, 12 * duration.count, spec.time_zone)
        if start < self.head_timestamp(spec):
            start = self.head_timestamp(spec)
        if start >= end:
            raise BarRequestError("HMDS query returned no data")
        sessions = sessions_between(sched, start, end, rth)
        if size.intraday:
            bars = self._intraday(spec, sessions, start, end, size.seconds, include_partial)
        else:
            daily = [self._daily_bar(spec, s, end, rth) for s in sessions if s.start < end]
            bars = [b for b in daily if b is not None]
            if size.period in (WEEK, MONTH):
                bars = _group_periods(bars, size.period)
        return bars

    def _intraday(
        self,
        spec: ContractSpec,
        sessions: list[Session],
        start: float,
        end: float,
        seconds: int,
        include_partial: bool,
    ) -> list[RawBar]:
        tz = ZoneInfo(spec.time_zone)
        out: list[RawBar] = []
        for s in sessions:
            offset = dt.datetime.fromtimestamp(s.start, tz).utcoffset().total_seconds()
            a = max(start, s.start)
            a = max(math.floor((a + offset) / seconds) * seconds - offset, s.start)
            b = min(end, s.end)
            ka, kb = math.ceil(a / STEP), int(b // STEP)
            if kb <= ka:
                continue
            steps = self.cache.steps(self.source(spec), ka, kb)
            for bar in aggregate(steps, ka, seconds, offset, s.start):
                bar.end = min(bar.end, s.end)
                if bar.end > end and not include_partial:
                    continue
                out.append(bar)
        return out

    def session_bar(self, spec: ContractSpec, s: Session, end: float) -> RawBar | None:
        ka = math.ceil(s.start / STEP)
        kb = int(min(end, s.end) // STEP)
        if kb <= ka:
            return None
        steps = self.cache.steps(self.source(spec), ka, kb)
        bar = combine(aggregate(steps, ka, _ONE_GROUP, 0.0, s.start))
        if bar is not None:
            bar.start, bar.end, bar.label = s.start, s.end, s.trade_date
        return bar

    def _daily_bar(self, spec: ContractSpec, s: Session, end: float, rth: bool) -> RawBar | None:
        if s.end > end:
            return self.session_bar(spec, s, end)  # today's bar so far
        key = (spec.con_id, s.trade_date, rth)
        if key not in self._daily:
            self._daily[key] = self.session_bar(spec, s, s.end)
        return self._daily[key]


def _group_periods(daily: list[RawBar], period: str) -> list[RawBar]:
    groups: dict[tuple[int, int], list[RawBar]] = {}
    for bar in daily:
        assert bar.label is not None
        if period == WEEK:
            iso = bar.label.isocalendar()
            key = (iso[0], iso[1])
        else:
            key = (bar.label.year, bar.label.month)
        groups.setdefault(key, []).append(bar)
    out = []
    for bars in groups.values():
        merged = combine(bars)
        assert merged is not None
        merged.label = bars[0].label
        out.append(merged)
    return out


def _find_csv(data_dir: Path, spec: ContractSpec) -> Path | None:
    for name in (spec.symbol, spec.local_symbol, spec.local_symbol.replace(".", "")):
        p = data_dir / f"{name}.csv"
        if p.exists():
            return p
    return None
