"""CSV replay: the market replays recorded bars instead of a synthetic path."""

from __future__ import annotations

import datetime as dt

import pytest
from ib_async import IB, Stock

from ibsim import SimGateway

from .conftest import step

UTC = dt.UTC


def _write_bars(path) -> list[tuple[float, float, float, float, float]]:
    rows = []
    price = 100.0
    lines = ["datetime,open,high,low,close,volume"]
    for i in range(90):
        t = dt.datetime(2024, 3, 4, 9, 30) + dt.timedelta(minutes=i)  # naive = New York time
        o = price
        c = round(price + (0.07 if i % 3 else -0.05), 2)
        h, lo = round(max(o, c) + 0.03, 2), round(min(o, c) - 0.02, 2)
        v = 1000 + 10 * i
        lines.append(f"{t:%Y-%m-%d %H:%M:%S},{o},{h},{lo},{c},{v}")
        rows.append((o, h, lo, c, v))
        price = c
    path.write_text("\n".join(lines) + "\n")
    return rows


async def test_replay_history_and_live_bars(tmp_path) -> None:
    rows = _write_bars(tmp_path / "AAPL.csv")
    start = dt.datetime(2024, 3, 4, 15, 30, tzinfo=UTC)  # 10:30 New York
    async with SimGateway(speed=0, start=start, data_dir=tmp_path, symbols=["AAPL"]) as gw:
        ib = IB()
        await ib.connectAsync("127.0.0.1", gw.port, clientId=1, timeout=5, raiseSyncErrors=True)
        try:
            (aapl,) = await ib.qualifyContractsAsync(Stock("AAPL", "SMART", "USD"))
            bars = await ib.reqHistoricalDataAsync(aapl, "", "3600 S", "1 min", "TRADES", True)
            assert len(bars) == 60
            got = [(b.open, b.high, b.low, b.close, b.volume) for b in bars]
            assert got == [pytest.approx(r) for r in rows[:60]]
            rt = ib.reqRealTimeBars(aapl, 5, "TRADES", False)
            await step(gw, ib, 60)
            assert len(rt) == 12
            assert rt[0].open_ == rows[60][0]
            assert max(b.high for b in rt) == rows[60][1]
            assert rt[-1].close == rows[60][3]
            assert sum(b.volume for b in rt) == pytest.approx(rows[60][4])
        finally:
            ib.disconnect()
