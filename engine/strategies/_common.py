"""Small helpers the strategies share: turning a wanted position into a Signal, and price text."""

from __future__ import annotations

import math

from engine.domain import Bar, Signal

# Positions come from the broker as floats (fractional shares, crypto); a target within this
# of the position is the position, so float noise never turns into a tiny order.
_QUANTITY_TOLERANCE = 1e-9


def signal_if_changed(
    bar: Bar, position: float, target: float, reason: str, details: dict[str, float]
) -> Signal | None:
    """A Signal for `target`, or None when the position already is the target."""
    if math.isclose(target, position, rel_tol=0.0, abs_tol=_QUANTITY_TOLERANCE):
        return None
    return Signal(symbol=bar.symbol, time=bar.time, target=target, reason=reason, details=details)


def price_text(value: float) -> str:
    """A price in cents from 10 up (101.20), else five significant digits (1.0834, 0.0012345)."""
    magnitude = math.floor(math.log10(abs(value))) if value else 1
    # Below 10 prices tick finer than a cent: forex pips, sub-dollar stocks, crypto.
    return f"{value:.{2 if magnitude >= 1 else 4 - magnitude}f}"
