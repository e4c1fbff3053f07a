"""Where results came from: the code's git state, package versions, manifest files on disk."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from functools import cache
from importlib import metadata as importlib_metadata
from pathlib import Path
from typing import Any

PACKAGES = ("quant-assets", "dagster", "dagster-duckdb", "duckdb", "polars", "numpy", "scipy", "numba", "scikit-learn",
            "cvxpy", "ccxt")
PROJECT_ROOT = Path(__file__).resolve().parents[2]


@cache
def git_state(root: Path = PROJECT_ROOT) -> tuple[str, bool | None]:
    """``(commit, dirty)`` of the checkout holding the code; ``("unknown", None)`` outside git."""
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, check=True, timeout=10
        ).stdout.strip()
        status = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=root, capture_output=True, text=True, check=True, timeout=10,
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return "unknown", None
    return commit, bool(status.strip())


def package_versions() -> dict[str, str]:
    versions = {"python": sys.version.split()[0]}
    for name in PACKAGES:
        try:
            versions[name] = importlib_metadata.version(name)
        except importlib_metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def write_manifest_file(directory: Path, name: str, document: dict[str, Any]) -> Path:
    """Write JSON atomically (temp file + rename), so a reader never sees half a manifest."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{name}.json"
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(document, sort_keys=True, indent=2, default=str))
    os.replace(tmp, path)
    return path
