"""Rendering: escaping, splitting under Telegram's limit, tables, tags; alert decisions."""

from __future__ import annotations

import re
from datetime import UTC, datetime, time
from zoneinfo import ZoneInfo

import pytest

from bot.alerts import Alert, BurstMerger, seconds_until, validate_levels
from bot.commands import parse
from bot.messages.document import (
    TELEGRAM_LIMIT,
    TITLE_LIMIT,
    Doc,
    Table,
    mode_tag,
    telegram_length,
    to_html,
    to_plain,
)
from bot.messages.numbers import duration, money, price, qty
from bot.messages.status import error_doc


def test_mode_tags() -> None:
    assert [mode_tag(m) for m in ("sim", "paper", "live")] == ["[SIM]", "[PAPER]", "[LIVE]"]
    assert to_html(Doc("x"), "live")[0].startswith("<b>[LIVE]</b>")


def test_every_dynamic_value_is_escaped() -> None:
    doc = Doc("<b>title</b>", ("a & b < c", Table(("sym", "q"), (("<A&B>", "1"),))))
    text = to_html(doc, "sim")[0]
    assert "&lt;b&gt;title&lt;/b&gt;" in text and "a &amp; b &lt; c" in text
    assert "&lt;A&amp;B&gt;" in text
    assert re.sub(r"</?(b|pre)>", "", text).count("<") == 0


def test_long_documents_split_under_the_limit_with_balanced_tags() -> None:
    rows = tuple((f"SYM{i}", str(i), "123.45", "-1,000.00") for i in range(600))
    doc = Doc("Positions", ("intro " * 50, Table(("sym", "qty", "avg", "pnl"), rows), "end & done"))
    parts = to_html(doc, "paper")
    assert len(parts) > 3
    for part in parts:
        assert telegram_length(part) <= TELEGRAM_LIMIT
        assert part.count("<pre>") == part.count("</pre>")
        assert part.startswith("<b>[PAPER]</b>")
    joined = "".join(parts)
    assert all(f"SYM{i} " in joined for i in range(600))
    assert parts[-1].endswith("end &amp; done")


def test_a_huge_line_is_cut_without_breaking_entities() -> None:
    parts = to_html(Doc("t", ("&" * 10_000,)), "sim")
    assert all(telegram_length(p) <= TELEGRAM_LIMIT for p in parts)
    assert "".join(parts).count("&amp;") == 10_000


def test_tables_are_narrow_for_a_phone() -> None:
    table = Table(("sym", "qty", "price"), (("VERYLONGSYMBOLNAME", "1000000", "12345.678"),))
    assert all(len(line) <= 35 for line in table.lines())


def test_numbers() -> None:
    assert qty(10.0) == "10" and qty(0.5) == "0.5" and qty(None) == "–"
    assert money(-12.5) == "-12.50" and money(3, signed=False) == "3.00"
    assert price(0.01234) == "0.01234" and price(1234.5) == "1,234.50"
    assert duration(95) == "1m 35s" and duration(3725) == "1h 2m"


def test_plain_rendering_has_no_markup() -> None:
    text = to_plain(Doc("a<b", ("x & y", Table(("h",), (("v",),)))), "sim")
    assert text.startswith("[SIM] a<b") and "<pre>" not in text and "x & y" in text


def test_parse_commands() -> None:
    assert parse("/Trades@trade_bot 5") == ("trades", ["5"])
    assert parse("status") == ("status", [])
    assert parse("   ") == ("", [])


def _alert(kind: str = "fills", i: int = 0) -> Alert:
    return Alert(kind, Doc(f"Filled {i}", (f"line {i}",)), time=datetime(2024, 1, 1, tzinfo=UTC))


def test_burst_merger_lets_a_few_through_then_digests() -> None:
    merger = BurstMerger(limit=3, window=60, delay=10)
    passed = [merger.offer(_alert(i=i), now=100 + i * 0.1) for i in range(10)]
    assert sum(a is not None for a in passed) == 3
    assert merger.next_deadline() == pytest.approx(110.3)
    assert merger.due(105) == []
    (digest,) = merger.due(111)
    assert digest.doc.title.startswith("7 fills in the last")
    assert digest.doc.blocks[0] == "• Filled 3: line 3"
    # Lifecycle alerts are never held.
    assert merger.offer(_alert("lifecycle"), now=112) is not None
    # After the window, single alerts flow again.
    assert merger.offer(_alert(i=99), now=200) is not None


def test_alert_levels_are_validated() -> None:
    assert validate_levels({"fills": "silent"})["fills"] == "silent"
    with pytest.raises(ValueError, match="unknown alert type"):
        validate_levels({"filz": "on"})
    with pytest.raises(ValueError, match="on, silent or off"):
        validate_levels({"fills": "loud"})


def test_daily_summary_time_is_in_display_time_zone() -> None:
    ny = ZoneInfo("America/New_York")
    now = datetime(2024, 3, 9, 21, 0, tzinfo=UTC)  # 16:00 in New York, before the DST switch
    assert seconds_until(time(16, 30), ny, now) == 1800
    # The next 16:00 comes after the switch to EDT: 24 h of wall-clock time, 23 h real.
    assert seconds_until(time(16, 0), ny, now) == pytest.approx(23 * 3600)


def test_a_long_title_continues_in_the_body() -> None:
    message = "flatten FAILED: RuntimeError: " + "x" * 5000 + " <&>"
    parts = to_html(error_doc(message), "live")
    assert len(parts) > 1
    assert all(telegram_length(part) <= TELEGRAM_LIMIT for part in parts)
    title = re.search(r"<b>([^<]*)</b>", parts[0].removeprefix("<b>[LIVE]</b>"))
    assert title is not None and len(title.group(1)) <= TITLE_LIMIT + len("⚠️ ")
    body = re.sub(r"<b>[^<]*</b>", "", "".join(parts))  # without the (repeated) title
    assert body.count("x") + title.group(1).count("x") == 5000 and "&lt;&amp;&gt;" in body
