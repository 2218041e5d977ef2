"""Handshake, framing, version negotiation, several clients, unknown requests."""

from __future__ import annotations

import asyncio
import struct

import pytest
from ib_async import IB, LimitOrder, Stock

from ibsim import SimGateway
from ibsim.session import negotiate

from .conftest import connect, settle


def test_negotiation_rules() -> None:
    assert negotiate(157, 178) == 178
    assert negotiate(100, 200) == 178
    assert negotiate(157, 163) == 163
    assert negotiate(157, 158) == 157  # never 158
    assert negotiate(158, 158) is None
    assert negotiate(179, 190) is None
    assert negotiate(100, 150) is None


async def test_connect_and_sync(gw: SimGateway, ib: IB) -> None:
    assert ib.isConnected()
    assert ib.client.serverVersion() == 178
    assert ib.managedAccounts() == ["DU1234567"]
    assert ib.client.getReqId() >= 1
    values = {v.tag: v.value for v in ib.accountValues() if v.currency in ("USD", "")}
    assert float(values["NetLiquidation"]) == pytest.approx(1_000_000.0)
    assert values["AccountCode"] == "DU1234567"
    assert gw.clients == [1]
    assert (await ib.reqCurrentTimeAsync()) == gw.now.replace(microsecond=0)


@pytest.mark.parametrize("version", [157, 163, 166, 170, 176, 177, 178])
async def test_order_flow_at_every_server_version(gw: SimGateway, version: int) -> None:
    ib = IB()
    ib.client.MaxClientVersion = version
    await ib.connectAsync("127.0.0.1", gw.port, clientId=3, timeout=5, raiseSyncErrors=True)
    try:
        assert ib.client.serverVersion() == (157 if version == 158 else version)
        (aapl,) = await ib.qualifyContractsAsync(Stock("AAPL", "SMART", "USD"))
        price = gw.price("AAPL")
        trade = ib.placeOrder(aapl, LimitOrder("BUY", 5, round(price - 1, 2), orderRef="v"))
        await settle(ib)
        assert trade.orderStatus.status == "Submitted"
        assert trade.order.permId > 0
        ib.cancelOrder(trade.order)
        await settle(ib)
        assert trade.orderStatus.status == "Cancelled"
        fill = ib.placeOrder(aapl, LimitOrder("BUY", 5, round(price + 1, 2)))
        await settle(ib)
        assert fill.orderStatus.status == "Filled"
        assert fill.fills[0].commissionReport.commission == 1.0
        completed = await ib.reqCompletedOrdersAsync(False)
        assert {t.orderStatus.status for t in completed} == {"Cancelled", "Filled"}
        assert [t.order.orderRef for t in completed if t.orderStatus.status == "Cancelled"] == ["v"]
        execs = await ib.reqExecutionsAsync()
        assert len(execs) == 1
        details = await ib.reqContractDetailsAsync(aapl)
        assert details[0].minTick == 0.01
    finally:
        ib.disconnect()


async def _raw_connect(
    port: int, version_range: bytes
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"API\0" + struct.pack(">I", len(version_range)) + version_range)
    await writer.drain()
    return reader, writer


async def _read_frame(reader: asyncio.StreamReader) -> list[str]:
    size = struct.unpack(">I", await reader.readexactly(4))[0]
    return (await reader.readexactly(size)).decode().split("\0")[:-1]


async def test_version_range_outside_is_refused_with_a_clear_error(gw: SimGateway) -> None:
    reader, writer = await _raw_connect(gw.port, b"v100..150")
    fields = await asyncio.wait_for(_read_frame(reader), 5)
    assert fields[0] == "4" and "157..178" in fields[4]
    assert await asyncio.wait_for(reader.read(), 5) == b""  # closed
    writer.close()
    reader, writer = await _raw_connect(gw.port, b"v158..158")
    fields = await asyncio.wait_for(_read_frame(reader), 5)
    assert "never 158" in fields[4]
    writer.close()


async def test_raw_handshake_framing(gw: SimGateway) -> None:
    reader, writer = await _raw_connect(gw.port, b"v157..178")
    version, conn_time = await asyncio.wait_for(_read_frame(reader), 5)
    assert version == "178" and conn_time
    start_api = b"71\x002\x009\x00\x00"
    writer.write(struct.pack(">I", len(start_api)) + start_api)
    frames = [await asyncio.wait_for(_read_frame(reader), 5) for _ in range(5)]
    assert frames[0] == ["15", "1", "DU1234567"]
    assert frames[1] == ["9", "1", "1"]
    assert [f[3] for f in frames[2:]] == ["2104", "2106", "2158"]
    writer.close()


async def test_unknown_request_gets_an_error_and_connection_stays_up(
    gw: SimGateway, ib: IB
) -> None:
    errors: list[tuple[int, int, str]] = []
    ib.errorEvent += lambda req_id, code, text, contract: errors.append((req_id, code, text))
    ib.client.send(10, 5, 77, 0, "AAPL", "STK", "", 0.0, "", "", "SMART", "", "USD", "", "", 5,
                   False, "")  # reqMktDepth  # fmt: skip
    ib.client.send(4242, 1)  # a message id no client has
    await settle(ib)
    assert any(code == 505 and "reqMktDepth" in text and req == 77 for req, code, text in errors)
    assert any(code == 505 and "4242" in text for _, code, text in errors)
    assert ib.isConnected()


async def test_two_clients_and_duplicate_client_id(gw: SimGateway) -> None:
    a = await connect(gw, 1)
    b = await connect(gw, 2)
    try:
        assert gw.clients == [1, 2]
        dup = IB()
        with pytest.raises((TimeoutError, ConnectionError, asyncio.TimeoutError)):
            await dup.connectAsync("127.0.0.1", gw.port, clientId=1, timeout=1)
        assert not dup.isConnected()
        assert a.isConnected() and b.isConnected()
        await settle(a, b)
    finally:
        a.disconnect()
        b.disconnect()
