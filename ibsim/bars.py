"""Bar arithmetic: IB bar-size and duration strings, and aggregation of 5-second steps."""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from zoneinfo import ZoneInfo

import numpy as np

from .pricepath import STEP, Steps

DAY, WEEK, MONTH = "day", "week", "month"

_UNITS = {"sec": 1, "secs": 1, "min": 60, "mins": 60, "hour": 3600, "hours": 3600}
_SUPPORTED_SECONDS = {5, 10, 15, 30, 60, 120, 180, 300, 600, 900, 1200, 1800, 3600, 7200,
                      10800, 14400, 28800}  # fmt: skip


class BarRequestError(ValueError):
    """A historical request IB would refuse (message goes into error 162/321)."""


@dataclass(frozen=True, slots=True)
class BarSize:
    """Either an intraday size in seconds, or one of DAY/WEEK/MONTH."""

    seconds: int = 0
    period: str = ""

    @property
    def intraday(self) -> bool:
        return self.seconds > 0


def parse_bar_size(text: str) -> BarSize:
    norm = " ".join(text.lower().split())
    m = re.fullmatch(r"(\d+)\s*(secs?|mins?|hours?|days?|weeks?|months?|[dwm])", norm)
    if not m:
        raise BarRequestError(f"Invalid bar size '{text}'")
    n, unit = int(m.group(1)), m.group(2)
    if unit in ("day", "days", "d"):
        if n != 1:
            raise BarRequestError(f"Invalid bar size '{text}'")
        return BarSize(period=DAY)
    if unit in ("week", "weeks", "w"):
        return BarSize(period=WEEK)
    if unit in ("month", "months", "m"):
        return BarSize(period=MONTH)
    seconds = n * _UNITS[unit]
    if seconds not in _SUPPORTED_SECONDS:
        raise BarRequestError(f"Invalid bar size '{text}' (ibsim serves 5 secs and coarser bars)")
    return BarSize(seconds=seconds)


@dataclass(frozen=True, slots=True)
class Duration:
    count: int
    unit: str  # S, D, W, M, Y


def parse_duration(text: str) -> Duration:
    m = re.fullmatch(r"\s*(\d+)\s*([SDWMY])\s*", text.upper())
    if not m or int(m.group(1)) <= 0:
        raise BarRequestError(f"Invalid duration format '{text}'")
    return Duration(int(m.group(1)), m.group(2))


def parse_end_time(text: str, default_tz: str) -> float | None:
    """IB endDateTime forms: "" (now), "yyyymmdd-hh:mm:ss" (UTC), "yyyymmdd hh:mm:ss[ TZ]",
    "yyyymmdd" (end of that day). Without a zone the time is in ``default_tz``."""
    s = text.strip()
    if not s:
        return None
    try:
        if re.fullmatch(r"\d{8}-\d{2}:\d{2}:\d{2}", s):
            naive = dt.datetime.strptime(s, "%Y%m%d-%H:%M:%S")
            return naive.replace(tzinfo=dt.UTC).timestamp()
        parts = s.split()
        if len(parts) == 1 and re.fullmatch(r"\d{8}", parts[0]):
            naive = dt.datetime.strptime(parts[0], "%Y%m%d") + dt.timedelta(days=1)
            return naive.replace(tzinfo=ZoneInfo(default_tz)).timestamp()
        naive = dt.datetime.strptime(parts[0] + " " + parts[1], "%Y%m%d %H:%M:%S")
        tz_name = parts[2] if len(parts) > 2 else default_tz
        tz = dt.UTC if tz_name.upper() in ("UTC", "GMT") else ZoneInfo(tz_name)
        return naive.replace(tzinfo=tz).timestamp()
    except (ValueError, KeyError, IndexError) as exc:
        raise BarRequestError(f"Invalid end date/time '{text}': {exc}") from None


def months_back(t: float, months: int, tz: str) -> float:
    local = dt.datetime.fromtimestamp(t, ZoneInfo(tz))
    y, m = divmod(local.year * 12 + local.month - 1 - months, 12)
    day = min(local.day, 28)
    return local.replace(year=y, month=m + 1, day=day).timestamp()


@dataclass(slots=True)
class RawBar:
    """An aggregated bar in ticks; ``start`` is epoch seconds, ``label`` a trade date for
    daily and longer bars."""

    start: float
    end: float
    open: float
    high: float
    low: float
    close: float
    volume: float
    wap: float  # in ticks, volume-weighted
    count: int
    label: dt.date | None = None

    def merge(self, other: RawBar) -> RawBar:
        """This bar extended by the later bar ``other``."""
        volume = self.volume + other.volume
        wap = (self.wap * self.volume + other.wap * other.volume) / volume if volume else other.wap
        return RawBar(
            self.start,
            other.end,
            self.open,
            max(self.high, other.high),
            min(self.low, other.low),
            other.close,
            volume,
            wap,
            self.count + other.count,
            self.label,
        )


def aggregate(steps: Steps, k0: int, seconds: int, offset: float, floor: float) -> list[RawBar]:
    """Group steps (global index k0 onwards) into bars aligned to local multiples of
    ``seconds`` (``offset`` = UTC offset in seconds), never starting before ``floor``."""
    idx = np.flatnonzero(steps.valid)
    if len(idx) == 0:
        return []
    t = (k0 + idx) * float(STEP)
    keys = np.floor((t + offset) / seconds)
    starts = np.concatenate(([0], np.flatnonzero(np.diff(keys)) + 1))
    ends = np.concatenate((starts[1:], [len(idx)])) - 1
    o = steps.open[idx]
    h = steps.high[idx]
    lo = steps.low[idx]
    c = steps.close[idx]
    v = steps.volume[idx]
    typical = (h + lo + c) / 3.0
    vol = np.add.reduceat(v, starts)
    pv = np.add.reduceat(v * typical, starts)
    highs = np.maximum.reduceat(h, starts)
    lows = np.minimum.reduceat(lo, starts)
    counts = np.diff(np.concatenate((starts, [len(idx)])))
    out = []
    for j in range(len(starts)):
        bar_start = max(keys[starts[j]] * seconds - offset, floor)
        volume = float(vol[j])
        out.append(
            RawBar(
                start=float(bar_start),
                end=float(keys[starts[j]] * seconds - offset + seconds),
                open=float(o[starts[j]]),
                high=float(highs[j]),
                low=float(lows[j]),
                close=float(c[ends[j]]),
                volume=volume,
                wap=float(pv[j] / volume) if volume else float(c[ends[j]]),
                count=int(counts[j]),
            )
        )
    return out


def combine(bars: list[RawBar]) -> RawBar | None:
    if not bars:
        return None
    out = bars[0]
    for b in bars[1:]:
        out = out.merge(b)
    return out
