"""The market the factors and regimes measure against."""

from quant_assets.config import Settings
from quant_assets.defs.features.assets import feature_catalogue


def market_symbol(settings: Settings) -> str | None:
    """``factors.market_symbol``, else the feature catalogue's ``market_symbol``, when it is in the
    universe; ``None`` otherwise (e.g. a BTC-quoted universe), in which case the market return is
    the equal-weighted mean return of the universe's symbols at each bar."""
    symbol = settings.factors.market_symbol or feature_catalogue(settings).market_symbol
    return symbol if symbol in settings.symbols else None
