"""History, keepUpToDate, real-time bars, ticks, snapshots and the clock."""

from __future__ import annotations

import datetime as dt

import pytest
from ib_async import IB, Crypto, Forex, Stock

from ibsim import SimGateway

from .conftest import START, settle, step

UTC = dt.UTC


async def _aapl(ib: IB) -> Stock:
    (c,) = await ib.qualifyContractsAsync(Stock("AAPL", "SMART", "USD"))
    return c


async def test_intraday_history_format_1_and_2(gw: SimGateway, ib: IB) -> None:
    aapl = await _aapl(ib)
    bars = await ib.reqHistoricalDataAsync(aapl, "", "1 D", "1 min", "TRADES", True)
    # 09:30 .. 10:00 today: 30 completed one-minute bars.
    assert len(bars) == 30
    first, last = bars[0], bars[-1]
    assert first.date.tzinfo is not None
    assert first.date.astimezone(UTC) == dt.datetime(2024, 3, 4, 14, 30, tzinfo=UTC)
    assert last.date.astimezone(UTC) == dt.datetime(2024, 3, 4, 14, 59, tzinfo=UTC)
    assert all(b.low <= min(b.open, b.close) <= max(b.open, b.close) <= b.high for b in bars)
    assert all(b.volume > 0 and b.barCount == 12 for b in bars)
    assert all(round(b.close / 0.01, 6).is_integer() for b in bars)
    epoch = await ib.reqHistoricalDataAsync(aapl, "", "1 D", "1 min", "TRADES", True, formatDate=2)
    assert [b.date for b in epoch] == [b.date.astimezone(UTC) for b in bars]
    assert [b.close for b in epoch] == [b.close for b in bars]


async def test_history_end_date_forms_and_what_to_show(gw: SimGateway, ib: IB) -> None:
    aapl = await _aapl(ib)
    utc_form = await ib.reqHistoricalDataAsync(
        aapl, "20240301-21:00:00", "3600 S", "5 mins", "TRADES", True
    )
    tz_form = await ib.reqHistoricalDataAsync(
        aapl, "20240301 16:00:00 US/Eastern", "3600 S", "5 mins", "TRADES", True
    )
    dt_form = await ib.reqHistoricalDataAsync(
        aapl, dt.datetime(2024, 3, 1, 21, tzinfo=UTC), "3600 S", "5 mins", "TRADES", True
    )
    assert len(utc_form) == 12
    assert utc_form[-1].date.astimezone(UTC) == dt.datetime(2024, 3, 1, 20, 55, tzinfo=UTC)
    assert [b.close for b in utc_form] == [b.close for b in tz_form] == [b.close for b in dt_form]
    bid = await ib.reqHistoricalDataAsync(
        aapl, "20240301-21:00:00", "3600 S", "5 mins", "BID", True
    )
    ask = await ib.reqHistoricalDataAsync(
        aapl, "20240301-21:00:00", "3600 S", "5 mins", "ASK", True
    )
    mid = await ib.reqHistoricalDataAsync(
        aapl, "20240301-21:00:00", "3600 S", "5 mins", "MIDPOINT", True
    )
    for b, a, m, t in zip(bid, ask, mid, utc_form, strict=True):
        assert a.close == pytest.approx(b.close + 0.01)
        assert m.close == pytest.approx((a.close + b.close) / 2)
        assert t.close == pytest.approx(b.close)
        assert b.volume == -1


async def test_daily_weekly_history(gw: SimGateway, ib: IB) -> None:
    aapl = await _aapl(ib)
    daily = await ib.reqHistoricalDataAsync(aapl, "", "1 M", "1 day", "TRADES", True)
    assert all(isinstance(b.date, dt.date) and not isinstance(b.date, dt.datetime) for b in daily)
    assert daily[-1].date == dt.date(2024, 3, 4)  # today's bar so far
    assert all(b.date.weekday() < 5 for b in daily)
    assert 20 <= len(daily) <= 23
    # A day's bar is exactly the aggregate of its intraday bars.
    mins = await ib.reqHistoricalDataAsync(
        aapl, "20240301-21:00:00", "1 D", "1 hour", "TRADES", True
    )
    friday = next(b for b in daily if b.date == dt.date(2024, 3, 1))
    assert mins[0].open == friday.open and mins[-1].close == friday.close
    assert max(b.high for b in mins) == friday.high and min(b.low for b in mins) == friday.low
    assert sum(b.volume for b in mins) == pytest.approx(friday.volume)
    assert mins[0].date.hour == 9 and mins[0].date.minute == 30 and mins[1].date.hour == 10
    weekly = await ib.reqHistoricalDataAsync(
        aapl, "", "3 M", "1 week", "TRADES", True, formatDate=2
    )
    assert 12 <= len(weekly) <= 15
    yearly = await ib.reqHistoricalDataAsync(aapl, "", "1 Y", "1 day", "TRADES", True)
    assert 250 <= len(yearly) <= 262
    assert min(b.low for b in yearly) > 100 and max(b.high for b in yearly) < 400


async def test_forex_history_needs_midpoint(gw: SimGateway, ib: IB) -> None:
    (eur,) = await ib.qualifyContractsAsync(Forex("EURUSD"))
    bars = await ib.reqHistoricalDataAsync(eur, "", "2 D", "1 hour", "MIDPOINT", False)
    assert len(bars) > 24
    assert 0.9 < bars[-1].close < 1.3
    assert len(await ib.reqHistoricalDataAsync(eur, "", "1 D", "1 hour", "TRADES", False)) == 0


async def test_keep_up_to_date_continues_history(gw: SimGateway, ib: IB) -> None:
    aapl = await _aapl(ib)
    await gw.advance(150)  # 10:02:30: the current 1-minute bar is half done
    live = await ib.reqHistoricalDataAsync(
        aapl, "", "1 D", "1 min", "TRADES", True, keepUpToDate=True
    )
    n0 = len(live)
    assert live[-1].date.astimezone(UTC) == dt.datetime(2024, 3, 4, 15, 2, tzinfo=UTC)
    updates = []
    live.updateEvent += lambda bars, has_new: updates.append(has_new)
    await step(gw, ib, 300)
    assert len(live) == n0 + 5
    assert updates.count(True) == 5 and len(updates) == 60
    # The live bars are exactly what a fresh historical request returns now.
    fresh = await ib.reqHistoricalDataAsync(aapl, "", "1 D", "1 min", "TRADES", True)
    done = [b for b in live if b.date < live[-1].date]
    assert [(b.date, b.open, b.high, b.low, b.close, b.volume) for b in done[-8:]] == [
        (b.date, b.open, b.high, b.low, b.close, b.volume) for b in fresh[-8:]
    ]
    ib.cancelHistoricalData(live)
    await step(gw, ib, 60)
    assert len(live) == n0 + 5


async def test_real_time_bars_continue_history(gw: SimGateway, ib: IB) -> None:
    aapl = await _aapl(ib)
    hist = await ib.reqHistoricalDataAsync(aapl, "", "60 S", "5 secs", "TRADES", True, formatDate=2)
    rt = ib.reqRealTimeBars(aapl, 5, "TRADES", True)
    await step(gw, ib, 60)
    assert len(rt) == 12
    assert rt[0].time == hist[-1].date + dt.timedelta(seconds=5)
    assert rt[0].open_ == hist[-1].close
    assert all(b.time.second % 5 == 0 and b.volume > 0 for b in rt)
    assert all(rt[i].close == rt[i + 1].open_ for i in range(11))
    later = await ib.reqHistoricalDataAsync(
        aapl, "", "60 S", "5 secs", "TRADES", True, formatDate=2
    )
    assert [(b.date, b.close, b.volume) for b in later] == [(b.time, b.close, b.volume) for b in rt]
    ib.cancelRealTimeBars(rt)


async def test_no_real_time_bars_outside_trading_hours() -> None:
    async with SimGateway(speed=0, start=dt.datetime(2024, 3, 4, 20, 59, 30, tzinfo=UTC)) as gw:
        client = IB()
        await client.connectAsync("127.0.0.1", gw.port, clientId=9, timeout=5)
        try:
            aapl = await _aapl(client)
            (btc,) = await client.qualifyContractsAsync(Crypto("BTC", "PAXOS", "USD"))
            stock_bars = client.reqRealTimeBars(aapl, 5, "TRADES", False)
            btc_bars = client.reqRealTimeBars(btc, 5, "TRADES", False)
            await step(gw, client, 3600)
            assert len(stock_bars) == 6  # 15:59:30 .. 16:00 only
            assert len(btc_bars) == 720
        finally:
            client.disconnect()


async def test_market_data_ticks_and_snapshot(gw: SimGateway, ib: IB) -> None:
    aapl = await _aapl(ib)
    ticker = ib.reqMktData(aapl)
    await settle(ib)
    assert ticker.bid > 0 and ticker.ask == pytest.approx(ticker.bid + 0.01)
    assert ticker.last == gw.price("AAPL") and ticker.volume > 0
    assert ticker.bidSize > 0 and ticker.askSize > 0 and ticker.close > 0
    volume = ticker.volume
    updates = []
    ticker.updateEvent += lambda t: updates.append(t.last)
    await step(gw, ib, 30)
    assert ticker.volume > volume
    assert ticker.last == gw.price("AAPL")
    assert len(updates) >= 1
    ib.cancelMktData(aapl)
    (snap,) = await ib.reqTickersAsync(aapl)
    assert snap.bid == pytest.approx(gw.price("AAPL")) and snap.ask > snap.bid


async def test_delayed_market_data_type(gw: SimGateway, ib: IB) -> None:
    aapl = await _aapl(ib)
    ib.reqMarketDataType(3)
    ticker = ib.reqMktData(aapl)
    await settle(ib)
    assert ticker.marketDataType == 3
    assert ticker.bid > 0 and ticker.last > 0
    ib.cancelMktData(aapl)


async def test_clock_runs_at_speed() -> None:
    async with SimGateway(speed=3600, start=START) as gw:
        ib = IB()
        await ib.connectAsync("127.0.0.1", gw.port, clientId=1, timeout=5)
        try:
            aapl = await _aapl(ib)
            rt = ib.reqRealTimeBars(aapl, 5, "MIDPOINT", False)
            t0 = await ib.reqCurrentTimeAsync()
            await gw.hooks.bar_emitted.wait(timeout=5)
            await gw.hooks.bar_emitted.wait(timeout=5)
            await settle(ib)
            assert len(rt) >= 2
            t1 = await ib.reqCurrentTimeAsync()
            assert t1 > t0
            assert rt[-1].volume == -1
        finally:
            ib.disconnect()
