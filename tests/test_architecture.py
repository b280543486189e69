"""The house: imports run one way, rooms stay small, the engine stays off the database.

Read from the source (every import statement, also those inside functions and under
TYPE_CHECKING), so a circle is caught even where it would not fail at run time yet.
See docs/architecture.md for the plan these tests keep.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("api", "offers", "segmentation")
MAX_LINES = 400


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _sources() -> dict[str, Path]:
    return {
        _module_name(p): p
        for package in PACKAGES
        for p in sorted((ROOT / package).rglob("*.py"))
        if "migrations" not in p.parts  # Alembic's scripts: run by Alembic, imported by nobody
    }


def _imported(path: Path, modules: dict[str, Path]) -> Iterator[str]:
    """The project's modules a file imports, each with the packages Python initializes on
    the way (their `__init__` runs first), but not the file's own packages."""
    this = _module_name(path)
    own = {this.rsplit(".", n)[0] for n in range(1, this.count(".") + 1)}
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
        for name in names:
            parts = name.split(".")
            for n in range(1, len(parts) + 1):
                target = ".".join(parts[:n])
                if target in modules and target not in own and target != this:
                    yield target


def _graph(key: Callable[[str], str] = lambda m: m) -> dict[str, set[str]]:
    modules = _sources()
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        node = key(name)
        graph.setdefault(node, set())
        graph[node] |= {key(t) for t in _imported(path, modules) if key(t) != node}
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one node (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
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
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def _room(module: str) -> str:
    """`offers.catalog.tables` -> `offers.catalog`; top-level modules are rooms of their own."""
    parts = module.split(".")
    if len(parts) >= 2 and (ROOT / parts[0] / parts[1]).is_dir():
        return ".".join(parts[:2])
    return module


def test_no_module_imports_itself_through_others() -> None:
    assert _cycles(_graph()) == []


def test_rooms_import_one_way() -> None:
    """Room by room (offers.catalog, api.http, ...): a room's package __init__ imports its
    modules, so a circle between rooms would be one at run time."""
    assert _cycles(_graph(_room)) == []


def test_packages_import_one_way() -> None:
    """api -> offers -> segmentation, never back."""
    graph = _graph(lambda m: m.split(".")[0])
    assert graph["segmentation"] == set()
    assert graph["offers"] <= {"segmentation"}


def test_the_cycle_finder_finds_cycles() -> None:
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []


@pytest.mark.parametrize("module", sorted(_sources()))
def test_modules_stay_small(module: str) -> None:
    lines = len(_sources()[module].read_text(encoding="utf-8").splitlines())
    assert lines <= MAX_LINES, f"{module} has {lines} lines (at most {MAX_LINES}): split it"


def test_the_engine_touches_no_database() -> None:
    """Importing the decision stages pulls in neither SQLAlchemy nor the ledger: the engine
    is handed what it needs (history, counts, posteriors) as frames."""
    code = (
        "import sys, offers.decide\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('sqlalchemy', 'psycopg')"
        " or m.startswith(('offers.ledger', 'offers.learning', 'api')))\n"
        "print(','.join(bad))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True
    )
    assert result.stdout.strip() == ""


ROOMS = sorted(
    f"{package}.{init.parent.name}"
    for package in PACKAGES
    for init in (ROOT / package).glob("*/__init__.py")
)


@pytest.mark.parametrize("room", ROOMS)
def test_each_room_says_what_lives_there(room: str) -> None:
    init = ROOT / Path(*room.split(".")) / "__init__.py"
    assert ast.get_docstring(ast.parse(init.read_text(encoding="utf-8"))), room


@pytest.mark.parametrize("room", [r for r in ROOMS if r.startswith("offers.")])
def test_each_domain_room_names_its_surface(room: str) -> None:
    """`__all__` lists what other rooms may use, and every name listed is there."""
    code = f"import {room} as r\nprint(all(hasattr(r, n) for n in r.__all__), len(r.__all__))"
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True
    )
    complete, count = result.stdout.split()
    assert complete == "True" and int(count) > 0


def test_the_rooms_are_the_planned_ones() -> None:
    """A new folder is a decision: docs/architecture.md says where things go."""
    assert ROOMS == [
        "api.admin",
        "api.cli",
        "api.http",
        "offers.catalog",
        "offers.decide",
        "offers.incidents",
        "offers.learning",
        "offers.ledger",
        "offers.messages",
    ]


def test_inside_a_room_modules_import_each_other_by_module_path() -> None:
    """`from offers.ledger import x` inside offers/ledger/ would run the room's __init__ (which
    imports every module of the room) half-way through loading it: a circle in waiting."""
    offenders = []
    for name, path in _sources().items():
        room = _room(name)
        if room == name or path.name == "__init__.py":
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module == room:
                offenders.append(f"{name}:{node.lineno}")
    assert offenders == []
