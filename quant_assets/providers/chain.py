"""Fetch through the provider chain: the first provider that delivers valid data wins.

Every provider call already went through its rate limiter, retries and circuit breaker
(``providers.resilient``); here a provider that raises, is open, answers nothing for the window, or
answers only rows the quality gate rejects is skipped and the next one is asked.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

import polars as pl

from quant_assets.providers.base import CandleProvider, ProviderError
from quant_assets.providers.resilience import one_line
from quant_assets.providers.resilient import ResilientProvider
from quant_assets.quant.candle_quality import GateResult, gate_candles


class NoProviderDelivered(ProviderError):
    """Every provider of the chain failed; ``failures`` holds (provider, one-line error) each."""

    def __init__(self, message: str, failures: Sequence[tuple[str, str]] = ()) -> None:
        super().__init__(message)
        self.failures = tuple(failures)


@dataclass(frozen=True)
class ChainResult:
    candles: pl.DataFrame
    provider: str
    failures: tuple[tuple[str, str], ...]  # (provider, one-line error) for those skipped
    rejected: dict[str, int] = field(default_factory=dict)  # gate rejections of the chosen answer


def _record_local(provider: object, ok: bool, began: float, error: str | None = None) -> None:
    """Local providers (simulator, files) have no network layer: the chain keeps their metrics."""
    state = getattr(provider, "state", None)
    if state is None or isinstance(provider, ResilientProvider):
        return
    state.metrics.record(ok, time.perf_counter() - began, error)
    state.last_call_failed = not ok


def fetch_candles(
    chain: Sequence[CandleProvider], symbol: str, interval: str, start: datetime, end: datetime,
    interval_minutes: int | None = None,
) -> ChainResult:
    """Ask each provider in order; return the first answer with at least one valid candle.

    With ``interval_minutes`` the answer is passed through the quality gate here, so a provider
    that delivers only garbage is skipped like one that failed; the returned candles are then
    the gate's valid rows and ``rejected`` counts the rest by reason.
    Raises :class:`NoProviderDelivered` naming every provider's failure when none delivers.
    """
    failures: list[tuple[str, str]] = []
    for provider in chain:
        began = time.perf_counter()
        try:
            candles = provider.fetch_candles(symbol, interval, start, end)
        except Exception as exc:  # any provider fault moves the chain on
            failures.append((provider.name, one_line(exc)))
            _record_local(provider, False, began, one_line(exc))
            continue
        if candles.is_empty():
            failures.append((provider.name, "no candles in the window"))
            _record_local(provider, True, began)
            continue
        rejected: dict[str, int] = {}
        if interval_minutes is not None:
            gate: GateResult = gate_candles(candles, interval_minutes, start, end)
            rejected = {k: v for k, v in gate.reject_counts().items() if v}
            if gate.valid.is_empty():
                failures.append((provider.name, f"every candle failed the quality gate: {rejected}"))
                _record_local(provider, False, began, "every candle failed the quality gate")
                continue
            candles = gate.valid
        _record_local(provider, True, began)
        return ChainResult(candles=candles, provider=provider.name, failures=tuple(failures), rejected=rejected)
    detail = "; ".join(f"{name}: {err}" for name, err in failures)
    raise NoProviderDelivered(f"no provider delivered {symbol} {interval} [{start}, {end}): {detail}", failures)


@dataclass(frozen=True)
class SnapshotResult:
    rows: pl.DataFrame                     # the delivered rows plus a ``provider`` column
    failures: tuple[tuple[str, str], ...]
    rejected: int                          # rows dropped for a non-positive or non-finite price
    missing: tuple[str, ...]               # keys no provider delivered


def fetch_snapshots(chain: Sequence[object], keys: Sequence[str], method: str, key: pl.Expr,
                    required: Sequence[str], optional: Sequence[str] = ()) -> SnapshotResult:
    """Spot quotes or DEX snapshots: each key from the first provider with a valid row for it.

    A row is valid when every ``required`` price is finite and > 0 and every ``optional`` one
    is null or finite and > 0; others are counted in ``rejected`` and never returned.
    """
    wanted = list(keys)
    got: list[pl.DataFrame] = []
    failures: list[tuple[str, str]] = []
    rejected = 0
    ok = pl.all_horizontal(
        [pl.col(c).is_not_null() & pl.col(c).is_finite() & (pl.col(c) > 0) for c in required]
        + [pl.col(c).is_null() | (pl.col(c).is_finite() & (pl.col(c) > 0)) for c in optional]
    ).fill_null(False)
    for provider in chain:
        if not wanted:
            break
        began = time.perf_counter()
        try:
            frame: pl.DataFrame = getattr(provider, method)(wanted)
        except Exception as exc:
            failures.append((provider.name, one_line(exc)))
            _record_local(provider, False, began, one_line(exc))
            continue
        _record_local(provider, True, began)
        frame = frame.with_columns(key.alias("_key"))
        good = frame.filter(ok)
        rejected += frame.height - good.height
        valid = good.filter(pl.col("_key").is_in(wanted)).unique("_key", keep="first", maintain_order=True)
        if valid.height:
            got.append(valid.drop("_key").with_columns(provider=pl.lit(provider.name)))
            delivered = set(valid["_key"].to_list())
            wanted = [k for k in wanted if k not in delivered]
        if wanted:
            failures.append((provider.name, f"no valid row for {', '.join(wanted[:5])}"))
    rows = pl.concat(got) if got else pl.DataFrame()
    return SnapshotResult(rows=rows, failures=tuple(failures), rejected=rejected, missing=tuple(wanted))
