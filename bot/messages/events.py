"""Alerts for engine events: fills, order rejections and cancels, broker errors, connection,
risk, data, reconciliation, lifecycle; bursts merged into a digest, and dropped alerts counted."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import tzinfo

from bot.messages.document import Block, Doc
from bot.messages.numbers import clock, compact_qty, duration, money, price, qty, stamp
from engine.events import (
    BrokerErrorEvent,
    ConnectionEvent,
    DataEvent,
    Difference,
    DifferenceKind,
    FillEvent,
    FrontMonthEvent,
    LifecycleEvent,
    OptionSettledEvent,
    OrderEvent,
    ReconcileEvent,
    RiskEvent,
)


def fill_doc(event: FillEvent, tz: tzinfo) -> Doc:
    fill = event.fill
    lines: list[Block] = [
        f"{fill.side.value} {qty(fill.quantity)} {fill.symbol} @ {price(fill.price)}",
        f"commission: {money(fill.commission, signed=False)}"
        + ("" if event.final else " (not reported yet)"),
        f"position after: {qty(event.position_after)}",
    ]
    if fill.realized_pnl is not None:
        lines.append(f"realized PnL: {money(fill.realized_pnl)}")
    lines.append(f"at {clock(fill.time, tz)}  ref {fill.order_ref}")
    return Doc(
        f"Filled: {fill.side.value} {qty(fill.quantity)} {fill.symbol}", tuple(lines), icon="💹"
    )


def order_event_doc(event: OrderEvent) -> Doc:
    o = event.order
    code = f" (code {event.code})" if event.code is not None else ""
    what = f"{o.side.value} {qty(o.quantity)} {o.symbol} {o.order_type.value}"
    return Doc(
        f"Order {event.kind}: {what}",
        tuple(
            b
            for b in (
                f"{event.message}{code}" if event.message or code else "",
                f"ref {o.order_ref}",
            )
            if b
        ),
        icon="🚫" if event.kind == "rejected" else "↩️",
    )


def broker_error_doc(event: BrokerErrorEvent, tz: tzinfo) -> Doc:
    return Doc(
        f"IB error {event.code}: {event.meaning or event.message}",
        (event.message, f"at {clock(event.time, tz)}"),
        icon="❗" if event.level.value == "error" else "⚠️",
    )


def connection_doc(event: ConnectionEvent, tz: tzinfo) -> Doc:
    state = event.state.value
    detail = (event.detail,) if event.detail else ()
    if state == "connected":
        down = f" after {duration(event.downtime_seconds)}" if event.downtime_seconds else ""
        return Doc(
            f"Connection restored{down}", (*detail, f"at {clock(event.time, tz)}"), icon="🔌"
        )
    title = "IB servers unreachable" if state == "degraded" else "Connection to IB lost"
    return Doc(title, (*detail, f"at {clock(event.time, tz)}"), icon="🔴")


def risk_event_doc(event: RiskEvent, tz: tzinfo) -> Doc:
    symbol = f" {event.symbol}" if event.symbol else ""
    state = (f"engine {event.state.value}",) if event.state else ()
    return Doc(
        f"Risk {event.kind}{symbol}",
        (event.message, *state, f"at {clock(event.time, tz)}"),
        icon="🛡",
    )


def option_settled_doc(event: OptionSettledEvent, tz: tzinfo) -> Doc:
    settled = event.settlement
    held = f"held {compact_qty(settled.quantity)}"
    if settled.delivered:
        outcome = (f"exercised or assigned: {settled.underlying} "
                   f"{'+' if settled.delivered > 0 else '−'}{compact_qty(abs(settled.delivered))}")
    else:
        outcome = "expired; no change in a position the bot trades"
    return Doc(
        f"{settled.option}: settled at expiry",
        (f"{held}, {outcome}", "settled by the broker, without a fill",
         f"at {clock(event.time, tz)}"),
        icon="📅",
    )


def front_month_doc(event: FrontMonthEvent, tz: tzinfo) -> Doc:
    at = f"at {clock(event.time, tz)}"
    if event.switched:
        return Doc(
            f"{event.symbol}: now trading {event.new}",
            (f"the front month rolled from {event.old} to {event.new}", at),
            icon="📅",
        )
    held = f"hold {event.old} {compact_qty(event.held)}" if event.held else \
        f"an order is working in {event.old}"
    return Doc(
        f"{event.symbol}: new front month {event.new}",
        (f"{held}, new front {event.new}: close or roll by hand",
         f"no entries until then; exits of {event.old} and /flatten still work", at),
        icon="📅",
    )


def data_event_doc(event: DataEvent, tz: tzinfo) -> Doc:
    count = f" ×{event.count}" if event.count > 1 else ""
    return Doc(
        f"Data {event.kind} {event.symbol}{count}",
        (event.message, f"at {clock(event.time, tz)}"),
        icon="📉",
    )


_DIFFERENCE_WHAT = {  # the kinds whose words need no field but the order's
    DifferenceKind.FILLED_WHILE_AWAY: "filled while away",
    DifferenceKind.NOT_SEEN: "not seen at the broker; waiting for IB to settle it "
                             "(not sent again)",
    DifferenceKind.NO_TRACE: "no trace at the broker",
    DifferenceKind.NOT_JOURNALED: "open at the broker, not journaled",
    DifferenceKind.UNKNOWN_ORDER_EXECUTION: "executed at the broker, but the journal has no "
                                            "such order (trading paused)",
}


def difference_text(difference: Difference) -> str:
    """One reconciliation difference: "tb-… AAPL: filled while away"."""
    d = difference
    match d.kind:
        case DifferenceKind.FILLS_RECOVERED:
            return f"{d.count} fill(s) recovered from the broker"
        case DifferenceKind.DONE_WHILE_AWAY:
            what = f"{d.status.value if d.status else ''} while away"
        case DifferenceKind.PARTLY_FILLED:
            what = (f"{compact_qty(d.filled or 0.0)} of {compact_qty(d.quantity or 0.0)} "
                    "filled; rest unknown")
        case DifferenceKind.OTHER_CLIENT:
            what = (f"open under client id {d.client_id}, not {d.our_client_id}; not adopted "
                    "(IB_CLIENT_ID changed?)")
        case _:
            what = _DIFFERENCE_WHAT[d.kind]
    return f"{d.order_ref} {d.symbol}: {what}"


def reconcile_doc(event: ReconcileEvent) -> Doc:
    lines = [f"• {difference_text(d)}" for d in event.differences]
    if event.adopted:
        lines.append(f"adopted {event.adopted} orders")
    return Doc(f"Reconciliation: {len(event.differences)} differences", tuple(lines), icon="🔎")


def lifecycle_doc(event: LifecycleEvent, tz: tzinfo) -> Doc:
    details = tuple(f"{k}: {_detail(v)}" for k, v in event.details.items())
    titles = {"startup": "Started", "shutdown": "Shutting down", "daily_summary": "Daily summary"}
    icons = {"startup": "🚀", "shutdown": "👋", "daily_summary": "📊"}
    return Doc(
        titles.get(event.kind, event.kind),
        (*details, f"at {stamp(event.time, tz)}"),
        icon=icons.get(event.kind, "ℹ️"),
    )


def _detail(value: object) -> str:
    if isinstance(value, list | tuple | set | frozenset):
        return ", ".join(str(v) for v in value)
    if isinstance(value, float):
        return money(value, signed=False)
    return str(value)


def digest_doc(kind: str, summaries: Sequence[str], span_seconds: float) -> Doc:
    return Doc(
        f"{len(summaries)} {kind} in the last {duration(span_seconds)}",
        tuple(f"• {s}" for s in summaries),
        icon="📦",
    )


def dropped_doc(counts: dict[str, int], why: str) -> Doc:
    total = sum(counts.values())
    detail = ", ".join(f"{n} {kind}" for kind, n in sorted(counts.items()))
    return Doc(f"{total} alerts were dropped", (f"{detail}", why), icon="⚠️")
