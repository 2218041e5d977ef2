"""A session's open is not a quiet stream: silence counts only while the market is open, so
the first check after the open does not resubscribe every symbol and alert (the soak bench
saw 20 such alerts every morning)."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from engine.clock import BrokerClock
from engine.domain import Instrument
from engine.events import DataEvent, EventBus
from engine.hours import TradingHours
from engine.journal_writer import JournalWriter
from engine.market_data import QUIET_SECONDS, MarketData
from engine.portfolio import Portfolio
from engine.ports import ContractInfo
from engine.recorder import Recorder
from tests.engine.conftest import make_settings

OPEN = datetime(2026, 11, 23, 14, 30, tzinfo=UTC)
HOURS = TradingHours(((OPEN, OPEN + timedelta(hours=6, minutes=30)),))


class OneContract:
    """The two things market data asks of a broker here: the contract, and a subscription."""

    def __init__(self) -> None:
        self.info = ContractInfo(Instrument("AAPL"), 1, 0.01, "America/New_York", HOURS, HOURS)
        self.subscribed: list[str] = []

    def contract(self, symbol: str) -> ContractInfo:
        return self.info

    def subscribe_bars(self, symbol: str, use_rth: bool) -> None:
        self.subscribed.append(symbol)


async def test_the_open_after_a_night_is_not_quiet(tmp_path: Path, writer: JournalWriter) -> None:
    settings = make_settings(tmp_path, symbols="AAPL")
    broker = OneContract()
    bus = EventBus()
    alerts = bus.subscribe(kinds=(DataEvent,))
    market = MarketData(settings, broker, Recorder(writer, bus, BrokerClock()),  # type: ignore[arg-type]
                        BrokerClock(), Portfolio())
    state = market.symbols["AAPL"]
    state.last_small_wall = time.monotonic() - 17 * 3600  # the last bar: yesterday's close
    market._check_quiet(state, OPEN - timedelta(minutes=1))  # closed: the night is not silence
    market._check_quiet(state, OPEN + timedelta(seconds=1))  # the open, before its first bar
    assert broker.subscribed == [] and alerts.pending() == 0
    state.last_small_wall = time.monotonic() - QUIET_SECONDS - 1  # open, and silent a minute
    market._check_quiet(state, OPEN + timedelta(minutes=2))
    assert broker.subscribed == ["AAPL"] and alerts.pending() == 1
