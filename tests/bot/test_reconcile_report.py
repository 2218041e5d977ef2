"""The words for reconciliation's differences, built from the engine's data: one per kind,
and the alert that lists them."""

from __future__ import annotations

import pytest

from bot.messages.events import difference_text, reconcile_doc
from engine.domain import OrderStatus
from engine.events import Difference, DifferenceKind, ReconcileEvent
from tests.bot.fake_control import T0

REF = "tb-aaaa0000aaaa0000"


@pytest.mark.parametrize(("difference", "text"), [
    (Difference(DifferenceKind.DONE_WHILE_AWAY, REF, "AAPL", status=OrderStatus.CANCELLED),
     f"{REF} AAPL: Cancelled while away"),
    (Difference(DifferenceKind.FILLED_WHILE_AWAY, REF, "AAPL"),
     f"{REF} AAPL: filled while away"),
    (Difference(DifferenceKind.PARTLY_FILLED, REF, "AAPL", filled=3, quantity=10),
     f"{REF} AAPL: 3 of 10 filled; rest unknown"),
    (Difference(DifferenceKind.PARTLY_FILLED, REF, "BTC", filled=0.125, quantity=0.5),
     f"{REF} BTC: 0.125 of 0.5 filled; rest unknown"),
    (Difference(DifferenceKind.NOT_SEEN, REF, "AAPL"),
     f"{REF} AAPL: not seen at the broker; waiting for IB to settle it (not sent again)"),
    (Difference(DifferenceKind.NO_TRACE, REF, "AAPL"),
     f"{REF} AAPL: no trace at the broker"),
    (Difference(DifferenceKind.OTHER_CLIENT, REF, "AAPL", client_id=9, our_client_id=7),
     f"{REF} AAPL: open under client id 9, not 7; not adopted (IB_CLIENT_ID changed?)"),
    (Difference(DifferenceKind.NOT_JOURNALED, REF, "AAPL"),
     f"{REF} AAPL: open at the broker, not journaled"),
    (Difference(DifferenceKind.FILLS_RECOVERED, count=2),
     "2 fill(s) recovered from the broker"),
], ids=lambda value: value.kind.value if isinstance(value, Difference) else "")
def test_each_difference_in_words(difference: Difference, text: str) -> None:
    assert difference_text(difference) == text


def test_every_kind_has_words() -> None:
    for kind in DifferenceKind:
        assert difference_text(Difference(kind, REF, "AAPL", status=OrderStatus.FILLED))


def test_the_alert_lists_the_differences_and_the_adopted() -> None:
    event = ReconcileEvent((Difference(DifferenceKind.NOT_JOURNALED, REF, "AAPL"),
                            Difference(DifferenceKind.FILLS_RECOVERED, count=1)), 1, T0)
    doc = reconcile_doc(event)
    assert doc.title == "Reconciliation: 2 differences"
    assert doc.blocks == (f"• {REF} AAPL: open at the broker, not journaled",
                          "• 1 fill(s) recovered from the broker", "adopted 1 orders")
