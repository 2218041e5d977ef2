"""Margin as IB computes it for a Reg T account, position by position.

* Stocks: initial 50% of the value; maintenance 25% long, 30% short.
* Long options: nothing beyond the premium, which the cash already paid; they have no loan
  value, so they count in the net liquidation value but not in the equity with loan value.
* Short options: the premium (the option's value) plus the larger of 20% of the underlying's
  value less the out-of-the-money amount and 10% of the underlying's value (calls) or of the
  strike (puts), per share, times 100 and the contracts; the same for maintenance.
* Futures 6% initial, 5.4% maintenance; forex 25% and 22.5%; crypto 100%.
"""

from __future__ import annotations

from dataclasses import dataclass

from .contracts import ContractSpec

STOCK_INITIAL = 0.50
STOCK_MAINT_LONG = 0.25
STOCK_MAINT_SHORT = 0.30


@dataclass(slots=True, frozen=True)
class Requirement:
    initial: float
    maintenance: float


def short_option_per_share(right: str, strike: float, option: float, underlying: float) -> float:
    """IB's (CBOE's) requirement for one short option, per share of the underlying."""
    if right == "C":
        out_of_the_money = max(0.0, strike - underlying)
        floor = 0.10 * underlying
    else:
        out_of_the_money = max(0.0, underlying - strike)
        floor = 0.10 * strike
    return option + max(0.20 * underlying - out_of_the_money, floor)


def requirement(
    spec: ContractSpec, quantity: float, price: float, underlying: float | None = None
) -> Requirement:
    """Margin of a position of ``quantity`` at ``price`` (``underlying``: the underlying's
    price, for options)."""
    value = abs(quantity) * price * spec.multiplier_value
    if spec.sec_type == "STK":
        maint = STOCK_MAINT_LONG if quantity > 0 else STOCK_MAINT_SHORT
        return Requirement(STOCK_INITIAL * value, maint * value)
    if spec.sec_type == "OPT":
        if quantity >= 0 or underlying is None:
            return Requirement(0.0, 0.0)
        per_share = short_option_per_share(spec.right, spec.strike, price, underlying)
        margin = per_share * spec.multiplier_value * abs(quantity)
        return Requirement(margin, margin)
    if spec.sec_type == "FUT":
        return Requirement(0.06 * value, 0.054 * value)
    if spec.sec_type == "CRYPTO":
        return Requirement(value, value)
    return Requirement(0.25 * value, 0.225 * value)
