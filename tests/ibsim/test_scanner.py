"""The market scanner through ib_async: the scan codes as IB's XML, and ibsim's own stocks
ranked from its simulated market."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest
from ib_async import IB, RequestError, ScannerSubscription

from ibsim import SimGateway
from ibsim.scanner import SCAN_CODES

from .conftest import step

STOCKS = {"AAPL", "MSFT", "NVDA", "TSLA", "AMZN", "SPY", "QQQ"}


def _sub(code: str, rows: int = 10) -> ScannerSubscription:
    return ScannerSubscription(
        instrument="STK", locationCode="STK.US.MAJOR", scanCode=code, numberOfRows=rows
    )


async def _ranked(gw: SimGateway, ib: IB, code: str, rows: int = 10) -> list[str]:
    data = await ib.reqScannerDataAsync(_sub(code, rows))
    assert [d.rank for d in data] == list(range(len(data)))
    return [d.contractDetails.contract.symbol for d in data]


async def test_parameters_list_the_scan_codes(gw: SimGateway, ib: IB) -> None:
    xml = await ib.reqScannerParametersAsync()
    codes = [e.text for e in ET.fromstring(xml).iter("scanCode")]
    assert codes == list(SCAN_CODES)
    assert {"TOP_PERC_GAIN", "TOP_PERC_LOSE", "MOST_ACTIVE", "HOT_BY_VOLUME"} <= set(codes)


async def test_rankings_follow_the_simulated_market(gw: SimGateway, ib: IB) -> None:
    await step(gw, ib, 3600)  # an hour into the session: volume and moves to rank
    quotes = {s: gw.market.quote(gw.spec(s), gw.clock.now()) for s in STOCKS}
    change = {s: q.last / q.prev_close - 1 for s, q in quotes.items()}

    gainers = await _ranked(gw, ib, "TOP_PERC_GAIN")
    assert gainers == sorted((s for s in STOCKS if change[s] > 0), key=lambda s: -change[s])
    losers = await _ranked(gw, ib, "TOP_PERC_LOSE")
    assert losers == sorted((s for s in STOCKS if change[s] < 0), key=lambda s: change[s])
    assert gainers or losers
    active = await _ranked(gw, ib, "MOST_ACTIVE", rows=3)
    assert active == sorted(STOCKS, key=lambda s: -quotes[s].volume)[:3]
    hot = await _ranked(gw, ib, "HOT_BY_VOLUME")
    assert set(hot) == STOCKS  # stocks only: no forex, crypto or futures
    contract = (await ib.reqScannerDataAsync(_sub("MOST_ACTIVE", 1)))[0].contractDetails.contract
    assert contract.conId == gw.spec(active[0]).con_id and contract.secType == "STK"


async def test_an_unknown_scan_code_is_refused(gw: SimGateway, ib: IB) -> None:
    ib.RaiseRequestErrors = True
    with pytest.raises(RequestError) as refused:
        await ib.reqScannerDataAsync(_sub("NO_SUCH_SCAN"))
    assert refused.value.code == 162 and "NO_SUCH_SCAN" in refused.value.message


async def test_a_subscription_is_ranked_again_until_cancelled(gw: SimGateway, ib: IB) -> None:
    """IB sends a scanner subscription's ranking again about every 30 s; ibsim too, in
    simulated time, and stops once it is cancelled."""
    rankings: list[int] = []
    data = ib.reqScannerSubscription(_sub("MOST_ACTIVE", 3))
    data.updateEvent += lambda rows: rankings.append(len(rows))
    await step(gw, ib, 95)
    assert len(rankings) == 4, rankings  # at once, then at 30, 60 and 90 s
    assert all(n == 3 for n in rankings)
    ib.cancelScannerSubscription(data)
    await step(gw, ib, 0)  # the cancel is in
    await step(gw, ib, 65)
    assert len(rankings) == 4, "cancelled: nothing more"
