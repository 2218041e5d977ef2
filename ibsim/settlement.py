"""Option expiry: at the expiry's close (16:00 New York, simulated time) an option in the money
by at least 0.01 is exercised (long) or assigned (short) into 100 shares a contract at the
strike; one out of the money is removed worthless. Working orders on it are cancelled."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

from .account import Account
from .contracts import ContractSpec
from .market import Market
from .pricepath import STEP
from .state import ServerState

log = logging.getLogger("ibsim")

MIN_IN_THE_MONEY = 0.01


@dataclass(slots=True, frozen=True)
class Expiry:
    """What happened to one position at expiry."""

    account: str
    option: ContractSpec
    contracts: float  # signed: long > 0
    underlying_price: float
    shares: float  # signed stock delivered (0: expired worthless)
    realized_pnl: float  # of the option itself: its premium lost (long) or kept (short)


def closing_price(market: Market, under: ContractSpec, t: float) -> float:
    """The underlying's price at the close at ``t``: the close of the last step before it."""
    bar = market.step(under, int(t // STEP) - 1)
    ticks = bar.close if bar is not None else market.price_ticks(under, t - STEP)
    return ticks * under.min_tick


def settle_position(
    account: Account, option: ContractSpec, under: ContractSpec, price: float
) -> Expiry:
    """Close the account's position in ``option`` at zero (the premium is the option's realized
    PnL); in the money, deliver the stock at the strike (cash moves strike x shares)."""
    pos = account.positions[option.con_id]
    contracts = pos.quantity
    in_the_money = price - option.strike if option.right == "C" else option.strike - price
    realized = account.apply_fill(option, -contracts, 0.0, 0.0).realized_pnl or 0.0
    shares = 0.0
    if in_the_money >= MIN_IN_THE_MONEY - 1e-9:
        per_contract = option.multiplier_value if option.right == "C" else -option.multiplier_value
        shares = contracts * per_contract
        account.apply_fill(under, shares, option.strike, 0.0)
    return Expiry(account.name, option, contracts, price, shares, realized)


class Settlement:
    """Settles expired options as the clock passes their close; tells ``position_changed``
    (account, conId) for every position it changes, so clients get positions, portfolio and
    account values."""

    def __init__(self, state: ServerState, position_changed: Callable[[str, int], None]) -> None:
        self.state = state
        self._position_changed = position_changed
        self.history: list[Expiry] = []

    def run(self, t: float | None = None) -> None:
        state = self.state
        t = state.clock.now() if t is None else t
        for order in state.broker.open_orders():
            spec = state.universe.get(order.con_id)
            if spec is not None and spec.sec_type == "OPT" and spec.expired(t):
                state.broker.cancel_order(order, "The option expired")
        for account in state.accounts.values():
            for con_id, pos in list(account.positions.items()):
                spec = state.universe.get(con_id)
                if not pos.quantity or spec is None or spec.sec_type != "OPT":
                    continue
                if not spec.expired(t):
                    continue
                under = state.universe.get(spec.under_con_id)
                assert under is not None
                price = closing_price(state.market, under, spec.expires_at)
                done = settle_position(account, spec, under, price)
                self.history.append(done)
                log.info(
                    "%s: %s %g %s at %.2f (%s)", account.name, spec.local_symbol, done.contracts,
                    "exercised/assigned" if done.shares else "expired worthless", price,
                    f"{done.shares:+g} {under.symbol}" if done.shares else "no delivery",
                )  # fmt: skip
                self._position_changed(account.name, con_id)
                if done.shares:
                    self._position_changed(account.name, under.con_id)
