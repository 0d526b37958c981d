"""Each stored video as a content record with its derived frames: the frame-extraction notebook's output.

The notebook (``shared/seeds/frame_extraction_notebook.txt``) takes TikTok contents with
their metadata, extracts frames of each video (at most 60 s) and writes every content
back with its ``derived`` frames and ``content_type`` set to ``VIDEO``. Here one record
per stored video of a partition, as JSON Lines, shaped by ``schemas/content.schema.json``::

    {"content_id": "7301", "content_type": "VIDEO", "video_url": "...", "metadata": {...},
     "video": {"key": ..., "uri": ..., "duration_s": ..., "width": ..., "height": ..., ...},
     "derived": {"max_seconds": 60.0, "decode_error": null,
                 "frames": [{"key": ..., "uri": ..., "timestamp_s": 0.0, "width": 720, "height": 1280}, ...]}}

``metadata`` is the content record's own fields as given (a ``records`` source; its id
and video fields left out), else the metadata columns the source filled (author,
description, hashtags, sound, counts, create time, region). A video that could not be
stored has no record (it is a ``video_failures`` row). Pure of Dagster.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable

import polars as pl

from tiktokfer_assets.sources.records import record_metadata

CONTENT_TYPE = "VIDEO"
METADATA_COLUMNS = ("author", "author_id", "description", "hashtags", "sound_id", "sound_title", "sound_author",
                    "create_time", "view_count", "like_count", "comment_count", "share_count", "region_code")
VIDEO_FIELDS = ("duration_s", "original_duration_s", "width", "height", "fps", "sha256")


def _metadata(video: dict) -> dict:
    if video.get("record_json"):
        return record_metadata(json.loads(video["record_json"]))
    metadata = {name: video.get(name) for name in METADATA_COLUMNS if video.get(name) is not None}
    if "hashtags" in metadata:
        metadata["hashtags"] = json.loads(metadata["hashtags"])
    if isinstance(metadata.get("create_time"), dt.datetime):
        metadata["create_time"] = metadata["create_time"].isoformat()
    return metadata


def content_records(videos: pl.DataFrame, frames: pl.DataFrame, uri: Callable[[str], str],
                    max_seconds: float) -> list[dict]:
    """One record per row of ``videos`` (by id) with its rows of ``frames`` (by time); ``uri`` locates a key."""
    by_video: dict[str, list[dict]] = {}
    for frame in frames.sort("video_id", "timestamp_s").iter_rows(named=True):
        by_video.setdefault(frame["video_id"], []).append(frame)
    records = []
    for video in videos.sort("video_id").iter_rows(named=True):
        own = by_video.get(video["video_id"], [])
        records.append({
            "content_id": video["video_id"],
            "content_type": CONTENT_TYPE,
            "video_url": video["url"],
            "metadata": _metadata(video),
            "video": {"key": video["object_key"], "uri": uri(video["object_key"]),
                      **{name: video[name] for name in VIDEO_FIELDS}},
            "derived": {
                "max_seconds": max_seconds,
                "decode_error": own[0]["decode_error"] if own else None,
                "frames": [{"key": f["object_key"], "uri": uri(f["object_key"]), "timestamp_s": f["timestamp_s"],
                            "width": f["width"], "height": f["height"]} for f in own],
            },
        })
    return records


def to_json_lines(records: list[dict]) -> bytes:
    return "".join(json.dumps(record, sort_keys=True, default=str) + "\n" for record in records).encode()
