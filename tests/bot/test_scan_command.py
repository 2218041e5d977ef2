"""/scan end to end: real python-telegram-bot ↔ fake Bot API ↔ TelegramFrontEnd ↔ the real
engine ↔ ib_async ↔ ibsim's scanner ranking its simulated market; bad input."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import pytest

from engine.reports import ScanBusy, ScanReport
from tests.bot.engine_rig import engine_rig, reply_to
from tests.bot.harness import OPERATOR
from tests.engine.conftest import make_settings, running_engine, sim_gateway


async def test_scan_alone_lists_the_codes(tmp_path: Path) -> None:
    async with engine_rig(tmp_path) as api:
        reply = await reply_to(api, "/scan", "Scan codes")
        for code in ("TOP_PERC_GAIN", "TOP_PERC_LOSE", "MOST_ACTIVE", "HOT_BY_VOLUME"):
            assert code in reply.text


async def test_scan_ranks_stocks_with_last_change_and_volume(tmp_path: Path) -> None:
    async with engine_rig(tmp_path) as api:
        reply = await reply_to(api, "/scan most_active 3", "Scan MOST_ACTIVE")
        assert "the first 3" in reply.text
        assert "last" in reply.text and "chg" in reply.text and "volume" in reply.text
        rows = [line.split() for line in reply.text.splitlines() if line[:2].strip().isdigit()]
        assert [r[0] for r in rows] == ["1", "2", "3"]
        for row in rows:
            assert row[1] in {"AAPL", "MSFT", "NVDA", "TSLA", "AMZN", "SPY", "QQQ"}
            assert row[3].endswith("%")
        assert len({r[1] for r in rows}) == 3
        # The numbers are a snapshot taken after the ranking, on a clock running at 600x: their
        # order may differ from the rank's by then, so only their presence is checked.
        assert all(float(re.sub(r"[^0-9.]", "", r[4])) > 0 for r in rows)


@pytest.mark.parametrize(
    ("command", "needle"),
    [
        ("/scan NO_SUCH_SCAN", "Unknown scan code NO_SUCH_SCAN: /scan alone lists them"),
        ("/scan MOST_ACTIVE lots", "whole number from 1 to 50, not &#x27;lots&#x27;"),
        ("/scan MOST_ACTIVE 51", "whole number from 1 to 50"),
        ("/scan MOST_ACTIVE 5 6", "/scan takes a scan code"),
    ],
)
async def test_bad_input_gets_a_short_answer_naming_it(
    tmp_path: Path, command: str, needle: str
) -> None:
    async with engine_rig(tmp_path) as api:
        await reply_to(api, command, needle)


async def test_one_scan_at_a_time(tmp_path: Path) -> None:
    """A scan is a snapshot request per row, through the broker's one request throttle that
    orders share: a second scan while one is taken is answered busy, not queued."""
    async with (
        sim_gateway() as gateway,
        running_engine(gateway, make_settings(tmp_path)) as (_engine, control),
    ):
        first, second = await asyncio.gather(
            control.scan("MOST_ACTIVE", 5), control.scan("MOST_ACTIVE", 5),
            return_exceptions=True)
        assert isinstance(first, ScanReport) and isinstance(second, ScanBusy), (first, second)
        assert len((await control.scan("MOST_ACTIVE", 3)).rows) == 3  # free again


async def test_a_busy_scan_is_a_short_answer(tmp_path: Path) -> None:
    async with engine_rig(tmp_path) as api:
        api.inject_command("/scan MOST_ACTIVE 50", chat_id=OPERATOR)
        await reply_to(api, "/scan TOP_PERC_GAIN 50", "Busy with another scan; try again")
        await api.wait_for("sendMessage", lambda r: "Scan MOST_ACTIVE" in r.text, timeout=10)
