"""The acting commands' messages: the confirmation asked first, its progress and expiry, and the
final flatten and cancel reports."""

from __future__ import annotations

from collections.abc import Sequence

from bot.messages.document import Block, Doc
from bot.messages.numbers import qty
from engine.reports import CancelReport, FlattenReport


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


def _closed_text(report: FlattenReport) -> str:
    return ", ".join(f"{c.symbol} {qty(abs(c.quantity))}" for c in report.closed)


def flatten_doc(report: FlattenReport) -> Doc:
    scope = "account" if report.scope == "account" else "bot"
    blocks: list[Block] = []
    if report.cancelled_orders:
        blocks.append(
            f"cancelled {len(report.cancelled_orders)} orders: "
            + ", ".join(report.cancelled_orders)
        )
    if report.not_closed:
        blocks.append("could not close:")
        blocks.extend(f"• {n}" for n in report.not_closed)
    if report.waiting_for_ib:
        blocks.append("waiting for IB (not closed again: a second /flatten would not help):")
        blocks.extend(f"• {w}" for w in report.waiting_for_ib)
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
    if report.waiting_for_ib and not report.not_closed:
        return Doc(f"NOT flat yet ({scope}): waiting for IB", tuple(blocks), icon="⏳")
    return Doc(f"NOT flat ({scope})", tuple(blocks), icon="🚨")


def cancel_doc(report: CancelReport) -> Doc:
    blocks: list[Block] = []
    if report.cancelled:
        blocks.append("cancelled: " + ", ".join(report.cancelled))
    if report.failed:
        blocks.append("failed:")
        blocks.extend(f"• {f}" for f in report.failed)
    title = f"Cancelled {len(report.cancelled)} orders ({report.scope})"
    if not report.cancelled and not report.failed:
        title = f"No open orders to cancel ({report.scope})"
    return Doc(title, tuple(blocks), icon="🚨" if report.failed else "✅")
