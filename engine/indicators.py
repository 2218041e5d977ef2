"""Incremental indicators: SMA, EMA, RSI and Bollinger bands, one value in, O(1) work per update.

Each indicator matches a pandas formulation exactly (up to float rounding), so a chart or a
notebook computed with pandas agrees with what the engine decided on:

- `SMA(n)`:            ``s.rolling(n).mean()``
- `EMA(n)`:            ``s.ewm(span=n, adjust=False, min_periods=n).mean()`` — seeded with the
                       first value (not with an SMA as TA-Lib does), reported once n values are in.
- `RSI(n)`:            Wilder's smoothing as commonly written in pandas::

                           delta = s.diff()
                           gain = delta.clip(lower=0).ewm(alpha=1/n, adjust=False, min_periods=n)
                           loss = (-delta).clip(lower=0).ewm(alpha=1/n, adjust=False, min_periods=n)
                           rsi = 100 - 100 / (1 + gain.mean() / loss.mean())

                       The averages are seeded with the first change (not Wilder's original
                       n-change average); the first value comes with the (n+1)-th price. One
                       deliberate difference: when nothing moved at all (both averages 0),
                       pandas says NaN and we say 50, the neutral reading.
- `BollingerBands(n, k)`: ``m = s.rolling(n).mean(); sd = s.rolling(n).std()`` (sample std,
                       ddof=1, pandas' default); bands ``m ± k·sd``.

`update(value)` returns the new value, or None while warming up; `value` and `ready` read the
current state. Inputs must be finite: one NaN would poison the running state for good, and the
market data layer drops bad bars before they get here, so a NaN arriving is a bug to surface.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field

_isfinite = math.isfinite  # a global's lookup, not a module attribute's, in hot paths


def _check_period(period: int, minimum: int) -> None:
    if isinstance(period, bool) or not isinstance(period, int) or period < minimum:
        raise ValueError(f"period must be an integer ≥ {minimum}, got {period!r}")


def _check_finite(value: float) -> float:
    if not math.isfinite(value):
        raise ValueError(f"indicator input must be a finite number, got {value!r}")
    return value


class _RollingStats:
    """Mean and sum of squared deviations over the last `period` values.

    Updates use Welford's add/replace formulas, which stay accurate when the mean is large
    compared with the spread (prices), unlike a running sum of squares. Rounding errors of
    running updates still accumulate, and a huge value leaving the window can leave an error
    larger than the remaining values; so every `period` replacements the window is summed
    again exactly. That costs O(period) once per period: amortized O(1), and the error never
    outlives one window.
    """

    __slots__ = ("_m2", "_mean", "_replacements", "_window", "period")

    def __init__(self, period: int) -> None:
        self.period = period
        self._window: deque[float] = deque(maxlen=period)
        self._mean = 0.0
        self._m2 = 0.0
        self._replacements = 0

    @property
    def full(self) -> bool:
        return len(self._window) == self.period

    @property
    def mean(self) -> float:
        return self._mean

    def variance(self, ddof: int) -> float:
        # Rounding can push m2 a hair below zero for a flat window; a variance never is.
        return max(self._m2, 0.0) / (len(self._window) - ddof)

    def push(self, x: float) -> None:
        # len() rather than `full`: this runs for every bar of every backtest.
        if len(self._window) < self.period:
            self._window.append(x)
            delta = x - self._mean
            self._mean += delta / len(self._window)
            self._m2 += delta * (x - self._mean)
            return
        old = self._window[0]
        self._window.append(x)  # maxlen drops `old`
        old_mean = self._mean
        self._mean += (x - old) / self.period
        self._m2 += (x - old) * (x - self._mean + old - old_mean)
        self._replacements += 1
        if self._replacements >= self.period:
            self._resum()

    def _resum(self) -> None:
        self._mean = math.fsum(self._window) / self.period
        self._m2 = math.fsum((v - self._mean) ** 2 for v in self._window)
        self._replacements = 0


@dataclass(slots=True)
class SMA:
    """Simple moving average of the last `period` values.

    The mean is kept as `_RollingStats` keeps it (the same operations, so the same floats),
    without the squared deviations an average does not need: this is the hot path of every
    SMA strategy, live and backtested.
    """

    period: int
    _window: deque[float] = field(init=False, repr=False)
    _mean: float = field(default=0.0, init=False, repr=False)
    _replacements: int = field(default=0, init=False, repr=False)

    def __post_init__(self) -> None:
        _check_period(self.period, minimum=1)
        self._window = deque(maxlen=self.period)

    @property
    def warmup(self) -> int:
        """Updates needed before the first value."""
        return self.period

    @property
    def ready(self) -> bool:
        return len(self._window) == self.period

    @property
    def value(self) -> float | None:
        return self._mean if len(self._window) == self.period else None

    def update(self, value: float) -> float | None:
        if not _isfinite(value):
            _check_finite(value)
        window = self._window
        period = self.period
        if len(window) < period:
            window.append(value)
            self._mean += (value - self._mean) / len(window)
            return self._mean if len(window) == period else None
        old = window[0]
        window.append(value)  # maxlen drops `old`
        replacements = self._replacements + 1
        if replacements < period:
            self._replacements = replacements
            self._mean = mean = self._mean + (value - old) / period
            return mean
        # Re-summed exactly once a window, as _RollingStats does.
        self._replacements = 0
        self._mean = mean = math.fsum(window) / period
        return mean


@dataclass(slots=True)
class EMA:
    """Exponential moving average, alpha = 2 / (period + 1), seeded with the first value."""

    period: int
    _ema: float = field(default=0.0, init=False, repr=False)
    _count: int = field(default=0, init=False, repr=False)

    def __post_init__(self) -> None:
        _check_period(self.period, minimum=1)

    @property
    def alpha(self) -> float:
        return 2.0 / (self.period + 1)

    @property
    def warmup(self) -> int:
        return self.period

    @property
    def ready(self) -> bool:
        return self._count >= self.period

    @property
    def value(self) -> float | None:
        return self._ema if self.ready else None

    def update(self, value: float) -> float | None:
        _check_finite(value)
        # Counted even once ready: cheap, and saturating it would only add a branch.
        self._count += 1
        if self._count == 1:
            self._ema = value
        else:
            self._ema += self.alpha * (value - self._ema)
        return self.value


@dataclass(slots=True)
class RSI:
    """Relative strength index with Wilder's smoothing (alpha = 1 / period); see module doc."""

    period: int
    _previous: float | None = field(default=None, init=False, repr=False)
    _avg_gain: float = field(default=0.0, init=False, repr=False)
    _avg_loss: float = field(default=0.0, init=False, repr=False)
    _changes: int = field(default=0, init=False, repr=False)

    def __post_init__(self) -> None:
        _check_period(self.period, minimum=1)

    @property
    def warmup(self) -> int:
        # n changes need n + 1 prices.
        return self.period + 1

    @property
    def ready(self) -> bool:
        return self._changes >= self.period

    @property
    def value(self) -> float | None:
        if not self.ready:
            return None
        total = self._avg_gain + self._avg_loss
        if total == 0.0:
            return 50.0
        return 100.0 * self._avg_gain / total

    def update(self, value: float) -> float | None:
        _check_finite(value)
        previous, self._previous = self._previous, value
        if previous is None:
            return None
        change = value - previous
        gain = change if change > 0.0 else 0.0
        loss = -change if change < 0.0 else 0.0
        self._changes += 1
        if self._changes == 1:
            self._avg_gain, self._avg_loss = gain, loss
        else:
            alpha = 1.0 / self.period
            self._avg_gain += alpha * (gain - self._avg_gain)
            self._avg_loss += alpha * (loss - self._avg_loss)
        return self.value


@dataclass(frozen=True, slots=True)
class Bands:
    """Bollinger bands at one point: the SMA and the SMA ± k sample standard deviations."""

    lower: float
    middle: float
    upper: float


@dataclass(slots=True)
class BollingerBands:
    """Bollinger bands over `period` values, `k` sample standard deviations (ddof=1) wide.

    `update` returns `Bands` rather than a float: a band indicator has three values, and a
    caller choosing one of them by name reads better than by position.
    """

    period: int = 20
    k: float = 2.0
    _stats: _RollingStats = field(init=False, repr=False)

    def __post_init__(self) -> None:
        # A sample standard deviation needs two values.
        _check_period(self.period, minimum=2)
        if not (math.isfinite(self.k) and self.k > 0):
            raise ValueError(f"k must be a positive number, got {self.k!r}")
        self._stats = _RollingStats(self.period)

    @property
    def warmup(self) -> int:
        return self.period

    @property
    def ready(self) -> bool:
        return self._stats.full

    @property
    def std(self) -> float | None:
        return math.sqrt(self._stats.variance(ddof=1)) if self._stats.full else None

    @property
    def value(self) -> Bands | None:
        if not self._stats.full:
            return None
        middle = self._stats.mean
        width = self.k * math.sqrt(self._stats.variance(ddof=1))
        return Bands(lower=middle - width, middle=middle, upper=middle + width)

    def update(self, value: float) -> Bands | None:
        self._stats.push(_check_finite(value))
        return self.value
