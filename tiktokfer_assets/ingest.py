"""Turn a fetched video file into a stored object and its ``videos`` row.

Probe it, cap it at ``max_video_seconds`` (stream copy when possible), mask the
platform watermark when the source only had a watermarked file, hash it and put
it in the object store. Pure of Dagster: the ``videos`` asset calls it per video.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from pathlib import Path

import ffmpeg

from tiktokfer_assets.challenges import ChallengeDefinition
from tiktokfer_assets.media.probe import ProbeError, VideoProbe, probe
from tiktokfer_assets.media.watermark import DEFAULT_TIKTOK_REGIONS, WatermarkError, WatermarkRegion, mask_watermark
from tiktokfer_assets.resources.object_store import ObjectStore
from tiktokfer_assets.scope import ChallengeScope
from tiktokfer_assets.sources.base import FetchedVideo
from tiktokfer_assets.tables import SCHEMAS
from tiktokfer_assets.weights import sha256_of as sha256_file


class IngestError(RuntimeError):
    """A fetched video could not be stored; ``stage`` says which step refused it."""

    def __init__(self, stage: str, message: str):
        super().__init__(message)
        self.stage = stage


def _ffmpeg_error(exc: ffmpeg.Error) -> str:
    lines = (exc.stderr or b"").decode(errors="replace").strip().splitlines()
    return lines[-1] if lines else str(exc)


def trim(src: Path, dst: Path, max_seconds: float) -> None:
    """First ``max_seconds`` of ``src``: stream copy, or a re-encode if copying fails."""
    try:
        ffmpeg.input(str(src)).output(str(dst), t=max_seconds, c="copy", map=0).overwrite_output().run(quiet=True)
        if probe(dst).duration_s <= max_seconds + 1.0:
            return
    except (ffmpeg.Error, ProbeError):
        pass
    try:
        (
            ffmpeg.input(str(src))
            .output(str(dst), t=max_seconds, vcodec="libx264", preset="veryfast", acodec="aac")
            .overwrite_output()
            .run(quiet=True)
        )
    except ffmpeg.Error as exc:
        raise IngestError("trim", f"could not cut to {max_seconds}s: {_ffmpeg_error(exc)}") from exc


@dataclass(frozen=True)
class PreparedVideo:
    path: Path
    probe: VideoProbe
    original_duration_s: float
    trimmed: bool
    watermark_masked: bool


def prepare(fetched: FetchedVideo, challenge: ChallengeDefinition, workdir: Path) -> PreparedVideo:
    """Probe, trim and de-watermark a fetched file; raises :class:`IngestError`."""
    try:
        info = probe(fetched.path)
    except ProbeError as exc:
        raise IngestError("probe", f"not a readable video: {exc}") from exc
    path, original, trimmed, masked = fetched.path, info.duration_s, False, False
    if info.duration_s > challenge.max_video_seconds:
        cut = workdir / f"{fetched.ref.video_id}.trimmed{path.suffix or '.mp4'}"
        trim(path, cut, challenge.max_video_seconds)
        path, trimmed = cut, True
        info = probe(path)
    if fetched.watermarked:
        regions = (
            [WatermarkRegion(**r.model_dump()) for r in challenge.watermark_regions]
            if challenge.watermark_regions else DEFAULT_TIKTOK_REGIONS
        )
        masked_path = workdir / f"{fetched.ref.video_id}.masked.mp4"
        width, height = info.display_size
        try:
            mask_watermark(path, masked_path, regions, width=width, height=height, duration_s=info.duration_s)
        except WatermarkError as exc:
            raise IngestError("watermark", f"masking failed: {exc}") from exc
        path, masked = masked_path, True
        info = probe(path)
    return PreparedVideo(path, info, original, trimmed, masked)


def store_video(
    fetched: FetchedVideo,
    scope: ChallengeScope,
    role: str,
    object_store: ObjectStore,
    workdir: Path,
) -> dict:
    """Prepare ``fetched``, store it under the scope's video key, and return its ``videos`` row."""
    source_sha = sha256_file(fetched.path)
    prepared = prepare(fetched, scope.definition, workdir)
    key = scope.video_key(fetched.ref.video_id, prepared.path.suffix or ".mp4")
    # an unreachable object store fails the run (and its retry), it is not a property of this video
    object_store.put_file(key, prepared.path)
    width, height = prepared.probe.display_size
    metadata = {k: v for k, v in fetched.metadata.items() if v is not None and k in SCHEMAS["videos"]}
    if isinstance(metadata.get("hashtags"), list):
        metadata["hashtags"] = json.dumps(metadata["hashtags"])
    return {
        **metadata,
        "video_id": fetched.ref.video_id,
        "role": role,
        "url": metadata.get("url", fetched.ref.url),
        "duration_s": prepared.probe.duration_s,
        "original_duration_s": prepared.original_duration_s,
        "width": width,
        "height": height,
        "fps": prepared.probe.fps,
        "rotation": prepared.probe.rotation,
        "has_audio": prepared.probe.has_audio,
        "format_id": fetched.format_id,
        "watermark_masked": prepared.watermark_masked,
        "trimmed": prepared.trimmed,
        "source_sha256": source_sha,
        "sha256": sha256_file(prepared.path),
        "size_bytes": prepared.path.stat().st_size,
        "object_key": key,
        "info_json": fetched.info_json,
        "downloaded_at": dt.datetime.now(dt.timezone.utc),
    }
