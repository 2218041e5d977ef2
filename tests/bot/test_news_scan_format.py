"""How bulletins, headlines and scanner rankings read (no socket)."""

from __future__ import annotations

import math
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest
from ib_async import Contract, NewsBulletin, Ticker

from bot.messages.document import to_plain
from bot.messages.news import bulletin_doc, news_doc, no_news_subscription_doc
from bot.messages.scanner import scan_codes_doc, scan_doc
from engine import ib_translate as translate
from engine.domain import BulletinKind, Headline, NewsProvider, ScanRow
from engine.events import BulletinEvent
from engine.ib_errors import ErrorAction, classify
from engine.reports import NewsReport, ScanReport

NOW = datetime(2024, 3, 4, 15, 0, tzinfo=UTC)
NY = ZoneInfo("America/New_York")


def test_bulletin_kinds_from_ib_and_their_alerts() -> None:
    halted = translate.bulletin(NewsBulletin(7, 2, " Trading halted in XYZ ", "NYSE"))
    assert (halted.msg_id, halted.kind, halted.message) == (
        7, BulletinKind.EXCHANGE_UNAVAILABLE, "Trading halted in XYZ",
    )  # fmt: skip
    assert translate.bulletin(NewsBulletin(8, 9, "odd", "")).kind is BulletinKind.NEWS
    text = to_plain(bulletin_doc(BulletinEvent(halted, NOW), NY), "sim")
    assert "exchange unavailable (NYSE)" in text and "Trading halted in XYZ" in text
    assert "10:00:00" in text  # DISPLAY_TZ
    system = translate.bulletin(NewsBulletin(9, 1, "maintenance tonight", ""))
    assert "IB bulletin (IB)" in to_plain(bulletin_doc(BulletinEvent(system, NOW), NY), "sim")


def test_headlines_in_display_time_with_provider() -> None:
    report = NewsReport(
        "AAPL",
        (Headline(NOW, "BRFG", "BRFG$1", "AAPL in focus"),),
        (NewsProvider("BRFG", "Briefing.com General Market Columns"),),
    )
    text = to_plain(news_doc(report, NY), "sim")
    assert "Mar 04 10:00  BRFG: AAPL in focus" in text
    assert "no headlines" in to_plain(news_doc(NewsReport("AAPL", (), ()), NY), "sim")
    missing = to_plain(no_news_subscription_doc("News feed is not allowed: BZ"), "sim")
    assert "IB says: News feed is not allowed: BZ" in missing


def test_scan_rows_from_snapshots() -> None:
    ticker = Ticker(contract=Contract(conId=1))  # its fields are set after construction
    ticker.last, ticker.close, ticker.volume = 110.0, 100.0, 1500.0
    row = translate.scan_row(1, "AAPL", ticker)
    assert row == ScanRow(1, "AAPL", 110.0, pytest.approx(10.0), 1500.0)
    empty = Ticker(contract=Contract(conId=2))
    empty.last, empty.close, empty.volume = math.nan, math.nan, math.nan
    assert translate.scan_row(2, "MSFT", empty) == ScanRow(2, "MSFT", None, None, None)
    assert translate.scan_row(3, "NVDA", None) == ScanRow(3, "NVDA", None, None, None)
    text = to_plain(scan_doc(ScanReport("TOP_PERC_GAIN", (
        ScanRow(1, "AAPL", 110.0, 10.0, 1500.0), ScanRow(2, "MSFT", None, None, None),
    ))), "sim")  # fmt: skip
    assert "+10.00%" in text and "1,500" in text and "MSFT" in text
    assert "nothing ranks now" in to_plain(scan_doc(ScanReport("TOP_PERC_LOSE", ())), "sim")
    assert "MOST_ACTIVE" in to_plain(scan_codes_doc(["MOST_ACTIVE"]), "sim")


def test_news_refusals_are_answered_not_alerted() -> None:
    assert classify(10276).action is ErrorAction.INFO
    assert classify(10172).action is ErrorAction.INFO
