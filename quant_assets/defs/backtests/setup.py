"""What the backtest stage builds from settings: the fold calendar, the strategy grid, the costs,
the lookbacks, and the panel of bars, signals and factors a fold reads."""

from __future__ import annotations

import hashlib
import json
from datetime import datetime
from typing import Any

import duckdb
import numpy as np
import polars as pl

from quant_assets.config import INTERVAL_MINUTES, Settings, bars_per_year
from quant_assets.defs.research.factor_model import regression_factors
from quant_assets.defs.signals.assets import signal_catalogue
from quant_assets.lib.lookback import Lookback
from quant_assets.lib.market import market_symbol
from quant_assets.partitions import days_spanning
from quant_assets.quant.backtest_engine import CostModel
from quant_assets.quant.folds import FoldCalendar
from quant_assets.quant.panel import bar_grid, to_wide
from quant_assets.quant.strategies import Panel, PortfolioGrid, StrategySpec, strategy_grid
from quant_assets.quant.walk_forward import FoldSetup
from quant_assets.resources.tables import ident, query_frame, table_exists


def fold_calendar(settings: Settings) -> FoldCalendar:
    bt = settings.backtest
    return FoldCalendar(settings.start_date, bt.train_days, bt.min_train_days, bt.test_days, bt.step_days, bt.training)


def portfolio_factors(settings: Settings) -> list[str]:
    """``portfolio.factors``, or the factor model's default set."""
    return list(settings.portfolio.factors) or regression_factors(settings)


def portfolio_grid(settings: Settings) -> PortfolioGrid:
    p = settings.portfolio
    return PortfolioGrid(
        tuple(portfolio_factors(settings)), p.objectives, p.risk_aversions, p.modes, p.cov_window,
        p.rebalance_bars, p.cap, p.gross, p.beta_neutral, p.turnover_penalty, p.turnover_cap,
    )


def strategy_specs(settings: Settings) -> list[StrategySpec]:
    """Every configuration the walk-forward tries: the catalogue's signals and the portfolio grid."""
    return strategy_grid(signal_catalogue(settings).names, portfolio_grid(settings))


def cost_models(settings: Settings) -> dict[str, CostModel]:
    bt = settings.backtest
    realistic = CostModel(fee_bps=bt.fee_bps, half_spread_bps=bt.half_spread_bps, impact_k=bt.impact_k,
                          participation_cap=bt.participation_cap, capital=bt.capital)
    return {"clean": CostModel.clean(), "realistic": realistic}


def fold_setup(settings: Settings) -> FoldSetup:
    market = market_symbol(settings)
    return FoldSetup(
        costs=cost_models(settings), bars_per_year=bars_per_year(settings.features.interval),
        min_train_days=settings.backtest.min_train_days, sizing=settings.backtest.sizing,
        kelly_fraction=settings.portfolio.kelly_fraction, max_leverage=settings.portfolio.max_leverage,
        market_index=settings.symbols.index(market) if market else None,
    )


def history_days(settings: Settings) -> int:
    """Days before a fold's training window the covariance reads (``cov_window`` bars and the
    entry bar)."""
    return days_spanning(settings.portfolio.cov_window + 1, settings.features.interval)


def backtest_lookbacks(settings: Settings) -> list[Lookback]:
    """A tested day reads its fold's training window, the covariance history before it and its
    fold's earlier test days: bars, signals and factors, each complete itself."""
    days = fold_calendar(settings).lookback_days()
    span = None if days is None else days + history_days(settings)
    interval = settings.features.interval
    return [Lookback(f"bars_{interval}", span), Lookback("signals", span, complete=True),
            Lookback("factors", span, complete=True)]


def universe_hash(settings: Settings) -> str:
    """Identity of the universe and bar interval the trials are counted on."""
    text = json.dumps({"symbols": sorted(settings.symbols), "interval": settings.features.interval})
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def load_panel(conn: duckdb.DuckDBPyConnection, settings: Settings, start: datetime, end: datetime) -> Panel:
    """Bars ``[start, end)`` on the grid of ``features.interval``: returns, volatility, dollar
    volume, every catalogue signal and every portfolio factor (NaN where absent)."""
    interval = settings.features.interval
    minutes = INTERVAL_MINUTES[interval]
    symbols = list(settings.symbols)
    grid = pl.DataFrame({"ts": bar_grid(start, end, minutes)})
    bars = query_frame(conn,
        f"SELECT symbol, ts, exp(log_return) - 1 AS ret, roll_vol, coalesce(quote_volume, close * volume) AS quote_volume FROM {ident('bars_' + interval)} "
        "WHERE ts >= ? AND ts < ? AND list_contains(?, symbol)", [start, end, symbols])
    signals: dict[str, np.ndarray] = {}
    names = signal_catalogue(settings).names
    if table_exists(conn, "signals"):
        rows = query_frame(conn,
            "SELECT signal_name, symbol, ts, value FROM signals WHERE ts >= ? AND ts < ? AND list_contains(?, symbol)",
            [start, end, symbols])
        signals = {n: to_wide(grid, rows.filter(pl.col("signal_name") == n), "value", symbols) for n in names}
    factor_names = portfolio_factors(settings)
    factors: dict[str, np.ndarray] = {}
    if table_exists(conn, "factors"):
        rows = query_frame(conn,
            "SELECT factor_name, symbol, ts, value FROM factors WHERE ts >= ? AND ts < ? "
            "AND list_contains(?, symbol) AND list_contains(?, factor_name)", [start, end, symbols, factor_names])
        factors = {f: to_wide(grid, rows.filter(pl.col("factor_name") == f), "value", symbols) for f in factor_names}
    empty = np.full((grid.height, len(symbols)), np.nan)
    return Panel(
        ts=grid["ts"].to_numpy(), symbols=tuple(symbols), interval_minutes=minutes,
        returns=to_wide(grid, bars, "ret", symbols), volatility=to_wide(grid, bars, "roll_vol", symbols),
        dollar_volume=to_wide(grid, bars, "quote_volume", symbols),
        signals={n: signals.get(n, empty) for n in names}, factors={f: factors.get(f, empty) for f in factor_names},
    )


def params(settings: Settings) -> dict[str, Any]:
    """What shapes the backtest's rows (hashed into partition_hashes.params_hash)."""
    return {
        "backtest": settings.backtest.__dict__, "portfolio": settings.portfolio.__dict__,
        "interval": settings.features.interval, "signals": signal_catalogue(settings).fingerprint(),
        "strategies": [s.config_json() for s in strategy_specs(settings)],
    }
