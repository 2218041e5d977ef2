"""The kill switch's report when closes wait for IB (issue 8, item 1): it says plainly which
symbols wait and why, and does not invite a second /flatten that would double them."""

from __future__ import annotations

from bot.messages.document import to_plain
from bot.messages.kill_switch import flatten_doc
from engine.reports import ClosedPosition, FlattenReport

WAITING = (
    "AAPL SELL 5 (tb-1): sent while IB's servers were away; waits for IB; it fills or not "
    "when IB is back, and is never sent twice",
)


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
    report = FlattenReport("bot", (), (), ("MSFT 7: order rejected",), flat=False,
                           waiting_for_ib=WAITING)
    text = to_plain(flatten_doc(report), "sim")
    assert "NOT flat (bot)" in text and "MSFT 7: order rejected" in text and "AAPL" in text
