"""Parameter sweeps: `--grid` specs into combinations, run on all cores or on a Dask cluster.

A sweep runs one picklable function, ``run_one(params) -> {metric: value}``, once per
combination. Each row is exactly what that one run gives alone (the function is called with the
same dict, in a fresh or a reused worker alike); only the order of the rows is the sweep's.
What every run needs (the bars) can travel once per worker instead of once per run: given as
`shared`, it goes to each worker process once (the pool's initializer) or to the cluster once
(scattered), and the call is ``run_one(params, shared)``.
"""

from __future__ import annotations

import functools
import itertools
import math
import os
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

Value = int | float | bool | str
Params = dict[str, Value]
Metrics = dict[str, float]
RunOne = Callable[..., Metrics]  # run_one(params), or run_one(params, shared)
_NOTHING = object()
# The worker process's copy of `shared`, set once by the pool's initializer.
_shared: object = _NOTHING

# Past this a typo (a step of 0.0001) would run for days: refuse and say so.
MAX_COMBINATIONS = 100_000
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


@dataclass(frozen=True)
class SweepRow:
    params: Params
    metrics: Metrics


def parse_grid(specs: Iterable[str]) -> dict[str, list[Value]]:
    """``["fast=5:20:5", "slow=20,40"]`` → ``{"fast": [5, 10, 15, 20], "slow": [20, 40]}``.

    ``start:stop:step`` includes stop when the steps land on it; ints stay ints, a float
    anywhere makes floats. ``a,b,c`` is a list (numbers, true/false, or words). A malformed
    spec raises ValueError with one line naming it.
    """
    grid: dict[str, list[Value]] = {}
    for spec in specs:
        name, sep, text = spec.partition("=")
        name, text = name.strip().lower(), text.strip()
        if not sep or not _NAME.fullmatch(name) or not text:
            raise ValueError(f"--grid: expected name=start:stop:step or name=a,b,c, got {spec!r}")
        if name in grid:
            raise ValueError(f"--grid: {name} given twice")
        values = _range(name, text) if ":" in text else _list(name, text)
        if len(set(values)) != len(values):
            raise ValueError(f"--grid: {name} lists a value twice ({text})")
        grid[name] = values
    count = math.prod(len(values) for values in grid.values())
    if count > MAX_COMBINATIONS:
        raise ValueError(
            f"--grid: {count:,} combinations, more than {MAX_COMBINATIONS:,}; use coarser steps"
        )
    return grid


def _range(name: str, text: str) -> list[Value]:
    parts = [part.strip() for part in text.split(":")]
    if len(parts) != 3:
        raise ValueError(f"--grid: {name}: expected start:stop:step, got {text!r}")
    try:
        # Decimal, so 0.1:0.3:0.1 gives 0.1, 0.2, 0.3 and not 0.30000000000000004.
        start, stop, step = (Decimal(part) for part in parts)
    except InvalidOperation:
        raise ValueError(f"--grid: {name}: expected numbers in {text!r}") from None
    if not all(number.is_finite() for number in (start, stop, step)):
        raise ValueError(f"--grid: {name}: expected finite numbers in {text!r}")
    if step <= 0:
        raise ValueError(f"--grid: {name}: the step must be greater than 0, got {parts[2]}")
    if stop < start:
        raise ValueError(f"--grid: {name}: stop {parts[1]} is below start {parts[0]}")
    count = int((stop - start) / step) + 1
    if count > MAX_COMBINATIONS:
        raise ValueError(f"--grid: {name}: {count:,} values; use a coarser step")
    integral = all(_is_int_text(part) for part in parts)
    numbers = [start + i * step for i in range(count)]
    return [int(n) for n in numbers] if integral else [float(n) for n in numbers]


def _is_int_text(text: str) -> bool:
    return re.fullmatch(r"[+-]?\d+", text) is not None


def _list(name: str, text: str) -> list[Value]:
    items = [item.strip() for item in text.split(",")]
    if not all(items):
        raise ValueError(f"--grid: {name}: an empty value in {text!r}")
    return [_value(item) for item in items]


def _value(text: str) -> Value:
    if _is_int_text(text):
        return int(text)
    if text.lower() in ("true", "false"):
        return text.lower() == "true"
    try:
        number = float(text)
    except ValueError:
        return text
    if not math.isfinite(number):
        raise ValueError(f"--grid: expected a finite number, got {text!r}")
    return number


def combinations(grid: Mapping[str, Sequence[Value]]) -> list[Params]:
    """Every combination, the last name varying fastest (itertools.product's order)."""
    names = list(grid)
    return [dict(zip(names, values, strict=True)) for values in itertools.product(*grid.values())]


def run_sweep(
    run_one: RunOne,
    combos: Sequence[Params],
    *,
    sort_by: str | None = None,
    descending: bool = True,
    workers: int | None = None,
    cluster: str | None = None,
    connect_timeout: float = 10.0,
    shared: object = _NOTHING,
) -> list[SweepRow]:
    """Run `run_one` over `combos` and return the rows sorted by the metric `sort_by` (best
    first: highest, or lowest with ``descending=False``; NaN and missing last; ties keep the
    combinations' order).

    On this machine with `workers` processes (all cores by default; 1 runs here, in this
    process), or on the Dask scheduler at `cluster` (``tcp://host:8786``). With `shared`, each
    run is ``run_one(params, shared)`` (see the module's docstring).
    """
    if cluster:
        results = _on_cluster(run_one, combos, cluster, connect_timeout, shared)
    elif workers == 1 or len(combos) <= 1:
        results = [run_one(params) if shared is _NOTHING else run_one(params, shared)
                   for params in combos]
    else:
        count = min(workers or os.cpu_count() or 1, len(combos))
        task, setup = run_one, {}
        if shared is not _NOTHING:
            task = functools.partial(_with_shared, run_one)
            setup = {"initializer": _keep_shared, "initargs": (shared,)}
        with ProcessPoolExecutor(max_workers=count, **setup) as pool:
            # Chunks amortise the pickling of tiny runs without starving a core at the end.
            chunk = max(1, len(combos) // (count * 4))
            results = list(pool.map(task, combos, chunksize=chunk))
    rows = [SweepRow(dict(p), dict(m)) for p, m in zip(combos, results, strict=True)]
    if sort_by is not None:
        rows = sort_rows(rows, sort_by, descending)
    return rows


def _keep_shared(shared: object) -> None:
    global _shared
    _shared = shared


def _with_shared(run_one: RunOne, params: Params) -> Metrics:
    return run_one(params, _shared)


def sort_rows(rows: Sequence[SweepRow], key: str, descending: bool = True) -> list[SweepRow]:
    """`rows` best first by the metric `key`; rows without a number for it go last."""
    if rows and all(key not in row.metrics for row in rows):
        known = ", ".join(sorted(rows[0].metrics))
        raise ValueError(f"--sort: no metric {key!r} (one of: {known})")

    def order(row: SweepRow) -> tuple[int, float]:
        value = row.metrics.get(key)
        if value is None or math.isnan(value):
            return (1, 0.0)
        return (0, -value if descending else value)

    return sorted(rows, key=order)


def _on_cluster(
    run_one: RunOne, combos: Sequence[Params], address: str, timeout: float, shared: object
) -> list[Metrics]:
    try:
        from distributed import Client
    except ImportError:
        raise ValueError(
            "--cluster needs dask.distributed: pip install 'tradebot[cluster]'"
        ) from None
    try:
        client = Client(address, timeout=timeout)
    except (OSError, TimeoutError) as exc:
        raise ValueError(
            f"--cluster: cannot reach the Dask scheduler at {address} ({exc})"
        ) from None
    try:
        # pure=False: every combination is its own task, even if two dicts tokenise alike.
        if shared is _NOTHING:
            futures = client.map(run_one, list(combos), pure=False)
        else:
            scattered = client.scatter(shared, broadcast=True)
            futures = client.map(run_one, list(combos), [scattered] * len(combos), pure=False)
        return list(client.gather(futures))
    finally:
        client.close()
