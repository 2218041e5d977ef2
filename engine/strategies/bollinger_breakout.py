"""`bollinger_breakout`: ride a close outside the Bollinger bands until it falls back to the mean.

At each bar's close, with bands over `period` closes, `k` sample standard deviations wide:

- flat: close above the upper band wants long `quantity`; with `allow_short`, close below the
  lower band wants short `quantity`.
- long: close below the middle band wants flat; with `allow_short`, a close below the lower
  band wants short right away (reverse).
- short: the mirror — close above the middle band wants flat, above the upper band long.

Like rsi_reversion, the decision depends on the bands and the broker's position only, so a
refused entry is asked for again on the next bar that still closes outside the band.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

from engine.domain import Bar, Signal
from engine.indicators import Bands, BollingerBands
from engine.strategies._common import price_text, signal_if_changed
from engine.strategies.base import Strategy, StrategyParams, check_period

# Beyond 10 standard deviations a band is never touched: a typo, not a strategy.
MAX_K = 10.0


@dataclass(frozen=True)
class BollingerBreakoutParams(StrategyParams):
    period: int = 20
    k: float = 2.0
    allow_short: bool = False

    def validate(self) -> None:
        check_period("period", self.period, minimum=2)
        if not (math.isfinite(self.k) and self.k > 0):
            raise ValueError("k must be greater than 0")
        if self.k > MAX_K:
            raise ValueError(f"k must be at most {MAX_K:g}")


class BollingerBreakout(Strategy):
    name: ClassVar[str] = "bollinger_breakout"
    params_type: ClassVar[type[StrategyParams]] = BollingerBreakoutParams
    params: BollingerBreakoutParams

    def __init__(self, symbol: str, params: BollingerBreakoutParams, quantity: float) -> None:
        params.validate()
        super().__init__(symbol, params, quantity)
        self._bands = BollingerBands(params.period, params.k)

    @property
    def warmup_bars(self) -> int:
        # The bands exist from the `period`-th close, and that close can already decide.
        return self.params.period - 1

    def on_bar(self, bar: Bar, position: float) -> Signal | None:
        bands = self._bands.update(bar.close)
        if bands is None:
            return None
        close = bar.close
        above_upper = close > bands.upper
        below_lower = close < bands.lower
        allow_short = self.params.allow_short
        if position > 0:
            if allow_short and below_lower:
                target, where = -self.quantity, f"below lower band {price_text(bands.lower)}"
            elif close < bands.middle:
                target, where = 0.0, f"back below middle band {price_text(bands.middle)}"
            else:
                return None
        elif position < 0:
            if above_upper:
                target, where = self.quantity, f"above upper band {price_text(bands.upper)}"
            elif close > bands.middle:
                target, where = 0.0, f"back above middle band {price_text(bands.middle)}"
            else:
                return None
        elif above_upper:
            target, where = self.quantity, f"above upper band {price_text(bands.upper)}"
        elif allow_short and below_lower:
            target, where = -self.quantity, f"below lower band {price_text(bands.lower)}"
        else:
            return None
        reason = f"close {price_text(close)} {where} (BB{self.params.period},{self.params.k:g})"
        details = {**self._named(bands), "close": close}
        return signal_if_changed(bar, position, target, reason, details)

    def indicator_values(self) -> dict[str, float | None]:
        bands = self._bands.value
        return dict.fromkeys(self._names()) if bands is None else dict(self._named(bands))

    def _named(self, bands: Bands) -> dict[str, float]:
        values = (bands.upper, bands.middle, bands.lower)
        return dict(zip(self._names(), values, strict=True))

    def _names(self) -> tuple[str, str, str]:
        label = f"BB{self.params.period},{self.params.k:g}"
        return f"{label} upper", f"{label} middle", f"{label} lower"
