"""The layer's imports point one way, and the local world, benchmarks and tests have no circles.

Every import counts, also those inside functions and under TYPE_CHECKING: a lazy import that runs
upward is still a dependency upward. Each rule is shown to catch a violation on a made-up graph.
"""

from __future__ import annotations

import ast
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
LAYER = ROOT / "layers" / "shared"
PACKAGE = "pleo_connector"

# Low to high. A module may import its own level and below, never above.
LEVELS: Mapping[str, int] = {
    "errors": 0,
    "vocabulary": 0,
    "config": 0,
    "observability": 0,
    "metrics": 0,
    "tracing": 0,
    "aws": 0,
    "aio": 0,
    "installation_config": 1,
    "crypto": 1,
    "store": 1,
    "pleo": 1,
    "sync_queue": 1,
    "web": 1,
    "adapters": 1,
    "tokens": 2,
    "ports": 2,
    "failure_policy": 2,
    "connect": 3,
    "sync": 3,
    "composition": 4,
}
# Pairs at one level that must stay apart all the same.
FORBIDDEN: frozenset[tuple[str, str]] = frozenset(
    {
        ("store", "web"),
        ("pleo", "web"),
        ("web", "store"),
        ("web", "pleo"),
        ("sync", "connect"),
        ("connect", "sync"),
    }
)


def module_name(path: Path, base: Path) -> str:
    parts = list(path.relative_to(base).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports_of(path: Path, module: str) -> set[str]:
    """Every module `path` imports, absolute, wherever in the file the import stands."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                target = ".".join([*base, node.module] if node.module else base)
            else:
                target = node.module or ""
            found.add(target)
            found.update(f"{target}.{alias.name}" for alias in node.names)
    return found


def graph_of(bases: Iterable[tuple[Path, Path]], prefixes: tuple[str, ...]) -> dict[str, set[str]]:
    """module -> the modules of `prefixes` it imports, over every `.py` under each root."""
    modules: dict[str, Path] = {}
    for base, root in bases:
        for path in sorted(root.rglob("*.py")):
            modules[module_name(path, base)] = path
    return {
        name: {
            target
            for target in imports_of(path, name)
            if target in modules and target != name and target.startswith(prefixes)
        }
        for name, path in modules.items()
    }


def unit_of(module: str) -> str:
    """`pleo_connector.store.credentials` -> `store`."""
    return module.split(".")[1] if "." in module else ""


def upward_imports(graph: Mapping[str, set[str]]) -> list[str]:
    problems = []
    for importer, targets in sorted(graph.items()):
        source = unit_of(importer)
        for target in sorted(targets):
            destination = unit_of(target)
            if source not in LEVELS or destination not in LEVELS:
                continue
            if LEVELS[destination] > LEVELS[source] or (source, destination) in FORBIDDEN:
                problems.append(f"{importer} -> {target}")
    return problems


def units_unlisted(graph: Mapping[str, set[str]]) -> set[str]:
    return {unit_of(name) for name in graph if unit_of(name)} - set(LEVELS)


def circles(graph: Mapping[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(graph.get(node, ())):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def layer_graph() -> dict[str, set[str]]:
    return graph_of([(LAYER, LAYER / PACKAGE)], (f"{PACKAGE}.",))


def test_every_package_of_the_layer_has_a_level() -> None:
    assert units_unlisted(layer_graph()) == set()


def test_no_import_in_the_layer_runs_from_a_lower_package_to_a_higher_one() -> None:
    assert upward_imports(layer_graph()) == []


def test_the_local_world_benchmarks_and_tests_have_no_import_circles() -> None:
    graph = graph_of(
        [(ROOT, ROOT / "local"), (ROOT, ROOT / "bench"), (ROOT, ROOT / "tests")],
        ("local.", "bench.", "tests."),
    )
    assert circles(graph) == []


# --- each rule catches what it is for ------------------------------------------------------------


def test_an_upward_import_is_caught() -> None:
    graph = {
        "pleo_connector.store.credentials": {"pleo_connector.connect.settings"},
        "pleo_connector.sync.worker": {"pleo_connector.connect.errors"},
        "pleo_connector.connect.settings": {"pleo_connector.store.credentials"},
    }
    assert upward_imports(graph) == [
        "pleo_connector.store.credentials -> pleo_connector.connect.settings",
        "pleo_connector.sync.worker -> pleo_connector.connect.errors",
    ]


def test_a_package_without_a_level_is_caught() -> None:
    assert units_unlisted({"pleo_connector.newthing.x": set()}) == {"newthing"}


def test_a_circle_is_caught() -> None:
    graph = {
        "local.a": {"local.b"},
        "local.b": {"local.c"},
        "local.c": {"local.a"},
        "local.d": set(),
    }
    assert circles(graph) == [["local.a", "local.b", "local.c"]]


def test_imports_are_found_inside_functions_and_under_type_checking(tmp_path: Path) -> None:
    source = tmp_path / "pkg" / "mod.py"
    source.parent.mkdir()
    source.write_text(
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n    from pkg.typed import T\n"
        "def f():\n    from . import lazy\n    import pkg.other\n"
    )
    found = imports_of(source, "pkg.mod")
    assert {"pkg.typed", "pkg.lazy", "pkg.other"} <= found
