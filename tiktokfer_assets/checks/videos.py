"""Checks of the ``videos`` and ``video_failures`` tables.

``videos`` checks block: every later asset reads videos by their object key and
cuts them by their duration, so a duplicated id, a missing object or a duration
past the cap would make subvideos, frames and faces wrong. ``video_failures`` is
read by no asset, so its checks only warn.
"""

from __future__ import annotations

import polars as pl

from tiktokfer_assets.checks.factory import PartitionTables, table_check
from tiktokfer_assets.checks.invariants import (
    duplicate_keys,
    missing_values,
    not_positive,
    shared_keys,
    spans_outside,
    unresolved_references,
)
from tiktokfer_assets.scope import VIDEOS

# ingest.trim accepts a stream-copy cut that overshoots the cap by up to this (it ends on a packet)
TRIM_OVERSHOOT_S = 1.0
REQUIRED_VIDEO_COLUMNS = ["video_id", "role", "object_key", "sha256", "duration_s", "width", "height"]


def videos_past_cap(t: PartitionTables) -> pl.DataFrame:
    """Stored videos longer than the challenge's ``max_video_seconds`` (or than the original)."""
    videos = t.table("videos")
    cap = t.scope.definition.max_video_seconds
    return pl.concat([
        spans_outside(videos, 0.0, "duration_s", cap, tolerance=TRIM_OVERSHOOT_S),
        spans_outside(videos, 0.0, "duration_s", "original_duration_s"),
    ]).unique(maintain_order=True)


def objects_missing(t: PartitionTables) -> pl.DataFrame:
    """Rows whose ``object_key`` is not in the object store."""
    stored = t.object_keys(t.scope.prefix(VIDEOS))
    return unresolved_references(t.table("videos"), stored, "object_key")


VIDEO_CHECKS = [
    table_check("videos", "video_id_unique", "each video is stored once per challenge",
                lambda t: duplicate_keys(t.table("videos"), "video_id")),
    table_check("videos", "required_columns", "id, role, object key, hashes, duration and size are set",
                lambda t: missing_values(t.table("videos"), REQUIRED_VIDEO_COLUMNS)),
    table_check("videos", "single_baseline",
                "at most one row is the baseline (the asset fails when none could be stored)",
                lambda t: duplicate_keys(t.table("videos").filter(pl.col("role") == "baseline"), "role")),
    table_check("videos", "sizes_positive", "duration, width, height, fps and size are positive",
                lambda t: not_positive(t.table("videos"), ["duration_s", "width", "height", "fps", "size_bytes"])),
    table_check("videos", "duration_within_cap",
                "stored duration is inside max_video_seconds and the original duration",
                videos_past_cap),
    table_check("videos", "object_stored", "every object_key is in the object store", objects_missing),
    table_check("video_failures", "video_id_unique", "each failed video is reported once",
                lambda t: duplicate_keys(t.table("video_failures"), ["video_id", "role"]), blocking=False),
    table_check("video_failures", "not_also_stored", "a failed video is not also in videos",
                lambda t: shared_keys(t.table("video_failures"), t.table("videos"), ["video_id", "role"]),
                blocking=False),
]
