"""The videos asset on the generated challenge: rows, failures, durations, idempotence."""

from __future__ import annotations

import shutil

import polars as pl
import pytest
from dagster import materialize

from support.results import step_failure_text
from tiktokfer_assets.assets.videos import videos
from tiktokfer_assets.challenges import load_challenge
from tiktokfer_assets.media.probe import probe
from tiktokfer_assets.registry import register_challenge
from tiktokfer_assets.testkit.generator import build_challenge
from tiktokfer_assets.weights import sha256_of

pytestmark = [pytest.mark.media, pytest.mark.slow]


def run_videos(resources, instance, challenge="demo"):
    return materialize([videos], partition_key=challenge, resources=resources, instance=instance)


def stored_objects(store, challenge="demo"):
    return {key: sha256_of(store.uri(key)) for key in store.list_keys(f"videos/{challenge}/")}


def test_every_good_video_is_a_row_with_its_duration_and_size(generated, resources, instance, registered):
    assert run_videos(resources, instance).success
    rows = resources["table_store"].read("videos", ["demo"])
    truth = {v["video_id"]: v for v in generated.truth["videos"]}
    good = {vid for vid, v in truth.items() if not v["corrupt"]}
    assert set(rows.filter(pl.col("role") == "performance")["video_id"]) == good
    assert rows.filter(pl.col("role") == "baseline")["video_id"].to_list() == ["baseline"]

    for row in rows.iter_rows(named=True):
        if row["role"] == "baseline":
            continue
        expected = truth[row["video_id"]]
        assert abs(row["original_duration_s"] - expected["duration_s"]) < 0.1, row["video_id"]
        assert row["duration_s"] <= registered.max_video_seconds + 0.1
        width, height = (
            (720, 640) if len(expected["people"]) == 2 else (640, 360) if expected["sideways"] else (360, 640)
        )
        assert (row["width"], row["height"]) == (width, height), row["video_id"]
        assert row["has_audio"] == expected["has_audio"]
        stored = resources["object_store"].uri(row["object_key"])
        assert row["object_key"] == f"videos/demo/{row['video_id']}/video.mp4"
        assert row["size_bytes"] == len(open(stored, "rb").read())
        assert row["sha256"] == sha256_of(stored)
        assert abs(probe(stored).duration_s - row["duration_s"]) < 0.01

    long_video = rows.filter(pl.col("video_id") == "v08").row(0, named=True)
    assert long_video["trimmed"] and long_video["original_duration_s"] > registered.max_video_seconds
    assert registered.max_video_seconds - 0.5 <= long_video["duration_s"] <= registered.max_video_seconds + 0.1


def test_corrupt_video_goes_to_failures_with_a_reason(generated, resources, instance, registered):
    assert run_videos(resources, instance).success
    failures = resources["table_store"].read("video_failures", ["demo"])
    assert failures["video_id"].to_list() == ["v09"]
    failure = failures.row(0, named=True)
    assert failure["stage"] == "probe"
    assert "moov atom not found" in failure["reason"] or "Invalid data" in failure["reason"]
    assert not resources["object_store"].list_keys("videos/demo/v09")


def test_rerun_changes_nothing(generated, resources, instance, registered):
    assert run_videos(resources, instance).success
    store = resources["table_store"]
    first_rows = store.read("videos", ["demo"]).sort("video_id")
    first_objects = stored_objects(resources["object_store"])

    result = run_videos(resources, instance)
    assert result.success
    second_rows = store.read("videos", ["demo"]).sort("video_id")
    assert second_rows.height == first_rows.height
    assert second_rows.drop("downloaded_at").equals(first_rows.drop("downloaded_at"))
    assert second_rows["downloaded_at"].to_list() == first_rows["downloaded_at"].to_list()  # nothing re-fetched
    assert stored_objects(resources["object_store"]) == first_objects
    metadata = result.asset_materializations_for_node("videos")[-1].metadata
    assert metadata["already_stored"].value == first_rows.height


def test_changed_and_removed_files_are_picked_up(generated, tmp_path, resources, instance):
    # a private copy of the folder, so the session's generated challenge stays intact
    folder = tmp_path / "challenge"
    shutil.copytree(generated.root, folder)
    challenge = load_challenge(folder / "challenge.yaml")
    register_challenge(challenge, resources["table_store"], instance)
    assert run_videos(resources, instance).success
    before = resources["table_store"].read("videos", ["demo"])

    shutil.copyfile(folder / "videos" / "v02.mp4", folder / "videos" / "v01.mp4")  # v01's content changes
    (folder / "videos" / "v03.mp4").unlink()  # v03 leaves the challenge
    assert run_videos(resources, instance).success
    after = resources["table_store"].read("videos", ["demo"])

    assert "v03" not in after["video_id"].to_list()
    assert not resources["object_store"].list_keys("videos/demo/v03/")
    changed = after.filter(pl.col("video_id") == "v01").row(0, named=True)
    v02 = after.filter(pl.col("video_id") == "v02").row(0, named=True)
    assert changed["sha256"] == v02["sha256"] != before.filter(pl.col("video_id") == "v01")["sha256"][0]
    assert after.height == before.height - 1


def test_unregistered_challenge_fails_clearly(resources, instance):
    instance.add_dynamic_partitions("challenge", ["nobody"])
    result = materialize([videos], partition_key="nobody", resources=resources, instance=instance, raise_on_error=False)
    assert not result.success
    message = step_failure_text(result)
    assert "not registered" in message and "tiktokfer challenge add" in message


def test_partition_fails_only_when_nothing_could_be_ingested(tmp_path, generated, resources, instance):
    out = build_challenge(tmp_path / "broken", name="broken", seed=3, plans=[], max_video_seconds=20)
    (out.root / "videos" / "junk.mp4").write_text("not a video at all")
    register_challenge(load_challenge(out.challenge_yaml), resources["table_store"], instance)
    result = materialize([videos], partition_key="broken", resources=resources, instance=instance, raise_on_error=False)
    assert not result.success
    assert "none of the 1 videos could be ingested" in step_failure_text(result)
    failures = resources["table_store"].read("video_failures", ["broken"])
    assert failures["video_id"].to_list() == ["junk"]  # the failure is kept even though the partition failed
