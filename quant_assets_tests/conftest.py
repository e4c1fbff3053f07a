"""Shared fixtures: settings on a temporary DuckDB file, and helpers to materialize and hash."""

import warnings
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import dagster as dg
import duckdb
import pytest

from quant_assets.config import Settings, load_settings
from quant_assets.definitions import build_definitions

warnings.filterwarnings("ignore", category=dg.BetaWarning)
warnings.filterwarnings("ignore", category=dg.PreviewWarning)

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
TEST_SYMBOLS = "BTC/USDT,ETH/USDT,SOL/USDT"
# Rows of raw_candles (1m grid) that no quality gate should have let through: must count 0.
INVALID_CANDLES = """SELECT count(*) FROM raw_candles WHERE NOT (isfinite(open) AND isfinite(high) AND isfinite(low)
    AND isfinite(close) AND open > 0 AND high > 0 AND low > 0 AND close > 0 AND volume >= 0
    AND high >= greatest(open, close) AND low <= least(open, close) AND epoch(ts)::BIGINT % 60 = 0)"""


@pytest.fixture
def make_settings(tmp_path: Path) -> Callable[..., Settings]:
    """Settings on ``tmp_path`` with three symbols; ``env`` and ``overrides`` adjust them."""

    def _make(env: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
        base_env = {"QUANT_DATA_DIR": str(tmp_path / "data"), "QUANT_SYMBOLS": TEST_SYMBOLS,
                    "QUANT_START_DATE": "2024-01-01"}
        overrides.setdefault("backtest", {"train_days": 1, "min_train_days": 1})
        return load_settings(config_file=None, env={**base_env, **(env or {})}, overrides=overrides)

    return _make


@pytest.fixture
def settings(make_settings: Callable[..., Settings]) -> Settings:
    return make_settings()


def all_defs(defs: dg.Definitions) -> list[Any]:
    return [*defs.assets, *defs.asset_checks]  # type: ignore[misc]


def materialize(
    defs: dg.Definitions,
    partition_key: str | None = None,
    start: str | None = None,
    end: str | None = None,
    selection: Any = None,
    raise_on_error: bool = True,
) -> dg.ExecuteInProcessResult:
    """Materialize every asset (or ``selection``) for one partition or an inclusive range."""
    tags = {}
    if start and end:
        tags = {"dagster/asset_partition_range_start": start, "dagster/asset_partition_range_end": end}
    return dg.materialize(
        all_defs(defs),
        partition_key=partition_key,
        tags=tags,
        resources=defs.resources,
        selection=selection,
        raise_on_error=raise_on_error,
    )


def table_digest(conn: duckdb.DuckDBPyConnection, table: str) -> tuple[int, str]:
    """Row count and SHA-256 over every row of ``table`` (rows sorted by their text form)."""
    n, digest = conn.execute(
        f'SELECT count(*), sha256(coalesce(string_agg(CAST(t AS VARCHAR), chr(10) ORDER BY CAST(t AS VARCHAR)), \'\')) FROM "{table}" AS t'
    ).fetchone()
    return int(n), str(digest)


@pytest.fixture
def defs_for() -> Callable[[Settings], dg.Definitions]:
    return build_definitions
