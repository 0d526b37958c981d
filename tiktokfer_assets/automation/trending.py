"""The trending monitor: alert when a watch-listed person is in the latest videos of a feed.

Two assets partitioned by feed (``feed_partitions``), in the ``monitor`` group:

- ``monitored_videos`` lists the latest ``latest`` videos of the feed (any video source,
  as a challenge's ``source:``), skips those it already checked, samples each new one's
  frames, detects and embeds the faces on the GPU resource, and compares them with the
  watch list's reference photos (:func:`monitor_video`). Every checked video gets a row
  (with each watch-listed person's match as JSON), so a video is processed once.
- ``alerts`` reads ``monitored_videos``: a person who is in at least ``share`` of a
  video's frames raises an alert, a row (one per video and person), a warning in the
  run's log and, when ``webhook_url`` is set, a JSON POST. An alert whose webhook failed
  stays ``failed: ...`` and is re-sent by the next materialisation (the run fails after
  storing the table, so the failure is seen); materialising ``alerts`` alone re-sends
  without checking any video.

Their asset checks are in :mod:`tiktokfer_assets.checks.monitor`. The ``trending_monitor``
job materialises both for one feed. ``trending_monitor_sensor`` (every 30 minutes,
stopped by default) reads the configuration in ``$TIKTOKFER_MONITOR_CONFIG`` (default
``monitor.yaml`` of the repository), asks for the feed's partition and requests the run,
unless a run of the feed is still queued, in progress or being cancelled (the tick is
skipped, its reason naming that run)::

    feed: trending
    source: {kind: yt_dlp, urls: ["https://www.tiktok.com/tag/fyp"]}
    watchlist_dir: watchlist          # watchlist/<person>/<photo>.jpg
    latest: 20
    share: 0.3333                     # the tutorial's one third
    webhook_url: https://hooks.example.org/tiktokfer
"""

import datetime as dt
import json
import os
import tempfile
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import polars as pl
import yaml
from dagster import (
    AssetExecutionContext,
    AssetSelection,
    Config,
    DefaultSensorStatus,
    Failure,
    Output,
    RunConfig,
    RunRequest,
    SensorEvaluationContext,
    SensorResult,
    SkipReason,
    asset,
    define_asset_job,
    sensor,
)
from pydantic import TypeAdapter

from tiktokfer_assets.automation.jobs import MONITOR_GROUP
from tiktokfer_assets.automation.monitor import (
    DEFAULT_SHARE,
    DEFAULT_SIMILARITY,
    MonitorResult,
    monitor_video,
    reference_embeddings,
)
from tiktokfer_assets.challenges import SourceSpec
from tiktokfer_assets.media.frames import FrameExtractionError
from tiktokfer_assets.models import MOBILEFACENET_WEIGHTS, RETINAFACE_WEIGHTS
from tiktokfer_assets.partitions import feed_partitions, unfinished_run
from tiktokfer_assets.paths import PROJECT_ROOT
from tiktokfer_assets.resources.gpu import GPU_OP_TAGS, GPU_POOL, GpuResource
from tiktokfer_assets.resources.table_store import TableStore
from tiktokfer_assets.resources.video_source import VideoSourceResource
from tiktokfer_assets.sources.base import FetchError
from tiktokfer_assets.tables import conform
from tiktokfer_assets.weights import require_file

MONITOR_CONFIG_ENV = "TIKTOKFER_MONITOR_CONFIG"
WEBHOOK_TIMEOUT_S = 10.0
MONITOR_JOB = "trending_monitor"
MONITOR_INTERVAL_S = 30 * 60
MATCH_FIELDS = ("person", "frames_matched", "share", "best_similarity", "first_seen_s")
"""What ``monitored_videos.matches`` keeps of each person's match (with ``alert``), copied into an alert."""


class MonitoredVideosConfig(Config):
    source: dict[str, Any]
    """A video source, as a challenge's ``source:`` (local_folder, yt_dlp, url_list)."""
    watchlist_dir: str
    """Reference photos: ``<watchlist_dir>/<person>/<photo>.jpg``, one face per photo."""
    latest: int = 20
    """How many of the feed's first-listed (latest) videos each run looks at."""
    every_s: float = 0.5
    share: float = DEFAULT_SHARE
    """Alert when a person is in at least this share of a video's sampled frames."""
    similarity_threshold: float = DEFAULT_SIMILARITY
    max_seconds: float = 60.0


class AlertsConfig(Config):
    webhook_url: str | None = None
    """POST each alert as JSON here (optional)."""


class TrendingMonitorConfig(MonitoredVideosConfig, AlertsConfig):
    """The monitor's YAML file: the feed (the assets' partition) and both assets' configuration."""

    feed: str = "trending"

    def run_config(self) -> RunConfig:
        videos = self.model_dump(include=set(MonitoredVideosConfig.model_fields))
        return RunConfig(ops={
            "monitored_videos": MonitoredVideosConfig(**videos), "alerts": AlertsConfig(webhook_url=self.webhook_url),
        })


def matches_json(result: MonitorResult) -> str:
    """Each watch-listed person's match of one video (``monitored_videos.matches``)."""
    return json.dumps([
        {**{field: getattr(match, field) for field in MATCH_FIELDS}, "alert": match.alert}
        for match in result.people.values()
    ])


def alert_rows(monitored: pl.DataFrame) -> pl.DataFrame:
    """One ``alerts`` row per video and person whose match alerts, alerted when the video was checked (webhook not
    tried yet)."""
    videos = conform("monitored_videos", monitored).filter(pl.col("matches").is_not_null())
    return conform("alerts", [
        {"video_id": video["video_id"], "url": video["url"], "frames_sampled": video["frames_sampled"],
         **{field: match[field] for field in MATCH_FIELDS}, "alerted_at": video["checked_at"], "webhook_status": None}
        for video in videos.iter_rows(named=True) for match in json.loads(video["matches"]) if match["alert"]
    ])


def webhook_payload(feed: str, alert: dict) -> dict:
    return {"feed": feed, **alert, "alerted_at": alert["alerted_at"].isoformat()}


def post_json(url: str, payload: dict, timeout_s: float = WEBHOOK_TIMEOUT_S) -> None:
    """POST ``payload`` as JSON; raises ``OSError`` (``URLError``, ``HTTPError``, timeouts) on failure."""
    request = urllib.request.Request(
        url, json.dumps(payload).encode(), {"Content-Type": "application/json"}, method="POST"
    )
    with urllib.request.urlopen(request, timeout=timeout_s) as response:
        response.read()


def deliver(feed: str, alerts: pl.DataFrame, webhook_url: str | None) -> pl.DataFrame:
    """``alerts`` with ``webhook_status`` set for every alert not delivered yet (new or failed before)."""
    def status(row: dict) -> str:
        previous = row["webhook_status"]
        if previous is not None and not previous.startswith("failed"):
            return previous  # sent, or raised while no webhook was configured
        if webhook_url is None:
            return "not configured"
        try:
            post_json(webhook_url, webhook_payload(feed, row))
        except OSError as exc:
            return f"failed: {exc}"
        return "sent"

    return alerts.with_columns(
        webhook_status=pl.Series([status(row) for row in alerts.iter_rows(named=True)], dtype=pl.String)
    )


@asset(
    partitions_def=feed_partitions,
    io_manager_key="table_io_manager",
    group_name=MONITOR_GROUP,
    kinds={"polars", "pytorch"},
    pool=GPU_POOL,
    op_tags=GPU_OP_TAGS,
    description=(
        "One row per video of the feed checked against the watch list: frames sampled, frames with faces, "
        "each watch-listed person's match (or why it could not be checked)."
    ),
)
def monitored_videos(
    context: AssetExecutionContext,
    config: MonitoredVideosConfig,
    video_sources: VideoSourceResource,
    table_store: TableStore,
    gpu: GpuResource,
) -> pl.DataFrame:
    from tiktokfer_assets.identity.embedders import MobileFaceNetEmbedder  # torch: only this step imports it
    from tiktokfer_assets.vision.detector import FaceDetector

    feed = context.partition_key
    source = video_sources.for_source(TypeAdapter(SourceSpec).validate_python(config.source))
    detector = gpu.model(
        "monitor:retinaface", lambda device, batch: FaceDetector(require_file(RETINAFACE_WEIGHTS), device, batch)
    )
    embedder = gpu.model(
        "monitor:mobilefacenet",
        lambda device, batch: MobileFaceNetEmbedder(require_file(MOBILEFACENET_WEIGHTS), device, batch),
    )
    references = reference_embeddings(config.watchlist_dir, detector, embedder)
    stored = conform("monitored_videos", table_store.read("monitored_videos", [feed]))
    seen = set(stored["video_id"].to_list())
    refs = [ref for ref in source.list_videos(config.latest) if ref.video_id not in seen]
    context.log.info(f"{feed}: {len(refs)} new of the latest {config.latest} videos; watch list: {sorted(references)}")

    checked = []
    with tempfile.TemporaryDirectory(prefix="tiktokfer-monitor-") as tmp:
        for ref in refs:
            row = {"video_id": ref.video_id, "url": ref.url, "checked_at": dt.datetime.now(dt.timezone.utc)}
            try:
                fetched = source.fetch(ref, Path(tmp))
                result = monitor_video(fetched.path, references, detector, embedder, config.every_s, config.share,
                                       config.similarity_threshold, max_seconds=config.max_seconds)
                fetched.path.unlink()
            except (FetchError, FrameExtractionError) as exc:
                context.log.warning(f"{feed}/{ref.video_id}: not checked: {exc}")
                checked.append({**row, "error": str(exc)})
                continue
            checked.append({**row, "frames_sampled": result.frames_sampled,
                            "frames_with_faces": result.frames_with_faces, "matches": matches_json(result)})
    context.add_output_metadata({"videos_checked": len(checked)})
    return pl.concat([stored, conform("monitored_videos", checked)])


@asset(
    partitions_def=feed_partitions,
    io_manager_key="table_io_manager",
    group_name=MONITOR_GROUP,
    kinds={"polars"},
    description=(
        "One row per video and watch-listed person in at least `share` of its frames: the match, when it was "
        "alerted, the webhook's status."
    ),
)
def alerts(
    context: AssetExecutionContext, config: AlertsConfig, monitored_videos: pl.DataFrame, table_store: TableStore
) -> Iterator[Output[pl.DataFrame]]:
    feed = context.partition_key
    stored = conform("alerts", table_store.read("alerts", [feed]))
    new = alert_rows(monitored_videos).join(stored, on=["video_id", "person"], how="anti")
    for alert in new.iter_rows(named=True):
        context.log.warning(
            f"ALERT {feed}: {alert['person']} is in {alert['frames_matched']}/{alert['frames_sampled']} frames "
            f"({alert['share']:.0%}) of {alert['video_id']} ({alert['url']})"
        )
    found = pl.concat([stored, new])
    table_store.replace_partition("alerts", feed, found)  # stored before any delivery, so none is lost
    delivered = deliver(feed, found, config.webhook_url)
    failed = delivered.filter(pl.col("webhook_status").str.starts_with("failed"))
    yield Output(delivered, metadata={"new_alerts": new.height, "webhook_failures": failed.height})
    if failed.height:
        raise Failure(
            f"{failed.height} alerts stored but not delivered to the webhook (re-sent by the next run): "
            + "; ".join(failed["webhook_status"].unique().to_list())
        )


trending_monitor = define_asset_job(
    MONITOR_JOB,
    selection=AssetSelection.groups(MONITOR_GROUP),
    description="Alert when a watch-listed person is in the latest videos of a feed (trending monitor).",
)


def monitor_config_path() -> Path:
    value = os.environ.get(MONITOR_CONFIG_ENV)
    return Path(value).expanduser().resolve() if value else PROJECT_ROOT / "monitor.yaml"


def load_monitor_config(path: Path) -> TrendingMonitorConfig:
    """The YAML configuration at ``path``; relative paths in it are relative to its folder."""
    config = TrendingMonitorConfig(**yaml.safe_load(path.read_text()))

    def resolve(value: str) -> str:
        return str((path.parent / Path(value).expanduser()).resolve())

    source = config.source
    if source.get("kind") in ("local_folder", "url_list") and "path" in source:
        source = {**source, "path": resolve(source["path"])}
    return config.model_copy(update={"watchlist_dir": resolve(config.watchlist_dir), "source": source})


@sensor(
    job=trending_monitor,
    minimum_interval_seconds=MONITOR_INTERVAL_S,
    default_status=DefaultSensorStatus.STOPPED,
    description=(
        f"Runs the trending monitor every {MONITOR_INTERVAL_S // 60} minutes with the configuration in "
        f"${MONITOR_CONFIG_ENV} (default monitor.yaml), adding its feed's partition; not while a run of the "
        "feed is unfinished."
    ),
)
def trending_monitor_sensor(context: SensorEvaluationContext) -> SensorResult | SkipReason:
    path = monitor_config_path()
    if not path.is_file():
        return SkipReason(f"no trending-monitor configuration at {path} (set ${MONITOR_CONFIG_ENV})")
    config = load_monitor_config(path)
    active = unfinished_run(context.instance, config.feed)
    if active:
        run = active.dagster_run
        return SkipReason(f"run {run.run_id} of feed {config.feed!r} is {run.status.value.lower()}; "
                          "its next run is requested once it ends")
    return SensorResult(
        run_requests=[RunRequest(partition_key=config.feed, run_config=config.run_config())],
        dynamic_partitions_requests=[feed_partitions.build_add_request([config.feed])],
    )
