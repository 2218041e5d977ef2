"""IB's rhythm: the daily restart and the weekly login drop every client and close the API
port (connects refused) for simulated minutes or hours, on a schedule or on command."""

from __future__ import annotations

import asyncio
import datetime as dt
from zoneinfo import ZoneInfo

import pytest
from ib_async import IB

from ibsim import SimGateway
from ibsim.cli import build_parser
from ibsim.rhythm import Downtime, time_of_day, weekly_time

from .conftest import START, client, command, connect, simulator

NEW_YORK = ZoneInfo("America/New_York")


def _dropped(ib: IB) -> asyncio.Event:
    event = asyncio.Event()
    ib.disconnectedEvent += event.set
    return event


async def _refused(port: int) -> bool:
    try:
        _, writer = await asyncio.open_connection("127.0.0.1", port)
    except ConnectionRefusedError:
        return True
    writer.close()
    return False


# --- the schedule ---------------------------------------------------------------------------------


def _new_york(*fields: int) -> float:
    return dt.datetime(*fields, tzinfo=NEW_YORK).timestamp()  # type: ignore[misc]


def test_a_downtime_starts_at_its_local_time_every_day_or_week() -> None:
    daily = Downtime("daily restart", dt.time(23, 45), 180)
    monday_10 = _new_york(2024, 3, 4, 10, 0)
    assert daily.next_start(monday_10) == _new_york(2024, 3, 4, 23, 45)
    assert daily.next_start(_new_york(2024, 3, 4, 23, 45, 1)) == _new_york(2024, 3, 5, 23, 45)
    weekly = Downtime("weekly login", dt.time(1, 0), 7200, weekday=6)
    assert weekly.next_start(monday_10) == _new_york(2024, 3, 10, 1, 0)
    assert weekly_time("Sun 01:00") == (6, dt.time(1, 0))
    assert time_of_day("23:45") == dt.time(23, 45)
    for bad in ("25:00", "2345", "23:5", "noon"):
        with pytest.raises(ValueError):
            time_of_day(bad)
    with pytest.raises(ValueError):
        weekly_time("Someday 01:00")


def test_the_command_line_takes_the_rhythm() -> None:
    args = build_parser().parse_args(
        ["--daily-restart", "23:45", "--restart-minutes", "5", "--weekly-outage", "Sun 01:00",
         "--outage-hours", "3", "--gateway-tz", "Europe/Zurich"]
    )  # fmt: skip
    assert (args.daily_restart, args.restart_minutes) == ("23:45", 5.0)
    assert (args.weekly_outage, args.outage_hours, args.gateway_tz) == ("Sun 01:00", 3.0,
                                                                        "Europe/Zurich")
    for bad in (["--daily-restart", "24:61"], ["--weekly-outage", "Sun"],
                ["--gateway-tz", "Mars/Olympus"], ["--restart-minutes", "-1"]):  # fmt: skip
        with pytest.raises(SystemExit):
            build_parser().parse_args(bad)


# --- the daily restart ----------------------------------------------------------------------------


async def test_the_daily_restart_drops_refuses_and_reopens_every_day() -> None:
    # START is 10:00 New York; the restart at 10:30 for 3 minutes.
    async with SimGateway(
        seed=7, speed=0, start=START, daily_restart="10:30", restart_minutes=3
    ) as gw:
        ib = await connect(gw)
        dropped = _dropped(ib)
        await gw.advance(29 * 60)
        assert ib.isConnected() and gw.clients == [1]
        await gw.advance(60)
        await asyncio.wait_for(dropped.wait(), 5)
        assert gw.clients == [] and await _refused(gw.port)
        await gw.advance(2 * 60)  # 10:32: still restarting
        await gw.faults.port_settled()
        assert await _refused(gw.port)
        await gw.advance(60)  # 10:33: back
        await gw.faults.port_settled()
        ib = await connect(gw)
        dropped = _dropped(ib)
        await gw.advance(86400)  # the next day's restart, passed in one jump, is over too
        await asyncio.wait_for(dropped.wait(), 5)
        await gw.faults.port_settled()
        ib = await connect(gw)
        ib.disconnect()


async def test_the_daily_restart_on_a_running_clock() -> None:
    # 600x: the restart at 10:01 comes after 0.1 wall seconds and lasts 0.1.
    async with SimGateway(
        seed=7, speed=600, start=START, daily_restart="10:01", restart_minutes=1
    ) as gw:
        ib = await connect(gw)
        await asyncio.wait_for(_dropped(ib).wait(), 5)
        assert gw.state.faults.down_until == START.timestamp() + 120
        assert gw.now.timestamp() < START.timestamp() + 120 and await _refused(gw.port)
        await asyncio.wait_for(gw.faults.wait_port_open(), 5)
        assert gw.now.timestamp() >= START.timestamp() + 120
        ib = await connect(gw)
        ib.disconnect()


# --- on command: the control channel -------------------------------------------------------------


async def test_restart_and_outage_through_the_control_channel() -> None:
    async with SimGateway(seed=7, speed=0, start=START, control_port=0) as gw:
        assert gw.control_port is not None
        ib = await connect(gw)
        dropped = _dropped(ib)
        assert (await command(gw.control_port, cmd="restart_gateway", minutes=3))["ok"]
        await asyncio.wait_for(dropped.wait(), 5)
        status = (await command(gw.control_port, cmd="status"))["result"]
        assert status["port_open"] is False
        assert status["down_until"] == (START + dt.timedelta(minutes=3)).isoformat()
        assert await _refused(gw.port)
        assert (await command(gw.control_port, cmd="advance", seconds=180))["ok"]
        await gw.faults.port_settled()
        assert (await command(gw.control_port, cmd="status"))["result"]["port_open"] is True
        ib = await connect(gw)

        dropped = _dropped(ib)
        assert (await command(gw.control_port, cmd="outage", hours=2))["ok"]
        await asyncio.wait_for(dropped.wait(), 5)
        await command(gw.control_port, cmd="advance", seconds=3600)
        await gw.faults.port_settled()
        assert await _refused(gw.port)
        assert (await command(gw.control_port, cmd="end_outage"))["ok"]
        await gw.faults.port_settled()
        ib = await connect(gw)
        ib.disconnect()
        bad = await command(gw.control_port, cmd="outage", days=2)
        assert not bad["ok"] and "unexpected arguments" in bad["error"]


async def test_refuse_connections_ending_inside_an_outage_keeps_the_port_closed() -> None:
    async with SimGateway(seed=7, speed=0, start=START) as gw:
        gw.refuse_connections(0.01)
        gw.outage(1)
        await asyncio.sleep(0.05)  # the refusal's wall-clock end
        await gw.faults.port_settled()
        assert await _refused(gw.port)
        await gw.advance(3600)
        await gw.faults.port_settled()
        (await connect(gw)).disconnect()


# --- from the command line ------------------------------------------------------------------------


async def test_the_standalone_simulator_restarts_daily() -> None:
    async with simulator(
        "--speed", "0", "--start", START.isoformat(), "--daily-restart", "10:01",
        "--restart-minutes", "2",
    ) as sim:  # fmt: skip
        ib = await client(sim.port)
        dropped = _dropped(ib)
        assert (await command(sim.control, cmd="advance", seconds=60))["ok"]
        await asyncio.wait_for(dropped.wait(), 5)
        assert await _refused(sim.port)
        status = (await command(sim.control, cmd="status"))["result"]
        assert status["down_until"] == (START + dt.timedelta(minutes=3)).isoformat()
        assert (await command(sim.control, cmd="advance", seconds=120))["ok"]
        assert (await command(sim.control, cmd="status"))["result"]["port_open"] is True
        ib = await client(sim.port)
        ib.disconnect()
