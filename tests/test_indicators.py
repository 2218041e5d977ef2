"""The incremental indicators against their pandas formulations, over short and very long runs."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable

import numpy as np
import pandas as pd
import pytest
from numpy.lib.stride_tricks import sliding_window_view

from engine.indicators import EMA, RSI, SMA, Bands, BollingerBands

LONG_RUN = 100_000


def prices(n: int, seed: int = 7, volatility: float = 0.01) -> np.ndarray:
    """A seeded geometric random walk from 100: positive, trending, like prices."""
    rng = np.random.default_rng(seed)
    return 100.0 * np.exp(np.cumsum(rng.normal(0.0, volatility, n)))


def feed(update: Callable[[float], float | None], values: Iterable[float]) -> np.ndarray:
    """Every value `update` returned, None as NaN, to line up with a pandas series."""
    return np.array([math.nan if (v := update(x)) is None else v for x in values])


def feed_bands(bands: BollingerBands, values: Iterable[float]) -> np.ndarray:
    """Rows of (lower, middle, upper), NaN while warming up."""
    rows = []
    for x in values:
        b = bands.update(x)
        rows.append((math.nan,) * 3 if b is None else (b.lower, b.middle, b.upper))
    return np.array(rows)


def pandas_rsi(s: pd.Series, n: int) -> pd.Series:
    delta = s.diff()
    gain = delta.clip(lower=0).ewm(alpha=1 / n, adjust=False, min_periods=n).mean()
    loss = (-delta).clip(lower=0).ewm(alpha=1 / n, adjust=False, min_periods=n).mean()
    return 100 - 100 / (1 + gain / loss)


def assert_same(ours: np.ndarray, theirs: np.ndarray | pd.Series, rtol: float = 1e-10) -> None:
    theirs = np.asarray(theirs, dtype=float)
    # Same warm-up: NaN exactly where pandas has NaN.
    np.testing.assert_array_equal(np.isnan(ours), np.isnan(theirs))
    np.testing.assert_allclose(ours, theirs, rtol=rtol, atol=0)


# --- equality with pandas -------------------------------------------------------------------


@pytest.mark.parametrize("period", [1, 2, 10, 30, 200])
def test_sma_equals_pandas_rolling_mean(period: int) -> None:
    x = prices(2_000)
    assert_same(feed(SMA(period).update, x), pd.Series(x).rolling(period).mean())


@pytest.mark.parametrize("period", [1, 2, 12, 26, 200])
def test_ema_equals_pandas_ewm_span(period: int) -> None:
    x = prices(2_000)
    expected = pd.Series(x).ewm(span=period, adjust=False, min_periods=period).mean()
    assert_same(feed(EMA(period).update, x), expected)


@pytest.mark.parametrize("period", [1, 2, 14, 50])
def test_rsi_equals_pandas_wilder(period: int) -> None:
    x = prices(2_000)
    assert_same(feed(RSI(period).update, x), pandas_rsi(pd.Series(x), period))


@pytest.mark.parametrize(("period", "k"), [(2, 1.0), (20, 2.0), (50, 2.5)])
def test_bollinger_equals_pandas_rolling_mean_and_sample_std(period: int, k: float) -> None:
    x = pd.Series(prices(2_000))
    mean, std = x.rolling(period).mean(), x.rolling(period).std()
    ours = feed_bands(BollingerBands(period, k), x)
    assert_same(ours[:, 0], mean - k * std)
    assert_same(ours[:, 1], mean)
    assert_same(ours[:, 2], mean + k * std)


def test_long_runs_do_not_drift() -> None:
    """After 100k updates every indicator still agrees with a fresh computation."""
    x = prices(LONG_RUN, seed=11, volatility=0.002)
    s = pd.Series(x)
    assert_same(feed(SMA(30).update, x), s.rolling(30).mean())
    assert_same(feed(EMA(30).update, x), s.ewm(span=30, adjust=False, min_periods=30).mean())
    assert_same(feed(RSI(14).update, x), pandas_rsi(s, 14))

    ours = feed_bands(BollingerBands(20, 2.0), x)
    ours_std = (ours[:, 2] - ours[:, 1]) / 2.0
    # pandas' rolling variance updates a running sum forever and drifts (~1e-8 relative after
    # 100k values here); the exact per-window two-pass std is the stricter reference.
    exact_std = sliding_window_view(x, 20).std(axis=1, ddof=1)
    np.testing.assert_allclose(ours_std[19:], exact_std, rtol=1e-10)
    assert_same(ours_std, s.rolling(20).std(), rtol=1e-7)
    assert_same(ours[:, 1], s.rolling(20).mean())


def test_sma_recovers_after_a_huge_value_leaves_the_window() -> None:
    # A running sum that only adds and subtracts keeps 1e15's rounding error forever.
    sma = SMA(3)
    for x in (1e15, 0.1, 0.2, 0.3, 0.4, 0.7, 0.1, 0.2):
        sma.update(x)
    assert sma.value == pytest.approx((0.7 + 0.1 + 0.2) / 3, rel=1e-12)



def test_sma_is_the_bollinger_middle_to_the_last_bit() -> None:
    """SMA keeps its mean with the same operations as the bands' rolling statistics (it only
    drops the squared deviations), so a faster SMA never moves a decision by a rounding."""
    x = prices(LONG_RUN, seed=12, volatility=0.002)
    x[5_000] *= 1e6  # a huge value entering and leaving the window: the exact re-sum path
    for period in (2, 10, 30):
        sma, bands = SMA(period), BollingerBands(period, 2.0)
        for value in x:
            mean = sma.update(value)
            middle = bands.update(value)
            assert mean == (None if middle is None else middle.middle)

# --- warm-up ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("indicator", "warmup"),
    [(SMA(5), 5), (EMA(5), 5), (RSI(5), 6), (BollingerBands(5, 2.0), 5)],
    ids=["sma", "ema", "rsi", "bollinger"],
)
def test_none_until_warmed_up(indicator: SMA | EMA | RSI | BollingerBands, warmup: int) -> None:
    assert indicator.warmup == warmup
    for i, x in enumerate(prices(warmup - 1), start=1):
        assert indicator.update(x) is None, f"value after {i} updates"
        assert not indicator.ready
        assert indicator.value is None
    result = indicator.update(101.0)
    assert result is not None
    assert indicator.ready
    assert indicator.value == result


@pytest.mark.parametrize(
    "make",
    [lambda: SMA(0), lambda: EMA(0), lambda: RSI(0), lambda: BollingerBands(1, 2.0)],
    ids=["sma", "ema", "rsi", "bollinger"],
)
def test_too_short_periods_are_refused(make: Callable[[], object]) -> None:
    with pytest.raises(ValueError, match="period"):
        make()


def test_bollinger_refuses_a_non_positive_k() -> None:
    with pytest.raises(ValueError, match="k must be"):
        BollingerBands(20, 0.0)


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_non_finite_input_is_refused_and_leaves_the_state_alone(bad: float) -> None:
    sma = SMA(2)
    sma.update(1.0)
    sma.update(3.0)
    with pytest.raises(ValueError, match="finite"):
        sma.update(bad)
    assert sma.value == 2.0


# --- edge values ------------------------------------------------------------------------------


def test_bollinger_on_a_flat_series_has_zero_width() -> None:
    bands = BollingerBands(5, 2.0)
    for _ in range(50):
        result = bands.update(100.1)
    assert result == Bands(lower=100.1, middle=100.1, upper=100.1)
    assert bands.std == 0.0


def test_rsi_extremes() -> None:
    rising, falling, flat = RSI(3), RSI(3), RSI(3)
    for i in range(10):
        rising.update(100.0 + i)
        falling.update(100.0 - i)
        flat.update(100.0)
    assert rising.value == 100.0
    assert falling.value == 0.0
    # pandas says NaN (0/0); no movement at all is neutral.
    assert flat.value == 50.0
