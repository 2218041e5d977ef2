"""Options in words: an underlying's chain (/chain), an option's quote with its greeks
(/quote AAPL 20261218 200 C), and an expiry that does not exist."""

from __future__ import annotations

from bot.messages.document import Block, Doc, Table
from bot.messages.numbers import price
from engine.domain import OptionQuote
from engine.reports import ChainReport, NoSuchExpiry

_DASH = "–"


def strike_text(strike: float) -> str:
    return f"{strike:g}"


def _greek(value: float | None, digits: int) -> str:
    return _DASH if value is None else f"{value:.{digits}f}"


def _percent(value: float | None) -> str:
    return _DASH if value is None else f"{value * 100:.1f}%"


def _underlying_line(report: ChainReport) -> str:
    return (
        f"{report.underlying} last {price(report.underlying_price)} · "
        f"×{report.multiplier:g} a contract · {report.exchange}"
    )


def chain_doc(report: ChainReport) -> Doc:
    """Without an expiry: the next expiries and the strikes near the money; with one: its
    strikes with the calls' and puts' bid and ask (the strikes alone without a snapshot)."""
    if report.expiry is None:
        if not report.expirations:
            return Doc(f"Options {report.underlying}: none listed ahead", icon="🧾")
        blocks: list[Block] = [
            _underlying_line(report),
            f"expiries: {', '.join(report.expirations)}",
            f"strikes near the money: {', '.join(strike_text(k) for k in report.strikes)}",
            f"e.g. /chain {report.underlying} {report.expirations[0]}",
        ]
        return Doc(
            f"Options {report.underlying}: the next {len(report.expirations)} expiries",
            tuple(blocks), icon="🧾",
        )
    title = f"Options {report.underlying} {report.expiry}"
    example = (
        f"e.g. /quote {report.underlying} {report.expiry} {strike_text(report.strikes[0])} C"
        if report.strikes else ""
    )
    if not report.rows:
        return Doc(title, (
            _underlying_line(report),
            f"strikes near the money: {', '.join(strike_text(k) for k in report.strikes)}",
            "no quotes now",
            example,
        ), icon="🧾")
    rows = tuple(
        (
            strike_text(row.strike),
            price(row.call.bid if row.call else None),
            price(row.call.ask if row.call else None),
            price(row.put.bid if row.put else None),
            price(row.put.ask if row.put else None),
        )
        for row in report.rows
    )
    return Doc(title, (
        _underlying_line(report),
        Table(("strike", "C bid", "C ask", "P bid", "P ask"), rows),
        example,
    ), icon="🧾")


def no_such_expiry_doc(error: NoSuchExpiry) -> Doc:
    nearest = f": the nearest are {', '.join(error.nearest)}" if error.nearest else ""
    return Doc(f"No {error.underlying} options expire on {error.expiry}{nearest}", icon="⚠️")


def option_quote_doc(quote: OptionQuote) -> Doc:
    g = quote.greeks
    headline = quote.last if quote.last is not None else g.option_price
    return Doc(
        f"{quote.symbol}: {price(headline)}",
        (
            f"bid {price(quote.bid)}  ask {price(quote.ask)}  last {price(quote.last)}",
            f"IV {_percent(g.implied_vol)}  delta {_greek(g.delta, 3)}  "
            f"gamma {_greek(g.gamma, 4)}",
            f"theta {_greek(g.theta, 3)}  vega {_greek(g.vega, 3)}",
            f"underlying {price(g.underlying_price)} · ×{quote.multiplier:g} a contract",
        ),
        icon="🧾",
    )
