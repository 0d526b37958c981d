"""Asset 1, ``videos``: list, download, cap, de-watermark and store a challenge's videos."""

import datetime as dt
import tempfile
from pathlib import Path

import polars as pl
from dagster import AssetExecutionContext, AssetOut, Failure, MetadataValue, Output, multi_asset

from tiktokfer_assets.ingest import IngestError, store_video
from tiktokfer_assets.partitions import challenge_partitions
from tiktokfer_assets.resources.io_managers import markdown_preview
from tiktokfer_assets.resources.object_store import ObjectStore
from tiktokfer_assets.resources.table_store import TableStore
from tiktokfer_assets.resources.video_source import VideoSourceResource
from tiktokfer_assets.scope import VIDEOS, challenge_scope
from tiktokfer_assets.sources.base import INVALID, LISTING_ERROR, SOURCE_URL, VideoRef
from tiktokfer_assets.sources.download_pool import fetch_all
from tiktokfer_assets.tables import conform


def _failure(ref: VideoRef, role: str, stage: str, reason: str, attempts: int) -> dict:
    return {
        "video_id": ref.video_id, "url": ref.url, "role": role, "stage": stage,
        "reason": reason, "attempts": attempts, "failed_at": dt.datetime.now(dt.timezone.utc),
    }


def _reusable(ref: VideoRef, previous: dict | None, object_store: ObjectStore) -> bool:
    """A stored video is kept as is when its object is there and the source says it is unchanged
    (same content hash when the source knows it, same URL when the ref names the one it must come from)."""
    if previous is None or not object_store.exists(previous["object_key"]):
        return False
    source_sha = ref.info.get("sha256")
    if source_sha is not None:
        return source_sha == previous["source_sha256"]
    return ref.info.get(SOURCE_URL, previous["url"]) == previous["url"]


def _not_the_baseline(refs: list[VideoRef], baseline: VideoRef) -> list[VideoRef]:
    """``refs``, where one whose id is the baseline's becomes a failure instead of overwriting the baseline."""
    reason = f"video id {baseline.video_id!r} is the baseline's; rename the video (or set baseline.video_id)"
    return [VideoRef(r.video_id, r.url, {INVALID: reason}) if r.video_id == baseline.video_id else r for r in refs]


def _not_listed(previous: dict[str, dict], listed: set[str], object_store: ObjectStore) -> list[dict]:
    """Stored performances a listing that failed in part did not name: kept, since they may still be there."""
    return [row for vid, row in previous.items()
            if vid not in listed and row["role"] == "performance" and object_store.exists(row["object_key"])]


@multi_asset(
    outs={
        "videos": AssetOut(
            io_manager_key="table_io_manager",
            kinds={"polars", "ffmpeg"},
            description="One row per stored video (baseline and performances).",
        ),
        "video_failures": AssetOut(
            io_manager_key="table_io_manager",
            kinds={"polars"},
            description="Videos that could not be fetched or decoded, with the reason.",
        ),
    },
    partitions_def=challenge_partitions,
    group_name="ingest",
)
def videos(
    context: AssetExecutionContext,
    object_store: ObjectStore,
    table_store: TableStore,
    video_sources: VideoSourceResource,
):
    scope = challenge_scope(context, table_store)
    challenge = scope.definition
    previous = {row["video_id"]: row for row in table_store.read("videos", [challenge.name]).iter_rows(named=True)}
    source = video_sources.for_challenge(challenge)
    baseline = video_sources.baseline(challenge)  # None: a content collection, performances only
    refs = source.list_videos(challenge.max_videos)
    if baseline is not None:
        refs = _not_the_baseline(refs, baseline[1])
    wanted_by_role = ([("baseline", baseline[0], [baseline[1]])] if baseline else []) + [("performance", source, refs)]
    # only a complete listing may drop stored videos it no longer names (and delete their objects)
    complete = not any(LISTING_ERROR in ref.info for ref in refs)
    context.log.info(f"{challenge.name}: source lists {len(refs)} videos (max_videos={challenge.max_videos})")

    rows: list[dict] = []
    failures: list[dict] = []
    skipped = 0
    with tempfile.TemporaryDirectory(prefix="tiktokfer-videos-") as tmp:
        workdir = Path(tmp)
        for role, src, wanted in wanted_by_role:
            outcomes = fetch_all(
                src, wanted, workdir,
                workers=video_sources.download_workers,
                max_attempts=video_sources.max_attempts,
                backoff_s=video_sources.backoff_s,
                deadline_s=video_sources.video_deadline_s,
                max_bytes=video_sources.max_video_bytes,
                skip=lambda ref: _reusable(ref, previous.get(ref.video_id), object_store),
                on_progress=lambda progress, role=role: context.log.info(f"{challenge.name} {role}: {progress}"),
            )
            for outcome in outcomes:
                if outcome.skipped:
                    rows.append({**previous[outcome.ref.video_id], "role": role})
                    skipped += 1
                elif outcome.fetched is None:
                    stage = "list" if INVALID in outcome.ref.info else "fetch"
                    failures.append(_failure(outcome.ref, role, stage, outcome.error, outcome.attempts))
                else:
                    try:
                        rows.append(store_video(outcome.fetched, scope, role, object_store, workdir))
                    except IngestError as exc:
                        failures.append(_failure(outcome.ref, role, exc.stage, str(exc), outcome.attempts))
                    finally:
                        outcome.fetched.path.unlink(missing_ok=True)

    if not complete:
        kept = _not_listed(previous, {ref.video_id for _, _, wanted in wanted_by_role for ref in wanted}, object_store)
        context.log.warning(f"{challenge.name}: the listing failed in part; {len(kept)} stored videos it did not "
                            "name are kept and no stored video is deleted")
        rows += kept
    table = conform("videos", rows).sort("role", "video_id")
    failure_table = conform("video_failures", failures).sort("video_id")
    yield Output(failure_table, "video_failures", metadata={"failures": failure_table.height})

    baseline_rows = table.filter(pl.col("role") == "baseline")
    performances = table.height - baseline_rows.height
    if baseline is not None and baseline_rows.is_empty():
        raise Failure(
            f"{challenge.name}: the baseline video could not be ingested: "
            + "; ".join(f["reason"] for f in failures if f["role"] == "baseline"),
        )
    if baseline is not None:
        challenge.check_baseline_duration(baseline_rows["duration_s"][0])
    if refs and performances == 0:
        raise Failure(f"{challenge.name}: none of the {len(refs)} videos could be ingested; see video_failures")
    context.log.info(f"{challenge.name}: {performances} videos stored ({skipped} unchanged), {len(failures)} failed")
    yield Output(table, "videos", metadata={
        "videos": performances,
        "failures": len(failures),
        "already_stored": skipped,
        "trimmed": int(table["trimmed"].sum() or 0),
        "watermark_masked": int(table["watermark_masked"].sum() or 0),
        "total_seconds": float(table["duration_s"].sum() or 0.0),
        "storage_prefix": MetadataValue.text(object_store.uri(scope.prefix(VIDEOS))),
        "preview_failures": MetadataValue.md(markdown_preview(failure_table)),
    })
    if complete:
        # Dagster stores an output before the generator resumes: these rows are committed now, so the
        # objects of videos no longer part of the challenge can go (a failed run never gets here)
        orphans = object_store.delete_prefix(scope.prefix(VIDEOS), keep=set(table["object_key"]))
        context.log.info(f"{challenge.name}: {orphans} stale objects removed")
