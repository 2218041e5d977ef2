"""`tradebot backtest` end to end, as a user types it."""

from __future__ import annotations

import csv
import json
import subprocess
from pathlib import Path

import pytest

from tests.backtest.helpers import random_walk
from tests.tradebot_script import TRADEBOT, clean_env


def _csv(tmp_path: Path, bars: int = 300) -> Path:
    frame = random_walk(bars)
    frame.index = frame.index.strftime("%Y-%m-%dT%H:%M:%SZ")
    path = tmp_path / "spy.csv"
    frame.to_csv(path, index_label="datetime")
    return path


def _backtest(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(TRADEBOT), "backtest", *args], cwd=tmp_path, env=clean_env(), text=True,
        capture_output=True, timeout=30, check=False,
    )


def test_a_run_prints_the_summary_and_writes_the_trades(tmp_path: Path) -> None:
    trades = tmp_path / "trades.csv"
    done = _backtest(tmp_path, str(_csv(tmp_path)), "--strategy", "sma_cross", "--params",
                     "fast=5,slow=20", "--quantity", "10", "--commission-per-share", "0.01",
                     "--min-commission", "1", "--trades-out", str(trades), "--report", "rep")
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""  # not a terminal: no progress bar
    assert "sma_cross on SPY: 300 bars" in done.stdout
    for label in ("total return", "CAGR", "Sharpe (annualised)", "Sortino (annualised)",
                  "max drawdown", "max drawdown duration", "trades", "win rate",
                  "profit factor", "average trade", "exposure", "commissions"):
        assert f"\n{label} " in done.stdout
    with trades.open() as f:
        rows = list(csv.reader(f))
    assert rows[0] == ["time", "side", "quantity", "price"]
    assert len(rows) > 5 and {r[1] for r in rows[1:]} == {"BUY", "SELL"}
    assert rows[1][0].endswith("+00:00") and float(rows[1][2]) == 10.0
    report = tmp_path / "rep"
    assert sorted(p.name for p in report.iterdir()) == [
        "equity.png", "price.png", "summary.json", "summary.md", "trades.csv"]
    for picture in ("equity.png", "price.png"):
        data = (report / picture).read_bytes()
        assert data.startswith(b"\x89PNG\r\n\x1a\n") and len(data) > 20_000
    summary = json.loads((report / "summary.json").read_text())["summaries"]["all"]
    assert summary["bars"] == 300 and summary["commissions"] >= 1.0
    assert (report / "trades.csv").read_text() == trades.read_text()


def test_split_prints_both_parts_side_by_side(tmp_path: Path) -> None:
    done = _backtest(tmp_path, str(_csv(tmp_path)), "--params", "fast=5,slow=20", "--split",
                     "0.7")
    assert done.returncode == 0, done.stderr
    header = done.stdout.splitlines()[1]
    assert "first 70%" in header and "last 30%" in header
    assert "\nbars " in done.stdout and "210" in done.stdout and "90" in done.stdout


BROKEN = "datetime,open,high,low,close,volume\n2026-01-05,1,2,0.5,1,10\n2026-01-04,1,2,0.5,1,10\n"


@pytest.mark.parametrize(("args", "message"), [
    (("BROKEN",), "broken.csv: line 3: 2026-01-04T00:00:00+00:00 is not after"),
    (("GOOD", "--params", "fast=ten"), "--params: fast: expected an integer, got 'ten'"),
    (("GOOD", "--strategy", "nope"), "--strategy: unknown strategy 'nope'"),
    (("GOOD", "--split", "1.5"), "--split: expected a fraction between 0 and 1"),
    (("GOOD", "--quantity", "-1"), "--quantity: expected a number greater than 0"),
    (("GOOD", "--grid", "fast=5,10", "--report", "r"), "--report is for a single run, not"),
    (("GOOD", "--grid", "fast=5,10", "--split", "0.5"), "--split is for a single run, not"),
    (("GOOD", "--grid", "fast=5,10", "--sort", "fun"), "--sort: no metric 'fun' (one of: "),
    (("GOOD", "--grid", "fst=5,10"), "--grid: unknown parameter 'fst' for sma_cross"),
    (("GOOD", "--grid", "fast=20:5:5"), "--grid: fast: stop 5 is below start 20"),
    (("journal:AAPL",), "journal:AAPL: no journal at tradebot.sqlite3"),
    (("none.csv",), "none.csv: no such file"),
])
def test_bad_input_is_one_line_and_exit_2(
    tmp_path: Path, args: tuple[str, ...], message: str
) -> None:
    (tmp_path / "broken.csv").write_text(BROKEN)
    files = {"GOOD": str(_csv(tmp_path, 50)), "BROKEN": str(tmp_path / "broken.csv")}
    done = _backtest(tmp_path, *(files.get(a, a) for a in args))
    assert done.returncode == 2, done.stderr
    assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr, done.stderr
    assert done.stderr.startswith("tradebot backtest: ") and message in done.stderr, done.stderr


def _numbers(line: str) -> list[str]:
    return line.split()


def test_a_sweep_row_is_what_that_combination_gives_alone(tmp_path: Path) -> None:
    data = str(_csv(tmp_path))
    done = _backtest(tmp_path, data, "--params", "slow=20", "--grid", "fast=3,5,30",
                     "--grid", "slow=10,20", "--sort", "total_return")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == ("sma_cross on SPY: 300 bars, 4 of 6 combinations run on this machine, "
                        "sorted by total_return")
    assert _numbers(lines[1])[:4] == ["fast", "slow", "total", "return"]
    rows = {tuple(_numbers(line)[:2]): line for line in lines[2:]}
    assert set(rows) == {(f, s) for f in ("3", "5", "30") for s in ("10", "20")}
    # Refused combinations last, each with the strategy's reason.
    assert [tuple(_numbers(line)[:2]) for line in lines[-2:]] == [("30", "10"), ("30", "20")]
    assert "not run: slow must be greater than fast" in lines[-1]
    returns = [float(_numbers(line)[2].rstrip("%")) for line in lines[2:-2]]
    assert returns == sorted(returns, reverse=True)

    alone = _backtest(tmp_path, data, "--params", "fast=5,slow=20")
    assert alone.returncode == 0, alone.stderr
    table = {line[:22].strip(): line[22:].split()[-1] for line in alone.stdout.splitlines()[2:]}
    row = _numbers(rows[("5", "20")])
    # total return, sharpe, sortino, cagr, max drawdown, trades, win rate, profit factor, equity
    assert row[2:] == [table["total return"], table["Sharpe (annualised)"],
                       table["Sortino (annualised)"], table["CAGR"], table["max drawdown"],
                       table["trades"], table["win rate"], table["profit factor"],
                       table["final equity"]]

