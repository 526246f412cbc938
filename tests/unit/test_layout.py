"""The layout stays readable: no import cycles in models/, services/ and scripts/, services/ files
short and named for what they hold, no function in services/ longer than a screen, models/ free of BentoML."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit
ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("models", "services")


def _module(path: Path) -> str:
    rel = path.relative_to(ROOT).with_suffix("")
    parts = rel.parts if rel.parts[0] in PACKAGES else rel.parts[1:]  # scripts/x.py is imported as `x`
    return ".".join(p for p in parts if p != "__init__")


def _imports(path: Path) -> set[str]:
    """Modules imported anywhere in the file: a lazy import inside a function still ties the two modules together."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names |= {node.module} | {f"{node.module}.{a.name}" for a in node.names}
    return names


def _graph() -> dict[str, set[str]]:
    files = [p for d in (*PACKAGES, "scripts") for p in (ROOT / d).rglob("*.py")]
    modules = {_module(p): p for p in files}
    return {m: {n for n in _imports(p) if n in modules and n != m} for m, p in modules.items()}


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}  # 1: on the current path, 2: done

    def visit(node: str, path: list[str]) -> list[str] | None:
        state[node] = 1
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return path[path.index(nxt) :] + [nxt] if nxt in path else [node, nxt]
            if nxt not in state and (found := visit(nxt, [*path, nxt])):
                return found
        state[node] = 2
        return None

    for start in sorted(graph):
        if start not in state and (found := visit(start, [start])):
            return found
    return None


def test_no_module_imports_itself_in_a_circle():
    assert _cycle(_graph()) is None, " -> ".join(_cycle(_graph()))


def test_the_cycle_finder_finds_one():
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": set()}) is None


def test_services_files_are_short_and_so_are_their_functions():
    for path in sorted((ROOT / "services").glob("*.py")):
        lines = path.read_text().splitlines()
        assert len(lines) <= 300, f"{path.name}: {len(lines)} lines"
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                length = node.end_lineno - node.lineno + 1
                assert length <= 40, f"{path.name}:{node.lineno} {node.name} has {length} lines"


def test_models_never_import_bentoml():
    for path in (ROOT / "models").rglob("*.py"):
        tree = ast.parse(path.read_text())
        names = {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
        names |= {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module}
        assert not any(n.split(".")[0] == "bentoml" for n in names), path


def test_integrations_are_clients_that_never_import_the_server():
    """integrations/ (Pipecat...) speak to the server over HTTP and WebSockets, in environments of their own."""
    files = list((ROOT / "integrations").rglob("*.py"))
    assert files
    for path in files:
        if ".venv" in path.parts:
            continue
        for name in _imports(path):
            assert name.split(".")[0] not in PACKAGES, f"{path.relative_to(ROOT)} imports {name}"
