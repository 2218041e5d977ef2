"""Reg T margin, position by position (a table), and the account values a client reads after
an option trade."""

from __future__ import annotations

import dataclasses

import pytest
from ib_async import IB, MarketOrder, Option

from ibsim import ContractSpec, SimGateway
from ibsim.account import Account
from ibsim.margin import requirement

from .conftest import settle


def _spec(
    sec_type: str, right: str = "", strike: float = 0.0, multiplier: str = ""
) -> ContractSpec:
    return ContractSpec(
        symbol="XYZ", sec_type=sec_type, exchange="SMART", primary_exchange="NYSE",
        currency="USD", con_id=1, min_tick=0.01, long_name="XYZ", schedule_name="us_equity",
        base_price=100.0, daily_volume=1e6, right=right, strike=strike, multiplier=multiplier,
    )  # fmt: skip


STOCK = _spec("STK")
CALL_110 = _spec("OPT", "C", 110.0, "100")
PUT_90 = _spec("OPT", "P", 90.0, "100")
CALL_90 = _spec("OPT", "C", 90.0, "100")


@pytest.mark.parametrize(
    ("spec", "qty", "price", "under", "initial", "maintenance"),
    [
        (STOCK, 100, 50.0, None, 2500.0, 1250.0),  # long: 50% / 25%
        (STOCK, -100, 50.0, None, 2500.0, 1500.0),  # short: 50% / 30%
        (CALL_110, 2, 3.0, 100.0, 0.0, 0.0),  # long options: the premium only, paid in cash
        # short OTM call: 3 + max(20 - 10, 10% of 100 = 10) = 13 a share
        (CALL_110, -2, 3.0, 100.0, 2600.0, 2600.0),
        # short ITM call: 12 + max(20 - 0, 10) = 32 a share
        (CALL_90, -1, 12.0, 100.0, 3200.0, 3200.0),
        # short OTM put: 1.5 + max(20 - 10, 10% of the 90 strike = 9) = 11.5 a share
        (PUT_90, -3, 1.5, 100.0, 3450.0, 3450.0),
        # deep OTM put: 0.05 + max(20 - 40, 9) = 9.05 a share
        (PUT_90, -1, 0.05, 130.0, 905.0, 905.0),
    ],
)  # fmt: skip
def test_requirement(spec, qty, price, under, initial, maintenance) -> None:
    need = requirement(spec, qty, price, under)
    assert need.initial == pytest.approx(initial)
    assert need.maintenance == pytest.approx(maintenance)


def test_account_values_are_consistent() -> None:
    specs = {1: STOCK, 2: dataclasses.replace(CALL_110, con_id=2, under_con_id=1)}
    account = Account("DU1", 100_000.0)
    account.apply_fill(specs[1], 100, 100.0, 1.0)
    account.apply_fill(specs[2], -2, 3.0, 1.3)
    prices = {1: 100.0, 2: 3.0}
    values = account.values(specs.get, lambda s: prices[s.con_id])
    assert values.init_margin == pytest.approx(5000.0 + 2600.0)
    assert values.maint_margin == pytest.approx(2500.0 + 2600.0)
    assert values.available_funds == pytest.approx(values.net_liquidation - values.init_margin)
    assert values.excess_liquidity == pytest.approx(values.net_liquidation - values.maint_margin)
    assert values.buying_power == pytest.approx(2 * values.available_funds)


async def test_account_summary_after_an_option_buy(gw: SimGateway, ib: IB) -> None:
    (chain,) = await ib.reqSecDefOptParamsAsync("AAPL", "", "STK", 265598)
    (opt,) = await ib.qualifyContractsAsync(
        Option("AAPL", "20240419", chain.strikes[15], "C", "SMART")
    )
    ib.placeOrder(opt, MarketOrder("BUY", 2))
    await settle(ib)
    summary = {v.tag: float(v.value) for v in await ib.accountSummaryAsync() if v.currency == "USD"}
    (fill,) = ib.fills()
    premium = fill.execution.price * 100 * 2
    assert summary["TotalCashValue"] == pytest.approx(1_000_000 - premium - 1.30, abs=0.01)
    assert summary["InitMarginReq"] == 0 and summary["MaintMarginReq"] == 0
    option_value = summary["NetLiquidation"] - summary["TotalCashValue"]
    assert option_value == pytest.approx(premium, rel=0.05)
    # Long options have no loan value: the equity with loan is the cash.
    assert summary["EquityWithLoanValue"] == pytest.approx(summary["TotalCashValue"], abs=0.01)
    assert summary["AvailableFunds"] == pytest.approx(summary["EquityWithLoanValue"], abs=0.01)
    assert summary["BuyingPower"] == pytest.approx(2 * summary["AvailableFunds"], abs=0.02)
