"""backtrader (a dev dependency, GPL) running the SMA crossover of its docs: the peer that
tests/backtest/test_peer.py and bench/backtest_bench.py compare tradebot with."""

from __future__ import annotations

from datetime import UTC

import backtrader as bt
import pandas as pd


class SmaCrossover(bt.Strategy):
    """Buy `quantity` on a cross up when flat; close on a cross down. Market orders, which
    backtrader fills at the next bar's open."""

    params = (("fast", 10), ("slow", 30), ("quantity", 10))

    def __init__(self) -> None:
        fast = bt.ind.SMA(period=self.p.fast)
        slow = bt.ind.SMA(period=self.p.slow)
        self.crossover = bt.ind.CrossOver(fast, slow)
        self.fills: list[tuple[pd.Timestamp, str, float, float]] = []

    def next(self) -> None:
        if not self.position:
            if self.crossover > 0:
                self.buy(size=self.p.quantity)
        elif self.crossover < 0:
            self.close()

    def notify_order(self, order: bt.Order) -> None:
        if order.status == order.Completed:
            when = pd.Timestamp(bt.num2date(order.executed.dt)).tz_localize(UTC)
            side = "BUY" if order.isbuy() else "SELL"
            self.fills.append((when, side, abs(order.executed.size), order.executed.price))


def run_backtrader(
    frame: pd.DataFrame, fast: int, slow: int, quantity: float, stdstats: bool = False
) -> list[tuple[pd.Timestamp, str, float, float]]:
    """The fills of backtrader's crossover on `frame` (OHLCV, a UTC DatetimeIndex); with
    `stdstats` backtrader's default observers (cash and value, trades, buys and sells) run too,
    as in `bt.Cerebro()`."""
    cerebro = bt.Cerebro(stdstats=stdstats)
    feed = frame.copy()
    feed.index = feed.index.tz_convert(None)
    cerebro.adddata(bt.feeds.PandasData(dataname=feed))
    cerebro.addstrategy(SmaCrossover, fast=fast, slow=slow, quantity=quantity)
    cerebro.broker.setcash(1e12)  # never short of cash: the fills alone are compared
    [strategy] = cerebro.run()
    return strategy.fills
