"""Thin Dagster assets per stage; the maths lives in ``quant_assets.quant``."""
