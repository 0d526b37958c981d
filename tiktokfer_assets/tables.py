"""Schemas of the tables tiktokfer writes, one place for every table store.

Every table carries a ``challenge`` column (the partition key) that the table
store fills in; assets return polars DataFrames with the other columns. A schema
here is the contract between an asset, its downstream assets and both table
stores (DuckDB locally, Postgres in production).
"""

from __future__ import annotations

import polars as pl

PARTITION_COLUMN = "challenge"

TIMESTAMP = pl.Datetime("us", "UTC")
LANDMARK_COLUMNS = [f"lm{i}_{axis}" for i in range(5) for axis in "xy"]  # the detector's five points, x then y

SCHEMAS: dict[str, dict[str, pl.DataType]] = {
    "challenges": {
        "definition_json": pl.String,
        "version": pl.String,
        "registered_at": TIMESTAMP,
    },
    "videos": {
        "video_id": pl.String,
        "role": pl.String,  # "baseline" or "performance"
        "url": pl.String,
        "author": pl.String,
        "author_id": pl.String,
        "description": pl.String,
        "hashtags": pl.String,  # JSON list
        "sound_id": pl.String,
        "sound_title": pl.String,
        "sound_author": pl.String,
        "duration_s": pl.Float64,  # as stored (after the max_video_seconds cap)
        "original_duration_s": pl.Float64,
        "width": pl.Int32,  # as displayed (rotation applied)
        "height": pl.Int32,
        "fps": pl.Float64,
        "rotation": pl.Int32,
        "has_audio": pl.Boolean,
        "create_time": TIMESTAMP,
        "view_count": pl.Int64,
        "like_count": pl.Int64,
        "comment_count": pl.Int64,
        "share_count": pl.Int64,
        "region_code": pl.String,  # where the video was posted (TikTok Research API)
        "format_id": pl.String,
        "watermark_masked": pl.Boolean,
        "trimmed": pl.Boolean,
        "source_sha256": pl.String,  # of the file as fetched
        "sha256": pl.String,  # of the stored object
        "size_bytes": pl.Int64,
        "object_key": pl.String,
        "info_json": pl.String,
        "record_json": pl.String,  # the content record a records source listed, as given (a collection's metadata)
        "downloaded_at": TIMESTAMP,
    },
    "video_failures": {
        "video_id": pl.String,
        "url": pl.String,
        "role": pl.String,
        "stage": pl.String,  # fetch | probe | trim | watermark | store
        "reason": pl.String,
        "attempts": pl.Int32,
        "failed_at": TIMESTAMP,
    },
    "subvideos": {
        "video_id": pl.String,
        "label": pl.String,
        "prompt_index": pl.Int32,
        "found": pl.Boolean,
        "start_s": pl.Float64,  # where the prompt is said, in the video's timeline
        "end_s": pl.Float64,
        "score": pl.Float64,  # normalised cross-correlation of the match
        "label_start_s": pl.Float64,  # span whose frames get the label (reaction window if any)
        "label_end_s": pl.Float64,
        "reason": pl.String,  # why not found
        "rate": pl.Float64,  # playback rate of the sound in the video (1.25: 25 % faster), null where nothing was found
    },
    "frames": {
        "frame_id": pl.String,  # "<video_id>/<timestamp in ms, 6 digits>"
        "video_id": pl.String,
        "timestamp_s": pl.Float64,
        "width": pl.Int32,
        "height": pl.Int32,
        "object_key": pl.String,
        "prompt_label": pl.String,  # label whose span contains the timestamp; null outside all
        "expression": pl.String,  # the prompt's expression class (challenge vocabulary); null: none or an instruction
        "decode_error": pl.String,  # set on every frame of a video whose decoding broke off
    },
    "faces": {
        "face_id": pl.String,  # "<frame_id>/<rank by score>"
        "frame_id": pl.String,
        "video_id": pl.String,
        "timestamp_s": pl.Float64,
        "x1": pl.Float64,
        "y1": pl.Float64,
        "x2": pl.Float64,
        "y2": pl.Float64,
        "score": pl.Float64,
        **{column: pl.Float64 for column in LANDMARK_COLUMNS},
        "rotation": pl.Int32,  # degrees anticlockwise the frame was turned to find the face
        "truncated": pl.Boolean,  # the face is cut by the frame's edge (kept from a lower score)
        "frame_width": pl.Int32,
        "frame_height": pl.Int32,
        "object_key": pl.String,  # the square context crop, turned upright by the landmarks' roll
        "aligned_key": pl.String,  # the 112x112 crop aligned on the ArcFace five-point template
        "roll_deg": pl.Float64,  # in-plane rotation of the face in its frame (eye line), degrees
        "aligned_roll_deg": pl.Float64,  # the same, of the landmarks mapped into the aligned crop
        "prompt_label": pl.String,
        "expression": pl.String,
    },
    "nofaces": {
        "frame_id": pl.String,
        "video_id": pl.String,
        "timestamp_s": pl.Float64,
        "object_key": pl.String,
        "prompt_label": pl.String,
        "expression": pl.String,
    },
    "faces_with_intra_ind": None,  # faces + track_id (filled in below)
    "similarities": {
        "track_a": pl.String,
        "track_b": pl.String,
        "similarity": pl.Float64,  # cosine of the tracks' mean embeddings
    },
    "faces_with_final_ind": None,  # faces + track_id (after corrections) + individual_id + is_baseline_creator
    "unique_faces": {
        "face_id": pl.String,
        "individual_id": pl.String,
        "video_id": pl.String,
        "track_id": pl.String,
        "timestamp_s": pl.Float64,
        "prompt_label": pl.String,
        "expression": pl.String,
        "score": pl.Float64,
        "frontality": pl.Float64,  # 0..1 from the landmarks (vision/align.py), the tie-breaker after score
        "sharpness": pl.Float64,  # variance of the Laplacian, the tie-breaker after frontality
        "object_key": pl.String,
        "aligned_key": pl.String,
        "is_baseline_creator": pl.Boolean,
        "duplicates": pl.String,  # JSON list of the face ids removed in favour of this one
    },
    # the dataset export's person and split of each exported face, kept for later releases (partition: its challenge)
    "dataset_splits": {
        "face_id": pl.String,
        "individual_id": pl.String,
        "person_id": pl.String,
        "split": pl.String,  # train | val | test
        "release_id": pl.String,  # the release that last exported the face
    },
    # the trending monitor's tables: the partition column holds the feed's name, not a challenge
    "monitored_videos": {
        "video_id": pl.String,
        "url": pl.String,
        "frames_sampled": pl.Int32,
        "frames_with_faces": pl.Int32,
        "error": pl.String,  # why the video could not be fetched or decoded (null when it was checked)
        "checked_at": TIMESTAMP,
        "matches": pl.String,  # JSON list, per watch-listed person: frames_matched, share, best_similarity, alert...
    },
    "alerts": {
        "video_id": pl.String,
        "url": pl.String,
        "person": pl.String,  # the watch list's folder name
        "frames_matched": pl.Int32,
        "frames_sampled": pl.Int32,
        "share": pl.Float64,  # frames_matched / frames_sampled
        "best_similarity": pl.Float64,
        "first_seen_s": pl.Float64,
        "alerted_at": TIMESTAMP,
        "webhook_status": pl.String,  # "sent", "not configured", or "failed: <reason>" (re-sent by the next run)
    },
    # TikTok Research API query requests per UTC day: the partition column holds the day (YYYY-MM-DD)
    "research_api_usage": {
        "requests": pl.Int64,
        "updated_at": TIMESTAMP,
    },
}
SCHEMAS["faces_with_intra_ind"] = {**SCHEMAS["faces"], "track_id": pl.String}
SCHEMAS["faces_with_final_ind"] = {
    **SCHEMAS["faces_with_intra_ind"], "individual_id": pl.String, "is_baseline_creator": pl.Boolean,
}


def empty(table: str) -> pl.DataFrame:
    """An empty frame with the table's columns (without the partition column)."""
    return pl.DataFrame(schema=SCHEMAS[table])


def conform(table: str, rows: list[dict] | pl.DataFrame) -> pl.DataFrame:
    """Rows as a frame with exactly the table's columns and types (missing columns are null)."""
    schema = SCHEMAS[table]
    if len(rows) == 0:
        return empty(table)
    df = rows if isinstance(rows, pl.DataFrame) else pl.DataFrame(
        rows, schema_overrides=schema, infer_schema_length=None
    )
    unknown = set(df.columns) - set(schema) - {PARTITION_COLUMN}
    if unknown:
        raise ValueError(f"table {table!r} has no columns {sorted(unknown)}")
    return df.select([
        (pl.col(name) if name in df.columns else pl.lit(None)).cast(dtype).alias(name)
        for name, dtype in schema.items()
    ])
