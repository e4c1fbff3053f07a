"""Backtest benchmark: quant.backtest_engine.simulate_weights against vectorbt on the same target weights.

Run from the repository root:

    .venv/bin/python benchmarks/backtest_vs_vectorbt.py                    # 20 symbols, 8,760 1h bars
    .venv/bin/python benchmarks/backtest_vs_vectorbt.py --invested 1.0     # fully invested
    .venv/bin/python benchmarks/backtest_vs_vectorbt.py --bars 2000 --no-cold

``--symbols`` random walks with a common market factor, ``--bars`` 1h bars, random long-only target
weights summing to ``--invested`` (default 0.95: vectorbt never runs out of cash, so both sides
must agree to rounding; at 1.0 vectorbt cuts buys it cannot pay the fee for, a first-order gap
derived in ``quant_assets_tests/test_backtest_vectorbt.py``), a rebalance every bar, 10 bps fees:

* ``ours``: ``simulate_weights(returns, targets, costs=CostModel(fee_bps=10))`` (equity path included);
* ``vectorbt``: ``Portfolio.from_orders(close, size=targets, size_type="targetpercent", group_by=True,
  cash_sharing=True, call_seq="auto", fees=0.001, freq="1h")`` + ``value()`` + ``total_return()``,
  with vectorbt's size row ``t`` trading at ``close[t]`` = our targets row ``t`` (held over bar ``t``).

Each contender runs in its own fresh subprocess: peak memory is that process's own ``VmHWM``
(interpreter, libraries and inputs included). Inputs are built and libraries imported before any
clock starts. "first call" is the first ``run`` in the process (numba compiles or loads its
kernels); "warm" is the best of ``--repeat`` calls after it. Each side runs twice: once with
numba's on-disk cache as it is (warm time, memory), once with ``NUMBA_CACHE_DIR`` pointing to an
empty directory, so its first call includes the full JIT compile (``--no-cold`` skips that run).
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np
from peak_memory import peak_rss_kb

FEE = 0.001  # 10 bps
INIT_CASH = 100.0


def make_inputs(n_symbols: int, n_bars: int, invested: float, seed: int = 11) -> tuple[np.ndarray, np.ndarray]:
    """``returns`` (T, N): common market factor plus idiosyncratic t(4) noise, 1h scale; ``targets``
    (T, N): random long-only weights summing to ``invested`` on every bar, a softmax of AR(1) scores
    (``z_t = 0.98 z_{t-1} + 0.1 e_t``) so that they move every bar but persist like a real signal."""
    rng = np.random.default_rng(seed)
    market = rng.standard_t(4, (n_bars, 1)) * 0.006
    returns = (0.7 + 0.6 * rng.random(n_symbols)) * market + rng.standard_t(4, (n_bars, n_symbols)) * 0.008
    scores = np.empty((n_bars, n_symbols))
    scores[0] = rng.normal(size=n_symbols)
    for t in range(1, n_bars):
        scores[t] = 0.98 * scores[t - 1] + 0.1 * rng.normal(size=n_symbols)
    raw = np.exp(scores)
    return returns, invested * raw / raw.sum(axis=1, keepdims=True)


def prepare_ours(returns: np.ndarray, targets: np.ndarray):
    from quant_assets.quant.backtest_engine import CostModel, simulate_weights

    costs = CostModel(fee_bps=FEE * 1e4)

    def run():
        return simulate_weights(returns, targets, costs=costs)

    def summarise(path) -> dict:
        return {"total_return": float(path.equity[-1] - 1.0), "equity": path.equity}

    return run, summarise


def prepare_vectorbt(returns: np.ndarray, targets: np.ndarray):
    import pandas as pd
    import vectorbt as vbt

    n_bars, n_symbols = returns.shape
    index = pd.date_range("2024-01-01", periods=n_bars + 1, freq="1h")
    columns = [f"S{k:02d}" for k in range(n_symbols)]
    close = pd.DataFrame(np.vstack([np.full((1, n_symbols), 100.0), 100.0 * np.cumprod(1.0 + returns, axis=0)]),
                         index=index, columns=columns)
    size = pd.DataFrame(np.vstack([targets, np.full((1, n_symbols), np.nan)]), index=index, columns=columns)

    def run():
        portfolio = vbt.Portfolio.from_orders(close, size=size, size_type="targetpercent", group_by=True,
                                              cash_sharing=True, call_seq="auto", fees=FEE, freq="1h",
                                              init_cash=INIT_CASH)
        return portfolio, portfolio.value(), portfolio.total_return()

    def summarise(result) -> dict:
        portfolio, value, total = result
        # our equity after bar t = vectorbt's value at row t + 1 before that row's fees (the next bar's trade)
        orders = portfolio.orders.records
        fees = np.bincount(orders["idx"], weights=orders["fees"], minlength=n_bars + 1)
        return {"total_return": float(total), "equity": (value.to_numpy() + fees)[1:] / INIT_CASH}

    return run, summarise


def child(side: str, args: argparse.Namespace) -> None:
    returns, targets = make_inputs(args.symbols, args.bars, args.invested)
    run, summarise = (prepare_ours if side == "ours" else prepare_vectorbt)(returns, targets)  # imports not timed
    base_rss = peak_rss_kb()
    started = time.perf_counter()
    result = run()
    first = time.perf_counter() - started
    best = float("inf")
    for _ in range(args.repeat):
        started = time.perf_counter()
        result = run()
        best = min(best, time.perf_counter() - started)
    peak = peak_rss_kb()
    summary = summarise(result)
    np.save(args.equity_out, summary["equity"])
    print(json.dumps({"side": side, "first_seconds": first, "warm_seconds": best, "peak_mb": peak / 1024,
                      "inputs_mb": base_rss / 1024, "total_return": summary["total_return"]}))


def spawn(side: str, args: argparse.Namespace, cache_dir: str | None, equity_out: str) -> dict:
    command = [sys.executable, __file__, "--child", side, "--symbols", str(args.symbols), "--bars", str(args.bars),
               "--invested", str(args.invested), "--repeat", str(args.repeat), "--equity-out", equity_out]
    env = dict(os.environ)
    if cache_dir is not None:
        env["NUMBA_CACHE_DIR"] = cache_dir
    done = subprocess.run(command, capture_output=True, text=True, check=False, env=env)
    if done.returncode:
        raise SystemExit(f"{side} failed:\n{done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--symbols", type=int, default=20)
    parser.add_argument("--bars", type=int, default=8760, help="1h bars (8,760 = one 365-day year)")
    parser.add_argument("--invested", type=float, default=0.95, help="sum of the target weights")
    parser.add_argument("--repeat", type=int, default=20, help="warm time: best of this many calls")
    parser.add_argument("--no-cold", action="store_true", help="skip the runs with an empty numba cache")
    parser.add_argument("--child", choices=["ours", "vectorbt"])
    parser.add_argument("--equity-out", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args)
        return
    print(f"machine: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f}, "
          f"{os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES') / 2**30:.0f} GB RAM, "
          f"Python {sys.version.split()[0]}")
    print(f"{args.symbols} symbols x {args.bars:,} 1h bars, random long-only targets summing to {args.invested}, "
          f"rebalanced every bar, fees {FEE * 1e4:.0f} bps")
    _, targets = make_inputs(args.symbols, args.bars, args.invested)
    print(f"mean target turnover sum_j |w[t] - w[t-1]| = {np.abs(np.diff(targets, axis=0)).sum(axis=1).mean():.3f}")
    results, cold, equity = {}, {}, {}
    with tempfile.TemporaryDirectory() as scratch:
        for side in ("ours", "vectorbt"):
            equity_out = os.path.join(scratch, f"{side}.npy")
            results[side] = spawn(side, args, None, equity_out)
            equity[side] = np.load(equity_out)
            if not args.no_cold:
                cache_dir = os.path.join(scratch, f"numba-{side}")
                os.mkdir(cache_dir)
                cold[side] = spawn(side, args, cache_dir, os.path.join(scratch, f"{side}-cold.npy"))
    print(f"  {'side':<9} {'warm s':>9} {'first s':>9} {'first s, empty cache':>21} {'peak MB':>8} {'inputs MB':>10}")
    for side, r in results.items():
        cold_first = f"{cold[side]['first_seconds']:.3f}" if side in cold else "-"
        print(f"  {side:<9} {r['warm_seconds']:>9.4f} {r['first_seconds']:>9.3f} {cold_first:>21} "
              f"{r['peak_mb']:>8.0f} {r['inputs_mb']:>10.0f}")
    ratio = results["ours"]["warm_seconds"] / results["vectorbt"]["warm_seconds"]
    print(f"  warm ours / vectorbt: {ratio:.3f} (target <= 1.0); vectorbt / ours: {1 / ratio:.1f}x")
    if cold:
        print(f"  first call with an empty numba cache, ours / vectorbt: "
              f"{cold['ours']['first_seconds'] / cold['vectorbt']['first_seconds']:.3f}")
    gap = abs(results["ours"]["total_return"] - results["vectorbt"]["total_return"])
    path_gap = float(np.max(np.abs(equity["ours"] - equity["vectorbt"])))
    print(f"  total return: ours {results['ours']['total_return']:.6f}, vectorbt "
          f"{results['vectorbt']['total_return']:.6f}, |difference| {gap:.2e}; "
          f"largest |equity difference| over bars {path_gap:.2e}")


if __name__ == "__main__":
    main()
