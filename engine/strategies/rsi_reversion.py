"""`rsi_reversion`: buy a stretched-down market, sell when it has reverted to the middle.

At each bar's close, with RSI (Wilder, see engine.indicators) over `period` closes:

- flat: RSI below `oversold` wants long `quantity`; with `allow_short`, RSI above `overbought`
  wants short `quantity`.
- long: RSI back above 50 (the neutral line) wants flat; with `allow_short`, RSI above
  `overbought` wants short right away (reverse).
- short: the mirror — RSI back below 50 wants flat, below `oversold` wants long.

The decision is a function of the RSI and the broker's position only, so the strategy keeps no
state of its own: if an entry was refused, it asks again on the next bar while RSI is still
oversold, and a restart picks up where the position says it is.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from engine.domain import Bar, Signal
from engine.indicators import RSI
from engine.strategies._common import signal_if_changed
from engine.strategies.base import Strategy, StrategyParams, check_period

_NEUTRAL = 50.0


@dataclass(frozen=True)
class RsiReversionParams(StrategyParams):
    period: int = 14
    oversold: float = 30.0
    overbought: float = 70.0
    allow_short: bool = False

    def validate(self) -> None:
        check_period("period", self.period, minimum=2)
        if not 0 < self.oversold < _NEUTRAL:
            raise ValueError("oversold must be between 0 and 50")
        if not _NEUTRAL < self.overbought < 100:
            raise ValueError("overbought must be between 50 and 100")


class RsiReversion(Strategy):
    name: ClassVar[str] = "rsi_reversion"
    params_type: ClassVar[type[StrategyParams]] = RsiReversionParams
    params: RsiReversionParams

    def __init__(self, symbol: str, params: RsiReversionParams, quantity: float) -> None:
        params.validate()
        super().__init__(symbol, params, quantity)
        self._rsi = RSI(params.period)

    @property
    def warmup_bars(self) -> int:
        # RSI needs `period` changes, i.e. period + 1 closes; the last of them can decide.
        return self.params.period

    def on_bar(self, bar: Bar, position: float) -> Signal | None:
        rsi = self._rsi.update(bar.close)
        if rsi is None:
            return None
        p = self.params
        label = f"{self._label()} at {rsi:.1f}"
        oversold = rsi < p.oversold
        overbought = rsi > p.overbought
        if position > 0:
            if p.allow_short and overbought:
                target, reason = -self.quantity, f"{label}, above overbought {p.overbought:g}"
            elif rsi > _NEUTRAL:
                target, reason = 0.0, f"{label}, back above {_NEUTRAL:g}"
            else:
                return None
        elif position < 0:
            if oversold:
                target, reason = self.quantity, f"{label}, below oversold {p.oversold:g}"
            elif rsi < _NEUTRAL:
                target, reason = 0.0, f"{label}, back below {_NEUTRAL:g}"
            else:
                return None
        elif oversold:
            target, reason = self.quantity, f"{label}, below oversold {p.oversold:g}"
        elif p.allow_short and overbought:
            target, reason = -self.quantity, f"{label}, above overbought {p.overbought:g}"
        else:
            return None
        return signal_if_changed(bar, position, target, reason, {self._label(): rsi})

    def indicator_values(self) -> dict[str, float | None]:
        return {self._label(): self._rsi.value}

    def _label(self) -> str:
        return f"RSI{self.params.period}"
