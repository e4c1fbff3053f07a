"""Stage-independent operation: schedules, declarative refresh and alert sensors."""

import dagster as dg

from quant_assets.config import Settings
from quant_assets.defs.platform.alerts import build_alert_sensors
from quant_assets.defs.platform.automation import build_automation


def defs(settings: Settings) -> dg.Definitions:
    automation = build_automation(settings)
    return dg.Definitions(
        jobs=automation.jobs,
        schedules=automation.schedules,
        sensors=[*automation.sensors, *build_alert_sensors(settings)],
    )
