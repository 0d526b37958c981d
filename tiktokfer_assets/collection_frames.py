"""Frames of a records file without a deployment (``tiktokfer frames RECORDS --out DIR``).

The file becomes a content collection named after it, and the collection's assets run
in this process: ``videos`` (``video_failures`` with it), ``subvideos`` (which skips it),
``frames`` and ``contents``, on local resources in ``DIR`` (``DIR/tables.duckdb``,
``DIR/objects/``) with an ephemeral Dagster instance. ``DIR/contents.jsonl`` is the
``contents`` output; its frame URIs are the JPEG files under ``DIR/objects/frames/``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from tiktokfer_assets.challenges import ChallengeError, parse_challenge
from tiktokfer_assets.sources.records import read_records


class FramesError(RuntimeError):
    """The records could not be read, or no video of them could be stored; the message says why."""


@dataclass(frozen=True)
class ExtractedFrames:
    contents_jsonl: Path
    contents: int
    frames: int
    failures: pl.DataFrame  # the video_failures rows: video_id, stage, reason


def collection_name(records: Path) -> str:
    """A partition key from the file name: ``My Clips.jsonl`` -> ``my_clips``."""
    return re.sub(r"[^a-z0-9_-]+", "_", records.stem.lower()).strip("_")[:64] or "records"


def extract_frames(records: Path, out_dir: Path, *, every_s: float = 0.5, max_seconds: float = 60.0,
                   workers: int | None = None) -> ExtractedFrames:
    """Store every video of ``records`` under ``out_dir``, extract its frames, write ``out_dir/contents.jsonl``."""
    from dagster import DagsterInstance, materialize

    from tiktokfer_assets.assets.contents import contents
    from tiktokfer_assets.assets.frames import frames
    from tiktokfer_assets.assets.subvideos import subvideos
    from tiktokfer_assets.assets.videos import videos
    from tiktokfer_assets.definitions import QUIET
    from tiktokfer_assets.environments import local_resources
    from tiktokfer_assets.registry import register_challenge
    from tiktokfer_assets.scope import ChallengeScope
    from tiktokfer_assets.status import run_failure

    records = Path(records).resolve()
    try:
        read_records(records)
    except (OSError, ValueError) as exc:
        raise FramesError(str(exc)) from exc
    try:
        collection = parse_challenge({"name": collection_name(records), "max_video_seconds": max_seconds,
                                      "source": {"kind": "records", "path": str(records)}})
    except ChallengeError as exc:
        raise FramesError(str(exc)) from exc
    out_dir = Path(out_dir)
    resources = local_resources(out_dir)
    store = resources["table_store"]
    with DagsterInstance.ephemeral() as instance:
        register_challenge(collection, store, instance)
        result = materialize(
            [videos, subvideos, frames, contents], partition_key=collection.name, instance=instance,
            resources=resources, raise_on_error=False,
            run_config={**QUIET, "ops": {"frames": {"config": {"every_s": every_s, "workers": workers}}}},
        )
        if not result.success:
            raise FramesError(f"{records.name}: {run_failure(instance, result.run_id)}")
    failures = store.read("video_failures", [collection.name]).select("video_id", "stage", "reason")
    dest = out_dir / "contents.jsonl"
    resources["object_store"].download(ChallengeScope(collection.name, store).contents_key(), dest)
    return ExtractedFrames(dest, store.count("videos", collection.name), store.count("frames", collection.name),
                           failures)
