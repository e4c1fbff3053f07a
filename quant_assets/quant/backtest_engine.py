"""Bar-by-bar portfolio simulation from target weights: drift, costs, a participation cap.

:func:`simulate_weights` trades a (T, N) panel of target weights into a (T, N) panel of simple
returns. It keeps the weights drifting with prices between trades and charges fees, the half
spread and square-root market impact on the notional actually traded; a participation cap limits
each trade to a fraction of the bar's dollar volume (known at the previous close), so a large
trade can take several bars to complete. The bar loop is compiled with numba.

Timing (bar ``t`` spans ``close[t-1] -> close[t]``): row ``t`` of every input except ``returns`` is
known at the close of bar ``t - 1`` (the caller has shifted it), and the trade it asks for happens
at the start of bar ``t`` at the price ``close[t-1]``. The trade of bar ``t`` reads ``returns[t]``
only through the "no price, no trade" rule (a NaN return); its value is used only for the bar's
own P&L and drift, so weights and trades up to bar ``t`` never depend on the returns of bars
``>= t`` (tested by changing them).

Accounting (first order, per unit of pre-trade equity ``E_{t-1}``): the trade moves the weights
from ``pre_trade`` to ``weights`` (positions worth ``weights * E_{t-1}``), costs ``cost_t *
E_{t-1}`` are paid out of cash, cash ``1 - sum(weights)`` earns nothing. This is the accounting of
vectorbt's ``Portfolio.from_orders(size_type="targetpercent", cash_sharing=True,
update_value=False)`` whenever its cash stays non-negative (see
``quant_assets_tests/test_backtest_vectorbt.py``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numba
import numpy as np
from numpy.typing import ArrayLike, NDArray

__all__ = ["CostModel", "WeightPath", "simulate_weights"]

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]
_BPS = 1e-4


@dataclass(frozen=True)
class CostModel:
    """Per-trade costs as fractions of traded notional (basis points: ``bps / 1e4``).

    Attributes:
        fee_bps: exchange fee per unit of traded notional, in bps.
        half_spread_bps: half the bid-ask spread, paid on every trade, in bps.
        impact_k: coefficient ``k`` of the square-root law ``impact = k * sigma * sqrt(Q / V)``
            (``sigma`` the per-bar return std, ``Q`` the traded notional, ``V`` the bar's dollar
            volume); Almgren, Thum, Hauptmann & Li (2005), "Direct estimation of equity market
            impact"; Toth et al. (2011), "Anomalous price impact and the critical nature of
            liquidity in financial markets". Typical values 0.5 - 1.
        participation_cap: largest traded notional per bar and symbol as a fraction of that bar's
            dollar volume, in (0, 1]; ``math.inf`` means no cap (see :meth:`clean`).
        capital: starting equity in quote currency. Impact and the cap compare money with money:
            the notional of a trade of weight ``x`` at bar ``t`` is ``|x| * E_{t-1} * capital``.
    """

    fee_bps: float = 0.0
    half_spread_bps: float = 0.0
    impact_k: float = 0.0
    participation_cap: float = 1.0
    capital: float = 1_000_000.0

    def __post_init__(self) -> None:
        for name in ("fee_bps", "half_spread_bps", "impact_k"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value >= 0):
                raise ValueError(f"CostModel.{name} must be a non-negative finite number, got {value}")
        cap = self.participation_cap
        if not (cap == math.inf or (math.isfinite(cap) and 0 < cap <= 1)):
            raise ValueError(f"CostModel.participation_cap must lie in (0, 1] or be inf, got {cap}")
        if not (math.isfinite(self.capital) and self.capital > 0):
            raise ValueError(f"CostModel.capital must be a positive finite number, got {self.capital}")

    @classmethod
    def clean(cls) -> CostModel:
        """No fees, no spread, no impact and no participation cap (a frictionless run)."""
        return cls(participation_cap=math.inf)

    @property
    def linear_rate(self) -> float:
        """Fee plus half spread per unit of traded notional, as a fraction (``bps / 1e4``)."""
        return (self.fee_bps + self.half_spread_bps) * _BPS


_DEFAULT_COSTS = CostModel()


@dataclass(frozen=True)
class WeightPath:
    """Result of :func:`simulate_weights` (``T`` bars, ``N`` assets); weights are fractions of equity.

    Attributes:
        weights: (T, N) weights held during bar ``t``, right after the trade at its start.
        pre_trade: (T, N) drifted weights just before that trade.
        traded: (T, N) ``weights - pre_trade``: signed fraction of pre-trade equity traded.
        gross: (T,) ``sum_j weights[t, j] * returns[t, j]`` (NaN returns count as 0).
        cost: (T,) costs paid at the start of bar ``t``, fraction of pre-trade equity.
        net: (T,) ``gross - cost``.
        turnover: (T,) ``sum_j |traded[t, j]|``.
        capped: (T,) number of symbols whose trade the participation cap cut (to zero included).
        equity: (T,) equity at the end of bar ``t``, starting from 1: ``cumprod(1 + net)``.
        final_weights: (N,) drifted weights at the end of the last bar (``initial_weights`` of
            the next fold).
    """

    weights: FloatArray
    pre_trade: FloatArray
    traded: FloatArray
    gross: FloatArray
    cost: FloatArray
    net: FloatArray
    turnover: FloatArray
    capped: IntArray
    equity: FloatArray
    final_weights: FloatArray


def simulate_weights(
    returns: ArrayLike,
    targets: ArrayLike,
    *,
    costs: CostModel = _DEFAULT_COSTS,
    volatility: ArrayLike | None = None,
    dollar_volume: ArrayLike | None = None,
    initial_weights: ArrayLike | None = None,
) -> WeightPath:
    """Trade into target weights bar by bar, with drift, linear costs, impact and a volume cap.

    Args:
        returns: (T, N) simple returns; ``returns[t, j]`` is asset ``j``'s return over bar ``t``
            (``close[t-1] -> close[t]``), ``>= -1``. NaN means no price: no price change (the
            weight drifts with a zero return) and no trade in that symbol at that bar.
        targets: (T, N) weights to trade into at the START of bar ``t``, already shifted by the
            caller (decided at the close of bar ``t - 1`` from data ``<= t - 1``). A row that is
            all NaN means no rebalance (weights drift); a NaN entry in another row means no trade
            in that symbol. Negative weights are shorts; ``1 - sum(weights)`` is cash.
        costs: the :class:`CostModel`.
        volatility: (T, N) per-bar standard deviation of returns as known at the close of
            ``t - 1`` (shifted by the caller), a fraction. Only the impact term reads it; None
            means no impact.
        dollar_volume: (T, N) quote-currency volume of bar ``t`` as known at the close of
            ``t - 1`` (e.g. the previous bar's, shifted by the caller). None means no cap and no
            impact. When given, a NaN or 0 volume means no trade is possible in that symbol at
            that bar if the cap is finite (the cap is 0; counted in ``capped``), and also when
            the impact term is on (its cost could not be priced).
        initial_weights: (N,) weights held before the trade of bar 0 (e.g. ``final_weights`` of
            the previous fold); default all zeros (all cash).

    Per bar ``t``, with pre-trade equity ``E_{t-1}`` (``E_{-1} = 1``) and ``w`` the drifted weights:

    * ``pre_trade[t] = w``; if row ``t`` of ``targets`` has a finite entry, each symbol with a
      finite target and a finite return wants ``x_j = targets[t, j] - w_j``;
    * notional ``Q_j = |x_j| * E_{t-1} * capital``; with ``dollar_volume`` and a finite cap, a
      trade with ``Q_j > cap * V_j`` is cut to ``cap * V_j`` (same sign; the position lands short
      of the target and later bars trade toward later targets);
    * ``cost_j = |x_j| * (fee + half_spread + impact_j)``, ``impact_j = impact_k * sigma_j *
      sqrt(Q_j / V_j)`` on the notional after the cap (0 without ``volatility`` or ``dollar_volume``;
      a NaN ``sigma_j`` with ``impact_k > 0`` skips the trade); ``cost_t = sum_j cost_j``;
    * ``gross_t = sum_j weights_j * r_j``, ``net_t = gross_t - cost_t``, ``E_t = E_{t-1} * (1 +
      net_t)``; drift ``w_j <- weights_j * (1 + r_j) / (1 + net_t)``.

    If ``1 + net_t <= 0`` the account is ruined at bar ``t``: from bar ``t + 1`` on nothing is held
    or traded (net 0, equity stays at ``E_t``) and ``final_weights`` is 0.

    Raises ``ValueError`` (one line) on inconsistent shapes, ``returns < -1`` or infinite, infinite
    targets, negative or infinite volatility / dollar volume, non-finite initial weights.
    """
    r = _as_panel(returns, "returns")
    n_bars, n_assets = r.shape
    if n_assets == 0:
        raise ValueError("returns must have at least one asset column")
    if np.any(np.isinf(r)) or np.any(r < -1.0):
        raise ValueError("returns must be >= -1 and not infinite (NaN = no price)")
    w_target = _as_panel(targets, "targets", r.shape)
    if np.any(np.isinf(w_target)):
        raise ValueError("targets must be finite or NaN (NaN = no trade)")
    sigma = _optional_panel(volatility, "volatility", r.shape)
    volume = _optional_panel(dollar_volume, "dollar_volume", r.shape)
    if initial_weights is None:
        w0 = np.zeros(n_assets)
    else:
        w0 = np.array(initial_weights, dtype=np.float64)
        if w0.shape != (n_assets,):
            raise ValueError(f"initial_weights must have shape ({n_assets},), got {w0.shape}")
        if not np.all(np.isfinite(w0)):
            raise ValueError("initial_weights must be finite")

    weights = np.empty((n_bars, n_assets))
    pre_trade = np.empty((n_bars, n_assets))
    traded = np.empty((n_bars, n_assets))
    per_bar = np.empty((5, n_bars))  # gross, cost, net, turnover, equity
    capped = np.zeros(n_bars, dtype=np.int64)
    _simulate_bars(
        r, w_target, sigma, volume, sigma.size > 0, volume.size > 0,
        costs.linear_rate, costs.impact_k, costs.participation_cap, costs.capital,
        w0, weights, pre_trade, traded, per_bar, capped,
    )
    return WeightPath(
        weights=weights, pre_trade=pre_trade, traded=traded, gross=per_bar[0], cost=per_bar[1],
        net=per_bar[2], turnover=per_bar[3], capped=capped, equity=per_bar[4], final_weights=w0,
    )


def _as_panel(values: ArrayLike, name: str, shape: tuple[int, int] | None = None) -> FloatArray:
    """``values`` as a C-contiguous float64 (T, N) array, shape-checked."""
    panel = np.ascontiguousarray(values, dtype=np.float64)
    if panel.ndim != 2:
        raise ValueError(f"{name} must be 2-D (T, N), got shape {panel.shape}")
    if shape is not None and panel.shape != shape:
        raise ValueError(f"{name} shape {panel.shape} != returns shape {shape}")
    return panel


def _optional_panel(values: ArrayLike | None, name: str, shape: tuple[int, int]) -> FloatArray:
    """A checked non-negative (T, N) panel (NaN allowed), or an empty (0, 0) one for None."""
    if values is None:
        return np.empty((0, 0))
    panel = _as_panel(values, name, shape)
    if np.any(np.isinf(panel)) or np.any(panel < 0):
        raise ValueError(f"{name} must be non-negative and finite (NaN = unknown)")
    return panel


@numba.njit(cache=True)
def _simulate_bars(
    returns: FloatArray, targets: FloatArray, sigma: FloatArray, volume: FloatArray,
    has_sigma: bool, has_volume: bool, linear_rate: float, impact_k: float, cap: float, capital: float,
    w: FloatArray, weights: FloatArray, pre_trade: FloatArray, traded: FloatArray,
    per_bar: FloatArray, capped: IntArray,
) -> None:
    """The bar loop of :func:`simulate_weights`: fills the output arrays and drifts ``w`` in place
    (it ends as the final weights). ``per_bar`` rows: gross, cost, net, turnover, equity."""
    n_bars, n_assets = returns.shape
    capped_trades = cap < math.inf and has_volume
    priced_impact = impact_k > 0.0 and has_sigma and has_volume
    needs_volume = capped_trades or priced_impact
    equity = 1.0
    ruined = False
    for t in range(n_bars):
        rebalance = False
        if not ruined:
            for j in range(n_assets):
                if not math.isnan(targets[t, j]):
                    rebalance = True
                    break
        money_per_weight = equity * capital
        cost = 0.0
        turnover = 0.0
        n_capped = 0
        for j in range(n_assets):
            pre_trade[t, j] = w[j]
            traded[t, j] = 0.0
            target = targets[t, j]
            if not rebalance or math.isnan(target) or math.isnan(returns[t, j]):
                continue
            trade = target - w[j]
            if trade == 0.0:
                continue
            impact = 0.0
            if needs_volume:
                bar_volume = volume[t, j]
                if math.isnan(bar_volume):
                    bar_volume = 0.0
                if priced_impact and (bar_volume == 0.0 or math.isnan(sigma[t, j])):
                    if capped_trades and bar_volume == 0.0:
                        n_capped += 1
                    continue
                notional = abs(trade) * money_per_weight
                if capped_trades and notional > cap * bar_volume:
                    n_capped += 1
                    if bar_volume == 0.0:
                        continue
                    notional = cap * bar_volume
                    trade = math.copysign(notional / money_per_weight, trade)
                    target = w[j] + trade
                if priced_impact:
                    impact = impact_k * sigma[t, j] * math.sqrt(notional / bar_volume)
            traded[t, j] = trade
            w[j] = target
            cost += abs(trade) * (linear_rate + impact)
            turnover += abs(trade)
        gross = 0.0
        for j in range(n_assets):
            weights[t, j] = w[j]
            if not math.isnan(returns[t, j]):
                gross += w[j] * returns[t, j]
        net = gross - cost
        growth = 1.0 + net
        equity *= growth
        if growth > 0.0:
            for j in range(n_assets):
                if not math.isnan(returns[t, j]):
                    w[j] = w[j] * (1.0 + returns[t, j]) / growth
                else:
                    w[j] = w[j] / growth
        else:
            ruined = True
            for j in range(n_assets):
                w[j] = 0.0
        per_bar[0, t] = gross
        per_bar[1, t] = cost
        per_bar[2, t] = net
        per_bar[3, t] = turnover
        per_bar[4, t] = equity
        capped[t] = n_capped
