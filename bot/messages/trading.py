"""Replies about the account and the market: positions, open orders, trades, PnL and the daily
summary, quotes."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import tzinfo

from bot.messages.document import Block, Doc, Table
from bot.messages.numbers import clock, money, price, qty, stamp
from engine.domain import Fill, Order
from engine.reports import PnlReport, PositionsReport, Quote, StatusReport


def positions_doc(report: PositionsReport) -> Doc:
    if not report.positions:
        return Doc("Positions: none", ("flat",))
    rows = tuple(
        (
            p.symbol + ("" if p.symbol in report.bot_symbols else "*"),
            qty(p.quantity),
            price(p.avg_cost / p.multiplier),  # a future's or option's avg_cost: per contract
            price(p.market_price),
            money(p.unrealized_pnl),
        )
        for p in report.positions
    )
    blocks: list[Block] = [
        Table(("sym", "qty", "avg", "last", "uPnL"), rows, symbol_column=0)
    ]
    if any(p.symbol not in report.bot_symbols for p in report.positions):
        blocks.append("* not one of the bot's symbols")
    return Doc(f"Positions: {len(report.positions)}", tuple(blocks))


def orders_doc(orders: Sequence[Order]) -> Doc:
    if not orders:
        return Doc("Open orders: none")
    rows = tuple(
        (
            o.symbol,
            o.side.value,
            qty(o.remaining),
            o.order_type.value,
            price(o.limit_price if o.limit_price is not None else o.stop_price),
            o.status.value[:9],
        )
        for o in orders
    )
    return Doc(
        f"Open orders: {len(orders)}",
        (Table(("sym", "side", "qty", "type", "px", "status"), rows, symbol_column=0),),
    )


def trades_doc(fills: Sequence[Fill], tz: tzinfo) -> Doc:
    if not fills:
        return Doc("Trades: none yet")
    rows = tuple(
        (
            clock(f.time, tz),
            f.side.value[0],
            qty(f.quantity),
            f.symbol,
            price(f.price),
            money(f.realized_pnl),
        )
        for f in fills
    )
    return Doc(
        f"Last {len(fills)} trades",
        (Table(("time", "", "qty", "sym", "price", "rPnL"), rows, symbol_column=3),),
    )


def pnl_doc(report: PnlReport) -> Doc:
    blocks: list[Block] = [
        f"today: {money(report.today)} (realized {money(report.realized_today)}, "
        f"unrealized {money(report.unrealized)})",
        f"commissions: {money(report.commissions_today, signed=False)}",
        f"net liquidation: {money(report.net_liquidation, signed=False)}",
    ]
    if report.per_symbol:
        blocks.append(
            Table(("sym", "PnL"), tuple((s, money(v)) for s, v in report.per_symbol.items()))
        )
    return Doc(f"PnL {report.trading_day}: {money(report.today)}", tuple(blocks), icon="💰")


def daily_summary_doc(pnl: PnlReport, status: StatusReport, fills_today: int) -> Doc:
    return Doc(
        f"Daily summary {pnl.trading_day}: {money(pnl.today)}",
        (
            f"realized {money(pnl.realized_today)}, unrealized {money(pnl.unrealized)}",
            f"commissions {money(pnl.commissions_today, signed=False)}; fills: {fills_today}",
            f"net liquidation {money(pnl.net_liquidation, signed=False)}",
            f"engine {status.state.value}, connection {status.connection.value}",
        ),
        icon="📊",
    )


def quote_doc(quote: Quote, tz: tzinfo) -> Doc:
    return Doc(
        f"{quote.symbol}: {price(quote.last)}",
        (
            f"bid {price(quote.bid)}  ask {price(quote.ask)}  last {price(quote.last)}",
            f"at {stamp(quote.time, tz)}",
        ),
    )
