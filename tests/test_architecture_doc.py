"""docs/architecture.md is the map of the code: every module of engine/, bot/, ibsim/ and
backtest/ and charts/ are on it, and every module it names exists."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "architecture.md"
PACKAGES = ("engine", "bot", "ibsim", "backtest", "charts")


def _modules() -> set[str]:
    return {
        path.relative_to(ROOT).as_posix()
        for package in PACKAGES
        for path in (ROOT / package).rglob("*.py")
    }


def _named() -> set[str]:
    text = DOC.read_text()
    named = set(re.findall(r"`((?:engine|bot|ibsim|backtest|charts)/[\w/]+\.py)`", text))
    for folder in re.findall(r"`((?:engine|bot|ibsim|backtest|charts)/[\w/]+/)`", text):
        named.update(  # a folder named with its files, as `engine/strategies/` (`base.py`, …)
            f"{folder}{name}" for name in re.findall(r"`(\w+\.py)`", text)
            if (ROOT / folder / name).exists()
        )
    return named


def test_every_module_is_on_the_map() -> None:
    assert sorted(_modules() - _named()) == []


def test_every_module_on_the_map_exists() -> None:
    assert sorted(_named() - _modules()) == []
