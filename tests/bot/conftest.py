"""Fixtures for the front-end tests: the fake Bot API, a fake engine, the running bot."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from bot.telegram.app import TelegramFrontEnd
from engine.domain import Position
from tests.bot.fake_control import FakeControl, make_order
from tests.bot.harness import MemoryOutbox, running_front_end
from tests.fakebotapi import FakeBotAPI


@pytest.fixture
async def api() -> AsyncIterator[FakeBotAPI]:
    async with FakeBotAPI() as server:
        yield server


@pytest.fixture
def control() -> FakeControl:
    return FakeControl(
        positions_list=[Position("AAPL", 10, 180.0, 187.25, 72.5), Position("MSFT", -20, 410.0)],
        orders_list=[make_order("o1", "AAPL"), make_order("o2", "MSFT")],
    )


@pytest.fixture
def outbox() -> MemoryOutbox:
    return MemoryOutbox()


@pytest.fixture
async def bot(
    api: FakeBotAPI, control: FakeControl, outbox: MemoryOutbox
) -> AsyncIterator[TelegramFrontEnd]:
    async with running_front_end(api, control, outbox) as front_end:
        yield front_end
