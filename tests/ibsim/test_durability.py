"""ibsim as durable as IB: an order or a fill the client heard of survives a SIGKILL of the
simulator, and a restarted simulator's clock never resumes before a time a client was sent."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from ib_async import LimitOrder, MarketOrder, Stock

from ibsim import SimGateway

from .conftest import START, client, command, connect, settle, simulator


def _state_options(state: Path, speed: str = "0") -> tuple[str, ...]:
    return ("--state", str(state), "--speed", speed, "--start", START.isoformat())


# --- orders and fills are on disk before the client hears of them -------------------------------


async def test_a_fill_the_client_saw_survives_sigkill(tmp_path) -> None:
    """Before: the state file was written 0.25 s after a fill, so a fill reported just before a
    SIGKILL was gone after the restart."""
    state = tmp_path / "state.json"
    async with simulator(*_state_options(state, "60")) as sim:
        ib = await client(sim.port)
        (aapl,) = await ib.qualifyContractsAsync(Stock("AAPL", "SMART", "USD"))
        seen = asyncio.get_running_loop().create_future()

        def kill_at_once(trade, fill) -> None:
            sim.proc.kill()  # SIGKILL: no chance to save anything more
            if not seen.done():
                seen.set_result(fill.execution.execId)

        ib.execDetailsEvent += kill_at_once
        ib.placeOrder(aapl, MarketOrder("BUY", 3, orderRef="durable"))
        exec_id = await asyncio.wait_for(seen, 10)
        await asyncio.wait_for(sim.proc.wait(), 10)
        ib.disconnect()
    async with simulator(*_state_options(state)) as sim:
        ib = await client(sim.port)
        try:
            fills = await ib.reqExecutionsAsync()
            assert [(f.execution.execId, f.execution.orderRef) for f in fills] == [
                (exec_id, "durable")
            ]
            assert [(p.contract.symbol, p.position) for p in ib.positions()] == [("AAPL", 3.0)]
        finally:
            ib.disconnect()


async def test_a_resting_order_the_client_saw_survives_sigkill(tmp_path) -> None:
    state = tmp_path / "state.json"
    async with simulator(*_state_options(state)) as sim:
        ib = await client(sim.port)
        (aapl,) = await ib.qualifyContractsAsync(Stock("AAPL", "SMART", "USD"))
        submitted = asyncio.get_running_loop().create_future()

        def kill_at_once(trade) -> None:
            if trade.orderStatus.status == "Submitted" and not submitted.done():
                sim.proc.kill()
                submitted.set_result(trade.order.permId)

        ib.orderStatusEvent += kill_at_once
        ib.placeOrder(aapl, LimitOrder("BUY", 1, 1.0, orderRef="resting"))
        perm_id = await asyncio.wait_for(submitted, 10)
        await asyncio.wait_for(sim.proc.wait(), 10)
        ib.disconnect()
    async with simulator(*_state_options(state)) as sim:
        ib = await client(sim.port)
        try:
            (trade,) = await ib.reqAllOpenOrdersAsync()
            assert (trade.order.permId, trade.order.orderRef) == (perm_id, "resting")
        finally:
            ib.disconnect()


async def test_order_news_is_held_until_saved_and_one_save_serves_a_burst(tmp_path) -> None:
    """In process: when the state file is written the client has heard nothing of the fills
    it holds, and three orders arriving together cost one write."""
    state = tmp_path / "state.json"
    async with SimGateway(speed=0, start=START, state_file=state) as gw:
        ib = await connect(gw)
        try:
            (aapl,) = await ib.qualifyContractsAsync(Stock("AAPL", "SMART", "USD"))
            await settle(ib)
            saves: list[tuple[int, int]] = []  # (executions in the file, fills the client saw)
            save = gw.saver.save

            def observed_save() -> None:
                save()
                saves.append((len(json.loads(state.read_text())["executions"]), len(ib.fills())))

            gw.saver.save = observed_save  # type: ignore[method-assign]
            for _ in range(3):
                ib.placeOrder(aapl, MarketOrder("BUY", 1))
            await settle(ib)
            assert saves == [(3, 0)]
            assert len(ib.fills()) == 3
            assert [t.orderStatus.status for t in ib.trades()] == ["Filled"] * 3
        finally:
            ib.disconnect()


# --- the clock never goes back across a restart -------------------------------------------------


async def test_a_restart_after_sigkill_resumes_no_earlier_than_a_time_sent(tmp_path) -> None:
    """Before: only order changes and a clean exit saved the clock, so a killed simulator came
    back at its last order's time (here: the start, an hour before what the client saw)."""
    state = tmp_path / "state.json"
    async with simulator(*_state_options(state)) as sim:
        ib = await client(sim.port)
        assert (await command(sim.control, cmd="advance", seconds=3600))["ok"]
        seen = await ib.reqCurrentTimeAsync()
        sim.proc.kill()
        await asyncio.wait_for(sim.proc.wait(), 10)
        ib.disconnect()
    async with simulator(*_state_options(state)) as sim:
        ib = await client(sim.port)
        try:
            assert await ib.reqCurrentTimeAsync() >= seen
        finally:
            ib.disconnect()


async def test_a_running_clock_resumes_past_every_bar_and_time_sent(tmp_path) -> None:
    state = tmp_path / "state.json"
    async with simulator(*_state_options(state, "600")) as sim:
        ib = await client(sim.port)
        (aapl,) = await ib.qualifyContractsAsync(Stock("AAPL", "SMART", "USD"))
        bars = ib.reqRealTimeBars(aapl, 5, "TRADES", False)
        enough = asyncio.Event()
        bars.updateEvent += lambda bars, has_new: len(bars) >= 20 and enough.set()
        await asyncio.wait_for(enough.wait(), 20)
        latest = max((await ib.reqCurrentTimeAsync()).timestamp(), bars[-1].time.timestamp() + 5)
        sim.proc.kill()
        await asyncio.wait_for(sim.proc.wait(), 10)
        ib.disconnect()
    async with simulator(*_state_options(state)) as sim:
        ib = await client(sim.port)
        try:
            assert (await ib.reqCurrentTimeAsync()).timestamp() >= int(latest)
        finally:
            ib.disconnect()


async def test_the_state_file_keeps_the_clock_mark_ahead_and_exact_on_close(tmp_path) -> None:
    state = tmp_path / "state.json"
    async with SimGateway(speed=60, start=START, state_file=state) as gw:
        saved = json.loads(state.read_text())  # written when the gateway started
        assert saved["clock_mark"] >= saved["clock"] + 60  # a running clock: a lease ahead
        await gw.advance(600)
        saved = json.loads(state.read_text())  # a jump is saved before anything streams
        assert saved["clock"] >= START.timestamp() + 600
        gw.set_speed(0)
        closed_at = gw.clock.now()
    saved = json.loads(state.read_text())
    assert saved["clock"] == saved["clock_mark"] == closed_at
    saved["clock_mark"] = closed_at + 900  # as if killed while the lease ran ahead
    state.write_text(json.dumps(saved))
    async with SimGateway(speed=0, start=START, state_file=state) as gw:
        assert gw.clock.now() == closed_at + 900


async def test_a_state_file_without_a_clock_mark_still_loads(tmp_path) -> None:
    state = tmp_path / "state.json"
    async with SimGateway(speed=0, start=START, state_file=state) as gw:
        await gw.advance(60)
    saved = json.loads(state.read_text())
    del saved["clock_mark"]
    state.write_text(json.dumps(saved))
    async with SimGateway(speed=0, start=START, state_file=state) as gw:
        assert gw.clock.now() == saved["clock"]
