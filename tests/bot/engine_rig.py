"""The Telegram front-end on the real engine and ibsim, for commands that ask IB something
(/news, /scan, /account): real python-telegram-bot ↔ fake Bot API ↔ TelegramFrontEnd ↔ engine ↔
ib_async ↔ ibsim."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from engine.engine import Engine
from ibsim.gateway import SimGateway
from tests.bot.harness import OPERATOR, running_front_end
from tests.engine.conftest import make_settings, running_engine, sim_gateway
from tests.fakebotapi import FakeBotAPI, Request


@asynccontextmanager
async def engine_rig(tmp_path: Path, **gateway: Any) -> AsyncIterator[FakeBotAPI]:
    async with engine_rig_parts(tmp_path, **gateway) as (api, _, _):
        yield api


@asynccontextmanager
async def engine_rig_parts(
    tmp_path: Path, settings: dict[str, Any] | None = None, **gateway: Any
) -> AsyncIterator[tuple[FakeBotAPI, SimGateway, Engine]]:
    """The rig, with the gateway and the engine for a test that trades or reads ibsim;
    `settings` overrides the engine's."""
    settings = make_settings(tmp_path, **{"symbols": "AAPL", **(settings or {})})
    async with (
        sim_gateway(**gateway) as gw,
        running_engine(gw, settings) as (engine, control),
        FakeBotAPI() as api,
        running_front_end(api, control, engine.journal, {OPERATOR}),
    ):
        yield api, gw, engine


async def reply_to(api: FakeBotAPI, command: str, needle: str) -> Request:
    since = time.monotonic()
    api.inject_command(command, chat_id=OPERATOR)
    return await api.wait_for(
        "sendMessage",
        lambda r: r.at >= since and r.int("chat_id") == OPERATOR and needle in r.text,
        timeout=10,
    )
