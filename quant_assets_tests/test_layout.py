"""The shape of the code and of the graph: stage packages, no import circles, a pure core, and a
snapshot of the asset graph so that a change to it is seen in review."""

import ast
import json
import os
from pathlib import Path

import dagster as dg

from quant_assets.definitions import STAGE_PACKAGES
from quant_assets.partitions import SINCE_ORIGIN_DAYS

PACKAGE = Path(__file__).resolve().parents[1] / "quant_assets"
SNAPSHOT = Path(__file__).resolve().parent / "snapshots" / "graph.json"
STAGE_DIRS = ("ingestion", "bars", "features", "signals", "factors", "research", "backtests", "governance", "platform")


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_graph() -> dict[str, set[str]]:
    """Module -> the project modules it imports (anywhere in the file, lazy imports included)."""
    modules = {_module_name(p): p for p in PACKAGE.rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        edges: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                targets = [f"{node.module}.{a.name}" for a in node.names] + [node.module]
            else:
                continue
            edges |= {t for t in targets if t in modules and t != name}
        graph[name] = edges
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    trail: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        trail.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return [*trail[trail.index(nxt):], nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        trail.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def test_one_package_per_stage_each_exposing_defs():
    for stage in STAGE_DIRS:
        assert (PACKAGE / "defs" / stage / "__init__.py").is_file(), stage
    assert not [p.name for p in (PACKAGE / "defs").glob("*.py") if p.name != "__init__.py"], "stage code lives in packages"
    assert {p.__name__.rsplit(".", 1)[-1] for p in STAGE_PACKAGES} == set(STAGE_DIRS)
    for package in STAGE_PACKAGES:
        assert callable(package.defs), package.__name__


def test_no_import_circle():
    graph = import_graph()
    assert graph["quant_assets.definitions"], "the walker found the definitions' imports"
    assert find_cycle(graph) is None, " -> ".join(find_cycle(graph) or [])


def test_the_cycle_finder_finds_a_cycle():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_the_core_imports_no_dagster():
    for path in (PACKAGE / "quant").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else (
                [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            assert not [n for n in names if n.split(".")[0].startswith("dagster")], path.name


def lookbacks(graph, key: dg.AssetKey) -> dict[str, str]:
    """The earlier partitions of each dependency a partition reads (a time-window mapping that
    reaches back): ``"1 days"``, or ``"since origin"`` for every partition from the first."""
    out = {}
    for parent in sorted(graph.get(key).parent_keys, key=lambda k: k.to_user_string()):
        mapping = graph.get_partition_mapping(key, parent)
        if isinstance(mapping, dg.TimeWindowPartitionMapping) and mapping.start_offset < 0:
            back = -mapping.start_offset
            out[parent.to_user_string()] = "since origin" if back >= SINCE_ORIGIN_DAYS else f"{back} days"
    return out


def graph_snapshot(defs: dg.Definitions) -> dict:
    graph = defs.resolve_asset_graph()
    assets = {}
    for key in sorted(graph.get_all_asset_keys(), key=lambda k: k.to_user_string()):
        node = graph.get(key)
        assets[key.to_user_string()] = {
            "group": node.group_name,
            "deps": sorted(k.to_user_string() for k in node.parent_keys),
            "partitioned": node.partitions_def is not None,
        }
        if lookback := lookbacks(graph, key):
            assets[key.to_user_string()]["lookback"] = lookback
    checks = {
        f"{k.asset_key.to_user_string()}:{k.name}": {"blocking": graph.get_check_spec(k).blocking}
        for k in sorted(graph.asset_check_keys, key=lambda k: (k.asset_key.to_user_string(), k.name))
    }
    return {
        "assets": assets,
        "checks": checks,
        "jobs": sorted(j.name for j in defs.jobs or []),
        "schedules": sorted(s.name for s in defs.schedules or []),
        "sensors": sorted(s.name for s in defs.sensors or []),
    }


def test_graph_matches_its_snapshot(settings, defs_for):
    """Regenerate with ``QUANT_UPDATE_SNAPSHOT=1 pytest quant_assets_tests/test_layout.py`` and
    review the diff of ``snapshots/graph.json``."""
    current = graph_snapshot(defs_for(settings))
    if os.environ.get("QUANT_UPDATE_SNAPSHOT") == "1":
        SNAPSHOT.write_text(json.dumps(current, indent=1, sort_keys=True) + "\n")
    stored = json.loads(SNAPSHOT.read_text())
    for part in ("assets", "checks"):
        added = sorted(set(current[part]) - set(stored[part]))
        removed = sorted(set(stored[part]) - set(current[part]))
        changed = sorted(k for k in set(current[part]) & set(stored[part]) if current[part][k] != stored[part][k])
        assert not (added or removed or changed), f"{part}: added {added}, removed {removed}, changed {changed}"
    assert current == stored
