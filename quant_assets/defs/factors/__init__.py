"""Stage ``factors``: cross-sectional factors across the universe, per bar."""

import dagster as dg

from quant_assets.config import Settings


def defs(settings: Settings) -> dg.Definitions:
    return dg.Definitions()
