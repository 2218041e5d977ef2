"""A parameter sweep over backtests: each combination's parameters checked as `--params` would
check them, run alone, its summary as the sweep's metrics.

`run_combination` is the sweep's picklable function: module level, bound to the configuration
with `functools.partial`, the bars coming as the sweep's `shared` value (once per worker).
A combination's parameters are the run's own (`--params`, or STRATEGY_PARAMS) written as text
with the combination's values put in, parsed by `engine.strategies.parse_params`: the very
parameters a single run with that text gets, so its row is that run's summary.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from datetime import timedelta

from backtest.data import BarData
from backtest.metrics import Summary
from backtest.runner import BacktestConfig, run
from backtest.sweep import Metrics, Params
from engine.strategies import StrategyParams, parse_params

# The Summary fields a sweep can sort by: the numbers (not the period's start and end).
METRICS = tuple(name for name in Summary.__slots__ if name not in ("start", "end"))
# Smaller is better for these; larger for the rest.
LOWER_IS_BETTER = frozenset({"max_drawdown", "max_drawdown_duration", "commissions"})


@dataclasses.dataclass(frozen=True, slots=True)
class Combination:
    """One combination of the grid: its values, the `--params` text it makes, and the reason
    the strategy refuses it (None when it is valid)."""

    params: Params
    text: str
    error: str | None


def params_text(base: str, params: Params) -> str:
    """The `--params` text `base` with `params` put in (replacing the keys both name)."""
    items: dict[str, str] = {}
    for item in base.split(","):
        key, _, raw = item.partition("=")
        if key.strip():
            items[key.strip().lower()] = raw.strip()
    for key, value in params.items():
        items[key] = str(value).lower() if isinstance(value, bool) else str(value)
    return ",".join(f"{key}={raw}" for key, raw in items.items())


def as_text(params: StrategyParams) -> str:
    """`params` as the `--params` text that gives them back."""
    return params_text("", {field.name: getattr(params, field.name)
                            for field in dataclasses.fields(params)})


def check(config: BacktestConfig, combos: Sequence[Params]) -> list[Combination]:
    """Each combination with its `--params` text, and the strategy's refusal if it refuses."""
    checked = []
    base = as_text(config.params)
    for params in combos:
        text = params_text(base, params)
        try:
            parse_params(config.strategy, text)
        except ValueError as exc:
            checked.append(Combination(params, text, str(exc)))
        else:
            checked.append(Combination(params, text, None))
    return checked


def run_combination(config: BacktestConfig, params: Params, data: BarData) -> Metrics:
    """The summary of one run of `config` with `params` in place of its own values."""
    text = params_text(as_text(config.params), params)
    strategy_params = parse_params(config.strategy, text)
    result = run(data, dataclasses.replace(config, params=strategy_params))
    return metrics(result.summary())


def metrics(summary: Summary) -> Metrics:
    """The summary's numbers: durations in seconds, an undefined ratio NaN."""
    def number(value: object) -> float:
        if value is None:
            return math.nan
        if isinstance(value, timedelta):
            return value.total_seconds()
        return float(value)  # type: ignore[arg-type]
    return {name: number(getattr(summary, name)) for name in METRICS}
