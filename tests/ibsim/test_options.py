"""Options: the chains, contract details, reqSecDefOptParams, and quotes with Greeks, through
the real ib_async client; the model and the chain's shape as plain functions."""

from __future__ import annotations

import asyncio
import datetime as dt
import itertools
import math

import pytest
from ib_async import IB, Option, Stock

from ibsim import SimGateway
from ibsim import option_pricing as model
from ibsim.options import expiries, occ_symbol, strike_step, strikes

from .conftest import step

AAPL_CON_ID = 265598

# --- the chain's shape ----------------------------------------------------------------------


def test_expiries_are_four_weeklies_and_three_monthlies() -> None:
    got = [f"{d:%Y%m%d}" for d in expiries(dt.date(2024, 3, 4))]
    # 03-15 is both a weekly and the March monthly: listed once.
    assert got == ["20240308", "20240315", "20240322", "20240329", "20240419", "20240517"]


def test_expiries_after_a_friday_start_the_next_week() -> None:
    got = expiries(dt.date(2024, 3, 8))
    assert got[0] == dt.date(2024, 3, 15) and dt.date(2024, 3, 8) not in got


@pytest.mark.parametrize(
    ("spot", "step_", "atm"), [(62.0, 2.5, 62.5), (190.0, 5.0, 190.0), (520.0, 10.0, 520.0)],
)  # fmt: skip
def test_strikes_around_the_money(spot: float, step_: float, atm: float) -> None:
    assert strike_step(spot) == step_
    got = strikes(spot)
    assert len(got) == 31 and got[15] == atm
    assert all(math.isclose(b - a, step_) for a, b in itertools.pairwise(got))


def test_strikes_stay_positive() -> None:
    assert strike_step(12.3) == 1.0
    assert strikes(12.3) == [float(k) for k in range(1, 28)]


def test_occ_local_symbol() -> None:
    assert occ_symbol("AAPL", dt.date(2026, 12, 18), "C", 200.0) == "AAPL  261218C00200000"
    assert occ_symbol("SPY", dt.date(2024, 3, 8), "P", 512.5) == "SPY   240308P00512500"


# --- the model ------------------------------------------------------------------------------


@pytest.mark.parametrize("strike", [150.0, 190.0, 230.0])
@pytest.mark.parametrize("years", [2 / 365, 0.25, 1.0])
def test_black_scholes_put_call_parity_and_greeks(strike: float, years: float) -> None:
    spot, sigma = 190.0, 0.3
    call = model.price("C", spot, strike, years, sigma)
    put = model.price("P", spot, strike, years, sigma)
    assert call - put == pytest.approx(spot - strike * math.exp(-model.RATE * years), abs=1e-4)
    c = model.greeks("C", spot, strike, years, sigma)
    p = model.greeks("P", spot, strike, years, sigma)
    assert 0 <= c.delta <= 1 and -1 <= p.delta <= 0  # exactly 0 or 1 deep in or out, near expiry
    assert c.delta - p.delta == pytest.approx(1.0)
    assert c.gamma >= 0 and c.gamma == pytest.approx(p.gamma)
    assert c.vega >= 0 and c.theta < 0
    if strike == spot:
        assert 0 < c.delta < 1 and c.gamma > 0 and c.vega > 0


def test_implied_vol_inverts_the_price() -> None:
    value = model.price("P", 100.0, 95.0, 0.1, 0.42)
    assert model.implied_vol("P", value, 100.0, 95.0, 0.1) == pytest.approx(0.42, abs=1e-6)
    assert model.implied_vol("C", 0.0001, 100.0, 50.0, 0.1) is None  # below intrinsic


def test_surface_has_a_put_skew_and_a_floor() -> None:
    atm = model.sigma_atm(0.018)
    assert model.surface_vol(atm, 100.0, 80.0, 0.25) > model.surface_vol(atm, 100.0, 100.0, 0.25)
    assert model.surface_vol(atm, 100.0, 100.0, 0.25) == pytest.approx(atm)
    assert model.surface_vol(atm, 100.0, 1000.0, 0.25) == model.SIGMA_FLOOR


def test_price_is_intrinsic_at_expiry() -> None:
    assert model.price("C", 105.0, 100.0, 0.0, 0.3) == 5.0
    assert model.price("P", 105.0, 100.0, -1.0, 0.3) == 0.0


# --- through the client -----------------------------------------------------------------------


async def _chain(ib: IB):
    (chain,) = await asyncio.wait_for(ib.reqSecDefOptParamsAsync("AAPL", "", "STK", AAPL_CON_ID), 5)
    return chain


async def test_sec_def_opt_params(gw: SimGateway, ib: IB) -> None:
    chain = await _chain(ib)
    assert chain.exchange == "SMART" and int(chain.underlyingConId) == AAPL_CON_ID
    assert chain.tradingClass == "AAPL" and chain.multiplier == "100"
    assert chain.expirations == ["20240308", "20240315", "20240322", "20240329", "20240419",
                                 "20240517"]  # fmt: skip
    assert len(chain.strikes) == 31 and chain.strikes == sorted(chain.strikes)
    spot = gw.price("AAPL")
    assert chain.strikes[0] < spot < chain.strikes[-1]


async def test_unknown_underlying_has_no_chain(gw: SimGateway, ib: IB) -> None:
    chains = await asyncio.wait_for(ib.reqSecDefOptParamsAsync("NOPE", "", "STK", 0), 5)
    assert chains == []


async def test_qualify_an_option(gw: SimGateway, ib: IB) -> None:
    chain = await _chain(ib)
    strike = chain.strikes[15]
    (opt,) = await ib.qualifyContractsAsync(Option("AAPL", "20240315", strike, "C", "SMART"))
    assert opt is not None and opt.secType == "OPT" and opt.multiplier == "100"
    assert opt.localSymbol == occ_symbol("AAPL", dt.date(2024, 3, 15), "C", strike)
    assert opt.tradingClass == "AAPL" and opt.right == "C" and opt.strike == strike
    other_ids = {s.con_id for s in gw.universe} | {AAPL_CON_ID}
    assert opt.conId not in other_ids
    (put,) = await ib.qualifyContractsAsync(Option("AAPL", "20240315", strike, "P", "SMART"))
    assert put.conId != opt.conId


async def test_contract_details_of_options(gw: SimGateway, ib: IB) -> None:
    chain = await _chain(ib)
    (cd,) = await ib.reqContractDetailsAsync(
        Option("AAPL", "20240322", chain.strikes[10], "P", "SMART")
    )
    assert cd.underConId == AAPL_CON_ID and cd.underSymbol == "AAPL" and cd.underSecType == "STK"
    assert cd.contract.lastTradeDateOrContractMonth == "20240322" and cd.lastTradeTime == "16:00"
    # No strike: every strike of that expiry and right, as IB answers.
    calls = Option("AAPL", "20240322", right="C", exchange="SMART")
    found = await ib.reqContractDetailsAsync(calls)
    assert len(found) == 31 and {d.contract.right for d in found} == {"C"}
    # No right either: both rights.
    found = await ib.reqContractDetailsAsync(Option("AAPL", "20240322", exchange="SMART"))
    assert len(found) == 62


async def test_an_option_not_listed_is_error_200(gw: SimGateway, ib: IB) -> None:
    errors: list[int] = []
    ib.errorEvent += lambda req_id, code, *rest: errors.append(code)
    missing_strike = Option("AAPL", "20240315", 191.3, "C", "SMART")
    missing_expiry = Option("AAPL", "20240316", 190.0, "C", "SMART")
    assert await ib.qualifyContractsAsync(missing_strike, missing_expiry) == [None, None]
    assert errors == [200, 200]


def _plausible(ticker, right: str) -> None:
    for g in (ticker.modelGreeks, ticker.bidGreeks, ticker.askGreeks):
        assert g is not None
        assert (0 < g.delta < 1) if right == "C" else (-1 < g.delta < 0)
        assert g.gamma > 0 and g.vega > 0 and g.theta < 0
        assert 0.05 <= g.impliedVol < 1.5 and g.undPrice > 0
    assert ticker.bid < ticker.modelGreeks.optPrice < ticker.ask + 0.01
    assert ticker.bidGreeks.optPrice == ticker.bid and ticker.askGreeks.optPrice == ticker.ask
    assert ticker.bidGreeks.impliedVol <= ticker.askGreeks.impliedVol


async def test_snapshot_quotes_with_greeks_and_put_call_parity(gw: SimGateway, ib: IB) -> None:
    chain = await _chain(ib)
    strike = chain.strikes[15]
    call, put = await ib.qualifyContractsAsync(
        Option("AAPL", "20240419", strike, "C", "SMART"),
        Option("AAPL", "20240419", strike, "P", "SMART"),
    )
    c, p = await asyncio.wait_for(ib.reqTickersAsync(call, put), 5)
    _plausible(c, "C")
    _plausible(p, "P")
    assert c.bidSize > 0 and c.askSize > 0 and c.last > 0
    spot = c.modelGreeks.undPrice
    years = (dt.datetime(2024, 4, 19, 20, 0, tzinfo=dt.UTC) - gw.now).total_seconds() / model.YEAR
    parity = spot - strike * math.exp(-model.RATE * years)
    spread = (c.ask - c.bid) + (p.ask - p.bid)
    assert abs((c.bid + c.ask) / 2 - (p.bid + p.ask) / 2 - parity) <= spread


async def test_streaming_greeks_follow_the_underlying(gw: SimGateway, ib: IB) -> None:
    chain = await _chain(ib)
    (call,) = await ib.qualifyContractsAsync(
        Option("AAPL", "20240315", chain.strikes[15], "C", "SMART")
    )
    ticker = ib.reqMktData(call)
    await step(gw, ib, 5)
    assert ticker.modelGreeks is not None
    seen = {ticker.modelGreeks.undPrice}
    for _ in range(12):
        await step(gw, ib, 5)
        seen.add(ticker.modelGreeks.undPrice)
    assert len(seen) > 1
    assert ticker.modelGreeks.undPrice == gw.price("AAPL")
    _plausible(ticker, "C")
    ib.cancelMktData(call)


async def test_stock_quotes_carry_no_greeks(gw: SimGateway, ib: IB) -> None:
    (aapl,) = await ib.qualifyContractsAsync(Stock("AAPL", "SMART", "USD"))
    (t,) = await asyncio.wait_for(ib.reqTickersAsync(aapl), 5)
    assert t.modelGreeks is None and t.bid > 0


async def test_an_expired_option_has_no_market_data(gw: SimGateway, ib: IB) -> None:
    chain = await _chain(ib)
    (weekly,) = await ib.qualifyContractsAsync(
        Option("AAPL", "20240308", chain.strikes[15], "C", "SMART")
    )
    # Friday 2024-03-08 16:00 New York is 21:00 UTC: the weekly expires at its close.
    await step(gw, ib, (dt.datetime(2024, 3, 8, 21, 0, tzinfo=dt.UTC) - gw.now).total_seconds())
    errors: list[int] = []
    ib.errorEvent += lambda req_id, code, *rest: errors.append(code)
    ticker = ib.reqMktData(weekly, snapshot=True)
    await step(gw, ib, 0)
    assert errors == [200] and ticker.modelGreeks is None
    assert await ib.qualifyContractsAsync(weekly) == [None]
    chain = await _chain(ib)
    assert "20240308" not in chain.expirations


async def test_delayed_data_carries_the_delayed_computations(gw: SimGateway, ib: IB) -> None:
    chain = await _chain(ib)
    (put,) = await ib.qualifyContractsAsync(
        Option("AAPL", "20240322", chain.strikes[12], "P", "SMART")
    )
    ib.reqMarketDataType(3)
    (t,) = await asyncio.wait_for(ib.reqTickersAsync(put), 5)
    _plausible(t, "P")  # tick types 80..83 land in the same fields


async def test_a_new_week_lists_a_new_weekly(gw: SimGateway, ib: IB) -> None:
    # To Monday 2024-03-11 10:00 New York: 03-08 has expired, 04-05 is the fourth weekly now.
    await step(gw, ib, 7 * 86400)
    chain = await _chain(ib)
    assert chain.expirations == ["20240315", "20240322", "20240329", "20240405", "20240419",
                                 "20240517"]  # fmt: skip
    (new,) = await ib.qualifyContractsAsync(
        Option("AAPL", "20240405", chain.strikes[15], "C", "SMART")
    )
    assert new is not None
    (t,) = await asyncio.wait_for(ib.reqTickersAsync(new), 5)
    _plausible(t, "C")
