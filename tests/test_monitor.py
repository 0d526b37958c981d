"""The trending monitor on a generated feed: obama's video alerts, biden's does not; alerts reach a local webhook.

The monitor's assets (``monitored_videos``, ``alerts``: partitioned by feed) run as the
``trending_monitor`` job; its sensor asks for the feed's partition and the run.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import threading
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from dagster import (
    AddDynamicPartitionsRequest,
    DagsterInstance,
    DagsterRun,
    DagsterRunStatus,
    SensorResult,
    SkipReason,
    build_sensor_context,
)
from PIL import Image

from automation_support import small_challenge
from support.ports import free_ports
from tiktokfer_assets.automation.monitor import DEFAULT_SIMILARITY, MonitorError, monitor_video, reference_embeddings
from tiktokfer_assets.automation.trending import (
    MONITOR_CONFIG_ENV,
    MONITOR_JOB,
    TrendingMonitorConfig,
    alert_rows,
    load_monitor_config,
    trending_monitor_sensor,
)
from tiktokfer_assets.checks.factory import PartitionTables, check_result
from tiktokfer_assets.checks.monitor import MONITOR_TABLE_CHECKS
from tiktokfer_assets.definitions import build_definitions
from tiktokfer_assets.identity.embedders import MobileFaceNetEmbedder
from tiktokfer_assets.media.frames import sample_times
from tiktokfer_assets.media.probe import probe
from tiktokfer_assets.models import MOBILEFACENET_WEIGHTS, RETINAFACE_WEIGHTS
from tiktokfer_assets.partitions import PARTITION_TAG
from tiktokfer_assets.paths import media_dir
from tiktokfer_assets.scope import ChallengeScope
from tiktokfer_assets.tables import conform
from tiktokfer_assets.vision.detector import FaceDetector
from tiktokfer_assets.weights import destination_of

pytestmark = [pytest.mark.media, pytest.mark.slow]

IN_VIDEO = {"obama": ["1.jpg", "2.jpg", "3.jpg"], "biden": None, "lin_manuel_miranda": None}  # None: every photo
REFERENCES = ["4.jpg", "5.jpg"]  # obama photos the video does not contain


def link_photos(dest: Path, person: str, names: list[str] | None) -> None:
    (dest / person).mkdir(parents=True)
    for photo in sorted((media_dir() / "faces" / person).iterdir()):
        if names is None or photo.name in names:
            os.symlink(photo, dest / person / photo.name)


@pytest.fixture(scope="module")
def feed(tmp_path_factory):
    """A generated feed: v01 shows obama (photos 1-3) all along, v02 biden; the watch list holds obama's photos 4-5."""
    root = tmp_path_factory.mktemp("monitor")
    for person, names in IN_VIDEO.items():
        link_photos(root / "photos" / "faces", person, names)
    link_photos(root / "watchlist", "obama", REFERENCES)
    generated = small_challenge(root / "feed", photos_root=root / "photos")
    assert [p["person"] for v in generated.truth["videos"] for p in v["people"]] == ["obama", "biden"]
    return root, generated


@pytest.fixture(scope="module")
def models():
    detector = FaceDetector(destination_of(RETINAFACE_WEIGHTS), "cpu", batch_size=4)
    return detector, MobileFaceNetEmbedder(destination_of(MOBILEFACENET_WEIGHTS), "cpu")


def test_reference_embeddings_are_one_unit_vector_per_photo(feed, models, tmp_path):
    root, _ = feed
    references = reference_embeddings(root / "watchlist", *models)
    assert list(references) == ["obama"] and references["obama"].shape == (2, 256)
    assert np.allclose(np.linalg.norm(references["obama"], axis=1), 1.0, atol=1e-5)

    faceless = tmp_path / "watchlist" / "nobody"
    faceless.mkdir(parents=True)
    Image.new("RGB", (320, 240), (120, 160, 200)).save(faceless / "sky.jpg")
    with pytest.raises(MonitorError, match=r"no face found in reference photos \['sky.jpg'\] of 'nobody'"):
        reference_embeddings(tmp_path / "watchlist", *models)
    with pytest.raises(MonitorError, match="has no person folders"):
        reference_embeddings(tmp_path / "empty", *models)


def test_watch_listed_person_alerts_only_where_present(feed, models):
    root, generated = feed
    references = reference_embeddings(root / "watchlist", *models)
    obama = monitor_video(generated.root / "videos" / "v01.mp4", references, *models)
    biden = monitor_video(generated.root / "videos" / "v02.mp4", references, *models)

    grid = sample_times(probe(generated.root / "videos" / "v01.mp4").duration_s, 0.5, 60.0)
    assert obama.frames_sampled == len(grid) and obama.frames_with_faces == len(grid)
    match = obama.people["obama"]
    assert match.alert and match.share > 0.5 and match.first_seen_s == 0.0
    assert [a.person for a in obama.alerts] == ["obama"]

    assert biden.alerts == [] and biden.frames_with_faces == biden.frames_sampled > 0
    assert biden.people["obama"].frames_matched == 0
    assert biden.people["obama"].best_similarity < DEFAULT_SIMILARITY < match.best_similarity


class Webhook:
    """A local HTTP endpoint recording the JSON bodies POSTed to it."""

    def __init__(self):
        received = self.received = []

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                received.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/alerts"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def webhook():
    hook = Webhook()
    yield hook
    hook.close()


def run_monitor(resources, instance, config: TrendingMonitorConfig):
    """The monitor's job on the config's feed (its partition added first, as the sensor's request makes the daemon)."""
    instance.add_dynamic_partitions("feed", [config.feed])
    job = build_definitions(resources).resolve_job_def(MONITOR_JOB)
    return job.execute_in_process(
        run_config=config.run_config(), partition_key=config.feed, instance=instance, raise_on_error=False
    )


def check_outcomes(result) -> dict[str, bool]:
    return {f"{e.asset_key.to_user_string()}:{e.check_name}": e.passed for e in result.get_asset_check_evaluations()}


def test_trending_monitor_job_stores_logs_and_posts_alerts(feed, resources, instance, webhook, tmp_path):
    root, generated = feed
    (tmp_path / "monitor.yaml").write_text(
        f"feed: fyp\nsource: {{kind: local_folder, path: {generated.root / 'videos'}}}\n"
        f"watchlist_dir: {os.path.relpath(root / 'watchlist', tmp_path)}\nwebhook_url: http://127.0.0.1:{free_ports(1)[0]}/down\n"
    )
    config = load_monitor_config(tmp_path / "monitor.yaml")
    assert config.watchlist_dir == str(root / "watchlist")  # relative to the YAML file

    # the webhook is down: the alert is stored, marked failed, and the run fails so someone sees it
    down = run_monitor(resources, instance, config)
    assert not down.success
    assert [e.asset_key.to_user_string() for e in down.get_asset_materialization_events()] == [
        "monitored_videos", "alerts"
    ]  # alerts materialised (its table is stored) before its step failed on the webhook
    videos_checks = {"monitored_videos:one_row_per_video": True, "monitored_videos:checked_or_failed": True}
    assert check_outcomes(down) == videos_checks  # the alerts' checks wait for a step that succeeds
    store = resources["table_store"]
    alerts = store.read("alerts", ["fyp"])
    assert alerts.select("video_id", "person").rows() == [("v01", "obama")]
    assert alerts["webhook_status"][0].startswith("failed: ")
    monitored = store.read("monitored_videos", ["fyp"]).sort("video_id")
    assert monitored["video_id"].to_list() == ["v01", "v02"]
    alerting = [[m["person"] for m in json.loads(matches) if m["alert"]] for matches in monitored["matches"]]
    assert alerting == [["obama"], []]

    # the next run checks no video again and delivers the pending alert
    up = run_monitor(resources, instance, config.model_copy(update={"webhook_url": webhook.url}))
    assert up.success
    assert check_outcomes(up) == {
        **videos_checks, "alerts:one_alert_per_video_and_person": True, "alerts:video_id_in_monitored_videos": True,
    }
    [posted] = webhook.received
    assert (posted["feed"], posted["video_id"], posted["person"]) == ("fyp", "v01", "obama")
    assert posted["share"] > 0.5 and posted["frames_matched"] == posted["frames_sampled"]
    assert store.read("alerts", ["fyp"])["webhook_status"].to_list() == ["sent"]
    assert store.read("monitored_videos", ["fyp"]).height == 2
    logs = [e.message for e in instance.all_logs(down.run_id) if e.message]
    assert any("ALERT fyp: obama is in" in m and "of v01" in m for m in logs)

    # a third run sends nothing twice
    assert run_monitor(resources, instance, config.model_copy(update={"webhook_url": webhook.url})).success
    assert len(webhook.received) == 1


def test_sensor_asks_for_the_configured_feed_and_its_run(tmp_path, monkeypatch):
    monkeypatch.setenv(MONITOR_CONFIG_ENV, str(tmp_path / "monitor.yaml"))
    with build_sensor_context() as context:
        skipped = trending_monitor_sensor(context)
    assert isinstance(skipped, SkipReason) and "no trending-monitor configuration" in skipped.skip_message

    (tmp_path / "monitor.yaml").write_text(
        "source: {kind: local_folder, path: feed}\nwatchlist_dir: people\nshare: 0.5\nwebhook_url: http://hook\n"
    )
    with DagsterInstance.ephemeral() as instance, build_sensor_context(instance=instance) as context:
        result = trending_monitor_sensor(context)
    assert result.dynamic_partitions_requests == [AddDynamicPartitionsRequest("feed", ["trending"])]
    [request] = result.run_requests
    ops = request.run_config["ops"]
    config = ops["monitored_videos"]["config"]
    assert request.partition_key == "trending" and ops["alerts"]["config"] == {"webhook_url": "http://hook"}
    assert config["source"] == {"kind": "local_folder", "path": str(tmp_path / "feed")}
    assert (config["watchlist_dir"], config["share"]) == (str(tmp_path / "people"), 0.5)


@pytest.mark.parametrize("status", [DagsterRunStatus.STARTED, DagsterRunStatus.CANCELING])  # QUEUED needs an origin
def test_sensor_requests_no_run_for_a_feed_whose_run_is_unfinished(tmp_path, monkeypatch, status):
    monkeypatch.setenv(MONITOR_CONFIG_ENV, str(tmp_path / "monitor.yaml"))

    def tick(feed: str, instance: DagsterInstance) -> SensorResult | SkipReason:
        (tmp_path / "monitor.yaml").write_text(f"feed: {feed}\nsource: {{kind: local_folder, path: f}}\n"
                                               "watchlist_dir: people\n")
        with build_sensor_context(instance=instance) as context:
            return trending_monitor_sensor(context)

    with DagsterInstance.ephemeral() as instance:
        run = instance.add_run(DagsterRun(job_name=MONITOR_JOB, run_id=str(uuid.uuid4()), status=status,
                                          tags={PARTITION_TAG: "trending"}))
        skipped = tick("trending", instance)
        assert isinstance(skipped, SkipReason), skipped
        assert f"run {run.run_id} of feed 'trending' is {status.value.lower()}" in skipped.skip_message
        assert [r.partition_key for r in tick("other", instance).run_requests] == ["other"]
        instance.report_run_failed(run)
        assert [r.partition_key for r in tick("trending", instance).run_requests] == ["trending"]


def test_alerts_come_from_the_alerting_matches_and_checks_catch_bad_rows(resources):
    """Only matches that alert become alerts (with the video's check time); a row with neither frames nor an error,
    and an alert of an unchecked video, fail their blocking checks."""
    when = dt.datetime(2026, 1, 2, tzinfo=dt.timezone.utc)
    match = {"frames_matched": 4, "share": 0.5, "best_similarity": 0.7, "first_seen_s": 1.0}
    monitored = conform("monitored_videos", [
        {"video_id": "a", "url": "u/a", "frames_sampled": 8, "checked_at": when, "matches": json.dumps([
            {"person": "obama", **match, "alert": True}, {"person": "biden", **match, "alert": False}])},
        {"video_id": "b", "url": "u/b", "checked_at": when},  # neither frames nor an error
    ])
    alerts = alert_rows(monitored)
    assert alerts.select("video_id", "person", "frames_sampled", "alerted_at").rows() == [("a", "obama", 8, when)]
    assert alerts["webhook_status"].to_list() == [None]

    store = resources["table_store"]
    store.replace_partition("monitored_videos", "fyp", monitored)
    store.replace_partition("alerts", "fyp", pl.concat([alerts, alerts.with_columns(video_id=pl.lit("z"))]))
    tables = PartitionTables(ChallengeScope("fyp", store), resources["object_store"])
    outcomes = {c.name: check_result(c, tables, logging.getLogger("test")) for c in MONITOR_TABLE_CHECKS}
    assert {name: result.passed for name, result in outcomes.items()} == {
        "one_row_per_video": True, "checked_or_failed": False,
        "one_alert_per_video_and_person": True, "video_id_in_monitored_videos": False,
    }
    assert outcomes["checked_or_failed"].metadata["offending_rows"].value == 1
