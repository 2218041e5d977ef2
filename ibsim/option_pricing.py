"""The option model: Black-Scholes prices and Greeks over a simple volatility surface.

European exercise, no dividends, a flat rate ``RATE`` (4%), time in calendar years
(``T = seconds to the expiry's close / 365 days``). The volatility surface is

    sigma(K, T) = max(SIGMA_FLOOR,
                      sigma_atm * (1 + SKEW * ln(S / K)) * (1 + TERM * ln(T_REF / max(T, 1 day))))

with ``sigma_atm = daily_vol * sqrt(252)`` of the underlying (AAPL's 1.8% a day: 28.6%),
``SKEW = 0.4`` (lower strikes richer: a put skew), ``TERM = 0.05`` (short expiries a little
richer than ``T_REF`` = three months, longer ones a little cheaper) and ``SIGMA_FLOOR = 5%``.

Greeks as IB shows them: delta and gamma per 1.00 of the underlying, vega per 1 volatility
point (1%), theta per calendar day.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

RATE = 0.04
YEAR = 365.0 * 86400.0
SKEW = 0.4
TERM = 0.05
T_REF = 0.25
SIGMA_FLOOR = 0.05
_MIN_T = 1.0 / 365.0


def sigma_atm(daily_vol: float) -> float:
    return daily_vol * math.sqrt(252.0)


def surface_vol(atm: float, spot, strike: float, t):
    """The surface's volatility at (strike, years to expiry) for an underlying at ``spot``;
    scalars or numpy arrays for spot and t."""
    skew = 1.0 + SKEW * np.log(np.asarray(spot, float) / strike)
    term = 1.0 + TERM * np.log(T_REF / np.maximum(np.asarray(t, float), _MIN_T))
    out = np.maximum(SIGMA_FLOOR, atm * skew * term)
    return float(out) if out.ndim == 0 else out


def _norm_cdf(x):
    return 0.5 * (1.0 + _erf(x / math.sqrt(2.0)))


def _erf(x):
    if not isinstance(x, np.ndarray):
        return math.erf(x)
    # Abramowitz-Stegun 7.1.26 for whole paths: an error under 1.5e-7, fast in numpy.
    sign = np.sign(x)
    a = np.abs(x)
    k = 1.0 / (1.0 + 0.3275911 * a)
    poly = k * (
        0.254829592 + k * (-0.284496736 + k * (1.421413741 + k * (-1.453152027 + k * 1.061405429)))
    )
    return sign * (1.0 - poly * np.exp(-a * a))


def _norm_pdf(x):
    return np.exp(-0.5 * x * x) / math.sqrt(2.0 * math.pi)


def price(right: str, spot, strike: float, t, sigma, rate: float = RATE):
    """Black-Scholes price; scalars or numpy arrays for spot, t and sigma. At or past expiry
    (t <= 0) the intrinsic value."""
    if not any(isinstance(x, np.ndarray) for x in (spot, t, sigma)):
        return _price_scalar(right, float(spot), strike, float(t), float(sigma), rate)
    spot_a, t_a, sigma_a = np.asarray(spot, float), np.asarray(t, float), np.asarray(sigma, float)
    payoff = spot_a - strike if right == "C" else strike - spot_a
    intrinsic = np.maximum(payoff, 0.0)
    live = t_a > 0
    tt = np.where(live, t_a, 1.0)
    vol_t = sigma_a * np.sqrt(tt)
    d1 = (np.log(spot_a / strike) + (rate + 0.5 * sigma_a**2) * tt) / vol_t
    d2 = d1 - vol_t
    disc = strike * np.exp(-rate * tt)
    if right == "C":
        value = spot_a * _norm_cdf(d1) - disc * _norm_cdf(d2)
    else:
        value = disc * _norm_cdf(-d2) - spot_a * _norm_cdf(-d1)
    out = np.where(live, np.maximum(value, 0.0), intrinsic)
    return float(out) if out.ndim == 0 else out


def _price_scalar(right: str, spot: float, strike: float, t: float, sigma: float,
                  rate: float) -> float:  # fmt: skip
    """The same for plain floats, with math (numpy's per-call cost would dominate)."""
    if t <= 0:
        return max(spot - strike, 0.0) if right == "C" else max(strike - spot, 0.0)
    vol_t = sigma * math.sqrt(t)
    d1 = (math.log(spot / strike) + (rate + 0.5 * sigma * sigma) * t) / vol_t
    d2 = d1 - vol_t
    disc = strike * math.exp(-rate * t)
    if right == "C":
        value = spot * _norm_cdf(d1) - disc * _norm_cdf(d2)
    else:
        value = disc * _norm_cdf(-d2) - spot * _norm_cdf(-d1)
    return max(value, 0.0)


@dataclass(slots=True, frozen=True)
class Greeks:
    implied_vol: float
    delta: float
    opt_price: float
    gamma: float
    vega: float  # per volatility point
    theta: float  # per calendar day
    und_price: float


def greeks(right: str, spot: float, strike: float, t: float, sigma: float,
           rate: float = RATE) -> Greeks:  # fmt: skip
    """Price and Greeks at one point (t > 0)."""
    t = max(t, 1e-9)
    vol_t = sigma * math.sqrt(t)
    d1 = (math.log(spot / strike) + (rate + 0.5 * sigma * sigma) * t) / vol_t
    d2 = d1 - vol_t
    pdf = math.exp(-0.5 * d1 * d1) / math.sqrt(2.0 * math.pi)
    disc = strike * math.exp(-rate * t)
    gamma = pdf / (spot * vol_t)
    vega = spot * pdf * math.sqrt(t) / 100.0
    decay = -spot * pdf * sigma / (2.0 * math.sqrt(t))
    if right == "C":
        delta = _norm_cdf(d1)
        theta = decay - rate * disc * _norm_cdf(d2)
    else:
        delta = _norm_cdf(d1) - 1.0
        theta = decay + rate * disc * _norm_cdf(-d2)
    value = price(right, spot, strike, t, sigma, rate)
    return Greeks(sigma, delta, value, gamma, vega, theta / 365.0, spot)


def implied_vol(right: str, target: float, spot: float, strike: float, t: float,
                rate: float = RATE) -> float | None:  # fmt: skip
    """The volatility at which the model gives ``target`` (bisection), or None when no
    volatility between 0.1% and 500% does (a price below intrinsic, say)."""
    lo, hi = 0.001, 5.0
    if t <= 0 or not price(right, spot, strike, t, lo, rate) <= target <= price(
        right, spot, strike, t, hi, rate
    ):
        return None
    for _ in range(60):
        mid = 0.5 * (lo + hi)
        if price(right, spot, strike, t, mid, rate) < target:
            lo = mid
        else:
            hi = mid
    return 0.5 * (lo + hi)
