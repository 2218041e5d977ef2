"""Options the bot holds at their expiry: settled by the broker, not by a fill.

At the close of its expiry day an equity option is exercised (a long one in the money),
assigned (a short one), or expires worthless. IB sends no execution for any of these: the
option's position goes to zero, and an exercise or assignment moves the underlying by the
multiplier per contract at the strike. The position audit would take both for positions the
journal cannot explain. This module tells which differences a settlement explains: an option
past its expiry that the broker no longer holds, and was seen going flat at or after that
close (one closed earlier, by hand, is a trade no journaled fill explains); and, when the bot
also trades the underlying, the underlying's difference if it equals the delivery of some of
the options settled that could have been exercised at the underlying's last price (a long call
or a short put brings shares, a long put or a short call takes them away). Anything else stays
a difference and fails closed.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, time
from itertools import combinations
from typing import Protocol, TypeVar
from zoneinfo import ZoneInfo

from engine.domain import Instrument, Settlement, expiry_date

# US equity options stop trading at the 16:00 close of their expiry day, New York time.
EXPIRY_CLOSE = time(16, 0)
EXPIRY_ZONE = ZoneInfo("America/New_York")
_TOLERANCE = 1e-9
MAX_OPTIONS_SETTLED = 12  # on one underlying at one expiry; more: left to the operator
# An option this close to the money (a share of its strike) at the underlying's last price may
# have been exercised or not: IB's official close can differ from the last bar the bot saw.
NEAR_THE_MONEY = 0.005


class _Difference(Protocol):
    """A symbol's position at the broker against what the journal adds up to."""

    @property
    def symbol(self) -> str: ...
    @property
    def broker(self) -> float: ...
    @property
    def journal(self) -> float: ...


D = TypeVar("D", bound=_Difference)


def expires_at(instrument: Instrument) -> datetime | None:
    """When an option stops trading (its expiry day's close); None for anything else."""
    day = expiry_date(instrument.expiry) if instrument.sec_type == "OPT" else None
    return datetime.combine(day, EXPIRY_CLOSE, EXPIRY_ZONE) if day is not None else None


def delivery(instrument: Instrument, quantity: float, multiplier: float) -> float:
    """The underlying's shares an exercise or assignment of `quantity` (signed) moves."""
    sign = 1.0 if instrument.right == "C" else -1.0
    return sign * quantity * multiplier


def settle_expired(
    differences: Sequence[D],
    instruments: Mapping[str, Instrument],
    now: datetime,
    multiplier: Callable[[str], float],
    price: Callable[[str], float | None],
    flat_at: Mapping[str, datetime],
) -> tuple[list[Settlement], list[D]]:
    """Split the audit's differences into settlements at expiry and what stays unexplained.
    `price` is a symbol's last price (None unknown); `flat_at` when each option was seen
    going flat at the broker."""
    settled: list[tuple[D, Instrument]] = []
    rest: list[D] = []
    for difference in differences:
        instrument = instruments.get(difference.symbol)
        at = expires_at(instrument) if instrument is not None else None
        went_flat = flat_at.get(difference.symbol)
        if (instrument is not None and at is not None and now >= at
                and abs(difference.broker) < _TOLERANCE
                and went_flat is not None and went_flat >= at):
            settled.append((difference, instrument))
        else:
            rest.append(difference)
    deliveries: dict[str, float] = {}  # option -> shares its exercise is taken to have moved
    unexplained: list[D] = []
    for difference in rest:
        last = price(difference.symbol)
        options = [(d.symbol, delivery(i, d.journal, multiplier(d.symbol)))
                   for d, i in settled
                   if i.underlying == difference.symbol and _may_be_exercised(i, last)]
        moved = _subset_summing_to(options, difference.broker - difference.journal)
        if moved is None:
            unexplained.append(difference)
        else:
            deliveries.update(moved)
    settlements = [
        Settlement(d.symbol, d.journal, i.underlying, deliveries.get(d.symbol, 0.0))
        for d, i in settled
    ]
    return settlements, unexplained


def _may_be_exercised(option: Instrument, underlying: float | None) -> bool:
    """In the money, or near enough to it, at the underlying's last price (unknown: no)."""
    if underlying is None:
        return False
    if option.right == "C":
        return underlying >= option.strike * (1 - NEAR_THE_MONEY)
    return underlying <= option.strike * (1 + NEAR_THE_MONEY)


def _subset_summing_to(
    options: list[tuple[str, float]], change: float
) -> dict[str, float] | None:
    """Which options' deliveries add up to the underlying's `change` (a few options: every
    subset is tried, fewest first); None when none does."""
    if not options or len(options) > MAX_OPTIONS_SETTLED:
        return None
    for size in range(1, len(options) + 1):
        for subset in combinations(options, size):
            if abs(sum(shares for _, shares in subset) - change) < _TOLERANCE:
                return dict(subset)
    return None
