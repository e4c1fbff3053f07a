"""Equity and drawdown by day, from daily log returns."""

import math
from datetime import date

import polars as pl
import pytest

from quant_assets.quant.equity import equity_curve


def test_equity_is_the_compounded_curve_with_its_daily_drawdown():
    daily = pl.DataFrame({"day": [date(2024, 3, 2), date(2024, 3, 1), date(2024, 3, 3)],
                          "log_return": [-0.20, 0.10, 0.05]})
    curve = equity_curve(daily)
    assert curve["day"].to_list() == [date(2024, 3, 1), date(2024, 3, 2), date(2024, 3, 3)]
    assert curve["equity"].to_list() == pytest.approx([math.exp(0.10), math.exp(-0.10), math.exp(-0.05)])
    assert curve["daily_return"].to_list() == pytest.approx([math.exp(0.10) - 1, math.exp(-0.20) - 1, math.exp(0.05) - 1])
    assert curve["drawdown"].to_list() == pytest.approx([0.0, 1 - math.exp(-0.20), 1 - math.exp(-0.15)])


def test_a_first_loss_is_a_drawdown_from_the_starting_capital():
    curve = equity_curve(pl.DataFrame({"day": [date(2024, 1, 1)], "log_return": [-0.1]}))
    assert curve["drawdown"][0] == pytest.approx(1 - math.exp(-0.1))
