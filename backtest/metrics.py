"""A backtest's numbers: returns, risk-adjusted returns, drawdown, and the round-trip trades.

Conventions (stated once, used everywhere):

- Equity is marked at every bar's close; the series starts with the initial cash.
- Returns are the bar-to-bar changes of equity. Sharpe is mean / standard deviation (ddof=1)
  of those returns, Sortino mean / downside deviation (root mean square of the returns below 0,
  over all bars), both with a risk-free rate of 0 and annualised by √(periods per year).
- Periods per year come from the bar size as the data shows it: bars per trading day (the
  median number of bars on a UTC date with bars) × trading days per year (252, or 365 when the
  data has weekend bars: crypto). Daily stock bars give 252; 1-minute bars of a 6.5-hour
  session give 252 × 390.
- CAGR compounds the total return over the calendar time from the first bar's start to the last
  bar's close (365.25 days a year).
- A trade is a round trip: from a fill that opens a position from flat to the fill that brings it
  back to flat (a reversal closes one trade and opens the next). Its PnL is net of the
  commissions of its fills.
- Exposure is the share of bars that closed with a position.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import timedelta

import numpy as np
import pandas as pd

from engine.domain import Fill

TRADING_DAYS = 252
CALENDAR_DAYS = 365
YEAR = timedelta(days=365.25)


@dataclass(frozen=True, slots=True)
class Summary:
    start: pd.Timestamp
    end: pd.Timestamp
    bars: int
    initial_equity: float
    final_equity: float
    total_return: float
    cagr: float | None
    sharpe: float | None
    sortino: float | None
    max_drawdown: float  # a fraction of the peak, ≥ 0
    max_drawdown_duration: timedelta  # from the peak to the recovery (or the end)
    trades: int
    win_rate: float | None
    profit_factor: float | None  # gross profit / gross loss; inf with no losing trade
    average_trade: float | None
    exposure: float
    commissions: float
    periods_per_year: float


def periods_per_year(times: pd.DatetimeIndex) -> float:
    """Bars a year, from the bars' own rhythm (see the module's conventions)."""
    if len(times) == 0:
        return float(TRADING_DAYS)
    days = times.normalize()
    per_day = float(np.median(pd.Series(1, index=days).groupby(level=0).size()))
    weekend = bool((times.day_of_week >= 5).any())
    return (CALENDAR_DAYS if weekend else TRADING_DAYS) * per_day


def round_trips(fills: list[Fill]) -> list[float]:
    """Each round trip's PnL net of commissions (fills in time order, one symbol)."""
    trades: list[float] = []
    position = 0.0
    pnl = 0.0
    for fill in fills:
        signed = fill.side.sign * fill.quantity
        after = position + signed
        pnl += fill.realized_pnl or 0.0  # realized PnL already net of this fill's commission
        flipped = position != 0 and after != 0 and (after > 0) != (position > 0)
        if abs(after) < 1e-9 or flipped:
            trades.append(pnl)
            pnl = 0.0
            after = 0.0 if abs(after) < 1e-9 else after
        position = after
    return trades


def summarize(
    bar_times: pd.DatetimeIndex,
    bar_seconds: int,
    equity: np.ndarray,
    position: np.ndarray,
    initial_equity: float,
    trades: list[float],
    commissions: float,
    ppy: float,
) -> Summary:
    """The summary of bars `bar_times` (their starts) with `equity` and `position` at each
    close, starting from `initial_equity`."""
    close = pd.Timedelta(seconds=bar_seconds)
    marks = np.concatenate(([initial_equity], equity))
    mark_times = bar_times.insert(0, bar_times[0] - close) + close  # first: the first start
    final = float(marks[-1])
    total_return = final / initial_equity - 1
    elapsed = (mark_times[-1] - mark_times[0]).to_pytimedelta()
    years = elapsed / YEAR
    cagr = (final / initial_equity) ** (1 / years) - 1 if years > 0 and final > 0 else None

    returns = np.diff(marks) / marks[:-1]
    sharpe = sortino = None
    if len(returns) >= 2:
        sd = float(np.std(returns, ddof=1))
        mean = float(np.mean(returns))
        if sd > 0:
            sharpe = mean / sd * math.sqrt(ppy)
        downside = math.sqrt(float(np.mean(np.minimum(returns, 0.0) ** 2)))
        if downside > 0:
            sortino = mean / downside * math.sqrt(ppy)

    drawdown, duration = _drawdown(marks, mark_times)
    wins = [t for t in trades if t > 0]
    losses = [t for t in trades if t < 0]
    gross_loss = -sum(losses)
    return Summary(
        start=bar_times[0], end=bar_times[-1] + close, bars=len(bar_times),
        initial_equity=initial_equity, final_equity=final, total_return=total_return,
        cagr=cagr, sharpe=sharpe, sortino=sortino, max_drawdown=drawdown,
        max_drawdown_duration=duration, trades=len(trades),
        win_rate=len(wins) / len(trades) if trades else None,
        profit_factor=(sum(wins) / gross_loss if gross_loss else math.inf) if trades else None,
        average_trade=sum(trades) / len(trades) if trades else None,
        exposure=float(np.mean(np.abs(position) > 1e-9)) if len(position) else 0.0,
        commissions=commissions, periods_per_year=ppy,
    )


def _drawdown(marks: np.ndarray, times: pd.DatetimeIndex) -> tuple[float, timedelta]:
    """The deepest fall from a peak (a fraction), and the longest time below a peak."""
    peaks = np.maximum.accumulate(marks)
    depth = float(np.max(1 - marks / peaks))
    below = marks < peaks
    if not below.any():
        return depth, timedelta(0)
    # Runs of bars below the peak: each starts one mark after its peak and ends at the
    # recovering mark (or the last one).
    edges = np.diff(np.concatenate(([0], below.astype(np.int8), [0])))
    starts = np.flatnonzero(edges == 1)
    ends = np.flatnonzero(edges == -1)  # the first mark back at the peak (may be len(marks))
    ends = np.minimum(ends, len(marks) - 1)
    longest = max(times[e] - times[s - 1] for s, e in zip(starts, ends, strict=True))
    return depth, longest.to_pytimedelta()
