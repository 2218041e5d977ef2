"""Options without a socket: SYMBOLS' option grammar, the contract built for IB, the
multiplier in the notional cap and in PnL, the chain's strikes near the money, IB's greeks
translated, and how /chain and an option's /quote read."""

from __future__ import annotations

import math
import os
import subprocess
import sys
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from ib_async import Contract, ContractDetails, Option, OptionComputation, Ticker
from ib_async import OptionChain as IBOptionChain

from bot.commands import UsageError, option_from_words
from bot.messages.document import to_plain
from bot.messages.options import chain_doc, no_such_expiry_doc, option_quote_doc
from bot.messages.trading import positions_doc
from engine import ib_translate as translate
from engine.config import parse_symbols
from engine.control import near_the_money, nearest_expiries
from engine.domain import Greeks, Instrument, OptionQuote, Position, Side
from engine.hours import ALWAYS_OPEN
from engine.ib_contracts import contract_info, make_contract
from engine.portfolio import Portfolio
from engine.reports import ChainReport, ChainRow, NoSuchExpiry, PositionsReport
from engine.risk import OrderRequest, RiskLimits, RiskManager
from engine.trader import order_request

NOW = datetime(2026, 12, 2, 15, 0, tzinfo=UTC)


# --- SYMBOLS --------------------------------------------------------------------------------


def test_an_option_in_symbols_is_named_by_underlying_expiry_strike_and_right() -> None:
    call, put, stock = parse_symbols(
        "aapl:opt:20261218:200:c, SPY:OPT:20270115:592.5:P:CBOE, AAPL"
    )
    assert call == Instrument("AAPL 20261218 200C", "OPT", "SMART", "USD", "20261218", 200.0,
                              "C", "AAPL")
    assert call.ib_symbol == "AAPL" and str(call) == "AAPL 20261218 200C"
    assert (put.symbol, put.exchange, put.strike, put.right) == (
        "SPY 20270115 592.5P", "CBOE", 592.5, "P")
    assert stock == Instrument("AAPL")  # the stock and its option side by side
    assert parse_symbols("AAPL:OPT:20261202:200:C")[0].expiry == "20261202"
    # One already expired is the engine's to drop at start (tests/engine/test_review_options).
    assert parse_symbols("AAPL:OPT:20201218:200:C")[0].expiry == "20201218"


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("AAPL:OPT:20261318:200:C", "the expiry '20261318' is not a date as YYYYMMDD"),
        ("AAPL:OPT:202612:200:C", "is not a date as YYYYMMDD"),
        ("AAPL:OPT:20261218:-5:C", "the strike '-5' is not a positive number"),
        ("AAPL:OPT:20261218:0:C", "is not a positive number"),
        ("AAPL:OPT:20261218:inf:C", "is not a positive number"),
        ("AAPL:OPT:20261218:nan:C", "is not a positive number"),
        ("AAPL:OPT:20261218:abc:C", "is not a positive number"),
        ("AAPL:OPT:20261218:200:X", "the right 'X' is not C (call) or P (put)"),
        ("AAPL:OPT:20261218:200", "is not an option: expected SYMBOL:OPT:YYYYMMDD"),
        ("AAPL:OPT:20261218:200:C:SMART:USD:X", "is not an option"),
        ("AAPL:OPT:20261218:200:C,AAPL:OPT:20261218:200.0:C", "listed more than once"),
    ],
)
def test_a_malformed_option_says_what_is_wrong(text: str, says: str) -> None:
    with pytest.raises(ValueError) as caught:
        parse_symbols(text)
    assert says in str(caught.value)


def test_a_bad_option_in_the_settings_is_one_line_naming_symbols(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "bot.cli", "journal"],
        env={**os.environ, "SYMBOLS": "AAPL:OPT:20261218:200:X"},
        capture_output=True, text=True, timeout=30, cwd=tmp_path,
    )
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("tradebot: SYMBOLS: ")
    assert "the right 'X' is not C (call) or P (put)" in lines[0]


# --- the contract ----------------------------------------------------------------------------


def test_make_contract_builds_an_option_and_contract_info_keeps_the_multiplier() -> None:
    option = Instrument.option("AAPL", "20261218", 200.0, "C")
    contract = make_contract(option)
    assert isinstance(contract, Option)
    assert (contract.symbol, contract.lastTradeDateOrContractMonth, contract.strike,
            contract.right, contract.exchange, contract.currency) == (
        "AAPL", "20261218", 200.0, "C", "SMART", "USD")
    found = Contract(secType="OPT", conId=77, symbol="AAPL", multiplier="100",
                     lastTradeDateOrContractMonth="20261218",
                     localSymbol="AAPL  261218C00200000")
    info = contract_info(option, ContractDetails(contract=found, minTick=0.01,
                                                 timeZoneId="US/Eastern"))
    assert info.multiplier == 100.0 and info.expiry == date(2026, 12, 18)
    assert info.local_symbol == "AAPL  261218C00200000"
    assert contract_info(Instrument("AAPL"), ContractDetails(
        contract=Contract(secType="STK", conId=1, symbol="AAPL"))).multiplier == 1.0


def test_option_bars_are_midpoints() -> None:
    assert translate.what_to_show(make_contract(Instrument.option("AAPL", "20261218", 200,
                                                                  "C"))) == "MIDPOINT"
    assert translate.what_to_show(make_contract(Instrument("AAPL"))) == "TRADES"


# --- the multiplier counts ------------------------------------------------------------------


def _limits(max_notional: float) -> RiskLimits:
    return RiskLimits(max_position=100, max_notional=max_notional, max_daily_loss=1000,
                      max_orders_per_minute=10, bar_seconds=60)


def test_the_notional_cap_counts_the_multiplier() -> None:
    risk = RiskManager(_limits(max_notional=5_000))
    fresh = NOW - timedelta(seconds=60)
    # 4 contracts at 12.00: 4,800 of money, not 48.
    fits = OrderRequest("AAPL 20261218 200C", Side.BUY, 4, 12.0, 0, multiplier=100)
    assert risk.check(fits, NOW, fresh, ALWAYS_OPEN).allowed
    over = OrderRequest("AAPL 20261218 200C", Side.BUY, 5, 12.0, 0, multiplier=100)
    decision = risk.check(over, NOW, fresh, ALWAYS_OPEN)
    assert not decision.allowed and "notional cap: 6,000.00 over 5,000.00" in decision.reason
    # an exit is never capped
    out = OrderRequest("AAPL 20261218 200C", Side.SELL, 5, 12.0, 5, multiplier=100)
    assert risk.check(out, NOW, fresh, ALWAYS_OPEN).allowed


def test_order_request_carries_the_multiplier() -> None:
    from engine.domain import Signal

    signal = Signal("AAPL 20261218 200C", NOW, 3, "test")
    request = order_request(signal, 0, 12.0, 100.0)
    assert request is not None and request.multiplier == 100.0
    plain = order_request(signal, 0, 12.0)
    assert plain is not None and plain.multiplier == 1.0


def test_an_options_pnl_counts_the_multiplier() -> None:
    # IB's avgCost of an option is per contract: 12.00 a share is 1,200 a contract.
    held = Position("AAPL 20261218 200C", 2, 1200.0, sec_type="OPT", multiplier=100)
    portfolio = Portfolio()
    portfolio.set_position(held)
    portfolio.last_price["AAPL 20261218 200C"] = 12.5
    assert portfolio.unrealized_of(held) == pytest.approx(100.0)  # 0.50 × 100 × 2
    portfolio.start_day("20261202")
    portfolio.last_price["AAPL 20261218 200C"] = 10.0
    assert portfolio.today_pnl() == pytest.approx(-500.0)  # from +100 to -400
    report = PositionsReport(tuple(portfolio.valued_positions()), ("AAPL 20261218 200C",))
    text = to_plain(positions_doc(report), "sim")
    assert "AAPL 20261218 200C" in text  # the whole name, not clipped
    assert "12.00" in text and "-400.00" in text  # the average is per share


def test_an_options_position_from_ib_has_its_multiplier() -> None:
    from ib_async import Position as IBPosition

    contract = Contract(secType="OPT", conId=77, symbol="AAPL", multiplier="100")
    position = translate.position(IBPosition("DU1", contract, 2, 1200.0), "AAPL 20261218 200C")
    assert position.multiplier == 100.0 and position.sec_type == "OPT"


# --- the chain -----------------------------------------------------------------------------


def test_strikes_near_the_money() -> None:
    strikes = tuple(float(k) for k in range(150, 260, 5))
    assert near_the_money(strikes, 201.0, 4) == (195.0, 200.0, 205.0, 210.0)
    assert near_the_money(strikes, 1000.0, 3) == (245.0, 250.0, 255.0)
    assert near_the_money(strikes, None, 2) == (200.0, 205.0)  # the middle ones
    assert near_the_money((100.0, 105.0), 300.0, 10) == (100.0, 105.0)


def test_the_nearest_expiries_to_one_that_does_not_exist() -> None:
    listed = ("20261218", "20270115", "20270219", "20270319", "20270618")
    assert nearest_expiries(listed, "20270201") == ("20261218", "20270115", "20270219")
    assert nearest_expiries(listed, "20991231") == ("20270219", "20270319", "20270618")


def test_ibs_chains_become_one_smart_preferred() -> None:
    rows = [
        IBOptionChain("CBOE", 265598, "AAPL", "100", ["20261218"], [200.0]),
        IBOptionChain("SMART", 265598, "AAPL", "100", ["20270115", "20261218"],
                      [210.0, 200.0, 205.0]),
    ]
    chain = translate.option_chain("AAPL", rows)
    assert chain is not None
    assert (chain.exchange, chain.multiplier) == ("SMART", 100.0)
    assert chain.expirations == ("20261218", "20270115")
    assert chain.strikes == (200.0, 205.0, 210.0)
    assert translate.option_chain("AAPL", []) is None


def test_greeks_from_the_model_else_the_bid_or_ask() -> None:
    contract = Contract(secType="OPT", conId=77, symbol="AAPL", multiplier="100")
    ticker = Ticker(contract=contract)
    ticker.bid, ticker.ask, ticker.last = 11.9, 12.1, math.nan
    ticker.bidGreeks = OptionComputation(0, 0.30, 0.5, 11.9, 0, 0.02, 0.2, -0.05, 201.0)
    quote = translate.option_quote("AAPL 20261218 200C", ticker)
    assert quote.greeks.implied_vol == 0.30 and quote.greeks.underlying_price == 201.0
    assert (quote.bid, quote.ask, quote.last, quote.multiplier) == (11.9, 12.1, None, 100.0)
    ticker.modelGreeks = OptionComputation(0, 0.25, 0.52, 12.0, 0, 0.021, 0.21, -0.04, 201.5)
    model = translate.greeks(ticker)
    assert (model.implied_vol, model.delta, model.gamma, model.theta, model.vega) == (
        0.25, 0.52, 0.021, -0.04, 0.21)
    none = translate.greeks(Ticker(contract=contract))
    assert none == Greeks()


# --- words ---------------------------------------------------------------------------------


def _quote(symbol: str, bid: float) -> OptionQuote:
    return OptionQuote(symbol, bid, bid + 0.2, None, Greeks())


def test_chain_without_and_with_an_expiry_reads() -> None:
    report = ChainReport("AAPL", 201.23, 100.0, "SMART", ("20261218", "20270115"),
                         (195.0, 200.0, 205.0))
    text = to_plain(chain_doc(report), "sim")
    assert "Options AAPL: the next 2 expiries" in text
    assert "AAPL last 201.23" in text and "×100 a contract" in text
    assert "expiries: 20261218, 20270115" in text
    assert "strikes near the money: 195, 200, 205" in text
    rows = (ChainRow(200.0, _quote("c", 3.1), _quote("p", 1.9)), ChainRow(205.0, None, None))
    dated = ChainReport("AAPL", 201.23, 100.0, "SMART", ("20261218",), (200.0, 205.0),
                        "20261218", rows)
    text = to_plain(chain_doc(dated), "sim")
    assert "Options AAPL 20261218" in text
    assert "strike C bid C ask P bid P ask" in " ".join(text.split())
    assert any(line.split()[:5] == ["200", "3.10", "3.30", "1.90", "2.10"]
               for line in text.splitlines())
    assert "/quote AAPL 20261218 200 C" in text
    unquoted = to_plain(chain_doc(ChainReport("AAPL", None, 100.0, "SMART", ("20261218",),
                                              (200.0,), "20261218")), "sim")
    assert "no quotes now" in unquoted and "strikes near the money: 200" in unquoted
    missing = to_plain(no_such_expiry_doc(NoSuchExpiry("AAPL", "20991231",
                                                       ("20270115", "20270219"))), "sim")
    assert "No AAPL options expire on 20991231: the nearest are 20270115, 20270219" in missing


def test_an_options_quote_reads_with_its_greeks() -> None:
    quote = OptionQuote("AAPL 20261218 200C", 11.9, 12.1, 12.0,
                        Greeks(0.2534, 0.5234, 0.02112, -0.0456, 0.2101, 201.5, 12.02))
    text = to_plain(option_quote_doc(quote), "sim")
    assert "AAPL 20261218 200C: 12.00" in text
    assert "bid 11.90  ask 12.10  last 12.00" in text
    assert "IV 25.3%  delta 0.523  gamma 0.0211" in text
    assert "theta -0.046  vega 0.210" in text
    assert "underlying 201.50" in text and "×100" in text
    bare = to_plain(option_quote_doc(OptionQuote("X 20261218 1C", None, None, None,
                                                 Greeks())), "sim")
    assert "IV –  delta –" in bare


@pytest.mark.parametrize(
    "words",
    [["aapl", "20261218", "200", "c"], ["AAPL", "20261218", "200C"],
     ["AAPL:OPT:20261218:200:C"]],
)
def test_quote_words_name_an_option(words: list[str]) -> None:
    assert option_from_words(words) == Instrument.option("AAPL", "20261218", 200.0, "C")


@pytest.mark.parametrize(
    ("words", "says"),
    [
        (["AAPL", "2026-12-18", "200", "C"], "the expiry '2026-12-18' is not a date"),
        (["AAPL", "20261218", "x", "C"], "the strike 'X' is not a positive number"),
        (["AAPL", "20261218", "200", "Q"], "the right 'Q' is not C (call) or P (put)"),
        (["AAPL", "20261218", "200"], "the right '' is not C"),
        (["AAPL:OPT:20261218:200"], "an option is SYMBOL:OPT:YYYYMMDD:STRIKE:C|P"),
        (["A$PL", "20261218", "200", "C"], "is not a stock symbol"),
    ],
)
def test_a_malformed_option_in_quote_is_named(words: list[str], says: str) -> None:
    with pytest.raises(UsageError) as caught:
        option_from_words(words)
    assert says in str(caught.value)


def test_a_midpoint_bar_without_volume_is_a_bar_of_no_volume() -> None:
    from ib_async.objects import RealTimeBar

    bar = RealTimeBar(time=NOW, endTime=-1, open_=12.0, high=12.1, low=11.9, close=12.05,
                      volume=-1, wap=-1, count=-1)
    assert translate.realtime_bar("AAPL 20261218 200C", bar).volume == 0.0
    traded = RealTimeBar(time=NOW, endTime=-1, open_=1, high=1, low=1, close=1, volume=300)
    assert translate.realtime_bar("AAPL", traded).volume == 300


def test_an_option_takes_exits_only_from_its_last_day() -> None:
    from engine.risk import option_expiring

    expiry = date(2026, 12, 4)
    zone = "America/New_York"
    thursday_night = datetime(2026, 12, 4, 4, 59, tzinfo=UTC)  # 23:59 in New York
    assert option_expiring("X", expiry, zone, thursday_night) is None
    friday = datetime(2026, 12, 4, 5, 0, tzinfo=UTC)
    assert option_expiring("AAPL 20261204 175C", expiry, zone, friday) == (
        "AAPL 20261204 175C expires 2026-12-04: exits only on its last day")
    assert option_expiring("X", expiry, zone, datetime(2026, 12, 7, tzinfo=UTC)) is not None
    assert option_expiring("X", None, zone, friday) is None


def test_an_option_not_the_bots_is_named_the_bots_way() -> None:
    from engine.ib_contracts import ContractBook

    book = ContractBook()
    mine = Contract(secType="OPT", conId=77, symbol="AAPL", strike=200.0, right="C",
                    lastTradeDateOrContractMonth="20261218")
    book.add("AAPL 20261218 200C", mine)
    put = Contract(secType="OPT", conId=78, symbol="AAPL", strike=200.0, right="P",
                   lastTradeDateOrContractMonth="20261218", localSymbol="AAPL  261218P00200000")
    assert book.symbol(mine) == "AAPL 20261218 200C"
    assert book.symbol(put) == "AAPL 20261218 200P"
    twin = Contract(secType="OPT", conId=79, symbol="AAPL", strike=200.0, right="C",
                    lastTradeDateOrContractMonth="20261218")  # another class, same name
    assert book.symbol(twin) == "AAPL 20261218 200C (OPT 79)"


async def test_chart_of_an_option_asks_for_it_by_name() -> None:
    from bot.commands import Commands, Reply
    from tests.bot.fake_control import FakeControl

    control = FakeControl()
    commands = Commands(control)
    try:
        reply = await commands.execute("/chart aapl 20261218 200 c", "test")
    finally:
        await commands.close()
    assert control.called("chart_data") == [("AAPL 20261218 200C",)]
    assert isinstance(reply, Reply)
    assert reply.doc.title == "Unknown symbol AAPL 20261218 200C: not one the bot trades"
