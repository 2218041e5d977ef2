"""ibsim's modules form layers: each imports only from its own layer or those below, there is no
import cycle among them, counting imports made only for type checking (they couple the modules
all the same), and none imports the package root."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "ibsim"

# Bottom to top. A module may import from its own layer (without a cycle) and the ones below.
LAYERS: list[tuple[str, set[str]]] = [
    ("primitives", {"framing", "sessions", "clock", "fault_state", "rhythm"}),
    ("domain", {"contracts", "orders", "account", "pricepath", "bars", "market", "hooks",
                "bulletins", "news", "scanner", "conditions", "option_pricing", "options",
                "margin", "option_listing", "matching"}),
    ("wire", {"requests", "decoding", "messages"}),
    ("broker", {"broker", "order_gate", "persistence"}),
    ("connections", {"session", "clients"}),
    ("state", {"state"}),
    ("on the state", {"account_fanout", "order_fanout", "streaming", "faults", "bulletin_fanout",
                      "handler_registry", "handlers_info", "handlers_account", "handlers_orders",
                      "handlers_market", "handlers", "handlers_options", "settlement",
                      "scanner_fanout"}),
    ("server", {"control", "gateway"}),
    ("entry points", {"cli", "__init__"}),
]


def _imports(path: Path) -> set[str]:
    """The ibsim modules ``path`` imports, wherever the import statement is (TYPE_CHECKING
    blocks and function bodies included); ``"__init__"`` stands for the package root, which
    `import ibsim` and `from ibsim import Name` (a name, not a submodule) go through."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                parts = alias.name.split(".")
                if parts[0] == "ibsim":
                    found.add(parts[1] if len(parts) > 1 else "__init__")
        elif isinstance(node, ast.ImportFrom):
            if node.level == 1:
                module = node.module
            elif node.level == 0 and node.module and node.module.split(".")[0] == "ibsim":
                module = node.module.partition(".")[2] or None
            else:
                continue
            if module:
                found.add(module.split(".")[0])
                continue
            for alias in node.names:
                is_module = (PACKAGE / f"{alias.name}.py").exists()
                found.add(alias.name if is_module else "__init__")
    return found


def import_graph() -> dict[str, set[str]]:
    """Module name -> the ibsim modules it imports."""
    modules = {p.stem: p for p in PACKAGE.glob("*.py")}
    return {name: (_imports(path) & set(modules)) - {name} for name, path in modules.items()}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                out.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def test_no_import_cycle_among_ibsim_modules() -> None:
    assert cycles(import_graph()) == []


def test_every_module_imports_only_its_own_layer_and_below() -> None:
    graph = import_graph()
    layer_of = {module: i for i, (_, modules) in enumerate(LAYERS) for module in modules}
    assert sorted(layer_of) == sorted(graph), "place every ibsim module in one of LAYERS"
    upward = [
        (module, dep)
        for module, deps in graph.items()
        for dep in deps
        if layer_of[dep] > layer_of[module]
    ]
    assert upward == []


def test_no_module_imports_the_package_root() -> None:
    offenders = [name for name, deps in import_graph().items() if "__init__" in deps]
    assert offenders == []


if __name__ == "__main__":
    graph = import_graph()
    print("cycles:", cycles(graph) or "none")
    for name in sorted(graph):
        print(f"{name}: {', '.join(sorted(graph[name])) or '-'}")
