"""A user's strategy class named by STRATEGY: loaded, checked, and every problem one line."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from engine.config import SettingsError, load_settings
from engine.domain import Bar
from engine.strategies import StrategyNotFound, create, parse_params, strategy_type

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "channel_breakout.py"

GOOD = """
from dataclasses import dataclass
from engine.strategies.base import Strategy, StrategyParams

@dataclass(frozen=True)
class P(StrategyParams):
    n: int = 3
    k: float = 1.5
    short: bool = False

    def validate(self):
        if self.n < 1:
            raise ValueError("n must be at least 1")

class Mine(Strategy):
    params_type = P

    @property
    def warmup_bars(self):
        return self.params.n

    def on_bar(self, bar, position):
        return None

    def indicator_values(self):
        return {}
"""


def write(tmp_path: Path, text: str, name: str = "mine.py") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


def settings_error(strategy: str, params: str = "") -> str:
    with pytest.raises(SettingsError) as caught:
        load_settings(None, strategy=strategy, strategy_params=params)
    assert len(caught.value.lines) == 1, caught.value.lines
    return caught.value.lines[0]


def test_a_file_class_is_loaded_with_its_params(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD)
    settings = load_settings(None, strategy=f"{path}:Mine", strategy_params="n=5,k=2,short=yes")
    params = settings.strategy_params
    assert (params.n, params.k, params.short) == (5, 2.0, True)
    strategy = create(settings.strategy, "AAPL", params, 10.0)
    assert strategy.warmup_bars == 5
    # Loaded once: the class, and so its params_type, is the same object every time.
    assert strategy_type(f"{path}:Mine") is type(strategy)


def test_a_module_class_is_loaded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    package = tmp_path / "mypkg"
    package.mkdir()
    (package / "__init__.py").write_text("")
    write(package, GOOD, "strat.py")
    monkeypatch.syspath_prepend(str(tmp_path))
    assert parse_params("mypkg.strat:Mine", "n=2").n == 2


def test_the_example_loads_and_decides() -> None:
    name = f"{EXAMPLE}:ChannelBreakout"
    strategy = create(name, "AAPL", parse_params(name, "entry=3,exit=2"), 5.0)
    start = datetime(2026, 1, 5, 15, tzinfo=UTC)
    closes = [10, 11, 10.5, 10.8, 12, 12.5, 9]
    signals = []
    for i, close in enumerate(closes):
        bar = Bar("AAPL", start + timedelta(minutes=i), close, close + 0.1, close - 0.1, close)
        position = 5.0 if signals and signals[-1].target else 0.0
        if (signal := strategy.on_bar(bar, position)) is not None:
            signals.append(signal)
    assert [(s.time.minute, s.target) for s in signals] == [(4, 5.0), (6, 0.0)]
    assert strategy.indicator_values() == {"high3": 12.6, "low2": 8.9}


@pytest.mark.parametrize(
    ("source", "cls", "expected"),
    [
        (None, "Mine", "no strategy file"),
        (GOOD + "\nx = (\n", "Mine", "syntax error"),
        (GOOD + "\nimport no_such_module_xyz\n", "Mine", "No module named 'no_such_module_xyz'"),
        (GOOD, "Yours", "has no class Yours"),
        (GOOD + "\nclass Plain:\n    pass\n", "Plain", "is not a Strategy subclass"),
        (GOOD.replace("    params_type = P\n", ""), "Mine", "has no params_type"),
        (
            GOOD.replace("    def indicator_values(self):\n        return {}\n", ""),
            "Mine",
            "does not implement indicator_values",
        ),
        (GOOD.replace("k: float = 1.5", "k: list = None"), "Mine", "field k must be bool"),
        (GOOD.replace("n: int = 3", "n: int"), "Mine", "field n needs a default"),
    ],
)
def test_problems_are_one_strategy_line(
    tmp_path: Path, source: str | None, cls: str, expected: str
) -> None:
    path = write(tmp_path, source) if source is not None else tmp_path / "mine.py"
    line = settings_error(f"{path}:{cls}")
    assert line.startswith("STRATEGY: "), line
    assert expected in line, line


def test_syntax_error_names_the_file_and_line(tmp_path: Path) -> None:
    path = write(tmp_path, "x = 1\ndef broken(:\n")
    line = settings_error(f"{path}:Mine")
    assert line.startswith(f"STRATEGY: {path}, line 2: syntax error"), line


def test_an_unknown_module_and_a_malformed_spec(tmp_path: Path) -> None:
    assert "no module named 'nosuchpkg_xyz'" in settings_error("nosuchpkg_xyz.mod:Mine")
    with pytest.raises(StrategyNotFound, match=r"expected path/to/file\.py:ClassName"):
        strategy_type(f"{write(tmp_path, GOOD)}:")


def test_bad_params_of_a_user_class_are_one_params_line(tmp_path: Path) -> None:
    spec = f"{write(tmp_path, GOOD)}:Mine"
    assert settings_error(spec, "n=0") == "STRATEGY_PARAMS: n must be at least 1"
    assert settings_error(spec, "m=2").startswith("STRATEGY_PARAMS: unknown parameter 'm'")


def test_the_cli_prints_one_line_and_exits_2(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD + "\nraise RuntimeError('boom')\n")
    result = subprocess.run(
        [sys.executable, "-m", "bot.cli", "journal"],
        env={**os.environ, "STRATEGY": f"{path}:Mine", "PYTHONPATH": str(ROOT)},
        cwd=tmp_path, capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"tradebot: STRATEGY: {path}, line "), lines[0]
    assert "RuntimeError: boom" in lines[0]
