"""The videos asset under bad input and faults: stored media survive failed runs, odd entries become failures."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import polars as pl
import pytest
import yaml
from dagster import materialize

from support.results import step_failure_text
from support.video_server import Route, serve_videos
from tiktokfer_assets.assets.videos import videos
from tiktokfer_assets.challenges import load_challenge
from tiktokfer_assets.registry import register_challenge
from tiktokfer_assets.resources.video_source import VideoSourceResource
from tiktokfer_assets.sources.base import VideoRef
from tiktokfer_assets.sources.ytdlp import YtDlpSource
from tiktokfer_assets.weights import sha256_of

pytestmark = [pytest.mark.media, pytest.mark.slow]


@pytest.fixture
def folder(generated, tmp_path) -> Path:
    """A private copy of the generated challenge with two performances (v01, v02)."""
    root = tmp_path / "small"
    (root / "videos").mkdir(parents=True)
    shutil.copyfile(generated.root / "baseline.mp4", root / "baseline.mp4")
    for vid in ("v01", "v02"):
        shutil.copyfile(generated.root / "videos" / f"{vid}.mp4", root / "videos" / f"{vid}.mp4")
    definition = yaml.safe_load(generated.challenge_yaml.read_text())
    definition["name"] = "small"
    (root / "challenge.yaml").write_text(yaml.safe_dump(definition))
    return root


def register(folder: Path, resources, instance, **changes):
    path = folder / "challenge.yaml"
    if changes:
        path.write_text(yaml.safe_dump({**yaml.safe_load(path.read_text()), **changes}))
    register_challenge(load_challenge(path), resources["table_store"], instance)


def run(resources, instance, partition="small"):
    return materialize([videos], partition_key=partition, resources=resources, instance=instance, raise_on_error=False)


def rows_point_to_stored_objects(resources, partition="small") -> pl.DataFrame:
    rows = resources["table_store"].read("videos", [partition])
    assert rows.height > 0
    missing = [key for key in rows["object_key"] if not resources["object_store"].exists(key)]
    assert missing == [], f"rows point to missing objects: {missing}"
    return rows


def test_a_failed_run_deletes_no_stored_video(folder, resources, instance):
    register(folder, resources, instance)
    assert run(resources, instance).success
    before = rows_point_to_stored_objects(resources)
    for vid in ("v01", "v02"):  # every performance becomes unreadable
        (folder / "videos" / f"{vid}.mp4").write_text("not a video any more")
    failed = run(resources, instance)
    assert not failed.success and "none of the 2 videos could be ingested" in step_failure_text(failed)
    after = rows_point_to_stored_objects(resources)
    assert after.sort("video_id").equals(before.sort("video_id"))  # the old rows, every object still there


@dataclass(frozen=True)
class _UserPage(YtDlpSource):
    """A user page on loopback that lists v01 and v02, or (at ``/down``) fails to list: a 503 of the platform."""

    def list_videos(self, limit):
        page = self.urls[0]
        base = page.rsplit("/", 1)[0]
        if page.endswith("/down"):
            return [VideoRef("someone", page, {"listing_error": "HTTP Error 503"}), VideoRef("v02", base + "/v02.mp4")]
        return [VideoRef(vid, f"{base}/{vid}.mp4") for vid in ("v01", "v02")]


class _UserPages(VideoSourceResource):
    def for_challenge(self, challenge):
        return _UserPage(challenge.source.urls)


def test_an_incomplete_listing_keeps_the_stored_videos_it_did_not_list(folder, generated, resources, instance):
    routes = {f"/{vid}.mp4": Route((folder / "videos" / f"{vid}.mp4").read_bytes()) for vid in ("v01", "v02")}
    with serve_videos(routes) as server:
        resources = {**resources, "video_sources": _UserPages(max_attempts=1)}
        register(folder, resources, instance, source={"kind": "yt_dlp", "urls": [server.url("/@someone")]})
        assert run(resources, instance).success
        before = rows_point_to_stored_objects(resources)
        register(folder, resources, instance, source={"kind": "yt_dlp", "urls": [server.url("/down")]})
        assert run(resources, instance).success
    after = rows_point_to_stored_objects(resources)
    assert set(after["video_id"]) == set(before["video_id"]) == {"baseline", "v01", "v02"}
    failures = resources["table_store"].read("video_failures", ["small"])
    assert failures["video_id"].to_list() == ["someone"]


def test_a_performance_named_like_the_baseline_never_overwrites_it(folder, resources, instance):
    shutil.copyfile(folder / "videos" / "v02.mp4", folder / "videos" / "baseline.mp4")
    register(folder, resources, instance)
    assert run(resources, instance).success
    rows = rows_point_to_stored_objects(resources)
    baseline = rows.filter(pl.col("video_id") == "baseline")
    assert baseline["role"].to_list() == ["baseline"]
    assert baseline["source_sha256"][0] == sha256_of(folder / "baseline.mp4")
    assert sha256_of(resources["object_store"].uri(baseline["object_key"][0])) == baseline["sha256"][0]
    failure = resources["table_store"].read("video_failures", ["small"]).row(0, named=True)
    assert (failure["video_id"], failure["role"], failure["stage"]) == ("baseline", "performance", "list")
    assert "baseline" in failure["reason"] and "rename" in failure["reason"]

    (folder / "videos" / "baseline.mp4").unlink()
    assert run(resources, instance).success
    assert resources["table_store"].read("video_failures", ["small"]).is_empty()
    assert rows_point_to_stored_objects(resources).height == 3


def test_a_changed_baseline_is_ingested_again(folder, resources, instance):
    register(folder, resources, instance)
    assert run(resources, instance).success
    shutil.copyfile(folder / "videos" / "v01.mp4", folder / "other_baseline.mp4")  # same prompts' sound
    register(folder, resources, instance, baseline={"path": "other_baseline.mp4", "video_id": "baseline"})
    assert run(resources, instance).success
    baseline = rows_point_to_stored_objects(resources).filter(pl.col("role") == "baseline").row(0, named=True)
    assert baseline["source_sha256"] == sha256_of(folder / "other_baseline.mp4")


def test_odd_entries_of_a_folder_are_failures_and_the_rest_goes_on(folder, resources, instance):
    videos_dir = folder / "videos"
    shutil.copyfile(videos_dir / "v01.mp4", videos_dir / "V01.mov")  # normalises to v01 as well
    (videos_dir / "gone.mp4").symlink_to(folder / "nowhere.mp4")  # dangling
    (videos_dir / "dir.mp4").mkdir()
    register(folder, resources, instance)
    assert run(resources, instance).success
    rows = rows_point_to_stored_objects(resources)
    assert set(rows["video_id"]) == {"baseline", "v02"}
    failed = resources["table_store"].read("video_failures", ["small"])
    failures = {r["video_id"]: r for r in failed.iter_rows(named=True)}
    assert set(failures) == {"v01", "gone", "dir"}
    assert "V01.mov" in failures["v01"]["reason"] and "v01.mp4" in failures["v01"]["reason"]
    assert "not a readable file" in failures["gone"]["reason"]
    assert "not a readable file" in failures["dir"]["reason"]
    assert {f["stage"] for f in failures.values()} == {"list"}
