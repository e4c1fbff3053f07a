"""One package per stage, each exposing ``defs(settings) -> dg.Definitions``; thin assets and
checks only: the maths lives in ``quant_assets.quant``, shared Dagster code in ``quant_assets.lib``."""
