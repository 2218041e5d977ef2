"""Contract universe, reqContractDetails and qualifyContracts."""

from __future__ import annotations

import datetime as dt

from ib_async import IB, Contract, Crypto, Forex, Future, MarketOrder, Stock

from ibsim import SimGateway

from .conftest import settle


async def test_qualify_default_universe(gw: SimGateway, ib: IB) -> None:
    contracts = [
        Stock("AAPL", "SMART", "USD"),
        Stock("SPY", "SMART", "USD"),
        Forex("EURUSD"),
        Crypto("BTC", "PAXOS", "USD"),
        Future("ES", "202403", exchange="CME"),
        Stock("NOPE", "SMART", "USD"),
    ]
    aapl, spy, eur, btc, es, unknown = await ib.qualifyContractsAsync(*contracts)
    assert aapl.conId == 265598 and aapl.primaryExchange == "NASDAQ"
    assert spy.primaryExchange == "ARCA"
    assert eur.secType == "CASH" and eur.symbol == "EUR" and eur.currency == "USD"
    assert eur.localSymbol == "EUR.USD"
    assert btc.secType == "CRYPTO" and btc.exchange == "PAXOS"
    assert es.secType == "FUT" and es.multiplier == "50"
    assert (
        len(es.lastTradeDateOrContractMonth) == 8 and es.lastTradeDateOrContractMonth > "20240304"
    )
    assert unknown is None


async def test_contract_details_fields(gw: SimGateway, ib: IB) -> None:
    (cd,) = await ib.reqContractDetailsAsync(Stock("AAPL", "SMART", "USD"))
    assert cd.minTick == 0.01
    assert cd.longName == "APPLE INC"
    assert cd.timeZoneId == "US/Eastern"
    assert cd.tradingHours.startswith("20240304:0930-20240304:1600;")
    assert "20240309:CLOSED" in cd.liquidHours
    sessions = cd.liquidSessions()
    assert sessions[0].start.hour == 9 and sessions[0].start.minute == 30
    assert sessions[0].end.hour == 16
    (fx,) = await ib.reqContractDetailsAsync(Forex("EURUSD"))
    assert fx.minTick == 0.00005
    assert "20240303:1715-20240304:1700" in fx.tradingHours
    (btc,) = await ib.reqContractDetailsAsync(Crypto("BTC", "PAXOS", "USD"))
    assert "20240309:0000-20240310:0000" in btc.tradingHours
    (es,) = await ib.reqContractDetailsAsync(Future("ES", "202403", exchange="CME"))
    assert es.timeZoneId == "US/Central" and es.contractMonth


async def test_lookup_by_con_id_and_unknown_con_id(gw: SimGateway, ib: IB) -> None:
    (cd,) = await ib.reqContractDetailsAsync(Contract(conId=272093))
    assert cd.contract.symbol == "MSFT"
    assert await ib.reqContractDetailsAsync(Contract(conId=1)) == []
    assert (await ib.qualifyContractsAsync(Contract(conId=1))) == [None]


async def test_configurable_universe() -> None:
    async with SimGateway(speed=0, symbols=["IBM", "XYZ"]) as gw:
        ib = IB()
        await ib.connectAsync("127.0.0.1", gw.port, clientId=1, timeout=5)
        try:
            ibm, xyz, aapl = await ib.qualifyContractsAsync(
                Stock("IBM", "SMART", "USD"),
                Stock("XYZ", "SMART", "USD"),
                Stock("AAPL", "SMART", "USD"),
            )
            assert ibm.primaryExchange == "NYSE"
            assert xyz.conId > 0
            assert aapl is None
        finally:
            ib.disconnect()


async def test_a_future_without_expiry_lists_its_chain(gw: SimGateway, ib: IB) -> None:
    chain = await ib.reqContractDetailsAsync(Future("ES", exchange="CME"))
    months = sorted((cd.contract.lastTradeDateOrContractMonth, cd.contract.localSymbol,
                     cd.contract.conId, cd.contract.multiplier) for cd in chain)
    assert [m[:2] for m in months] == [
        ("20240315", "ESH4"), ("20240621", "ESM4"), ("20240920", "ESU4"), ("20241220", "ESZ4"),
    ]
    assert len({m[2] for m in months}) == 4 and {m[3] for m in months} == {"50"}
    assert all(cd.contractMonth and cd.timeZoneId == "US/Central" for cd in chain)
    # IB has no "front" flag: without an expiry the future is ambiguous for an order.
    assert await ib.qualifyContractsAsync(Future("ES", exchange="CME")) == [None]
    (june,) = await ib.qualifyContractsAsync(Future("ES", "202406", exchange="CME"))
    assert june.localSymbol == "ESM4"


async def test_an_expired_future_leaves_the_chain(gw: SimGateway, ib: IB) -> None:
    # The March contract's last trading day is Friday 2024-03-15; the next Monday it is gone.
    gw.state.clock.set_time(dt.datetime(2024, 3, 18, 14, 0, tzinfo=dt.UTC).timestamp())
    chain = await ib.reqContractDetailsAsync(Future("ES", exchange="CME"))
    assert [cd.contract.localSymbol for cd in chain] == ["ESM4", "ESU4", "ESZ4"]
    assert await ib.reqContractDetailsAsync(Future("ES", "202403", exchange="CME")) == []


async def test_each_month_is_its_own_position(gw: SimGateway, ib: IB) -> None:
    march, june = await ib.qualifyContractsAsync(
        Future("ES", "202403", exchange="CME"), Future("ES", "202406", exchange="CME")
    )
    ib.placeOrder(march, MarketOrder("BUY", 2))
    ib.placeOrder(june, MarketOrder("SELL", 1))
    await settle(ib)
    positions = {p.contract.localSymbol: p.position for p in ib.positions()}
    assert positions == {"ESH4": 2, "ESM4": -1}
    fills = {f.contract.localSymbol: f.execution.price for f in ib.fills()}
    assert fills["ESM4"] != fills["ESH4"]  # each month has its own market
