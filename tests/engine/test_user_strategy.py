"""The example user strategy, named by a file path in STRATEGY, warms up and trades on ibsim."""

from __future__ import annotations

from pathlib import Path

from engine.events import FillEvent
from tests.engine.conftest import make_settings, next_event, running_engine

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "channel_breakout.py"


async def test_example_strategy_warms_up_and_trades(gateway, tmp_path: Path) -> None:
    settings = make_settings(
        tmp_path, strategy=f"{EXAMPLE}:ChannelBreakout", strategy_params="entry=3,exit=2"
    )
    async with running_engine(gateway, settings) as (engine, control):
        events = control.subscribe()
        state = engine.market.symbols["AAPL"]
        assert type(state.strategy).__name__ == "ChannelBreakout"
        assert state.warm and state.strategy.indicator_values()["high3"] is not None
        fill = (await next_event(events, FillEvent)).fill
        await engine.writer.flush()
        order = await engine.journal.order(fill.order_ref)
        assert order is not None
        assert "-bar high" in order.reason or "-bar low" in order.reason
