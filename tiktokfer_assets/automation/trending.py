"""The trending monitor: alert when a watch-listed person is in the latest videos of a feed.

``trending_monitor`` (a job) lists the latest ``latest`` videos of a feed (any video
source, as a challenge's ``source:``), skips those it already checked, samples each
new one's frames, detects and embeds the faces on the GPU resource, and compares
them with the watch list's reference photos (:func:`monitor_video`). A person who
is in at least ``share`` of a video's frames raises an alert: a row of the
``alerts`` table, a warning in the run's log and, when ``webhook_url`` is set, a
JSON POST. An alert whose webhook failed stays ``failed: ...`` and is re-sent by
the next run (the run fails, so the failure is seen). Every checked video gets a
``monitored_videos`` row, so a video is processed once.

``trending_monitor_schedule`` launches it every 30 minutes (stopped by default) with
the configuration in ``$TIKTOKFER_MONITOR_CONFIG`` (default ``monitor.yaml`` of the
repository)::

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
from pathlib import Path
from typing import Any

import polars as pl
import yaml
from dagster import (
    Config,
    DefaultScheduleStatus,
    Failure,
    OpExecutionContext,
    RunConfig,
    RunRequest,
    ScheduleEvaluationContext,
    SkipReason,
    job,
    op,
    schedule,
)
from pydantic import TypeAdapter

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
from tiktokfer_assets.paths import PROJECT_ROOT
from tiktokfer_assets.resources.gpu import GpuResource
from tiktokfer_assets.resources.table_store import TableStore
from tiktokfer_assets.resources.video_source import VideoSourceResource
from tiktokfer_assets.sources.base import FetchError, VideoRef
from tiktokfer_assets.tables import conform
from tiktokfer_assets.weights import require_file

MONITOR_CONFIG_ENV = "TIKTOKFER_MONITOR_CONFIG"
WEBHOOK_TIMEOUT_S = 10.0


class TrendingMonitorConfig(Config):
    feed: str = "trending"
    """The feed's name: the monitor's tables are partitioned by it."""
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
    webhook_url: str | None = None
    """POST each alert as JSON here (optional)."""


def alert_rows(ref: VideoRef, result: MonitorResult, now: dt.datetime) -> list[dict]:
    """One ``alerts`` row per person the result alerts on (webhook not tried yet)."""
    return [{
        "video_id": ref.video_id, "url": ref.url, "person": match.person,
        "frames_matched": match.frames_matched, "frames_sampled": match.frames_sampled, "share": match.share,
        "best_similarity": match.best_similarity, "first_seen_s": match.first_seen_s,
        "alerted_at": now, "webhook_status": None,
    } for match in result.alerts]


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


@op(description="Check the feed's latest videos against the watch list; store, log and post alerts.")
def monitor_trending_videos(
    context: OpExecutionContext,
    config: TrendingMonitorConfig,
    video_sources: VideoSourceResource,
    table_store: TableStore,
    gpu: GpuResource,
) -> None:
    from tiktokfer_assets.identity.embedders import MobileFaceNetEmbedder  # torch: only this op imports it
    from tiktokfer_assets.vision.detector import FaceDetector

    feed = config.feed
    source = video_sources.for_source(TypeAdapter(SourceSpec).validate_python(config.source))
    detector = gpu.model(
        "monitor:retinaface", lambda device, batch: FaceDetector(require_file(RETINAFACE_WEIGHTS), device, batch)
    )
    embedder = gpu.model(
        "monitor:mobilefacenet",
        lambda device, batch: MobileFaceNetEmbedder(require_file(MOBILEFACENET_WEIGHTS), device, batch),
    )
    references = reference_embeddings(config.watchlist_dir, detector, embedder)
    monitored = table_store.read("monitored_videos", [feed])
    seen = set(monitored["video_id"].to_list())
    refs = [ref for ref in source.list_videos(config.latest) if ref.video_id not in seen]
    context.log.info(f"{feed}: {len(refs)} new of the latest {config.latest} videos; watch list: {sorted(references)}")

    checked, new_alerts = [], []
    with tempfile.TemporaryDirectory(prefix="tiktokfer-monitor-") as tmp:
        for ref in refs:
            now = dt.datetime.now(dt.timezone.utc)
            row = {"video_id": ref.video_id, "url": ref.url, "checked_at": now}
            try:
                fetched = source.fetch(ref, Path(tmp))
                result = monitor_video(fetched.path, references, detector, embedder, config.every_s, config.share,
                                       config.similarity_threshold, max_seconds=config.max_seconds)
                fetched.path.unlink()
            except (FetchError, FrameExtractionError) as exc:
                context.log.warning(f"{feed}/{ref.video_id}: not checked: {exc}")
                checked.append({**row, "error": str(exc)})
                continue
            checked.append(
                {**row, "frames_sampled": result.frames_sampled, "frames_with_faces": result.frames_with_faces}
            )
            for alert in alert_rows(ref, result, now):
                context.log.warning(
                    f"ALERT {feed}: {alert['person']} is in {alert['frames_matched']}/{alert['frames_sampled']} frames "
                    f"({alert['share']:.0%}) of {ref.video_id} ({ref.url})"
                )
                new_alerts.append(alert)

    monitored = pl.concat([conform("monitored_videos", monitored), conform("monitored_videos", checked)])
    table_store.replace_partition("monitored_videos", feed, monitored)
    alerts = pl.concat([conform("alerts", table_store.read("alerts", [feed])), conform("alerts", new_alerts)])
    alerts = alerts.unique(["video_id", "person"], keep="first", maintain_order=True)
    table_store.replace_partition("alerts", feed, alerts)  # stored before any delivery, so none is lost
    delivered = deliver(feed, alerts, config.webhook_url)
    table_store.replace_partition("alerts", feed, delivered)

    failed = delivered.filter(pl.col("webhook_status").str.starts_with("failed"))
    context.add_output_metadata(
        {"videos_checked": len(checked), "new_alerts": len(new_alerts), "webhook_failures": failed.height}
    )
    if failed.height:
        raise Failure(
            f"{failed.height} alerts stored but not delivered to the webhook (re-sent by the next run): "
            + "; ".join(failed["webhook_status"].unique().to_list())
        )


@job(description="Alert when a watch-listed person is in the latest videos of a feed (trending monitor).")
def trending_monitor():
    monitor_trending_videos()


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


@schedule(
    job=trending_monitor,
    cron_schedule="*/30 * * * *",
    default_status=DefaultScheduleStatus.STOPPED,
    description=f"Runs the trending monitor with the configuration in ${MONITOR_CONFIG_ENV} (default monitor.yaml).",
)
def trending_monitor_schedule(context: ScheduleEvaluationContext):
    path = monitor_config_path()
    if not path.is_file():
        return SkipReason(f"no trending-monitor configuration at {path} (set ${MONITOR_CONFIG_ENV})")
    return RunRequest(run_config=RunConfig(ops={"monitor_trending_videos": load_monitor_config(path)}))
