"""The account in words (/account): net liquidation, cash, buying power, margins as a share of
net liquidation, funds, PnL; a value the broker did not send reads "n/a"."""

from __future__ import annotations

from datetime import tzinfo

from bot.messages.document import Doc
from bot.messages.numbers import clock, money
from engine.reports import AccountReport

NOT_SENT = "n/a"


def _amount(value: float | None, signed: bool = False) -> str:
    return NOT_SENT if value is None else money(value, signed)


def _share(part: float | None, whole: float | None) -> str:
    """`part` as a percent of `whole` (net liquidation); n/a without both, or of nothing."""
    if part is None or not whole or whole < 0:
        return NOT_SENT
    return f"{part / whole * 100:.2f}%"


def _margin(value: float | None, net_liquidation: float | None) -> str:
    if value is None:
        return NOT_SENT
    return f"{_amount(value)} ({_share(value, net_liquidation)} of net liquidation)"


def account_doc(report: AccountReport, tz: tzinfo) -> Doc:
    s = report.summary
    account = f" {report.account}" if report.account else ""
    return Doc(
        f"Account{account} ({s.currency})",
        (
            f"net liquidation: {_amount(s.net_liquidation)}",
            f"cash: {_amount(s.cash)}",
            f"buying power: {_amount(s.buying_power)}",
            f"initial margin: {_margin(s.init_margin, s.net_liquidation)}",
            f"maintenance margin: {_margin(s.maint_margin, s.net_liquidation)}",
            f"available funds: {_amount(s.available_funds)}",
            f"excess liquidity: {_amount(s.excess_liquidity)}",
            f"PnL: realized {_amount(s.realized_pnl, signed=True)}, "
            f"unrealized {_amount(s.unrealized_pnl, signed=True)}",
            f"gross position value: {_amount(s.gross_position_value)}",
            f"as of {clock(report.time, tz)}",
        ),
        icon="🏦",
    )
