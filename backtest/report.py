"""A backtest's result in words and files: the summary table, the trades CSV, the report folder.

`write_report(result, directory, charts=None)` writes summary.json, summary.md and trades.csv;
`charts`, when given, is called as ``charts(result, directory)`` and returns the picture files
it wrote (the charts module plugs in there).
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, timedelta
from pathlib import Path

from backtest.metrics import Summary
from backtest.runner import BacktestResult

TRADE_COLUMNS = ("time", "side", "quantity", "price")

Charts = Callable[[BacktestResult, Path], Sequence[Path]]


def _percent(value: float | None) -> str:
    return "—" if value is None else f"{value:+.2%}"


def _ratio(value: float | None) -> str:
    if value is None:
        return "—"
    return "∞" if math.isinf(value) else f"{value:.2f}"


def _money(value: float | None) -> str:
    return "—" if value is None else f"{value:,.2f}"


def _duration(value: timedelta) -> str:
    days, seconds = value.days, value.seconds
    hours, minutes = seconds // 3600, seconds % 3600 // 60
    if days:
        return f"{days}d {hours}h"
    return f"{hours}h {minutes:02d}m" if hours else f"{minutes}m"


# (label, how to show it) in the order of the table.
ROWS: tuple[tuple[str, Callable[[Summary], str]], ...] = (
    ("period", lambda s: f"{s.start:%Y-%m-%d %H:%M} → {s.end:%Y-%m-%d %H:%M}"),
    ("bars", lambda s: f"{s.bars:,}"),
    ("final equity", lambda s: _money(s.final_equity)),
    ("total return", lambda s: _percent(s.total_return)),
    ("CAGR", lambda s: _percent(s.cagr)),
    ("Sharpe (annualised)", lambda s: _ratio(s.sharpe)),
    ("Sortino (annualised)", lambda s: _ratio(s.sortino)),
    ("max drawdown", lambda s: f"{-s.max_drawdown:.2%}"),
    ("max drawdown duration", lambda s: _duration(s.max_drawdown_duration)),
    ("trades", lambda s: f"{s.trades:,}"),
    ("win rate", lambda s: "—" if s.win_rate is None else f"{s.win_rate:.1%}"),
    ("profit factor", lambda s: _ratio(s.profit_factor)),
    ("average trade", lambda s: _money(s.average_trade)),
    ("exposure", lambda s: f"{s.exposure:.1%}"),
    ("commissions", lambda s: _money(s.commissions)),
)


# How a sweep's table shows each metric (the Summary's numbers, as `backtest.grid.metrics`).
_PERCENT = {"total_return", "cagr"}
_FRACTION = {"win_rate", "exposure"}
_RATIO = {"sharpe", "sortino", "profit_factor"}
_MONEY = {"initial_equity", "final_equity", "average_trade", "commissions"}
SWEEP_COLUMNS = ("sharpe", "sortino", "total_return", "cagr", "max_drawdown", "trades",
                 "win_rate", "profit_factor", "final_equity")


def show_metric(name: str, value: float) -> str:
    """One metric of a sweep's row as the summary table writes it."""
    if math.isnan(value):
        return "—"
    if name in _PERCENT:
        return _percent(value)
    if name in _FRACTION:
        return f"{value:.1%}"
    if name in _RATIO:
        return _ratio(value)
    if name in _MONEY:
        return _money(value)
    if name == "max_drawdown":
        return f"{-value:.2%}"
    if name == "max_drawdown_duration":
        return _duration(timedelta(seconds=value))
    if name in ("trades", "bars"):
        return f"{value:,.0f}"
    return f"{value:g}"


def sweep_table(
    names: Sequence[str], rows: Sequence[tuple[Mapping[str, object], Mapping[str, float] | str]],
    sort_by: str,
) -> str:
    """A sweep's rows, one a line: the parameters `names`, then the metrics (the `sort_by` one
    first), or the reason the combination was not run."""
    shown = [sort_by, *(m for m in SWEEP_COLUMNS if m != sort_by)]
    lines = [[*names, *(m.replace("_", " ") for m in shown)]]
    for params, outcome in rows:
        cells = [str(params[name]) for name in names]
        if isinstance(outcome, str):
            lines.append([*cells, f"not run: {outcome}"])
        else:
            lines.append([*cells, *(show_metric(m, outcome[m]) for m in shown)])
    full = [line for line in lines if len(line) == len(lines[0])]
    widths = [max(len(line[k]) for line in full) for k in range(len(lines[0]))]

    def text(line: list[str]) -> str:
        if len(line) == len(widths):
            return "  ".join(cell.rjust(w) for cell, w in zip(line, widths, strict=True))
        *cells, reason = line  # a combination not run: its parameters, then why
        return "  ".join([*(cell.rjust(w) for cell, w in zip(cells, widths, strict=False)),
                          reason])
    return "\n".join(text(line) for line in lines)


def summary_table(columns: dict[str, Summary]) -> str:
    """The summaries side by side, one metric a line, as plain text."""
    header = ["", *columns]
    lines = [header] + [[label, *(show(s) for s in columns.values())] for label, show in ROWS]
    widths = [max(len(line[k]) for line in lines) for k in range(len(header))]
    return "\n".join(
        "  ".join(cell.ljust(w) if k == 0 else cell.rjust(w)
                  for k, (cell, w) in enumerate(zip(line, widths, strict=True))).rstrip()
        for line in lines
    )


def summary_markdown(columns: dict[str, Summary]) -> str:
    header = ["metric", *columns]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join([label, *(show(s) for s in columns.values())]) + " |"
              for label, show in ROWS]
    return "\n".join(lines) + "\n"


def summary_dict(summary: Summary) -> dict[str, object]:
    """The summary as JSON-ready values: times ISO 8601 UTC, durations in seconds, an
    undefined ratio null, an infinite one the string "inf"."""
    def plain(value: object) -> object:
        if isinstance(value, float) and math.isinf(value):
            return "inf"
        if isinstance(value, timedelta):
            return value.total_seconds()
        if hasattr(value, "isoformat"):
            return value.isoformat()  # type: ignore[union-attr]
        return value
    return {name: plain(getattr(summary, name)) for name in Summary.__slots__}


def write_trades_csv(result: BacktestResult, path: Path) -> None:
    """One row a fill: the start of the bar that filled it (ISO 8601 UTC), side, quantity,
    price."""
    with path.open("w", newline="") as out:
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(TRADE_COLUMNS)
        for fill in result.fills:
            writer.writerow([fill.time.astimezone(UTC).isoformat(), fill.side.value,
                             repr(fill.quantity), repr(fill.price)])


def write_report(
    result: BacktestResult, directory: Path, split: float | None = None,
    charts: Charts | None = None,
) -> list[Path]:
    """Write the report's files into `directory` (made if missing); return their paths."""
    directory.mkdir(parents=True, exist_ok=True)
    columns = summary_columns(result, split)
    written = [directory / "summary.json", directory / "summary.md", directory / "trades.csv"]
    written[0].write_text(json.dumps(
        {"strategy": result.config.strategy, "symbol": result.data.symbol,
         "summaries": {name: summary_dict(s) for name, s in columns.items()}},
        indent=2,
    ) + "\n")
    written[1].write_text(
        f"# Backtest: {result.config.strategy} on {result.data.symbol}\n\n"
        + summary_markdown(columns)
    )
    write_trades_csv(result, written[2])
    if charts is not None:
        written.extend(charts(result, directory))
    return written


def summary_columns(result: BacktestResult, split: float | None) -> dict[str, Summary]:
    """{"all": summary}, or the first part and the rest with `split`."""
    if split is None:
        return {"all": result.summary()}
    first, rest = result.split(split)
    return {f"first {split:.0%}": first, f"last {1 - split:.0%}": rest}
