"""Stage-independent operation: schedules, declarative refresh, alert sensors, and the
``open_alerts`` asset that shows the alerts and the providers' health in the UI."""

import dagster as dg

from quant_assets.config import Settings
from quant_assets.defs.platform.alerts import build_alert_sensors
from quant_assets.defs.platform.automation import build_automation
from quant_assets.defs.platform.open_alerts import (
    build_open_alerts,
    build_open_alerts_sensor,
    open_alerts_checks,
)


def defs(settings: Settings) -> dg.Definitions:
    automation = build_automation(settings)
    return dg.Definitions(
        assets=[build_open_alerts(settings)],
        asset_checks=open_alerts_checks(settings),
        jobs=automation.jobs,
        schedules=automation.schedules,
        sensors=[*automation.sensors, *build_alert_sensors(settings), build_open_alerts_sensor(settings)],
    )
