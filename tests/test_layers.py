"""Dependencies point one way: a module imports only from its own layer or the ones below.

    0  monitor.models, monitor.config, monitor.ops.logs, monitor.ops.metrics
    1  monitor.ingest, monitor.story            (fetch → parse → … → relevance; the engine)
    2  monitor.store                            (the only SQL)
    3  alerts                                   (everything that speaks to people)
    4  monitor.run, monitor.ops.server, monitor.ops.status   (the wiring)
    5  monitor.cli, monitor.eval                (commands; evaluation drives the wiring)

Every import counts, at the top of a module or inside a function: a late import that dodges
a cycle is still an upward dependency. `check_layers` reports each offence as
"module (layer) imports module (layer)".
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LAYERS: tuple[tuple[str, int], ...] = (
    # most specific prefix first
    ("monitor.ops.logs", 0),
    ("monitor.ops.metrics", 0),
    ("monitor.ops", 4),
    ("monitor.models", 0),
    ("monitor.clock", 0),
    ("monitor.config", 0),
    ("monitor.ingest", 1),
    ("monitor.story", 1),
    ("monitor.store", 2),
    ("alerts", 3),
    ("monitor.run", 4),
    ("monitor.cli", 5),
    ("monitor.eval", 5),
)


def layer(module: str) -> int | None:
    for prefix, number in LAYERS:
        if module == prefix or module.startswith(prefix + "."):
            return number
    return None


def module_name(path: Path, root: Path = ROOT) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def is_module(name: str, root: Path) -> bool:
    path = root.joinpath(*name.split("."))
    return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()


def imports(path: Path, root: Path = ROOT) -> set[str]:
    """The modules a file imports: `from monitor.ops import metrics` is monitor.ops.metrics."""
    tree = ast.parse(path.read_text("utf-8"))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            submodules = {f"{node.module}.{a.name}" for a in node.names if is_module(f"{node.module}.{a.name}", root)}
            found.update(submodules or {node.module})
    return found


def check_layers(root: Path = ROOT) -> list[str]:
    offences = []
    for path in sorted([*root.glob("monitor/**/*.py"), *root.glob("alerts/**/*.py")]):
        if "migrations" in path.parts:
            continue
        me = module_name(path, root)
        mine = layer(me)
        if mine is None:
            continue
        for target in sorted(imports(path, root)):
            theirs = layer(target)
            if theirs is not None and theirs > mine:
                offences.append(f"{me} ({mine}) imports {target} ({theirs})")
    return offences


def test_dependencies_point_one_way() -> None:
    assert check_layers() == []


def test_an_upward_import_is_caught(tmp_path: Path) -> None:
    """The check fails when someone adds an upward import (here: the story engine reaching
    for the store)."""
    for folder in ("monitor/story", "monitor/store", "monitor/run", "alerts"):
        (tmp_path / folder).mkdir(parents=True)
    (tmp_path / "monitor/run/pipeline.py").write_text("")
    (tmp_path / "monitor/story/cluster.py").write_text("def f():\n    from monitor.store import articles\n")
    (tmp_path / "monitor/store/articles.py").write_text("from monitor.story import cluster\n")
    (tmp_path / "alerts/render.py").write_text("from monitor.run import pipeline\n")
    assert check_layers(tmp_path) == [
        "alerts.render (3) imports monitor.run.pipeline (4)",
        "monitor.story.cluster (1) imports monitor.store.articles (2)",
    ]


def sql_outside_the_store(root: Path = ROOT) -> list[str]:
    """Modules outside monitor/store that use SQLAlchemy for more than a connection's type and
    its exceptions (which pass through every layer as values)."""
    allowed = {"sqlalchemy.exc", "sqlalchemy.Connection"}
    offences = []
    for path in sorted([*root.glob("monitor/**/*.py"), *root.glob("alerts/**/*.py")]):
        if "store" in path.relative_to(root).parts[:2]:
            continue
        tree = ast.parse(path.read_text("utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "sqlalchemy":
                names = {node.module} if node.module != "sqlalchemy" else {f"sqlalchemy.{a.name}" for a in node.names}
                offences += [f"{module_name(path, root)} uses {n}" for n in sorted(names - allowed)]
            elif isinstance(node, ast.Import):
                offences += [f"{module_name(path, root)} uses {a.name}" for a in node.names if a.name.split(".")[0] == "sqlalchemy"]
    return offences


def test_only_the_store_speaks_sql() -> None:
    assert sql_outside_the_store() == []
