"""`sma_cross`: the seed strategy, trading crossings of a fast and a slow simple moving average.

At each bar's close: the fast SMA crossing above the slow one (fast > slow now, fast ≤ slow on
the previous bar) wants a long position of `quantity`; crossing below (fast < slow now, fast ≥
slow before) wants to be flat, or short `quantity` with `allow_short`. Only the crossing bar
decides: when the position does not follow (risk refused the order, say), the strategy waits
for the next crossing instead of asking again on every bar.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from engine.domain import Bar, Signal
from engine.indicators import SMA
from engine.strategies._common import price_text, signal_if_changed
from engine.strategies.base import Strategy, StrategyParams, check_period


@dataclass(frozen=True)
class SmaCrossParams(StrategyParams):
    fast: int = 10
    slow: int = 30
    allow_short: bool = False

    def validate(self) -> None:
        check_period("fast", self.fast)
        check_period("slow", self.slow)
        if self.slow <= self.fast:
            raise ValueError("slow must be greater than fast")


class SmaCross(Strategy):
    name: ClassVar[str] = "sma_cross"
    params_type: ClassVar[type[StrategyParams]] = SmaCrossParams
    params: SmaCrossParams

    def __init__(self, symbol: str, params: SmaCrossParams, quantity: float) -> None:
        params.validate()
        super().__init__(symbol, params, quantity)
        self._fast = SMA(params.fast)
        self._slow = SMA(params.slow)
        # The previous bar's (fast, slow), once both were ready: a crossing needs two bars.
        self._previous: tuple[float, float] | None = None

    @property
    def warmup_bars(self) -> int:
        # After `slow` bars both averages exist; the next bar can be a crossing.
        return self.params.slow

    def on_bar(self, bar: Bar, position: float) -> Signal | None:
        fast = self._fast.update(bar.close)
        slow = self._slow.update(bar.close)
        if fast is None or slow is None:
            return None
        previous, self._previous = self._previous, (fast, slow)
        if previous is None:
            return None
        was_fast, was_slow = previous
        if fast > slow and was_fast <= was_slow:
            target, direction, relation = self.quantity, "above", ">"
        elif fast < slow and was_fast >= was_slow:
            target = -self.quantity if self.params.allow_short else 0.0
            direction, relation = "below", "<"
        else:
            return None
        fast_name, slow_name = self._names()
        reason = (
            f"{fast_name} crossed {direction} {slow_name} "
            f"({price_text(fast)} {relation} {price_text(slow)})"
        )
        details = {fast_name: fast, slow_name: slow, "close": bar.close}
        return signal_if_changed(bar, position, target, reason, details)

    def indicator_values(self) -> dict[str, float | None]:
        fast_name, slow_name = self._names()
        return {fast_name: self._fast.value, slow_name: self._slow.value}

    def _names(self) -> tuple[str, str]:
        return f"SMA{self.params.fast}", f"SMA{self.params.slow}"
