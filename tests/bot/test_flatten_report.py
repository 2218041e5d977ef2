"""The kill switch's report when closes wait for IB (issue 8, item 1): it says plainly which
symbols wait and why, and does not invite a second /flatten that would double them. And the
words for each item of a flatten or cancel report, built from the engine's data."""

from __future__ import annotations

from bot.messages.document import to_plain
from bot.messages.kill_switch import (
    cancel_doc,
    flatten_doc,
    not_cancelled_text,
    not_closed_text,
    order_text,
    waiting_text,
)
from engine.domain import OrderStatus, OrderType, Side
from engine.reports import (
    CancelReport,
    ClosedPosition,
    FlattenReport,
    NotCancelled,
    NotCancelledReason,
    NotClosed,
    NotClosedReason,
    OrderSummary,
    WaitingForIB,
    WaitingKind,
)

HELD_CLOSE = OrderSummary("tb-1", "AAPL", Side.SELL, 5, OrderType.MARKET, OrderStatus.UNKNOWN)
WAITING = (
    WaitingForIB(HELD_CLOSE, 5, WaitingKind.CLOSE_SENT,
                 "sent while IB's servers were away; waits for IB"),
)
RESTING = OrderSummary("tb-2", "MSFT", Side.BUY, 7, OrderType.LIMIT, OrderStatus.SUBMITTED)


def test_waiting_for_ib_is_not_flat_and_says_why() -> None:
    report = FlattenReport("bot", (), (ClosedPosition("SPY", 3, 500.0),), (), flat=False,
                           waiting_for_ib=WAITING)
    text = to_plain(flatten_doc(report), "sim")
    assert "NOT flat yet (bot): waiting for IB" in text
    assert "closed SPY 3" in text
    assert "AAPL SELL 5" in text and "never sent twice" in text
    assert "a second /flatten would not help" in text
    assert "flatten again" not in text


def test_a_failure_beside_a_wait_is_still_an_alarm() -> None:
    rejected = NotClosed("MSFT", 7, NotClosedReason.CLOSE_FAILED, detail="order rejected")
    report = FlattenReport("bot", (), (), (rejected,), flat=False, waiting_for_ib=WAITING)
    text = to_plain(flatten_doc(report), "sim")
    assert "NOT flat (bot)" in text and "MSFT 7: order rejected" in text and "AAPL" in text


def test_a_cancel_that_failed_is_an_alarm_too_and_comes_first() -> None:
    report = FlattenReport(
        "account", (), (), (NotClosed("MSFT", -7, NotClosedReason.ORDER_WORKING, RESTING),),
        flat=False, waiting_for_ib=WAITING,
        not_cancelled=(NotCancelled(RESTING, NotCancelledReason.STILL_WORKING),),
    )
    assert to_plain(flatten_doc(report), "sim").splitlines()[1:4] == [
        "  could not close:",
        "  • MSFT BUY 7 (tb-2): still Submitted",
        "  • MSFT -7: an order for it is still working",
    ]
    assert flatten_doc(report).title == "NOT flat (account)"


def test_a_cancelled_order() -> None:
    assert order_text(RESTING) == "MSFT BUY 7 LMT (tb-2)"
    fractional = OrderSummary("tb-3", "BTC", Side.SELL, 0.25, OrderType.STOP_LIMIT,
                              OrderStatus.CANCELLED)
    assert order_text(fractional) == "BTC SELL 0.25 STP LMT (tb-3)"


def test_the_orders_a_cancel_left_working() -> None:
    assert not_cancelled_text(NotCancelled(RESTING, NotCancelledReason.STILL_WORKING)) == (
        "MSFT BUY 7 (tb-2): still Submitted"
    )
    unknown = NotCancelled(HELD_CLOSE, NotCancelledReason.STILL_WORKING, outcome_unknown=True)
    assert not_cancelled_text(unknown) == (
        "AAPL SELL 5 (tb-1): still Unknown (outcome unknown: waits for IB)"
    )
    kept = NotCancelled(HELD_CLOSE, NotCancelledReason.KILL_SWITCH_CLOSE)
    assert not_cancelled_text(kept) == (
        "AAPL SELL 5 (tb-1): the kill switch's close, kept (Unknown); cancel it in TWS if you "
        "mean to"
    )
    assert not_cancelled_text(NotCancelled(None, NotCancelledReason.OTHER_PROGRAMS)) == (
        "orders of other programs and placed by hand: not cancelled, as IB's global cancel "
        "would cancel the kill switch's closes too; cancel them in TWS"
    )


def test_the_positions_not_closed() -> None:
    def text(reason: NotClosedReason, **kwargs: object) -> str:
        return not_closed_text(NotClosed("AAPL", 5, reason, **kwargs))  # type: ignore[arg-type]

    assert not_closed_text(NotClosed(None, None, NotClosedReason.NOT_CONNECTED)) == (
        "not connected to the gateway"
    )
    assert text(NotClosedReason.EARLIER_CLOSE_WORKING, order=HELD_CLOSE) == (
        "AAPL 5: the close of an earlier /flatten is still working; it fills when the market "
        "takes it"
    )
    assert not_closed_text(NotClosed("MSFT", -7, NotClosedReason.ORDER_WORKING, RESTING)) == (
        "MSFT -7: an order for it is still working"
    )
    assert text(NotClosedReason.FILL_NOT_IN_POSITIONS) == (
        "AAPL 5: a fill is not in the positions yet; flatten again"
    )
    assert text(NotClosedReason.NO_CONTRACT) == "AAPL 5: no contract"
    rejected = OrderSummary("tb-4", "AAPL", Side.SELL, 5, OrderType.MARKET,
                            OrderStatus.REJECTED)
    assert text(NotClosedReason.CLOSE_FAILED, order=rejected, detail="no liquidity") == (
        "AAPL 5: no liquidity"
    )
    # Without a message from the broker, the close's status says what became of it.
    assert text(NotClosedReason.CLOSE_FAILED, order=rejected) == "AAPL 5: Rejected"
    resting = OrderSummary("tb-5", "AAPL", Side.SELL, 5, OrderType.MARKET,
                           OrderStatus.SUBMITTED)
    assert text(NotClosedReason.CLOSE_WORKING, order=resting) == "AAPL 5: Submitted"
    assert not_closed_text(NotClosed("EUR", 0.5, NotClosedReason.NO_CONTRACT)) == (
        "EUR 0.5: no contract"
    )


def test_the_orders_waiting_for_ib() -> None:
    tail = "; it fills or not when IB is back, and is never sent twice"
    unknown = WaitingForIB(HELD_CLOSE, 5, WaitingKind.OUTCOME_UNKNOWN)
    assert waiting_text(unknown) == (
        "AAPL SELL 5 (tb-1): outcome unknown: sent, not seen at the broker" + tail
    )
    sent_now = WaitingForIB(HELD_CLOSE, 3, WaitingKind.CLOSE_SENT)  # 2 of 5 already filled
    assert waiting_text(sent_now) == (
        "AAPL SELL 3 (tb-1): close sent now: IB's servers are away" + tail
    )
    # The order's own message says why better than the default.
    assert waiting_text(WAITING[0]) == (
        "AAPL SELL 5 (tb-1): close sent now: sent while IB's servers were away; waits for IB"
        + tail
    )


def test_a_cancel_report() -> None:
    report = CancelReport("account", (RESTING,), (
        NotCancelled(HELD_CLOSE, NotCancelledReason.KILL_SWITCH_CLOSE),
        NotCancelled(None, NotCancelledReason.OTHER_PROGRAMS),
    ))
    doc = cancel_doc(report)
    assert doc.title == "Cancelled 1 orders (account)" and doc.icon == "🚨"
    assert doc.blocks == (
        "cancelled: MSFT BUY 7 LMT (tb-2)",
        "failed:",
        "• AAPL SELL 5 (tb-1): the kill switch's close, kept (Unknown); cancel it in TWS if you "
        "mean to",
        "• orders of other programs and placed by hand: not cancelled, as IB's global cancel "
        "would cancel the kill switch's closes too; cancel them in TWS",
    )


def test_a_flatten_that_cancelled_and_closed() -> None:
    report = FlattenReport("bot", (RESTING,), (ClosedPosition("AAPL", -5, 100.0),), (),
                           flat=True)
    doc = flatten_doc(report)
    assert doc.title == "flat (bot): closed AAPL 5"
    assert doc.blocks == ("cancelled 1 orders: MSFT BUY 7 LMT (tb-2)",)
