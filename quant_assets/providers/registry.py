"""Provider registry: a name in config maps to a factory that builds the provider.

Adding a provider is one module plus one line here (and its name in the matching constant of
``config``: ``CANDLE_PROVIDERS``, ``SPOT_PROVIDERS``, ``DEX_PROVIDERS``; a test keeps them equal).
A :class:`ProviderSet` builds each named provider once per run, so the candle and spot sides of
one exchange share its HTTP client, rate limiter, circuit breaker and metrics.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from quant_assets.config import Settings
from quant_assets.providers.alternative import BinanceFundingProvider, FearGreedProvider
from quant_assets.providers.base import CandleProvider, DexSnapshotProvider, SpotPriceProvider
from quant_assets.providers.binance import BinanceProvider
from quant_assets.providers.binance_archive import BinanceArchiveProvider
from quant_assets.providers.coinbase import CoinbaseProvider
from quant_assets.providers.dexscreener import DexscreenerProvider
from quant_assets.providers.files import FilesProvider, local_state
from quant_assets.providers.kraken import KrakenProvider
from quant_assets.providers.resilience import ProviderState
from quant_assets.providers.simulator import SimulatorCandleProvider
from quant_assets.providers.simulator_spot import SimulatorSpotProvider


def _http(cls: type) -> Callable[[Settings], Any]:
    def build(settings: Settings) -> Any:
        ing = settings.ingestion
        return cls(ing.base_url(cls.name), ing.resilience)

    return build


def _ccxt(settings: Settings) -> CandleProvider:
    # Imported here: ccxt's import costs 0.4 s, paid only by a run that asks for it.
    from quant_assets.providers.ccxt_exchange import CcxtProvider

    ing = settings.ingestion
    return CcxtProvider(ing.ccxt_exchange, ing.resilience, base_url=ing.base_url_override("ccxt"))


def _simulator(settings: Settings) -> SimulatorCandleProvider:
    provider = SimulatorCandleProvider(seed=settings.simulator_seed)
    provider.state = local_state("simulator")  # type: ignore[attr-defined]
    return provider


CANDLE_PROVIDER_FACTORIES: dict[str, Callable[[Settings], CandleProvider]] = {
    "simulator": _simulator,
    "binance": _http(BinanceProvider),
    "coinbase": _http(CoinbaseProvider),
    "kraken": _http(KrakenProvider),
    "files": lambda settings: FilesProvider(settings.ingestion.files_dir),
    "binance_archive": lambda settings: BinanceArchiveProvider(settings.ingestion.files_dir),
    "ccxt": _ccxt,
}
SPOT_PROVIDER_FACTORIES: dict[str, Callable[[Settings], SpotPriceProvider]] = {
    "simulator": lambda settings: SimulatorSpotProvider(seed=settings.simulator_seed),
    "binance": _http(BinanceProvider),
    "coinbase": _http(CoinbaseProvider),
    "kraken": _http(KrakenProvider),
}
DEX_PROVIDER_FACTORIES: dict[str, Callable[[Settings], DexSnapshotProvider]] = {
    "dexscreener": _http(DexscreenerProvider),
}
ALTERNATIVE_FACTORIES: dict[str, Callable[[Settings], Any]] = {
    "alternative_me": _http(FearGreedProvider),
    "binance_futures": _http(BinanceFundingProvider),
}
HTTP_PROVIDERS = ("binance", "coinbase", "kraken", "dexscreener", "binance_futures", "alternative_me")


class ProviderSet:
    """The providers of one run, each built once (shared clients, limiters, breakers)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._built: dict[tuple[str, str], Any] = {}

    def _get(self, kind: str, name: str, factories: dict[str, Callable[[Settings], Any]]) -> Any:
        shared = "http" if name in HTTP_PROVIDERS else kind
        key = (shared, name)
        if key not in self._built:
            self._built[key] = factories[name](self.settings)
        return self._built[key]

    def candles(self) -> list[CandleProvider]:
        return [self._get("candles", n, CANDLE_PROVIDER_FACTORIES) for n in self.settings.candle_providers]

    def spot(self) -> list[SpotPriceProvider]:
        return [self._get("spot", n, SPOT_PROVIDER_FACTORIES) for n in self.settings.ingestion.spot_providers]

    def dex(self) -> list[DexSnapshotProvider]:
        return [self._get("dex", n, DEX_PROVIDER_FACTORIES) for n in self.settings.ingestion.dex_providers]

    def alternative(self, name: str) -> Any:
        return self._get("alternative", name, ALTERNATIVE_FACTORIES)

    def states(self) -> list[ProviderState]:
        seen: dict[str, ProviderState] = {}
        for provider in self._built.values():
            state = getattr(provider, "state", None)
            if state is not None:
                seen.setdefault(state.name, state)
        return list(seen.values())

    def close(self) -> None:
        for provider in self._built.values():
            close = getattr(provider, "close", None)
            if close:
                close()


def candle_chain(settings: Settings) -> list[CandleProvider]:
    """The configured candle providers, in priority order."""
    return ProviderSet(settings).candles()
