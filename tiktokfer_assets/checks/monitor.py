"""Checks of the trending monitor's tables, per feed partition.

``monitored_videos`` checks block: ``alerts`` is built from its rows, so a video
checked twice would alert twice. ``alerts`` is read by no asset; its checks block
nothing downstream but fail the check on a duplicated or orphaned alert.
"""

from __future__ import annotations

import polars as pl

from tiktokfer_assets.checks.factory import checks_per_table, table_check
from tiktokfer_assets.checks.invariants import duplicate_keys, unresolved_references
from tiktokfer_assets.partitions import feed_partitions

MONITOR_TABLE_CHECKS = [
    table_check("monitored_videos", "one_row_per_video", "each video of the feed is checked once",
                lambda t: duplicate_keys(t.table("monitored_videos"), "video_id"), partitions_def=feed_partitions),
    table_check("monitored_videos", "checked_or_failed", "a row has either its sampled frames or an error",
                lambda t: t.table("monitored_videos").filter(
                    pl.col("frames_sampled").is_null() == pl.col("error").is_null()
                ), partitions_def=feed_partitions),
    table_check("alerts", "one_alert_per_video_and_person", "a person is alerted once per video",
                lambda t: duplicate_keys(t.table("alerts"), ["video_id", "person"]), partitions_def=feed_partitions),
    table_check("alerts", "video_id_in_monitored_videos", "every alert is of a checked video",
                lambda t: unresolved_references(t.table("alerts"), t.table("monitored_videos"), "video_id"),
                partitions_def=feed_partitions),
]

MONITOR_CHECKS = checks_per_table(MONITOR_TABLE_CHECKS)
