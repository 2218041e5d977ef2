"""Option chains on the universe's stocks, and their prices as paths derived from the
underlying's path through the model in `option_pricing`.

A stock's chain: the next four Friday weeklies and the next three monthly (third-Friday)
expiries after the listing day, each with about ±15 strikes around the stock's price on that
day (step 1 below 25, 2.5 below 100, 5 below 500, 10 above), calls and puts; multiplier 100,
SMART, tradingClass the symbol, localSymbol in OCC form (``AAPL  240315C00190000``).
"""

from __future__ import annotations

import datetime as dt
import math
import zlib
from collections.abc import Callable, Container, Iterator
from zoneinfo import ZoneInfo

import numpy as np

from . import option_pricing as model
from .contracts import ContractSpec, third_friday
from .pricepath import STEP, STEPS_PER_DAY, PathSource, Steps
from .sessions import sessions_between

WEEKLIES = 4
MONTHLIES = 3
STRIKES_EACH_SIDE = 15
MULTIPLIER = 100
SPREAD = 0.02  # bid/ask: 2% of the option's price at listing, at least one tick
EXPIRY_CLOSE = dt.time(16, 0)
OPTION_EXCHANGES = "SMART,AMEX,CBOE,PHLX,PSE,ISE,BOX,BATS,NASDAQOM,CBOE2,MIAX,EDGX,IBUSOPT"
_COARSE = 60  # steps between model prices outside the sessions (5 minutes)
_VOLUME_SHARE = 0.002  # contracts per step per share of the underlying's step volume


def expiries(today: dt.date) -> list[dt.date]:
    """The next ``WEEKLIES`` Fridays and ``MONTHLIES`` third Fridays after ``today``."""
    first_friday = today + dt.timedelta(days=(4 - today.weekday()) % 7 or 7)
    out = {first_friday + dt.timedelta(weeks=i) for i in range(WEEKLIES)}
    year, month, monthly = today.year, today.month, 0
    while monthly < MONTHLIES:
        third = third_friday(year, month)
        if third > today:
            out.add(third)
            monthly += 1
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return sorted(out)


def strike_step(spot: float) -> float:
    if spot < 25:
        return 1.0
    if spot < 100:
        return 2.5
    if spot < 500:
        return 5.0
    return 10.0


def strikes(spot: float) -> list[float]:
    step = strike_step(spot)
    atm = round(spot / step) * step
    around = (atm + i * step for i in range(-STRIKES_EACH_SIDE, STRIKES_EACH_SIDE + 1))
    return [round(k, 2) for k in around if k > 0]


def occ_symbol(symbol: str, expiry: dt.date, right: str, strike: float) -> str:
    return f"{symbol:<6}{expiry:%y%m%d}{right}{round(strike * 1000):08d}"


def expiry_close(expiry: dt.date, time_zone: str) -> float:
    return dt.datetime.combine(expiry, EXPIRY_CLOSE, ZoneInfo(time_zone)).timestamp()


def option_chain(
    under: ContractSpec,
    spot: float,
    today: dt.date,
    now: float,
    taken: Container[int],
    only: Container[dt.date] | None = None,
) -> list[ContractSpec]:
    """The chain listed on ``today`` for a stock at ``spot`` (at simulated epoch ``now``), or
    its expiries in ``only``; conIds are deterministic and avoid ``taken``."""
    out: list[ContractSpec] = []
    used: set[int] = set()
    for expiry in expiries(today):
        if only is not None and expiry not in only:
            continue
        for strike in strikes(spot):
            for right in ("C", "P"):
                local = occ_symbol(under.symbol, expiry, right, strike)
                con_id = 1_000_000_000 + zlib.crc32(local.encode()) % 1_000_000_000
                while con_id in taken or con_id in used:
                    con_id += 1
                used.add(con_id)
                out.append(option_spec(under, expiry, strike, right, con_id, spot, now))
    return out


def option_spec(
    under: ContractSpec,
    expiry: dt.date,
    strike: float,
    right: str,
    con_id: int,
    spot: float,
    now: float,
) -> ContractSpec:
    """One option; its spread is set by the model's price at ``spot`` and ``now``."""
    closes = expiry_close(expiry, under.time_zone)
    years = (closes - now) / model.YEAR
    sigma = model.surface_vol(model.sigma_atm(under.daily_vol), spot, strike, years)
    ref = max(0.01, model.price(right, spot, strike, years, sigma))
    return ContractSpec(
        symbol=under.symbol, sec_type="OPT", exchange="SMART", primary_exchange="",
        currency=under.currency, con_id=con_id, min_tick=0.01, long_name=under.long_name,
        schedule_name=under.schedule_name, base_price=round(ref, 2), daily_volume=0.0,
        daily_vol=under.daily_vol, spread_ticks=max(1, round(SPREAD * ref / 0.01)),
        local_symbol=occ_symbol(under.symbol, expiry, right, strike),
        trading_class=under.symbol, multiplier=str(MULTIPLIER),
        last_trade_date=f"{expiry:%Y%m%d}", contract_month=f"{expiry:%Y%m}",
        valid_exchanges=OPTION_EXCHANGES, order_types="LMT,MKT,STP,STP LMT",
        industry=under.industry, market_rule_id=32, strike=strike, right=right,
        under_con_id=under.con_id, under_symbol=under.symbol, under_sec_type=under.sec_type,
        expires_at=closes,
    )  # fmt: skip


def from_occ(under: ContractSpec, local_symbol: str, con_id: int, now: float) -> ContractSpec:
    """The option an OCC symbol names (a saved position's, when the chain no longer lists it)."""
    expiry = dt.datetime.strptime(local_symbol[6:12], "%y%m%d").date()
    right, strike = local_symbol[12], int(local_symbol[13:]) / 1000
    return option_spec(under, expiry, strike, right, con_id, strike, now)


def years_left(spec: ContractSpec, t: float) -> float:
    return (spec.expires_at - t) / model.YEAR


def model_price(spec: ContractSpec, spot, t):
    """The model's price of the option with the underlying at ``spot`` at epoch ``t``."""
    years = years_left(spec, t)
    sigma = model.surface_vol(model.sigma_atm(spec.daily_vol), spot, spec.strike, years)
    return model.price(spec.right, spot, spec.strike, years, sigma)


def greeks_at(
    spec: ContractSpec, spot: float, t: float, bid: float, ask: float, last: float
) -> Iterator[tuple[int, model.Greeks]]:
    """IB's option computations (tick type, values): 10 bid, 11 ask, 12 last, 13 model. The
    bid's, ask's and last's implied volatility is the one that prices them; their Greeks are
    taken at that volatility. Nothing once expired."""
    years = years_left(spec, t)
    if years <= 0:
        return
    sigma = model.surface_vol(model.sigma_atm(spec.daily_vol), spot, spec.strike, years)
    for tick_type, quoted in ((10, bid), (11, ask), (12, last)):
        iv = model.implied_vol(spec.right, quoted, spot, spec.strike, years) if quoted > 0 else None
        g = model.greeks(spec.right, spot, spec.strike, years, iv or sigma)
        yield (
            tick_type,
            model.Greeks(
                iv if iv is not None else -1.0, g.delta, quoted, g.gamma, g.vega, g.theta, spot
            ),
        )
    yield 13, model.greeks(spec.right, spot, spec.strike, years, sigma)


class OptionPath(PathSource):
    """An option's steps: the model's price at each step of the underlying's path (open,
    close, and the underlying's extremes for high and low), on the option's tick grid."""

    def __init__(self, spec: ContractSpec, under: ContractSpec,
                 under_chunk: Callable[[int], Steps], under_first: float) -> None:  # fmt: skip
        super().__init__(spec)
        self.under = under
        self._under_chunk = under_chunk
        self._first = under_first

    def first_time(self) -> float:
        return self._first

    def chunk(self, day: int) -> Steps:
        u = self._under_chunk(day)
        spec, tick = self.spec, self.under.min_tick
        t0 = day * 86400.0
        t = t0 + np.arange(STEPS_PER_DAY) * float(STEP)
        floor = max(1, spec.spread_ticks // 2)
        # The model runs on every step of a session and every ``_COARSE`` steps outside (nothing
        # trades or streams there: marks and history read the sessions); others hold the last.
        index = np.arange(STEPS_PER_DAY)
        computed = index % _COARSE == 0
        for s in sessions_between(self.under.schedule, t0, t0 + 86400.0, False):
            a = max(0, int((s.start - t0) // STEP))
            computed[a : min(STEPS_PER_DAY, math.ceil((s.end - t0) / STEP))] = True
        at = np.flatnonzero(computed)
        held = np.maximum.accumulate(np.where(computed, index, 0))

        def ticks(under_ticks: np.ndarray, when: np.ndarray) -> np.ndarray:
            spot = np.maximum(under_ticks[at], 1) * tick
            value = np.asarray(model_price(spec, spot, when[at]))
            full = np.empty(STEPS_PER_DAY, dtype=np.int64)
            full[at] = np.maximum(np.rint(value / spec.min_tick).astype(np.int64), floor)
            return full[held]

        opens = ticks(u.open, t)
        closes = ticks(u.close, t + STEP)
        a, b = ticks(u.high, t), ticks(u.low, t)
        high = np.maximum.reduce([opens, closes, a, b])
        low = np.minimum.reduce([opens, closes, a, b])
        volume = np.maximum(np.round(u.volume * _VOLUME_SHARE), 5.0)
        return Steps(opens, high, low, closes, volume, u.valid.copy())
