"""Parameter sweeps: grid specs parsed, every combination run on processes or a Dask cluster,
each row what a single run gives, sorted by a metric."""

from __future__ import annotations

import math
import sys

import pytest

from backtest.sweep import (
    MAX_COMBINATIONS,
    SweepRow,
    combinations,
    parse_grid,
    run_sweep,
    sort_rows,
)


def toy(params: dict) -> dict[str, float]:
    """A deterministic stand-in for a backtest: module level, so it pickles."""
    fast, slow = params["fast"], params["slow"]
    return {"sharpe": -((fast - 10) ** 2) - (slow - 40) ** 2 / 10, "trades": float(fast + slow)}


def test_ranges_and_lists() -> None:
    grid = parse_grid(["fast=5:20:5", "slow=20,40", "k=0.1:0.3:0.1", "short=true,false"])
    assert grid == {
        "fast": [5, 10, 15, 20],
        "slow": [20, 40],
        "k": [0.1, 0.2, 0.3],
        "short": [True, False],
    }
    assert all(isinstance(v, int) for v in grid["fast"])
    assert parse_grid(["n=1:10:4"]) == {"n": [1, 5, 9]}  # stop not on a step: not included
    assert parse_grid(["x=1:2:0.5"]) == {"x": [1.0, 1.5, 2.0]}
    assert parse_grid(["mode=fast, slow"]) == {"mode": ["fast", "slow"]}


def test_combinations_are_the_product_in_order() -> None:
    combos = combinations(parse_grid(["fast=5:10:5", "slow=20,30"]))
    assert combos == [
        {"fast": 5, "slow": 20},
        {"fast": 5, "slow": 30},
        {"fast": 10, "slow": 20},
        {"fast": 10, "slow": 30},
    ]


@pytest.mark.parametrize(
    ("specs", "message"),
    [
        (["fast"], "expected name=start:stop:step"),
        (["=5"], "expected name=start:stop:step"),
        (["fast="], "expected name=start:stop:step"),
        (["fast=5:20"], "fast: expected start:stop:step"),
        (["fast=a:20:5"], "fast: expected numbers"),
        (["fast=5:20:0"], "fast: the step must be greater than 0"),
        (["fast=5:20:-5"], "fast: the step must be greater than 0"),
        (["fast=20:5:5"], "fast: stop 5 is below start 20"),
        (["fast=5:inf:1"], "fast: expected finite numbers"),
        (["fast=5,,10"], "fast: an empty value"),
        (["fast=5,5"], "fast lists a value twice"),
        (["fast=5", "FAST=6"], "fast given twice"),
        (["a=1:1000:1", "b=1:1000:1"], f"more than {MAX_COMBINATIONS:,}"),
        (["a=0:1:0.0000001"], "use a coarser step"),
    ],
)
def test_malformed_specs_are_one_line(specs: list[str], message: str) -> None:
    with pytest.raises(ValueError) as caught:
        parse_grid(specs)
    text = str(caught.value)
    assert "\n" not in text and text.startswith("--grid: ")
    assert message in text, text


def test_processes_give_what_single_runs_give_sorted() -> None:
    combos = combinations(parse_grid(["fast=5:20:5", "slow=20:60:10"]))
    rows = run_sweep(toy, combos, sort_by="sharpe", workers=2)
    assert len(rows) == len(combos) == 20
    assert all(row.metrics == toy(row.params) for row in rows)
    assert rows[0].params == {"fast": 10, "slow": 40}
    sharpes = [row.metrics["sharpe"] for row in rows]
    assert sharpes == sorted(sharpes, reverse=True)
    assert run_sweep(toy, combos, sort_by="sharpe", workers=1) == rows


def test_sort_ascending_nan_last_and_unknown_metric() -> None:
    rows = [
        SweepRow({"n": 1}, {"dd": math.nan}),
        SweepRow({"n": 2}, {"dd": 3.0}),
        SweepRow({"n": 3}, {"dd": 1.0}),
        SweepRow({"n": 4}, {"dd": 1.0}),
    ]
    assert [r.params["n"] for r in sort_rows(rows, "dd", descending=False)] == [3, 4, 2, 1]
    assert [r.params["n"] for r in sort_rows(rows, "dd")] == [2, 3, 4, 1]
    with pytest.raises(ValueError, match="--sort: no metric 'sharpe' \\(one of: dd\\)"):
        sort_rows(rows, "sharpe")


def test_a_dask_cluster_gives_the_same_rows() -> None:
    distributed = pytest.importorskip(
        "distributed", reason="dask.distributed not installed (pip install 'tradebot[cluster]')"
    )
    combos = combinations(parse_grid(["fast=5:20:5", "slow=20,40"]))
    with distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=False, dashboard_address=None
    ) as cluster:
        rows = run_sweep(toy, combos, sort_by="sharpe", cluster=cluster.scheduler_address)
    assert rows == run_sweep(toy, combos, sort_by="sharpe", workers=1)


def test_an_unreachable_cluster_is_one_line() -> None:
    pytest.importorskip("distributed", reason="dask.distributed not installed")
    with pytest.raises(ValueError, match="--cluster: cannot reach the Dask scheduler"):
        run_sweep(
            toy, [{"fast": 1, "slow": 2}] * 2, cluster="tcp://127.0.0.1:9", connect_timeout=0.5
        )


def toy_shared(params: dict, shared: dict) -> dict[str, float]:
    """`toy` shifted by a value every run shares (sent once per worker)."""
    return {name: value + shared["shift"] for name, value in toy(params).items()}


def test_shared_goes_to_every_run_on_processes_and_here() -> None:
    combos = combinations(parse_grid(["fast=5:20:5", "slow=20,40"]))
    here = run_sweep(toy_shared, combos, workers=1, shared={"shift": 0.5})
    assert here == run_sweep(toy_shared, combos, workers=2, shared={"shift": 0.5})
    assert [r.metrics["trades"] for r in here] == [p["fast"] + p["slow"] + 0.5 for p in combos]


def test_shared_is_scattered_to_a_dask_cluster() -> None:
    distributed = pytest.importorskip("distributed", reason="dask.distributed not installed")
    combos = combinations(parse_grid(["fast=5:10:5", "slow=20,40"]))
    with distributed.LocalCluster(
        n_workers=1, threads_per_worker=2, processes=False, dashboard_address=None
    ) as cluster:
        rows = run_sweep(toy_shared, combos, cluster=cluster.scheduler_address,
                         shared={"shift": 1.0})
    assert rows == run_sweep(toy_shared, combos, workers=1, shared={"shift": 1.0})


def test_a_missing_dask_is_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "distributed", None)  # import distributed fails
    with pytest.raises(ValueError, match=r"^--cluster needs dask.distributed: pip install "
                       r"'tradebot\[cluster\]'$"):
        run_sweep(toy, [{"fast": 1, "slow": 2}] * 2, cluster="tcp://127.0.0.1:8786")
