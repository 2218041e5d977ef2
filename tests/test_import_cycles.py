"""No import cycle among the modules of engine/, bot/, ibsim/, backtest/ and charts/, and the
packages layered: ibsim, engine and charts know nothing of each other or of bot; backtest runs
the engine's code (and draws with charts) and knows nothing of bot or ibsim; bot is the
application over them all.

Every import statement counts, wherever it is: under `if TYPE_CHECKING:` (it couples the
modules all the same) and inside functions. `from package import name` is an import of the
submodule when `name` is one, else of the package itself.
"""

from __future__ import annotations

import ast
from graphlib import CycleError, TopologicalSorter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("engine", "bot", "ibsim", "backtest", "charts")
# Which package may import which (besides itself): bot is the application, which runs the
# engine, the backtester and, on the embedded defaults, the simulated gateway.
MAY_IMPORT = {
    "engine": set(),
    "ibsim": set(),
    "charts": set(),
    "backtest": {"engine", "charts"},
    "bot": {"engine", "ibsim", "backtest", "charts"},
}


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _modules() -> dict[str, Path]:
    return {
        _module_name(path): path
        for package in PACKAGES
        for path in (ROOT / package).rglob("*.py")
    }


def _imports(name: str, path: Path, known: set[str]) -> set[str]:
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            targets = [f"{module}.{alias.name}" if f"{module}.{alias.name}" in known
                       else module for alias in node.names]
        else:
            continue
        found.update(target for target in targets if target in known)
    return found - {name}


def import_graph() -> dict[str, set[str]]:
    modules = _modules()
    known = set(modules)
    return {name: _imports(name, path, known) for name, path in modules.items()}


def test_the_graph_sees_the_imports_it_should() -> None:
    graph = import_graph()
    assert "engine.ports" in graph["engine.broker"]
    assert "engine.engine" in graph["engine.control"]  # a TYPE_CHECKING import counts
    assert "ibsim.state" in graph["ibsim.handlers"]


def test_there_is_no_import_cycle() -> None:
    try:
        TopologicalSorter(import_graph()).prepare()
    except CycleError as exc:
        cycle = " -> ".join(exc.args[1])
        raise AssertionError(f"import cycle: {cycle}") from None


def test_the_packages_are_layered() -> None:
    wrong = sorted(
        f"{module} imports {target}"
        for module, targets in import_graph().items()
        for target in targets
        if (top := target.split(".")[0]) != (own := module.split(".")[0])
        and top not in MAY_IMPORT[own]
    )
    assert wrong == []


def test_imports_for_type_checking_and_in_functions_count(tmp_path: Path) -> None:
    module = tmp_path / "a.py"
    module.write_text(
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n    from pkg import b\n"
        "def later():\n    from .c import thing\n"
    )
    known = {"pkg.a", "pkg.b", "pkg.c"}
    assert _imports("pkg.a", module, known) == {"pkg.b", "pkg.c"}
