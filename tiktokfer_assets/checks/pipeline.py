"""Checks of the tables after ``videos``: subvideos, frames, faces, nofaces, individuals, unique_faces.

Blocking where a downstream asset would be wrong: frames take their labels from
subvideos' spans, faces crop frames, individuals link faces by frame and track,
unique_faces reads individuals. ``nofaces`` and ``similarities`` only inform, so
their checks warn.
"""

from __future__ import annotations

import polars as pl

from tiktokfer_assets.checks.factory import PartitionTables, table_check
from tiktokfer_assets.checks.invariants import (
    attach,
    boxes_outside,
    duplicate_keys,
    lost_groups,
    missing_values,
    shared_keys,
    spans_outside,
    unresolved_references,
)
from tiktokfer_assets.tables import LANDMARK_COLUMNS

FACE_BOX = ["x1", "y1", "x2", "y2"]
MAX_ALIGNED_ROLL_DEG = 10.0


def overlapping_spans(rows: pl.DataFrame, group: str, start: str, end: str, *, tolerance: float = 1e-3) -> pl.DataFrame:
    """Rows whose ``[start, end]`` overlaps the previous span (by start) of the same ``group``."""
    ordered = rows.sort(group, start).with_columns(_previous_end=pl.col(end).shift(1).over(group))
    return ordered.filter(pl.col(start) < pl.col("_previous_end") - tolerance).drop("_previous_end")


def found_spans_outside_videos(t: PartitionTables) -> pl.DataFrame:
    found = attach(t.table("subvideos").filter(pl.col("found")), t.table("videos"), "video_id", "duration_s")
    return spans_outside(found, "start_s", "end_s", "duration_s")


def frames_off_grid_or_past_the_end(t: PartitionTables) -> pl.DataFrame:
    """Frames past their video's duration, or whose timestamps are not evenly spaced within their video."""
    frames = attach(t.table("frames"), t.table("videos"), "video_id", "duration_s")
    past_end = frames.filter(~(pl.col("timestamp_s") < pl.col("duration_s")).fill_null(False))
    steps = frames.sort("video_id", "timestamp_s").with_columns(step=pl.col("timestamp_s").diff().over("video_id"))
    uneven = steps.filter((pl.col("step") - pl.col("step").min().over("video_id")).abs() > 1e-6).drop("step")
    return pl.concat([past_end, uneven.select(past_end.columns)]).unique("frame_id", maintain_order=True)


def frames_with_foreign_labels(t: PartitionTables) -> pl.DataFrame:
    labels = t.scope.definition.prompts
    return t.table("frames").filter(
        pl.col("prompt_label").is_not_null() & ~pl.col("prompt_label").is_in([p.label for p in labels])
    )


def labels_lost_by_dedup(t: PartitionTables) -> pl.DataFrame:
    """(individual_id, expression) pairs of faces_with_final_ind that no face of unique_faces keeps."""
    return lost_groups(t.table("faces_with_final_ind"), t.table("unique_faces"), ["individual_id", "expression"])


def duplicates_not_in_individuals(t: PartitionTables) -> pl.DataFrame:
    """unique_faces rows naming a removed duplicate that is not a face of the individuals table."""
    unique = t.table("unique_faces")
    removed = unique.select("face_id", pl.col("duplicates").str.json_decode(pl.List(pl.String)).alias("removed"))
    removed = removed.explode("removed").drop_nulls("removed").rename({"face_id": "kept_by", "removed": "face_id"})
    return unresolved_references(removed, t.table("faces_with_final_ind"), "face_id")


PIPELINE_CHECKS = [
    table_check("subvideos", "one_row_per_video_and_prompt", "each (video, prompt) has one row",
                lambda t: duplicate_keys(t.table("subvideos"), ["video_id", "label"])),
    table_check("subvideos", "video_id_in_videos", "every row belongs to a stored video",
                lambda t: unresolved_references(t.table("subvideos"), t.table("videos"), "video_id")),
    table_check("subvideos", "found_spans_inside_videos", "every found prompt lies inside its video's duration",
                found_spans_outside_videos),
    table_check("subvideos", "found_spans_disjoint", "found prompts of one video do not overlap",
                lambda t: overlapping_spans(
                    t.table("subvideos").filter(pl.col("found")), "video_id", "start_s", "end_s"
                )),
    table_check("frames", "frame_id_unique", "each frame is stored once",
                lambda t: duplicate_keys(t.table("frames"), "frame_id")),
    table_check("frames", "video_id_in_videos", "every frame belongs to a stored video",
                lambda t: unresolved_references(t.table("frames"), t.table("videos"), "video_id")),
    table_check("frames", "timestamps_on_grid_inside_videos", "frames are evenly spaced and inside their video",
                frames_off_grid_or_past_the_end),
    table_check("frames", "labels_are_prompts", "a frame's label is one of the challenge's prompts",
                frames_with_foreign_labels),
    table_check("faces", "face_id_unique", "each face is stored once",
                lambda t: duplicate_keys(t.table("faces"), "face_id")),
    table_check("faces", "frame_id_in_frames", "every face belongs to a stored frame",
                lambda t: unresolved_references(t.table("faces"), t.table("frames"), "frame_id")),
    table_check("faces", "boxes_inside_frames", "every box is non-empty and inside its frame",
                lambda t: boxes_outside(t.table("faces"), FACE_BOX, "frame_width", "frame_height")),
    table_check("faces", "landmarks_set", "every face has its five landmarks",
                lambda t: missing_values(t.table("faces"), LANDMARK_COLUMNS)),
    table_check("nofaces", "not_also_in_faces", "a frame without a face has no face rows",
                lambda t: shared_keys(t.table("nofaces"), t.table("faces"), "frame_id"), blocking=False),
    table_check("faces_with_intra_ind", "every_face_tracked", "every face of the faces table has one track",
                lambda t: pl.concat([
                    missing_values(t.table("faces_with_intra_ind"), "track_id").select("face_id"),
                    unresolved_references(
                        t.table("faces").select("face_id"), t.table("faces_with_intra_ind"), "face_id"
                    ),
                ])),
    table_check("similarities", "tracks_exist", "both tracks of every pair are tracks of the challenge",
                lambda t: pl.concat([
                    unresolved_references(
                        t.table("similarities"), t.table("faces_with_final_ind"), "track_a", "track_id"
                    ),
                    unresolved_references(
                        t.table("similarities"), t.table("faces_with_final_ind"), "track_b", "track_id"
                    ),
                ]), blocking=False),
    table_check("individuals", "one_individual_per_track",
                "a track belongs to exactly one individual, and every face has one",
                lambda t: pl.concat([
                    missing_values(t.table("faces_with_final_ind"), ["track_id", "individual_id"]).select("track_id"),
                    duplicate_keys(
                        t.table("faces_with_final_ind").select("track_id", "individual_id").unique(), "track_id"
                    ).select("track_id"),
                ])),
    table_check("individuals", "no_frame_holds_one_person_twice", "two faces of one frame are never one individual",
                lambda t: duplicate_keys(t.table("faces_with_final_ind"), ["frame_id", "individual_id"])),
    table_check("faces", "aligned_crops_upright",
                f"every face has an aligned crop whose landmarks' roll is at most {MAX_ALIGNED_ROLL_DEG:g} degrees",
                lambda t: pl.concat([
                    missing_values(t.table("faces"), ["aligned_key", "aligned_roll_deg"]).select("face_id"),
                    t.table("faces").filter(pl.col("aligned_roll_deg").abs() > MAX_ALIGNED_ROLL_DEG).select("face_id"),
                ])),
    table_check("unique_faces", "every_label_kept",
                "every (individual, expression) of faces_with_final_ind keeps at least one face in unique_faces",
                labels_lost_by_dedup),
    table_check("unique_faces", "faces_exist",
                "kept faces and their removed duplicates are faces of the individuals table",
                lambda t: pl.concat([
                    unresolved_references(
                        t.table("unique_faces"), t.table("faces_with_final_ind"), "face_id"
                    ).select("face_id"),
                    duplicates_not_in_individuals(t).select("face_id"),
                ])),
]
