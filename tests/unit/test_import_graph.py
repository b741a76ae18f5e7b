"""No import circle in ``sipbridge`` or ``dispatch``: arrows point one way, so every module can be read (and
imported) without the ones that depend on it. Imports under ``if TYPE_CHECKING:`` count too: a circle a type
checker needs is still a circle in the design."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("sipbridge", "dispatch")


def module_files() -> dict[str, Path]:
    """Every module of the packages, by dotted name (a package by its own name, for its ``__init__``)."""
    modules: dict[str, Path] = {}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            modules[".".join(parts)] = path
    return modules


def imported_modules(name: str, path: Path, modules: set[str]) -> set[str]:
    """The modules a module imports, relative imports resolved. ``from x import y`` imports the module ``x.y``
    when there is one (Python then needs nothing else of ``x``), else ``x`` itself."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                origin = ".".join([*base, node.module] if node.module else base)
            else:
                origin = node.module or ""
            for alias in node.names:
                submodule = f"{origin}.{alias.name}"
                found.add(submodule if submodule in modules else origin)
    return found


def import_graph() -> dict[str, set[str]]:
    modules = module_files()
    names = set(modules)
    return {name: imported_modules(name, path, names) & names - {name} for name, path in modules.items()}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import circle as the list of modules around it (first module repeated at the end), or None."""
    done: set[str] = set()
    for start in sorted(graph):
        if start in done:
            continue
        path: list[str] = []
        on_path: set[str] = set()
        stack: list[tuple[str, list[str]]] = [(start, sorted(graph[start]))]
        path.append(start)
        on_path.add(start)
        while stack:
            node, pending = stack[-1]
            if not pending:
                stack.pop()
                path.pop()
                on_path.discard(node)
                done.add(node)
                continue
            nxt = pending.pop()
            if nxt in on_path:
                return [*path[path.index(nxt) :], nxt]
            if nxt not in done:
                stack.append((nxt, sorted(graph[nxt])))
                path.append(nxt)
                on_path.add(nxt)
    return None


def test_the_graph_sees_relative_and_type_checking_imports() -> None:
    graph = import_graph()
    assert "sipbridge.sip.message" in graph["sipbridge.sip.dialog"]  # from .message import ...
    assert "sipbridge.sip" in graph["sipbridge.metrics"]  # from sipbridge.sip import Endpoint
    client = graph["sipbridge.psrpc.client"]  # from sipbridge.psrpc import channels: the submodule only
    assert "sipbridge.psrpc.channels" in client and "sipbridge.psrpc" not in client
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_no_import_circle() -> None:
    cycle = find_cycle(import_graph())
    assert cycle is None, "import circle: " + " -> ".join(cycle or [])


LAYERS = {
    "dispatch": set(),
    "sipbridge.sip": {"sipbridge.netaddr", "sipbridge.repeated_log"},
    "sipbridge.media": {"sipbridge.netaddr"},
    "sipbridge.room": {"sipbridge.media"},
    "sipbridge.psrpc": {"sipbridge.ids", "sipbridge.sip_failures"},
    "sipbridge.store": {"dispatch", "sipbridge.config"},
    "sipbridge.inspector": {"sipbridge.sip", "sipbridge.media", "sipbridge.config"},
    "sipbridge.config": {"sipbridge.sip", "sipbridge.room"},
}
"""What each lower package may import from the project (docs/architecture.md): nothing above it. The call flows
(``sipbridge.calls``) sit on top of these; the fronts (``api``, ``cluster``) and ``service`` on top of them."""
ABOVE_CALLS = {"sipbridge.api", "sipbridge.cluster", "sipbridge.service", "sipbridge.psrpc"}


def _package(module: str) -> str:
    parts = module.split(".")
    if parts[0] == "dispatch" or len(parts) == 1:
        return parts[0]
    return ".".join(parts[:2])


def test_arrows_point_down_between_packages() -> None:
    wrong = []
    for module, imported in import_graph().items():
        package = _package(module)
        for target in imported:
            other = _package(target)
            if other == package:
                continue
            if package in LAYERS and other not in LAYERS[package]:
                wrong.append(f"{module} -> {target}")
            if package == "sipbridge.calls" and other in ABOVE_CALLS:
                wrong.append(f"{module} -> {target}")
    assert not wrong, "imports against the layering: " + ", ".join(sorted(wrong))
