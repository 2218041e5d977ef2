"""Loading a user's strategy class from STRATEGY=path/to/file.py:Class or package.module:Class.

Loading a strategy runs its file: it is code the operator chose, like any setting in .env. Only
the settings (environment, .env, the command line) name it; nothing Telegram sends reaches here.
Every problem is a `StrategyNotFound` with one line naming the file (and line) and what is wrong.
"""

from __future__ import annotations

import dataclasses
import importlib
import importlib.util
import inspect
import re
import sys
import traceback
import typing
from pathlib import Path

from engine.strategies.base import Strategy, StrategyParams

# The parameter types STRATEGY_PARAMS text can be parsed into.
PARSABLE_TYPES = (bool, int, float, str)

_MODULE_PATH = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*")
_CLASS_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")

# By spec: a class is loaded once per process, so its params_type stays the one class that
# `create` checks parameters against.
_loaded: dict[str, type[Strategy]] = {}


class StrategyNotFound(ValueError):
    """STRATEGY names nothing usable; the message is one line for the user."""


def is_spec(name: str) -> bool:
    """Whether STRATEGY names a user's class (`file.py:Class`, `package.module:Class`)."""
    return ":" in name


def load(spec: str) -> type[Strategy]:
    """The strategy class `spec` names, imported once and checked against the interface."""
    key = _key(spec)
    if key not in _loaded:
        _loaded[key] = _load(spec)
    return _loaded[key]


def _key(spec: str) -> str:
    where, _, cls_name = spec.strip().rpartition(":")
    if _is_file(where):
        return f"{Path(where).expanduser().resolve()}:{cls_name}"
    return f"{where}:{cls_name}"


def _is_file(where: str) -> bool:
    return where.endswith(".py") or "/" in where or "\\" in where


def _load(spec: str) -> type[Strategy]:
    where, _, cls_name = spec.strip().rpartition(":")
    where, cls_name = where.strip(), cls_name.strip()
    if not where or not _CLASS_NAME.fullmatch(cls_name):
        raise StrategyNotFound(
            f"expected path/to/file.py:ClassName or package.module:ClassName, got {spec!r}"
        )
    module = _import_file(where) if _is_file(where) else _import_module(where)
    return _check(getattr(module, cls_name, None), cls_name, where)


def _import_file(where: str) -> object:
    path = Path(where).expanduser().resolve()
    if not path.is_file():
        raise StrategyNotFound(f"no strategy file {where}")
    # A stable, unique module name: dataclasses and pickling (the sweep's worker processes)
    # look classes up through sys.modules by their module's name.
    module_name = "tradebot_user_strategy_" + re.sub(r"\W", "_", str(path.with_suffix("")))
    module_spec = importlib.util.spec_from_file_location(module_name, path)
    if module_spec is None or module_spec.loader is None:
        raise StrategyNotFound(f"cannot load {where} as a Python file")
    module = importlib.util.module_from_spec(module_spec)
    sys.modules[module_name] = module
    try:
        module_spec.loader.exec_module(module)
    except BaseException as exc:
        del sys.modules[module_name]
        if not isinstance(exc, Exception):
            raise
        raise StrategyNotFound(_import_failure(where, exc)) from None
    return module


def _import_module(where: str) -> object:
    if not _MODULE_PATH.fullmatch(where):
        raise StrategyNotFound(f"{where!r} is neither a .py file nor a module name")
    try:
        return importlib.import_module(where)
    except ModuleNotFoundError as exc:
        if exc.name and where.startswith(exc.name):
            raise StrategyNotFound(f"no module named {exc.name!r} (importing {where})") from None
        raise StrategyNotFound(_import_failure(where, exc)) from None
    except Exception as exc:  # the user's module ran and failed: say where, not how
        raise StrategyNotFound(_import_failure(where, exc)) from None


def _import_failure(where: str, exc: Exception) -> str:
    """`file, line N: what` for the error the user's code raised while being imported."""
    if isinstance(exc, SyntaxError):
        return f"{exc.filename or where}, line {exc.lineno}: syntax error ({exc.msg})"
    frames = traceback.extract_tb(exc.__traceback__)
    # The innermost frame outside importlib's machinery is where the user's code failed.
    ours = [f for f in frames if "importlib" not in f.filename]
    place = f"{ours[-1].filename}, line {ours[-1].lineno}" if ours else where
    return f"{place}: importing {where} failed: {type(exc).__name__}: {exc}"


def _check(cls: object, cls_name: str, where: str) -> type[Strategy]:
    if cls is None:
        raise StrategyNotFound(f"{where} has no class {cls_name}")
    if not (inspect.isclass(cls) and issubclass(cls, Strategy)):
        raise StrategyNotFound(
            f"{cls_name} in {where} is not a Strategy subclass "
            "(class MyStrategy(engine.strategies.base.Strategy))"
        )
    params_type = getattr(cls, "params_type", None)
    if params_type is None:
        raise StrategyNotFound(
            f"{cls_name} in {where} has no params_type (a StrategyParams dataclass)"
        )
    if not (
        inspect.isclass(params_type)
        and issubclass(params_type, StrategyParams)
        and dataclasses.is_dataclass(params_type)
    ):
        raise StrategyNotFound(
            f"{cls_name}.params_type in {where} must be a @dataclass subclassing StrategyParams"
        )
    if inspect.isabstract(cls):
        missing = ", ".join(sorted(getattr(cls, "__abstractmethods__", ())))
        raise StrategyNotFound(f"{cls_name} in {where} does not implement {missing}")
    _check_fields(params_type, cls_name, where)
    return cls


def _check_fields(params_type: type[StrategyParams], cls_name: str, where: str) -> None:
    try:
        hints = typing.get_type_hints(params_type)
    except Exception as exc:  # an annotation naming something the file never imported
        raise StrategyNotFound(
            f"{cls_name}.params_type in {where}: cannot read its field types ({exc})"
        ) from None
    for field in dataclasses.fields(params_type):
        if hints.get(field.name) not in PARSABLE_TYPES:
            raise StrategyNotFound(
                f"{cls_name}.params_type in {where}: field {field.name} must be bool, int, "
                "float or str (STRATEGY_PARAMS is text)"
            )
        if field.default is dataclasses.MISSING and field.default_factory is dataclasses.MISSING:
            raise StrategyNotFound(
                f"{cls_name}.params_type in {where}: field {field.name} needs a default"
            )
