"""The trending monitor: watch-listed people in the latest videos of a feed, one feed partition per run."""

from dagster import Definitions, definitions

from tiktokfer_assets.automation.trending import alerts, monitored_videos, trending_monitor, trending_monitor_sensor
from tiktokfer_assets.checks.monitor import MONITOR_CHECKS


@definitions
def defs() -> Definitions:
    return Definitions(
        assets=[monitored_videos, alerts], asset_checks=MONITOR_CHECKS, jobs=[trending_monitor],
        sensors=[trending_monitor_sensor],
    )
