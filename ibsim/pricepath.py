"""Price paths: one deterministic 5-second step series per symbol, built lazily by UTC day.

Every bar the simulator serves (history, real-time bars, keepUpToDate updates, quotes and
fills) is derived from these steps, so history and live data are one consistent path.

Synthetic paths are hierarchical so any day can be built without its predecessors: a daily
mean-reverting walk of the log price anchors each UTC midnight, and a Brownian bridge seeded
by (seed, symbol, day) fills the 17,280 steps in between. Prices are integers in ticks.
"""

from __future__ import annotations

import datetime as dt
import math
import zlib
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np

from .contracts import ContractSpec
from .sessions import session_for

STEP = 5  # seconds per step: IB's real-time bar size and the simulator's resolution
STEPS_PER_DAY = 86400 // STEP
_ANCHOR_DAY0 = (dt.date(2015, 1, 1) - dt.date(1970, 1, 1)).days
_ANCHOR_BLOCK = 1024
_MEAN_REVERSION = 0.02  # per day, keeps a synthetic price within ~±10-20% of its base


@dataclass(slots=True)
class Steps:
    """A run of consecutive 5-second steps (prices in ticks)."""

    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    volume: np.ndarray
    valid: np.ndarray  # False where there is no data (before a replay starts, ...)

    def __len__(self) -> int:
        return len(self.open)

    def slice(self, a: int, b: int) -> Steps:
        return Steps(
            self.open[a:b],
            self.high[a:b],
            self.low[a:b],
            self.close[a:b],
            self.volume[a:b],
            self.valid[a:b],
        )

    @staticmethod
    def concat(parts: list[Steps]) -> Steps:
        if len(parts) == 1:
            return parts[0]
        return Steps(*(np.concatenate([getattr(p, f) for p in parts]) for f in Steps.__slots__))


def _symbol_key(symbol: str) -> int:
    return zlib.crc32(symbol.encode())


class PathSource:
    """Base class: produces the steps of one UTC day (chunk) for one contract."""

    def __init__(self, spec: ContractSpec) -> None:
        self.spec = spec

    def chunk(self, day: int) -> Steps:
        raise NotImplementedError

    def first_time(self) -> float:
        """Earliest time with data."""
        raise NotImplementedError


def steps_per_session(spec: ContractSpec) -> int:
    s = session_for(spec.schedule, dt.date(2024, 1, 3), False)  # a plain Wednesday
    assert s is not None
    return max(1, int((s.end - s.start) // STEP))


class SyntheticPath(PathSource):
    """Seeded random walk on the tick grid with a realistic spread and volume."""

    def __init__(self, spec: ContractSpec, seed: int) -> None:
        super().__init__(spec)
        self._key = [seed, _symbol_key(spec.symbol)]
        self._anchors = np.zeros(0)
        self._step_volume = spec.daily_volume / steps_per_session(spec)
        self._lot = spec.size_increment

    def first_time(self) -> float:
        return _ANCHOR_DAY0 * 86400.0

    def _anchor(self, day: int) -> float:
        """Log price relative to the base at 00:00 UTC of ``day`` (days since 1970)."""
        i = day - _ANCHOR_DAY0
        while i >= len(self._anchors):
            block = len(self._anchors) // _ANCHOR_BLOCK
            rng = np.random.default_rng([*self._key, 1 << 40, block])
            shocks = rng.standard_normal(_ANCHOR_BLOCK) * self.spec.daily_vol
            x = self._anchors[-1] if len(self._anchors) else 0.0
            out = np.empty(_ANCHOR_BLOCK)
            for j, shock in enumerate(shocks.tolist()):
                x = x * (1.0 - _MEAN_REVERSION) + shock
                out[j] = x
            self._anchors = np.concatenate([self._anchors, out])
        return float(self._anchors[i]) if i >= 0 else 0.0

    def chunk(self, day: int) -> Steps:
        n = STEPS_PER_DAY
        if day < _ANCHOR_DAY0:
            zeros = np.zeros(n, dtype=np.int64)
            return Steps(zeros, zeros, zeros, zeros, np.zeros(n), np.zeros(n, dtype=bool))
        spec = self.spec
        rng = np.random.default_rng([*self._key, day])
        sigma = spec.daily_vol / math.sqrt(n)
        walk = np.empty(n + 1)
        walk[0] = 0.0
        np.cumsum(rng.standard_normal(n) * sigma, out=walk[1:])
        frac = np.arange(n + 1) / n
        x0, x1 = self._anchor(day), self._anchor(day + 1)
        log_price = math.log(spec.base_price) + x0 + (x1 - x0) * frac + (walk - frac * walk[-1])
        points = np.rint(np.exp(log_price) / spec.min_tick).astype(np.int64)
        points = np.maximum(points, 1)
        opens, closes = points[:-1], points[1:]
        # Wicks: how far a step trades beyond its open/close, in ticks.
        scale = np.exp(log_price[:-1]) * sigma / spec.min_tick * 0.6
        high = np.maximum(opens, closes) + np.rint(np.abs(rng.standard_normal(n)) * scale).astype(
            np.int64
        )
        low = np.minimum(opens, closes) - np.rint(np.abs(rng.standard_normal(n)) * scale).astype(
            np.int64
        )
        low = np.maximum(low, 1)
        volume = self._step_volume * np.exp(rng.standard_normal(n) * 0.6 - 0.18)
        volume = np.maximum(np.round(volume / self._lot), 1.0) * self._lot
        return Steps(opens, high, low, closes, volume, np.ones(n, dtype=bool))


class ReplayPath(PathSource):
    """Replays CSV bars (``datetime,open,high,low,close,volume``) as 5-second steps.

    Each bar is spread over its steps as open -> first extreme -> second extreme -> close, so
    re-aggregating the steps gives the bar back. A naive datetime is in the contract's time
    zone. Bars of a day or longer are spread over that date's trading session.
    """

    def __init__(self, spec: ContractSpec, csv_path: Path) -> None:
        super().__init__(spec)
        import pandas as pd

        frame = pd.read_csv(csv_path)
        frame.columns = [c.strip().lower() for c in frame.columns]
        missing = {"datetime", "open", "high", "low", "close", "volume"} - set(frame.columns)
        if missing:
            raise ValueError(f"{csv_path}: missing columns {sorted(missing)}")
        times = pd.to_datetime(frame["datetime"])
        if times.dt.tz is None:
            times = times.dt.tz_localize(ZoneInfo(spec.time_zone))
        frame = frame.assign(t=times.dt.tz_convert("UTC")).sort_values("t")
        self._t = frame["t"].map(lambda x: x.timestamp()).to_numpy(dtype=float)
        if len(self._t) == 0:
            raise ValueError(f"{csv_path}: no bars")
        tick = spec.min_tick
        self._o = np.rint(frame["open"].to_numpy(float) / tick).astype(np.int64)
        self._h = np.rint(frame["high"].to_numpy(float) / tick).astype(np.int64)
        self._l = np.rint(frame["low"].to_numpy(float) / tick).astype(np.int64)
        self._c = np.rint(frame["close"].to_numpy(float) / tick).astype(np.int64)
        self._v = frame["volume"].to_numpy(float)
        diffs = np.diff(self._t)
        self._bar_seconds = float(np.median(diffs)) if len(diffs) else 60.0
        self._bar_seconds = max(STEP, self._bar_seconds)

    def first_time(self) -> float:
        return float(self._t[0])

    def _bar_span(self, i: int) -> tuple[float, float]:
        start = float(self._t[i])
        if self._bar_seconds >= 86400:
            date = dt.datetime.fromtimestamp(start, ZoneInfo(self.spec.time_zone)).date()
            s = session_for(self.spec.schedule, date, False)
            if s is not None:
                return s.start, s.end
        return start, start + self._bar_seconds

    def chunk(self, day: int) -> Steps:
        n = STEPS_PER_DAY
        t0 = day * 86400.0
        t1 = t0 + 86400.0
        # Before the first bar there is no data; between bars the price holds the last close.
        before = int(np.searchsorted(self._t, t0 - 2 * max(self._bar_seconds, 86400), "left"))
        hold = 0
        points_o = np.zeros(n, dtype=np.int64)
        valid = np.zeros(n, dtype=bool)
        high = np.zeros(n, dtype=np.int64)
        low = np.zeros(n, dtype=np.int64)
        close = np.zeros(n, dtype=np.int64)
        volume = np.zeros(n)
        filled_upto = 0
        i = before
        while i < len(self._t):
            a, b = self._bar_span(i)
            if a >= t1:
                break
            if b <= t0:
                hold = int(self._c[i])
                i += 1
                continue
            ka = max(0, int((a - t0) // STEP))
            kb = min(n, math.ceil((b - t0) / STEP))
            if hold and ka > filled_upto:
                points_o[filled_upto:ka] = hold
                close[filled_upto:ka] = hold
                high[filled_upto:ka] = hold
                low[filled_upto:ka] = hold
                valid[filled_upto:ka] = True
            full = max(1, math.ceil((b - a) / STEP))
            self._spread(i, full, int((t0 - a) // STEP) if a < t0 else 0, ka, kb,
                         points_o, high, low, close, volume, valid)  # fmt: skip
            hold = int(self._c[i])
            filled_upto = kb
            i += 1
        if hold and filled_upto < n and i > 0 and self._t[min(i, len(self._t)) - 1] < t1:
            points_o[filled_upto:] = hold
            close[filled_upto:] = hold
            high[filled_upto:] = hold
            low[filled_upto:] = hold
            valid[filled_upto:] = True
        return Steps(points_o, high, low, close, volume, valid)

    def _spread(self, i, full, skip, ka, kb, o_arr, h_arr, l_arr, c_arr, v_arr, valid) -> None:
        o, h, lo, c = int(self._o[i]), int(self._h[i]), int(self._l[i]), int(self._c[i])
        first, second = (lo, h) if c >= o else (h, lo)
        if full < 3:
            pts = np.array([o] + [c] * full, dtype=float)
            step_o, step_c = pts[:-1], pts[1:]
            step_h = np.maximum(step_o, step_c)
            step_l = np.minimum(step_o, step_c)
            step_h[0], step_l[0] = h, lo
        else:
            xs = [0, max(1, full // 3), max(2, 2 * full // 3), full]
            pts = np.interp(np.arange(full + 1), xs, [o, first, second, c])
            pts = np.rint(pts)
            step_o, step_c = pts[:-1], pts[1:]
            step_h = np.maximum(step_o, step_c)
            step_l = np.minimum(step_o, step_c)
        sel = slice(skip, skip + (kb - ka))
        o_arr[ka:kb] = step_o[sel]
        c_arr[ka:kb] = step_c[sel]
        h_arr[ka:kb] = step_h[sel]
        l_arr[ka:kb] = step_l[sel]
        v_arr[ka:kb] = float(self._v[i]) / full
        valid[ka:kb] = True


class PathCache:
    """Bounded LRU of built day chunks across all symbols (memory stays flat for any history)."""

    def __init__(self, max_chunks: int = 96) -> None:
        self._chunks: OrderedDict[tuple[int, int], Steps] = OrderedDict()
        self._max = max_chunks

    def chunk(self, source: PathSource, day: int) -> Steps:
        key = (source.spec.con_id, day)
        hit = self._chunks.get(key)
        if hit is not None:
            self._chunks.move_to_end(key)
            return hit
        built = source.chunk(day)
        self._chunks[key] = built
        if len(self._chunks) > self._max:
            self._chunks.popitem(last=False)
        return built

    def steps(self, source: PathSource, k0: int, k1: int) -> Steps:
        """Steps with global indices k0 <= k < k1 (k = epoch seconds // 5)."""
        parts = []
        k = k0
        while k < k1:
            day, offset = divmod(k, STEPS_PER_DAY)
            end = min(k1, (day + 1) * STEPS_PER_DAY)
            parts.append(self.chunk(source, day).slice(offset, offset + (end - k)))
            k = end
        if not parts:
            empty_i = np.zeros(0, dtype=np.int64)
            return Steps(empty_i, empty_i, empty_i, empty_i, np.zeros(0), np.zeros(0, dtype=bool))
        return Steps.concat(parts)
