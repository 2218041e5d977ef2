"""An example of your own strategy: a channel (Donchian) breakout, long only.

Use it live or in a backtest with

    STRATEGY=examples/channel_breakout.py:ChannelBreakout
    STRATEGY_PARAMS=entry=20,exit=10

Buy `quantity` when a bar closes above the highest high of the `entry` bars before it; sell
back to flat when a bar closes below the lowest low of the `exit` bars before it.

Copy this file, change the rules, and point STRATEGY at your copy. Loading it runs it: keep it
somewhere only you can write to, like the .env that names it.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import ClassVar

from engine.domain import Bar, Signal
from engine.strategies.base import Strategy, StrategyParams, check_period


# The parameters: a frozen dataclass subclassing StrategyParams. Every field has a default and
# one of the types bool, int, float or str, so STRATEGY_PARAMS=entry=20,exit=10 can fill it in.
@dataclass(frozen=True)
class ChannelBreakoutParams(StrategyParams):
    entry: int = 20
    exit: int = 10

    def validate(self) -> None:
        # A ValueError here becomes the one-line `STRATEGY_PARAMS: ...` error at start.
        check_period("entry", self.entry)
        check_period("exit", self.exit)


class ChannelBreakout(Strategy):
    name: ClassVar[str] = "channel_breakout"
    # How the settings find the parameters' type.
    params_type: ClassVar[type[StrategyParams]] = ChannelBreakoutParams
    params: ChannelBreakoutParams

    def __init__(self, symbol: str, params: ChannelBreakoutParams, quantity: float) -> None:
        params.validate()
        super().__init__(symbol, params, quantity)  # sets self.symbol, self.params, self.quantity
        longest = max(params.entry, params.exit)
        # The bars before the current one; deque(maxlen) forgets the oldest by itself.
        self._highs: deque[float] = deque(maxlen=longest)
        self._lows: deque[float] = deque(maxlen=longest)

    @property
    def warmup_bars(self) -> int:
        # The engine feeds this many historical bars through on_bar before trading; after them
        # both channels are full, so the next bar can decide.
        return max(self.params.entry, self.params.exit)

    def on_bar(self, bar: Bar, position: float) -> Signal | None:
        """Called once per closed bar (never one still forming), with the broker's position.

        Return a Signal with the position you want (`target`: +quantity long, 0 flat, negative
        short), or None to keep what you have. Risk checks and order sending are not yours to do.
        """
        signal = self._decide(bar, position)
        self._highs.append(bar.high)
        self._lows.append(bar.low)
        return signal

    def _decide(self, bar: Bar, position: float) -> Signal | None:
        if len(self._highs) < self.warmup_bars:
            return None
        upper = max(list(self._highs)[-self.params.entry :])
        lower = min(list(self._lows)[-self.params.exit :])
        if position <= 0 and bar.close > upper:
            return Signal(
                bar.symbol,
                bar.time,
                self.quantity,
                f"close {bar.close:.2f} above the {self.params.entry}-bar high",
                {"upper": upper, "close": bar.close},
            )
        if position > 0 and bar.close < lower:
            return Signal(
                bar.symbol,
                bar.time,
                0.0,
                f"close {bar.close:.2f} below the {self.params.exit}-bar low",
                {"lower": lower, "close": bar.close},
            )
        return None

    def indicator_values(self) -> dict[str, float | None]:
        """What charts and /status show: each indicator's current value, None while warming."""
        ready = len(self._highs) >= self.warmup_bars
        return {
            f"high{self.params.entry}": max(list(self._highs)[-self.params.entry :])
            if ready
            else None,
            f"low{self.params.exit}": min(list(self._lows)[-self.params.exit :]) if ready else None,
        }
