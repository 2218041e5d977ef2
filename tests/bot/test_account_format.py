"""How /account reads, and how IB's account summary becomes an AccountSummary (no socket)."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from ib_async import AccountValue

from bot.messages.account import account_doc
from bot.messages.document import to_plain
from engine import ib_translate as translate
from engine.domain import AccountSummary
from engine.reports import AccountReport

NOW = datetime(2024, 3, 4, 15, 0, 5, tzinfo=UTC)
NY = ZoneInfo("America/New_York")
FULL = AccountSummary(
    "USD",
    net_liquidation=125_000.0,
    cash=100_000.5,
    buying_power=400_000.0,
    init_margin=25_000.0,
    maint_margin=12_500.0,
    available_funds=100_000.0,
    excess_liquidity=112_500.0,
    realized_pnl=1_234.5,
    unrealized_pnl=-678.9,
    gross_position_value=50_000.0,
)


def _text(summary: AccountSummary, account: str = "DU1234567") -> str:
    return to_plain(account_doc(AccountReport(account, summary, NOW), NY), "paper")


def test_every_field_with_its_label() -> None:
    lines = [line.strip() for line in _text(FULL).splitlines()]
    assert "Account DU1234567 (USD)" in lines[0]
    assert lines[1:] == [
        "net liquidation: 125,000.00",
        "cash: 100,000.50",
        "buying power: 400,000.00",
        "initial margin: 25,000.00 (20.00% of net liquidation)",
        "maintenance margin: 12,500.00 (10.00% of net liquidation)",
        "available funds: 100,000.00",
        "excess liquidity: 112,500.00",
        "PnL: realized +1,234.50, unrealized -678.90",
        "gross position value: 50,000.00",
        "as of 10:00:05",  # DISPLAY_TZ
    ]


def test_a_value_not_sent_reads_n_a() -> None:
    text = _text(AccountSummary("USD"), account="")
    assert "Account (USD)" in text
    for label in ("net liquidation", "cash", "buying power", "initial margin",
                  "maintenance margin", "available funds", "excess liquidity",
                  "gross position value"):  # fmt: skip
        assert f"{label}: n/a" in text
    assert "PnL: realized n/a, unrealized n/a" in text


def test_margin_percent_needs_a_net_liquidation() -> None:
    no_net_liq = AccountSummary("USD", init_margin=500.0, maint_margin=0.0)
    text = _text(no_net_liq)
    assert "initial margin: 500.00 (n/a of net liquidation)" in text
    assert "maintenance margin: 0.00 (n/a of net liquidation)" in text
    zero = _text(AccountSummary("USD", net_liquidation=0.0, init_margin=500.0))
    assert "initial margin: 500.00 (n/a of net liquidation)" in zero
    small = _text(AccountSummary("USD", net_liquidation=1_000_000.0, init_margin=461.18))
    assert "initial margin: 461.18 (0.05% of net liquidation)" in small


def test_pnl_is_signed_and_other_money_is_not() -> None:
    text = _text(AccountSummary("USD", cash=-50.0, realized_pnl=0.0, unrealized_pnl=12.0))
    assert "cash: -50.00" in text
    assert "PnL: realized +0.00, unrealized +12.00" in text


def _value(tag: str, value: str, currency: str = "USD", account: str = "DU1") -> AccountValue:
    return AccountValue(account, tag, value, currency, "")


def test_ib_summary_translated_in_the_accounts_currency() -> None:
    summary = translate.account_summary([
        _value("AccountType", "INDIVIDUAL", ""),
        _value("NetLiquidation", "125000.00"),
        _value("TotalCashValue", "100000.50"),
        _value("BuyingPower", "400000"),
        _value("InitMarginReq", "25000"),
        _value("MaintMarginReq", "12500"),
        _value("AvailableFunds", "100000"),
        _value("ExcessLiquidity", "112500"),
        _value("GrossPositionValue", "50000"),
        # $LEDGER: once per currency and once as BASE (IB's sum over them), which wins.
        _value("RealizedPnL", "10.00", "EUR"),
        _value("RealizedPnL", "1000.00", "USD"),
        _value("RealizedPnL", "1234.50", "BASE"),
        _value("UnrealizedPnL", "-678.90", "USD"),
        _value("UnrealizedPnL", "5.00", "EUR"),
    ])
    assert summary == FULL


def test_ib_summary_without_a_tag_or_with_junk_leaves_it_none() -> None:
    summary = translate.account_summary([
        _value("NetLiquidation", ""),  # IB sent it empty
        _value("TotalCashValue", "nan"),
        _value("BuyingPower", "5000", "EUR"),  # another currency is never added as dollars
        _value("InitMarginReq", "10"),
    ])
    assert summary == AccountSummary("USD", init_margin=10.0)
    assert translate.account_summary([]) == AccountSummary("USD")
