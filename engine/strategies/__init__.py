"""The strategies, found by name, and their parameters parsed from STRATEGY_PARAMS text.

A name with a colon is a user's class, ``path/to/file.py:Class`` or ``package.module:Class``
(`loader.py`); every caller (settings, engine, backtester) finds it through `strategy_type`.

Errors are `ValueError`s with a short message meant for the user (the settings loader shows
it as ``STRATEGY_PARAMS: <message>``), e.g. ``fast: expected an integer, got 'ten'``.
"""

from __future__ import annotations

import dataclasses
import math
import typing

from engine.strategies import loader
from engine.strategies.base import Strategy, StrategyParams
from engine.strategies.bollinger_breakout import BollingerBreakout, BollingerBreakoutParams
from engine.strategies.loader import StrategyNotFound
from engine.strategies.rsi_reversion import RsiReversion, RsiReversionParams
from engine.strategies.sma_cross import SmaCross, SmaCrossParams

__all__ = [
    "STRATEGIES",
    "BollingerBreakout",
    "BollingerBreakoutParams",
    "RsiReversion",
    "RsiReversionParams",
    "SmaCross",
    "SmaCrossParams",
    "Strategy",
    "StrategyNotFound",
    "StrategyParams",
    "create",
    "parse_params",
]

STRATEGIES: dict[str, type[Strategy]] = {
    cls.name: cls for cls in (SmaCross, RsiReversion, BollingerBreakout)
}

_TRUE = frozenset({"true", "1", "yes"})
_FALSE = frozenset({"false", "0", "no"})


def strategy_type(name: str) -> type[Strategy]:
    """The strategy class registered as `name`, or the user's class `name` points to
    (`path/to/file.py:Class`, `package.module:Class`). Raises StrategyNotFound."""
    if loader.is_spec(name):
        return loader.load(name)
    try:
        return STRATEGIES[name]
    except KeyError:
        raise StrategyNotFound(
            f"unknown strategy {name!r} (choose {', '.join(STRATEGIES)}, "
            "or path/to/file.py:ClassName)"
        ) from None


def parse_params(name: str, text: str) -> StrategyParams:
    """Parse ``key=value,key=value`` into `name`'s parameters; empty text gives the defaults."""
    params_type = strategy_type(name).params_type
    # Resolved hints, not Field.type: under `from __future__ import annotations` that is a str.
    hints = typing.get_type_hints(params_type)
    fields = [f.name for f in dataclasses.fields(params_type)]
    values: dict[str, object] = {}
    for item in text.split(","):
        if not item.strip():
            continue  # empty text, or a trailing comma
        key, sep, raw = item.partition("=")
        key, raw = key.strip().lower(), raw.strip()
        if not sep or not key:
            raise ValueError(f"expected key=value, got {item.strip()!r}")
        if key not in fields:
            raise ValueError(f"unknown parameter {key!r} for {name} ({', '.join(fields)})")
        if key in values:
            raise ValueError(f"{key}: given twice")
        values[key] = _convert(key, raw, hints[key])
    if not loader.is_spec(name):
        params = params_type(**values)
        params.validate()
        return params
    try:
        params = params_type(**values)
        params.validate()
    except ValueError:
        raise
    except Exception as exc:  # the user's validate() failing otherwise is still one line
        raise ValueError(f"{type(exc).__name__}: {exc}") from None
    return params


def create(name: str, symbol: str, params: StrategyParams, quantity: float) -> Strategy:
    """A new strategy object for one symbol, trading `quantity` (shares, contracts, coins)."""
    cls = strategy_type(name)
    if not isinstance(params, cls.params_type):
        raise TypeError(f"{name} takes {cls.params_type.__name__}, got {type(params).__name__}")
    if not (math.isfinite(quantity) and quantity > 0):
        raise ValueError(f"quantity must be greater than 0, got {quantity!r}")
    return cls(symbol, params, quantity)


def _convert(key: str, raw: str, kind: object) -> object:
    # bool before int: bool is a subclass of int, and int("true") is not what anyone means.
    if kind is bool:
        lowered = raw.lower()
        if lowered in _TRUE:
            return True
        if lowered in _FALSE:
            return False
        raise ValueError(f"{key}: expected true or false, got {raw!r}")
    if kind is int:
        try:
            return int(raw)
        except ValueError:
            raise ValueError(f"{key}: expected an integer, got {raw!r}") from None
    if kind is float:
        try:
            number = float(raw)
        except ValueError:
            raise ValueError(f"{key}: expected a number, got {raw!r}") from None
        if not math.isfinite(number):
            raise ValueError(f"{key}: expected a finite number, got {raw!r}")
        return number
    if kind is str:
        return raw
    raise TypeError(f"{key}: parameters of type {kind!r} cannot be parsed from text")
