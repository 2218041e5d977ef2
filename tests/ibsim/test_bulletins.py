"""News bulletins: reqNewsBulletins / cancelNewsBulletins through ib_async, bulletins posted by
the gateway, its control channel and a script on the simulated clock."""

from __future__ import annotations

import asyncio
import datetime as dt

import pytest
from ib_async import IB, NewsBulletin

from ibsim import SimGateway
from ibsim.bulletins import EXCHANGE_UNAVAILABLE, parse_scheduled

from .conftest import START, client, command, connect, settle, simulator


def _collect(ib: IB) -> list[NewsBulletin]:
    got: list[NewsBulletin] = []
    ib.newsBulletinEvent += got.append
    return got


async def test_a_subscriber_receives_a_bulletin_as_ib_async_decodes_it(
    gw: SimGateway, ib: IB
) -> None:
    got = _collect(ib)
    ib.reqNewsBulletins(False)
    await settle(ib)
    gw.bulletin("Trading halted in XYZ: news pending", "NYSE", EXCHANGE_UNAVAILABLE)
    await settle(ib)
    assert got == [NewsBulletin(1, 2, "Trading halted in XYZ: news pending", "NYSE")]


async def test_no_bulletins_without_a_subscription_or_after_cancel(gw: SimGateway, ib: IB) -> None:
    got = _collect(ib)
    gw.bulletin("before subscribing")
    ib.reqNewsBulletins(False)  # new ones only: the one before is not sent
    await settle(ib)
    gw.bulletin("while subscribed", "NASDAQ")
    await settle(ib)
    ib.cancelNewsBulletins()
    await settle(ib)
    gw.bulletin("after cancelling")
    await settle(ib)
    assert [b.message for b in got] == ["while subscribed"]
    assert [b.msgId for b in got] == [2]


async def test_all_messages_sends_the_days_bulletins_first(gw: SimGateway, ib: IB) -> None:
    gw.bulletin("system maintenance tonight")
    got = _collect(ib)
    ib.reqNewsBulletins(True)
    await settle(ib)
    assert [(b.msgId, b.message, b.origExchange) for b in got] == [
        (1, "system maintenance tonight", "")
    ]


async def test_scripted_bulletins_come_when_the_clock_reaches_them() -> None:
    script = [("+600", "NYSE", "halt in ABC"), (START + dt.timedelta(minutes=5), "", "notice")]
    async with SimGateway(seed=7, speed=0, start=START, bulletins=script) as gw:
        ib = await connect(gw)
        try:
            got = _collect(ib)
            ib.reqNewsBulletins(False)
            await settle(ib)
            await gw.advance(299)
            await settle(ib)
            assert got == []
            await gw.advance(1)
            await settle(ib)
            assert [b.message for b in got] == ["notice"]
            await gw.advance(3600)
            await settle(ib)
            assert [(b.message, b.origExchange) for b in got] == [
                ("notice", ""), ("halt in ABC", "NYSE"),
            ]  # fmt: skip
        finally:
            ib.disconnect()


async def test_control_channel_posts_a_bulletin() -> None:
    async with SimGateway(seed=7, speed=0, start=START, control_port=0) as gw:
        ib = await connect(gw)
        try:
            arrived = asyncio.Event()
            got = _collect(ib)
            ib.newsBulletinEvent += lambda _: arrived.set()
            ib.reqNewsBulletins(False)
            await settle(ib)
            assert gw.control_port is not None
            reply = await command(gw.control_port, cmd="bulletin", message="halt", exchange="ARCA")
            assert reply == {"ok": True, "result": 1}
            await asyncio.wait_for(arrived.wait(), 5)
            assert got == [NewsBulletin(1, 1, "halt", "ARCA")]
            bad = await command(gw.control_port, cmd="bulletin", message=" ")
            assert bad["ok"] is False and "message" in bad["error"]
        finally:
            ib.disconnect()


def test_scripted_times_parse_or_name_the_problem() -> None:
    start = START.timestamp()
    assert parse_scheduled("+30", "NYSE", "x", start).at == start + 30
    assert parse_scheduled("2024-03-04T16:00:00", "", "x", start).at == START.timestamp() + 3600
    with pytest.raises(ValueError, match="SECONDS"):
        parse_scheduled("soon", "", "x", start)
    with pytest.raises(ValueError, match="message"):
        parse_scheduled("+1", "", "", start)


async def test_cli_scripts_bulletins() -> None:
    async with simulator("--speed", "0", "--bulletin", "+0", "NYSE", "opening delayed") as sim:
        ib = await client(sim.port)
        try:
            got = _collect(ib)
            ib.reqNewsBulletins(True)
            await settle(ib)
            assert [(b.message, b.origExchange) for b in got] == [("opening delayed", "NYSE")]
        finally:
            ib.disconnect()
