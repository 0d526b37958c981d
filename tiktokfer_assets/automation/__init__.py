"""Automation of the code location: jobs, sensors and the trending monitor's schedule.

The code location adds ``JOBS``, ``SENSORS`` and ``SCHEDULES`` to its ``Definitions``.
"""

from tiktokfer_assets.automation.challenge_sensor import challenge_sensor
from tiktokfer_assets.automation.jobs import ASSET_JOBS
from tiktokfer_assets.automation.new_video_sensor import new_video_sensor
from tiktokfer_assets.automation.trending import trending_monitor, trending_monitor_schedule

JOBS = [*ASSET_JOBS, trending_monitor]
SENSORS = [challenge_sensor, new_video_sensor]
SCHEDULES = [trending_monitor_schedule]

__all__ = ["JOBS", "SCHEDULES", "SENSORS"]
