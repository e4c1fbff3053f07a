"""The providers of a run as a Dagster resource.

``ProvidersResource`` builds each provider once per run (or sensor tick), when a step first
asks for it, so the candle and spot sides of one exchange share a client, a rate limiter, a
circuit breaker and metrics; restores its health from ``provider_health`` as it is built; and
at the run's end closes the HTTP clients and persists the health of what was used once, also
when a step failed. Assets and the
polling sensor ask it for providers instead of building them.

It carries the settings as canonical JSON config, so a run worker in another process rebuilds
exactly the providers the code location was loaded with. That JSON is scrubbed of secrets (it is
part of the job snapshot Dagster stores): a password inside a base URL from the environment
(``QUANT_BINANCE_BASE_URL=https://user:pw@mirror``) is stored as ``***`` and put back from the
same environment variable when the providers are built.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from typing import Any

import dagster as dg
from pydantic import PrivateAttr

from quant_assets.config import Settings, settings_from_json, settings_to_json
from quant_assets.providers.base import CandleProvider, DexSnapshotProvider, SpotPriceProvider
from quant_assets.providers.health import persist_health, restore_health
from quant_assets.providers.registry import ProviderSet
from quant_assets.providers.resilience import ProviderState
from quant_assets.resources.duckdb import QuantDuckDB
from quant_assets.secrets import MASK, scrub


class ProvidersResource(dg.ConfigurableResource):
    """Configured providers with health restored at start and persisted once at the end."""

    duckdb: QuantDuckDB
    settings_json: str
    _providers: ProviderSet | None = PrivateAttr(default=None)
    _restored: set[str] = PrivateAttr(default_factory=set)

    @classmethod
    def for_settings(cls, settings: Settings, duckdb: QuantDuckDB) -> ProvidersResource:
        return cls(duckdb=duckdb, settings_json=scrub(settings_to_json(settings)))

    def setup_for_execution(self, context: dg.InitResourceContext) -> None:
        self._providers = ProviderSet(with_env_base_urls(settings_from_json(self.settings_json)))
        self._restored = set()

    def teardown_after_execution(self, context: dg.InitResourceContext) -> None:
        providers, self._providers = self._providers, None
        if providers is None:
            return
        providers.close()
        with self.duckdb.connect() as conn:
            persist_health(conn, providers.states())

    @property
    def live(self) -> ProviderSet:
        if self._providers is None:
            raise RuntimeError("ProvidersResource used outside a run: Dagster sets it up per run")
        return self._providers

    def _restored_health(self, built: Any) -> Any:
        """Restore the health of providers built just now; return ``built``."""
        fresh = [s for s in self.live.states() if s.name not in self._restored]
        if fresh:
            with self.duckdb.connect() as conn:
                restore_health(conn, fresh)
            self._restored |= {s.name for s in fresh}
        return built

    def candles(self) -> list[CandleProvider]:
        return self._restored_health(self.live.candles())

    def spot(self) -> list[SpotPriceProvider]:
        return self._restored_health(self.live.spot())

    def dex(self) -> list[DexSnapshotProvider]:
        return self._restored_health(self.live.dex())

    def alternative(self, name: str) -> Any:
        return self._restored_health(self.live.alternative(name))

    def states(self) -> list[ProviderState]:
        return self.live.states()

    def health(self, names: list[str] | None = None) -> dict[str, dict[str, Any]]:
        """Each provider's health as this run sees it (what is persisted at its end), JSON-ready."""
        return {s.name: run_health(s) for s in self.live.states() if names is None or s.name in names}


def with_env_base_urls(settings: Settings, env: Mapping[str, str] | None = None) -> Settings:
    """``settings`` with each scrubbed base URL (``***`` in it) replaced by the environment's
    ``QUANT_<PROVIDER>_BASE_URL`` it was scrubbed from."""
    env = os.environ if env is None else env
    urls = []
    for name, url in settings.ingestion.base_urls:
        real = env.get(f"QUANT_{name.upper()}_BASE_URL", "").strip()
        urls.append((name, real if MASK in url and real and scrub(real) == url else url))
    if tuple(urls) == settings.ingestion.base_urls:
        return settings
    return dataclasses.replace(settings, ingestion=dataclasses.replace(settings.ingestion, base_urls=tuple(urls)))


def run_health(state: ProviderState) -> dict[str, Any]:
    """Status, breaker and this run's call counts of one provider."""
    m = state.metrics
    with m._lock:
        requests, successes, latency, last_error = m.requests, m.successes, m.latency_ms_total, m.last_error
    return {
        "status": state.health_status(),
        "breaker": state.breaker.state,
        "consecutive_failures": state.breaker.consecutive_failures,
        "requests_this_run": requests,
        "successes_this_run": successes,
        "mean_latency_ms": round(latency / requests, 2) if requests else None,
        "last_error": scrub(last_error),
    }
