"""Matching: whether a working order trades against the market now, and at what price.

Pure price logic on one order and its contract: stops and trailing stops triggered (the order's
``triggered`` and ``trail_extreme`` are updated here), limits crossed, market orders taking the
touch. It decides prices only; how much trades, and booking the fill, are the broker's.
"""

from __future__ import annotations

from .contracts import ContractSpec
from .market import StepBar
from .orders import SimOrder

_EPS = 1e-9
_STOPS = ("STP", "STP LMT", "TRAIL")


def quote_price(order: SimOrder, spec: ContractSpec, p: int) -> float | None:
    """The price the order trades at against the quote around ``p`` (the price path, in ticks),
    or None when it is not marketable (or its stop is not hit)."""
    below = spec.spread_ticks // 2
    bid, ask = p - below, p - below + spec.spread_ticks
    tick = spec.min_tick
    if not _check_trigger(order, spec, p * tick):
        return None
    if _effective_type(order) == "MKT":
        return (ask if order.is_buy else bid) * tick
    limit = order.lmt_price / tick
    if order.is_buy and ask <= limit + _EPS:
        return ask * tick
    if not order.is_buy and bid >= limit - _EPS:
        return bid * tick
    return None


def bar_price(order: SimOrder, spec: ContractSpec, bar: StepBar) -> float | None:
    """The price a resting order trades at within a completed 5-second step's range, or None."""
    tick = spec.min_tick
    below = spec.spread_ticks // 2
    ask_off, bid_off = spec.spread_ticks - below, -below
    high, low, open_ = bar.high * tick, bar.low * tick, bar.open * tick
    if not order.triggered and order.order_type in _STOPS:
        trigger = _stop_level(order, spec)
        hit = high >= trigger - _EPS if order.is_buy else low <= trigger + _EPS
        if order.order_type == "TRAIL":
            # The extreme moves with the bar only after the trigger check (conservative).
            ext = order.trail_extreme or open_
            order.trail_extreme = max(ext, high) if not order.is_buy else min(ext, low)
        if not hit:
            return None
        order.triggered = True
        at = max(trigger, open_) if order.is_buy else min(trigger, open_)
        if order.order_type in ("STP", "TRAIL"):
            return spec.round_price(at + (ask_off if order.is_buy else bid_off) * tick)
    if _effective_type(order) != "LMT" or order.lmt_price is None:
        return None
    limit = order.lmt_price
    if (order.is_buy and low + ask_off * tick <= limit + _EPS) or (
        not order.is_buy and high + bid_off * tick >= limit - _EPS
    ):
        return limit
    return None


def _effective_type(order: SimOrder) -> str:
    if order.order_type in ("MKT", "STP", "TRAIL"):
        return "MKT"
    return "LMT"


def _stop_level(order: SimOrder, spec: ContractSpec) -> float:
    if order.order_type != "TRAIL":
        assert order.aux_price is not None
        return order.aux_price
    ext = order.trail_extreme or 0.0
    if order.trailing_percent is not None:
        amount = ext * order.trailing_percent / 100.0
    else:
        amount = order.aux_price or 0.0
    level = ext + amount if order.is_buy else ext - amount
    return spec.round_price(level)


def _check_trigger(order: SimOrder, spec: ContractSpec, last: float) -> bool:
    """Whether the order may trade now (stops must be triggered first)."""
    if order.order_type not in _STOPS or order.triggered:
        return True
    if order.order_type == "TRAIL":
        ext = order.trail_extreme if order.trail_extreme is not None else last
        order.trail_extreme = min(ext, last) if order.is_buy else max(ext, last)
    level = _stop_level(order, spec)
    if (order.is_buy and last >= level - _EPS) or (not order.is_buy and last <= level + _EPS):
        order.triggered = True
        return True
    return False
