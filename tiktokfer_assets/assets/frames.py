"""Asset 3, ``frames``: frames on a fixed time grid, one decode pass per video, labelled by prompt."""

import os
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import polars as pl
from dagster import AssetExecutionContext, Config, MetadataValue, Output, asset

from tiktokfer_assets.media.frames import FrameExtractionError, iter_frames
from tiktokfer_assets.partitions import challenge_partitions
from tiktokfer_assets.resources.io_managers import markdown_preview
from tiktokfer_assets.resources.object_store import ObjectStore
from tiktokfer_assets.resources.table_store import TableStore
from tiktokfer_assets.scope import FRAMES, ChallengeScope, challenge_scope
from tiktokfer_assets.tables import conform
from tiktokfer_assets.vision.crops import encode_jpeg


class FramesConfig(Config):
    every_s: float = 0.5
    """Sampling interval (seconds): frames at 0, every_s, 2*every_s, ... up to max_video_seconds."""
    jpeg_quality: int = 90
    workers: int | None = None
    """Videos decoded at once (one ffmpeg each); default: one per CPU core (``os.cpu_count()``). Measured
    (bench/bench_frames.py, 32 stored 10 s 720x1280 videos, a 2-core machine shared by other jobs): pool of 2
    78.2 s against 78.6 s one at a time, 1.00x: ffmpeg's own decode threads already filled both cores."""


def frame_id(video_id: str, timestamp_s: float) -> str:
    return f"{video_id}/{round(timestamp_s * 1000):06d}"


def label_frames(frames: pl.DataFrame, subvideos: pl.DataFrame) -> pl.DataFrame:
    """``frames`` with ``prompt_label``: the label whose label span (found prompts only) holds the timestamp."""
    spans = subvideos.filter(pl.col("found") & pl.col("label_start_s").is_not_null()).select(
        "video_id", "label", "prompt_index", "label_start_s", "label_end_s"
    )
    hits = (
        frames.select("frame_id", "video_id", "timestamp_s")
        .join(spans, on="video_id")
        .filter(pl.col("timestamp_s").is_between(pl.col("label_start_s"), pl.col("label_end_s")))
        .sort("frame_id", "prompt_index")
        .unique("frame_id", keep="first")
        .select("frame_id", prompt_label=pl.col("label"))
    )
    return frames.drop("prompt_label", strict=False).join(hits, on="frame_id", how="left")


def extract_video_frames(video: dict, scope: ChallengeScope, every_s: float, jpeg_quality: int,
                         object_store: ObjectStore, workdir: Path) -> tuple[list[dict], str | None]:
    """Frames of one stored video up to the challenge's ``max_video_seconds`` as rows (the JPEGs go to the
    object store under the scope's frame keys), and the decode error if decoding broke off: the frames
    before the break are kept."""
    local = workdir / f"{video['video_id']}{Path(video['object_key']).suffix}"
    object_store.download(video["object_key"], local)
    rows, error = [], None
    try:
        for t, image in iter_frames(local, every_s, scope.definition.max_video_seconds):
            fid = frame_id(video["video_id"], t)
            key = scope.frame_key(fid)
            object_store.put_bytes(key, encode_jpeg(image, jpeg_quality))
            rows.append({"frame_id": fid, "video_id": video["video_id"], "timestamp_s": t,
                         "width": image.shape[1], "height": image.shape[0], "object_key": key})
    except FrameExtractionError as exc:
        error = str(exc).splitlines()[0]
    finally:
        local.unlink(missing_ok=True)
    return [{**row, "decode_error": error} for row in rows], error


@asset(
    partitions_def=challenge_partitions,
    io_manager_key="table_io_manager",
    kinds={"polars", "ffmpeg"},
    group_name="frames_and_faces",
    description="One JPEG every `every_s` seconds of each video (one ffmpeg decode per video), with the prompt label "
                "and its expression class.",
)
def frames(
    context: AssetExecutionContext,
    config: FramesConfig,
    videos: pl.DataFrame,
    subvideos: pl.DataFrame,
    object_store: ObjectStore,
    table_store: TableStore,
):
    scope = challenge_scope(context, table_store)
    challenge = scope.definition
    stored = videos.sort("video_id").to_dicts()
    with tempfile.TemporaryDirectory(prefix="tiktokfer-frames-") as tmp:
        with ThreadPoolExecutor(max_workers=config.workers or os.cpu_count() or 1) as pool:
            per_video = list(pool.map(
                lambda video: extract_video_frames(
                    video, scope, config.every_s, config.jpeg_quality, object_store, Path(tmp)
                ),
                stored,
            ))
    rows = [row for video_rows, _ in per_video for row in video_rows]
    broken = {video["video_id"]: error for video, (_, error) in zip(stored, per_video) if error}
    for video_id, error in broken.items():
        context.log.warning(f"{challenge.name}/{video_id}: decoding broke off, frames before it kept: {error}")
    table = label_frames(conform("frames", rows), subvideos)
    vocabulary = {p.label: challenge.expression_of(p.label) for p in challenge.prompts}
    table = table.with_columns(
        expression=pl.col("prompt_label").replace_strict(vocabulary, default=None, return_dtype=pl.String)
    )
    table = conform("frames", table).sort("frame_id")
    removed = object_store.delete_prefix(scope.prefix(FRAMES), keep=set(table["object_key"]))
    labelled = table.filter(pl.col("prompt_label").is_not_null())
    yield Output(table, metadata={
        "frames": table.height,
        "videos": table["video_id"].n_unique(),
        "labelled_frames": labelled.height,
        "frames_per_label": MetadataValue.md(markdown_preview(
            labelled.group_by("prompt_label", "expression").len().sort("prompt_label"), rows=50)),
        "videos_with_decode_errors": MetadataValue.json(broken),
        "stale_objects_removed": removed,
    })
