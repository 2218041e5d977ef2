"""tradebot's `sma_cross` fills as backtrader's SMA crossover does, on generated bars."""

from __future__ import annotations

import pytest

from backtest.data import BarData
from backtest.runner import run
from tests.backtest.helpers import config, random_walk

bt = pytest.importorskip("backtrader")
from tests.backtest.peer import run_backtrader  # noqa: E402


@pytest.mark.parametrize(("seed", "fast", "slow"), [(1, 10, 30), (2, 5, 20), (3, 3, 7)])
def test_sma_cross_fills_like_backtraders_crossover(seed: int, fast: int, slow: int) -> None:
    frame = random_walk(1500, seed=seed)
    result = run(BarData("PEER", frame, 86_400), config(params=f"fast={fast},slow={slow}"))
    ours = [(f.time, f.side.value, f.quantity, f.price) for f in result.fills]
    theirs = run_backtrader(frame, fast, slow, 10)
    assert len(ours) > 20
    assert [(t, s, q) for t, s, q, _ in ours] == [(t, s, q) for t, s, q, _ in theirs]
    assert [p for *_, p in ours] == pytest.approx([p for *_, p in theirs], rel=1e-12)
