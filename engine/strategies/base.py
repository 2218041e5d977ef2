"""The strategy interface: one object per symbol sees closed bars and says what it wants.

The same object runs live, on ibsim and in the backtester. A strategy never places orders: it
returns a `Signal` with the target position, and risk and order management decide the rest.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import ClassVar

from engine.domain import Bar, Signal

# The longest lookback a strategy may ask for, in bars: 10,000 hourly bars are over a year of
# history to warm up. Beyond it a typo's extra digits would overflow the warm-up request.
MAX_PERIOD = 10_000


@dataclass(frozen=True)
class StrategyParams:
    """Base of every strategy's parameters; subclasses add typed fields with defaults."""

    def validate(self) -> None:
        """Raise ValueError naming the parameter when a value is out of range."""


def check_period(name: str, value: int, minimum: int = 1) -> None:
    """A lookback of whole bars from `minimum` to MAX_PERIOD, or ValueError naming `name`."""
    if value < minimum:
        raise ValueError(f"{name} must be at least {minimum}")
    if value > MAX_PERIOD:
        raise ValueError(f"{name} must be at most {MAX_PERIOD} bars")


class Strategy(ABC):
    name: ClassVar[str]
    params_type: ClassVar[type[StrategyParams]]

    def __init__(self, symbol: str, params: StrategyParams, quantity: float) -> None:
        self.symbol = symbol
        self.params = params
        self.quantity = quantity

    @property
    @abstractmethod
    def warmup_bars(self) -> int:
        """How many closed bars the strategy needs before its first decision."""

    @abstractmethod
    def on_bar(self, bar: Bar, position: float) -> Signal | None:
        """Take one closed bar and the current position; return a target, or None for no change."""

    @abstractmethod
    def indicator_values(self) -> dict[str, float | None]:
        """The current value of each indicator, by display name (for charts and /status)."""
