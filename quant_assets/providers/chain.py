"""Fetch through the provider chain: the first provider that delivers wins."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import polars as pl

from quant_assets.providers.base import CandleProvider, ProviderError


@dataclass(frozen=True)
class ChainResult:
    candles: pl.DataFrame
    provider: str
    failures: tuple[tuple[str, str], ...]  # (provider, one-line error) for those skipped


def fetch_candles(
    chain: Sequence[CandleProvider], symbol: str, interval: str, start: datetime, end: datetime
) -> ChainResult:
    """Ask each provider in order; return the first non-empty answer.

    Raises :class:`ProviderError` naming every provider's failure when none delivers.
    """
    failures: list[tuple[str, str]] = []
    for provider in chain:
        try:
            candles = provider.fetch_candles(symbol, interval, start, end)
        except Exception as exc:  # any provider fault moves the chain on
            failures.append((provider.name, f"{type(exc).__name__}: {exc}".splitlines()[0]))
            continue
        if candles.is_empty():
            failures.append((provider.name, "no candles in the window"))
            continue
        return ChainResult(candles=candles, provider=provider.name, failures=tuple(failures))
    detail = "; ".join(f"{name}: {err}" for name, err in failures)
    raise ProviderError(f"no provider delivered {symbol} {interval} [{start}, {end}): {detail}")
