"""No import cycles inside `bot/`, and reading a catalog does not load the executors' client libraries.

The graph is built from the source with `ast`: every `import` and `from … import` counts, at module level and
inside functions alike (an import moved into a function still runs, just later, and still couples the two modules).
Imports under `if TYPE_CHECKING:` are left out: they never run. An edge goes to the module imported and to every
package above it that the importer is not itself inside, because importing `bot.checks.base` first runs
`bot/checks/__init__.py`; a package's `__init__` importing its own submodules is an edge like any other, and one
that imports them by discovery (`pkgutil.iter_modules(__path__)`, as `bot/runs/steps/` finds its step kinds) has
an edge to each module beside it whose name does not start with `_`.
"""

from __future__ import annotations

import ast
import functools
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _module_names(package: Path) -> dict[str, Path]:
    names: dict[str, Path] = {}
    for path in package.rglob("*.py"):
        parts = list(path.relative_to(package.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        names[".".join(parts)] = path
    return names


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _runtime_imports(node: ast.AST) -> Iterator[ast.Import | ast.ImportFrom]:
    """Every import statement under `node` that can run: the bodies of `if TYPE_CHECKING:` are skipped (their
    `else:` runs)."""
    if isinstance(node, ast.Import | ast.ImportFrom):
        yield node
        return
    if isinstance(node, ast.If) and _is_type_checking(node.test):
        children: list[ast.AST] = list(node.orelse)
    else:
        children = list(ast.iter_child_nodes(node))
    for child in children:
        yield from _runtime_imports(child)


def _packages_above(module: str) -> list[str]:
    parts = module.split(".")
    return [".".join(parts[:end]) for end in range(1, len(parts))]


def import_graph(package: Path) -> dict[str, set[str]]:
    """Module → the modules of `package` that importing it runs (directly)."""
    modules = _module_names(package)
    graph: dict[str, set[str]] = {name: set() for name in modules}
    for name, path in modules.items():
        is_package = path.name == "__init__.py"
        inside = set(_packages_above(name))  # already being imported when `name` runs
        source = path.read_text(encoding="utf-8")
        if is_package and "pkgutil.iter_modules(__path__)" in source:
            graph[name] |= {other for other in modules if other.rpartition(".")[0] == name
                            and not other.rpartition(".")[2].startswith("_")}
        for statement in _runtime_imports(ast.parse(source, str(path))):
            targets: list[str] = []
            if isinstance(statement, ast.Import):
                targets = [alias.name for alias in statement.names]
            else:
                base = statement.module or ""
                if statement.level:
                    anchor = name.split(".") if is_package else name.split(".")[:-1]
                    anchor = anchor[: len(anchor) - (statement.level - 1)]
                    base = ".".join([*anchor, *([base] if base else [])])
                for alias in statement.names:
                    # `from pkg import sub` imports the submodule; `from pkg import name` needs pkg's own code.
                    submodule = f"{base}.{alias.name}"
                    targets.append(submodule if submodule in modules else base)
            for target in targets:
                while target and target not in modules:  # `import a.b.c` where c is a name, or a module elsewhere
                    target = target.rpartition(".")[0]
                if not target:
                    continue
                # The packages above it run first, unless the importer is inside them (they are already running).
                for reached in [*(above for above in _packages_above(target) if above not in inside), target]:
                    if reached != name:
                        graph[name].add(reached)
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected groups of more than one module (Tarjan's algorithm, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for start in sorted(graph):
        if start in index:
            continue
        work: list[tuple[str, Iterator[str]]] = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, successors = work[-1]
            advanced = False
            for successor in successors:
                if successor not in index:
                    index[successor] = low[successor] = len(index)
                    stack.append(successor)
                    on_stack.add(successor)
                    work.append((successor, iter(sorted(graph[successor]))))
                    advanced = True
                    break
                if successor in on_stack:
                    low[node] = min(low[node], index[successor])
            if advanced:
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                group: list[str] = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    group.append(member)
                    if member == node:
                        break
                if len(group) > 1:
                    found.append(sorted(group))
    return sorted(found)


def _path(graph: dict[str, set[str]], group: list[str]) -> list[str]:
    """One concrete loop through a group, for the failure message: first → … → first."""
    members, first = set(group), group[0]
    previous: dict[str, str] = {}
    frontier = [first]
    while frontier:
        following: list[str] = []
        for node in frontier:
            for successor in sorted(graph[node] & members):
                if successor == first:
                    loop = [first]
                    while node != first:
                        loop.append(node)
                        node = previous[node]
                    return [first, *reversed(loop[1:]), first]
                if successor not in previous:
                    previous[successor] = node
                    following.append(successor)
        frontier = following
    return group


def _reaches(graph: dict[str, set[str]], start: str) -> set[str]:
    seen, todo = {start}, [start]
    while todo:
        for successor in graph[todo.pop()]:
            if successor not in seen:
                seen.add(successor)
                todo.append(successor)
    return seen


@functools.cache
def _bot_graph() -> dict[str, set[str]]:
    return import_graph(ROOT / "bot")


def test_bot_has_no_import_cycles() -> None:
    graph = _bot_graph()
    found = cycles(graph)
    assert not found, "import cycles in bot/ (restructure; an import inside a function still counts):\n" + "\n".join(
        f"{', '.join(group)} (one loop: {' → '.join(_path(graph, group))})" for group in found)


def test_the_graph_of_bot_is_the_real_one() -> None:
    """A builder that missed imports would find no cycles: the graph must see what `bot.app` needs."""
    graph = _bot_graph()
    assert len(graph) > 100
    assert "bot.catalog" in _reaches(graph, "bot.app")
    assert "bot.store.sqlite" in graph["bot.store"]  # a function-level import in a package's __init__


def test_the_builder_sees_every_kind_of_import(tmp_path: Path) -> None:
    files = {
        "pkg/__init__.py": "",
        "pkg/a.py": "from . import b\nfrom .sub import c\n",
        "pkg/b.py": "def f():\n    import pkg.sub.d\n",
        "pkg/sub/__init__.py": "from pkg.sub.c import NAME\n",
        "pkg/sub/c.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from pkg import a\nNAME = 1\n",
        "pkg/sub/d.py": "from ..b import f\nfrom pkg.sub import NAME\n",
    }
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    assert import_graph(tmp_path / "pkg") == {
        "pkg": set(),
        "pkg.a": {"pkg.b", "pkg.sub", "pkg.sub.c"},  # relative; `from .sub import c` runs pkg/sub/__init__ first
        "pkg.b": {"pkg.sub", "pkg.sub.d"},  # inside a function
        "pkg.sub": {"pkg.sub.c"},
        "pkg.sub.c": set(),  # TYPE_CHECKING only
        "pkg.sub.d": {"pkg.b", "pkg.sub"},  # two levels up; a name from its own package's __init__
    }
    assert cycles(import_graph(tmp_path / "pkg")) == [["pkg.b", "pkg.sub.d"]]


def test_the_finder_finds_a_cycle_and_leaves_type_checking_out() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}, "e": {"e"}}
    assert cycles(graph) == [["a", "b", "c"]]
    assert _path(graph, ["a", "b", "c"]) == ["a", "b", "c", "a"]
    tree = ast.parse("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import x\nelse:\n    import y\n"
                     "def f():\n    import z\n")
    assert sorted(ast.unparse(node) for node in _runtime_imports(tree)) == [
        "from typing import TYPE_CHECKING", "import y", "import z"]


# The adapters and their client libraries: loaded only for a catalog that names such a target (`bot.adapters`).
HEAVY = ["bot.executors.postgres_backup", "bot.executors.mysql_backup", "bot.executors.redis_backup",
         "bot.executors.directory_backup", "bot.executors.docker", "bot.executors.kubernetes",
         "docker", "kubernetes", "redis", "pymysql"]


def test_importing_the_catalog_store_and_views_loads_no_executor_or_client_library() -> None:
    loaded = f"print(','.join(sorted(name for name in {HEAVY!r} if name in sys.modules)))\n"
    probe = ("import importlib, pkgutil, sys\nimport bot.catalog, bot.catalog_loading, bot.store, bot.views\n"
             "for view in pkgutil.iter_modules(bot.views.__path__, 'bot.views.'):\n"
             "    importlib.import_module(view.name)\n"
             f"{loaded}import bot.executors.docker\n{loaded}")  # the second line proves the probe sees a load
    result = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    before, after = result.stdout.splitlines()
    assert before == "", f"importing the catalog, the store and the views loaded {before}"
    assert {"bot.executors.docker", "docker"} <= set(after.split(","))
