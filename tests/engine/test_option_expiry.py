"""Which position differences an option's settlement at expiry explains (engine/option_expiry.py),
case by case."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from bot.alerts import classify
from bot.messages.document import to_plain
from engine.domain import Instrument, Settlement
from engine.events import OptionSettledEvent
from engine.option_expiry import expires_at, settle_expired
from engine.position_audit import PositionDifference as Difference

CALL = Instrument.option("AAPL", "20261218", 200.0, "C")
PUT = Instrument.option("AAPL", "20261218", 190.0, "P")
LATER = Instrument.option("AAPL", "20270115", 200.0, "C")
STOCK = Instrument("AAPL")
INSTRUMENTS = {i.symbol: i for i in (CALL, PUT, LATER, STOCK)}
BEFORE_CLOSE = datetime(2026, 12, 18, 20, 59, tzinfo=UTC)  # 15:59 New York
AFTER_CLOSE = datetime(2026, 12, 18, 21, 0, tzinfo=UTC)  # 16:00 New York


SETTLED_AT_THE_CLOSE = {i.symbol: AFTER_CLOSE for i in (CALL, PUT, LATER)}


def _settle(differences, now=AFTER_CLOSE, aapl=None, flat_at=SETTLED_AT_THE_CLOSE):
    """`aapl`: the underlying's last price (None: unknown)."""
    return settle_expired(differences, INSTRUMENTS, now, lambda symbol: 100.0,
                          {"AAPL": aapl}.get, flat_at)


def test_an_option_expires_at_the_close_of_its_day_in_new_york() -> None:
    assert expires_at(CALL) == AFTER_CLOSE
    assert expires_at(STOCK) is None


def test_an_option_gone_after_its_expiry_is_settled() -> None:
    settled, rest = _settle([Difference(CALL.symbol, 0.0, 2.0)])
    assert settled == [Settlement(CALL.symbol, 2.0, "AAPL", 0.0)] and rest == []


def test_before_the_close_it_is_a_difference() -> None:
    difference = Difference(CALL.symbol, 0.0, 2.0)
    assert _settle([difference], BEFORE_CLOSE) == ([], [difference])


def test_an_option_the_broker_still_holds_after_expiry_is_a_difference() -> None:
    difference = Difference(CALL.symbol, 1.0, 2.0)
    assert _settle([difference]) == ([], [difference])


def test_an_option_not_yet_expired_is_a_difference() -> None:
    difference = Difference(LATER.symbol, 0.0, 1.0)
    assert _settle([difference]) == ([], [difference])


def test_an_option_that_went_flat_before_the_close_is_a_difference() -> None:
    """Closed by hand on its last day (or lost): IB settled nothing."""
    difference = Difference(CALL.symbol, 0.0, 2.0)
    closed_at_eleven = {CALL.symbol: datetime(2026, 12, 18, 16, 0, tzinfo=UTC)}
    assert _settle([difference], flat_at=closed_at_eleven) == ([], [difference])
    assert _settle([difference], flat_at={}) == ([], [difference]), "not seen going flat"


@pytest.mark.parametrize(
    ("option", "held", "shares", "aapl"),
    [(CALL, 2.0, 200.0, 210.0), (CALL, -1.0, -100.0, 210.0), (PUT, 3.0, -300.0, 180.0),
     (PUT, -2.0, 200.0, 180.0), (CALL, 1.0, 100.0, 199.5)],
    ids=["long call", "short call", "long put", "short put", "call at the money"],
)
def test_an_exercise_or_assignment_explains_the_underlying(option, held, shares, aapl) -> None:
    settled, rest = _settle([Difference(option.symbol, 0.0, held),
                             Difference("AAPL", 50.0 + shares, 50.0)], aapl=aapl)
    assert settled == [Settlement(option.symbol, held, "AAPL", shares)] and rest == []


def test_an_underlying_change_no_settlement_adds_up_to_is_a_difference() -> None:
    stock = Difference("AAPL", 150.0, 0.0)
    settled, rest = _settle([Difference(CALL.symbol, 0.0, 2.0), stock], aapl=210.0)
    assert settled == [Settlement(CALL.symbol, 2.0, "AAPL", 0.0)] and rest == [stock]


@pytest.mark.parametrize("aapl", [210.0, None], ids=["out of the money", "price unknown"])
def test_an_option_that_cannot_have_been_exercised_explains_nothing(aapl) -> None:
    """A long 190 put with the underlying at 210 expired worthless: 100 shares gone are a
    sale by hand or a lost fill, not its exercise; so without the underlying's price."""
    stock = Difference("AAPL", -100.0, 0.0)
    settled, rest = _settle([Difference(PUT.symbol, 0.0, 1.0), stock], aapl=aapl)
    assert settled == [Settlement(PUT.symbol, 1.0, "AAPL", 0.0)] and rest == [stock]


def test_of_two_options_the_one_in_the_money_is_the_one_delivered() -> None:
    settled, rest = _settle([Difference(CALL.symbol, 0.0, 1.0), Difference(PUT.symbol, 0.0, 1.0),
                             Difference("AAPL", -100.0, 0.0)], aapl=185.0)
    assert rest == []
    assert settled == [Settlement(CALL.symbol, 1.0, "AAPL", 0.0),
                       Settlement(PUT.symbol, 1.0, "AAPL", -100.0)]


def test_an_underlying_change_without_an_option_settled_is_a_difference() -> None:
    stock = Difference("AAPL", 100.0, 0.0)
    assert _settle([stock]) == ([], [stock])


def test_the_settlement_alert_in_words() -> None:
    ny = ZoneInfo("America/New_York")
    exercised = OptionSettledEvent(Settlement(CALL.symbol, 2.0, "AAPL", 200.0), AFTER_CLOSE)
    kind, doc = classify(exercised, ny)
    text = to_plain(doc, "sim")
    assert kind == "risk"
    assert "AAPL 20261218 200C: settled at expiry" in text
    assert "held 2, exercised or assigned: AAPL +200" in text and "16:00" in text
    worthless = OptionSettledEvent(Settlement(PUT.symbol, -1.0, "AAPL", 0.0), AFTER_CLOSE)
    text = to_plain(classify(worthless, ny)[1], "sim")
    assert "held -1, expired; no change in a position the bot trades" in text
