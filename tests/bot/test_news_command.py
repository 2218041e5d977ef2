"""/news end to end: real python-telegram-bot ↔ fake Bot API ↔ TelegramFrontEnd ↔ the real
engine ↔ ib_async ↔ ibsim's made-up headlines; no news subscription; bad input."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import pytest

from tests.bot.engine_rig import engine_rig, reply_to
from tests.engine.conftest import make_settings, running_engine, sim_gateway


async def test_news_lists_the_latest_headlines_with_time_and_provider(tmp_path: Path) -> None:
    async with engine_rig(tmp_path) as api:
        reply = await reply_to(api, "/news aapl 3", "News AAPL")
        assert "the latest 3" in reply.text
        headline = re.compile(r"^[A-Z][a-z]{2} \d\d \d\d:\d\d  (BRFG|BRFUPDN|DJNL): .*AAPL")
        assert len([s for s in reply.text.splitlines() if headline.match(s)]) == 3
        assert "times in UTC" in reply.text
        assert "from BRFG, BRFUPDN, DJNL" in reply.text
        default = await reply_to(api, "/news AAPL", "News AAPL")
        assert "the latest 5" in default.text


async def test_news_without_a_subscription_says_what_is_missing(tmp_path: Path) -> None:
    async with engine_rig(tmp_path, news_providers=[]) as api:
        reply = await reply_to(api, "/news AAPL", "news subscription is missing")
        assert "no news provider" in reply.text
        assert "BRFG" in reply.text and "DJNL" in reply.text
        assert "Market Data Subscriptions" in reply.text


@pytest.mark.parametrize(
    ("command", "needle"),
    [
        ("/news", "/news takes a symbol"),
        ("/news AAPL 5 6", "/news takes a symbol"),
        ("/news XYZ", "Unknown symbol XYZ"),
        ("/news AAPL five", "whole number from 1 to 20, not &#x27;five&#x27;"),
        ("/news AAPL 21", "whole number from 1 to 20, not &#x27;21&#x27;"),
        ("/news AAPL 0", "whole number from 1 to 20"),
    ],
)
async def test_bad_input_gets_a_short_answer_naming_it(
    tmp_path: Path, command: str, needle: str
) -> None:
    async with engine_rig(tmp_path) as api:
        await reply_to(api, command, needle)


async def test_two_news_at_once_both_answer(tmp_path: Path) -> None:
    """ib_async keeps one pending news-providers request: two /news at once left the first
    waiting out its timeout."""
    async with (
        sim_gateway() as gateway,
        running_engine(gateway, make_settings(tmp_path)) as (engine, control),
    ):
        engine.broker.research._timeout = 2.0
        first, second = await asyncio.gather(control.news("AAPL", 2), control.news("MSFT", 2))
        assert first.symbol == "AAPL" and second.symbol == "MSFT"
