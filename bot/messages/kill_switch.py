"""The acting commands' messages: the confirmation asked first, its progress and expiry, and the
final flatten and cancel reports."""

from __future__ import annotations

from collections.abc import Sequence

from bot.messages.document import Block, Doc
from bot.messages.numbers import compact_qty, qty
from engine.reports import (
    CancelReport,
    FlattenReport,
    NotCancelled,
    NotCancelledReason,
    NotClosed,
    NotClosedReason,
    OrderSummary,
    WaitingForIB,
    WaitingKind,
)


def confirm_doc(action: str, scope_text: str, ttl: float) -> Doc:
    return Doc(f"Confirm {action}?", (scope_text, f"expires in {int(ttl)} s"), icon="❓")


def progress_doc(action: str, lines: Sequence[str]) -> Doc:
    return Doc(f"{action}…", tuple(lines[-15:]), icon="⏳")


def expired_doc(action: str) -> Doc:
    return Doc(
        f"{action}: confirmation expired, nothing was done", (f"send /{action} again",), icon="⌛"
    )


def cancelled_doc(action: str) -> Doc:
    return Doc(f"{action}: cancelled, nothing was done", icon="✖️")


def order_text(order: OrderSummary) -> str:
    """"AAPL BUY 5 LMT (tb-…)": a cancelled order."""
    return (f"{order.symbol} {order.side.value} {compact_qty(order.quantity)} "
            f"{order.order_type.value} ({order.order_ref})")


def _order_head(order: OrderSummary, quantity: float) -> str:
    return f"{order.symbol} {order.side.value} {compact_qty(quantity)} ({order.order_ref})"


_OTHER_PROGRAMS = ("orders of other programs and placed by hand: not cancelled, as IB's global "
                   "cancel would cancel the kill switch's closes too; cancel them in TWS")


def not_cancelled_text(item: NotCancelled) -> str:
    """An order a cancel left working, and why: "AAPL BUY 5 (tb-…): still Submitted"."""
    if item.reason is NotCancelledReason.OTHER_PROGRAMS or item.order is None:
        return _OTHER_PROGRAMS
    head, status = _order_head(item.order, item.order.quantity), item.order.status.value
    if item.reason is NotCancelledReason.KILL_SWITCH_CLOSE:
        return (f"{head}: the kill switch's close, kept ({status}); cancel it in TWS if you "
                "mean to")
    unknown = " (outcome unknown: waits for IB)" if item.outcome_unknown else ""
    return f"{head}: still {status}{unknown}"


_NOT_CLOSED_WHY = {
    NotClosedReason.EARLIER_CLOSE_WORKING: "the close of an earlier /flatten is still "
                                           "working; it fills when the market takes it",
    NotClosedReason.ORDER_WORKING: "an order for it is still working",
    NotClosedReason.FILL_NOT_IN_POSITIONS: "a fill is not in the positions yet; flatten again",
    NotClosedReason.NO_CONTRACT: "no contract",
}


def not_closed_text(item: NotClosed) -> str:
    """A position not closed, and why: "MSFT 7: order rejected"."""
    if item.reason is NotClosedReason.NOT_CONNECTED or item.symbol is None:
        return "not connected to the gateway"
    if item.reason in (NotClosedReason.CLOSE_FAILED, NotClosedReason.CLOSE_WORKING):
        status = item.order.status.value if item.order is not None else ""
        why = item.detail or status
    else:
        why = _NOT_CLOSED_WHY[item.reason]
    return f"{item.symbol} {compact_qty(item.quantity or 0.0)}: {why}"


_WAITING = {  # what it is, and why it waits when the order has no message of its own
    WaitingKind.OUTCOME_UNKNOWN: ("outcome unknown", "sent, not seen at the broker"),
    WaitingKind.CLOSE_SENT: ("close sent now", "IB's servers are away"),
}


def waiting_text(item: WaitingForIB) -> str:
    """"AAPL SELL 5 (tb-…): close sent now: IB's servers are away; …" — symbol first; the
    order's own message, when it has one, says why better than the default."""
    what, why = _WAITING[item.kind]
    return (f"{_order_head(item.order, item.remaining)}: {what}: {item.message or why}; it "
            "fills or not when IB is back, and is never sent twice")


def _closed_text(report: FlattenReport) -> str:
    return ", ".join(f"{c.symbol} {qty(abs(c.quantity))}" for c in report.closed)


def _failures(report: FlattenReport) -> list[str]:
    """What stopped it being flat: the cancels that failed first, then the positions."""
    return ([not_cancelled_text(n) for n in report.not_cancelled]
            + [not_closed_text(n) for n in report.not_closed])


def flatten_doc(report: FlattenReport) -> Doc:
    scope = "account" if report.scope == "account" else "bot"
    blocks: list[Block] = []
    if report.cancelled_orders:
        blocks.append(
            f"cancelled {len(report.cancelled_orders)} orders: "
            + ", ".join(order_text(o) for o in report.cancelled_orders)
        )
    failures = _failures(report)
    if failures:
        blocks.append("could not close:")
        blocks.extend(f"• {f}" for f in failures)
    if report.waiting_for_ib:
        blocks.append("waiting for IB (not closed again: a second /flatten would not help):")
        blocks.extend(f"• {waiting_text(w)}" for w in report.waiting_for_ib)
    if report.already_flat:
        return Doc(f"Flat ({scope}): nothing to close", tuple(blocks), icon="✅")
    if report.flat:
        closed = _closed_text(report)
        return Doc(
            f"flat ({scope})" + (f": closed {closed}" if closed else ""), tuple(blocks), icon="✅"
        )
    closed = _closed_text(report)
    if closed:
        blocks.insert(0, f"closed {closed}")
    if report.waiting_for_ib and not failures:
        return Doc(f"NOT flat yet ({scope}): waiting for IB", tuple(blocks), icon="⏳")
    return Doc(f"NOT flat ({scope})", tuple(blocks), icon="🚨")


def cancel_doc(report: CancelReport) -> Doc:
    blocks: list[Block] = []
    if report.cancelled:
        blocks.append("cancelled: " + ", ".join(order_text(o) for o in report.cancelled))
    if report.failed:
        blocks.append("failed:")
        blocks.extend(f"• {not_cancelled_text(f)}" for f in report.failed)
    title = f"Cancelled {len(report.cancelled)} orders ({report.scope})"
    if not report.cancelled and not report.failed:
        title = f"No open orders to cancel ({report.scope})"
    return Doc(title, tuple(blocks), icon="🚨" if report.failed else "✅")
