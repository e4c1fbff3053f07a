"""Provider registry: a name in config maps to a factory that builds the provider.

Adding a provider is one module plus one line here (and its name in ``config.CANDLE_PROVIDERS``).
"""

from __future__ import annotations

from collections.abc import Callable

from quant_assets.config import Settings
from quant_assets.providers.base import CandleProvider
from quant_assets.providers.simulator import SimulatorCandleProvider

CANDLE_PROVIDER_FACTORIES: dict[str, Callable[[Settings], CandleProvider]] = {
    "simulator": lambda settings: SimulatorCandleProvider(seed=settings.simulator_seed),
}


def candle_chain(settings: Settings) -> list[CandleProvider]:
    """The configured candle providers, in priority order."""
    return [CANDLE_PROVIDER_FACTORIES[name](settings) for name in settings.candle_providers]
