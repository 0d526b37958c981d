"""Row-level invariants (pure functions on known rows) and the asset checks built from them, on real runs."""

from __future__ import annotations

import math

import polars as pl
import pytest
from dagster import AssetKey, AssetSelection, Definitions, define_asset_job

from automation_support import small_challenge
from tiktokfer_assets.assets.subvideos import subvideos
from tiktokfer_assets.assets.videos import videos
from tiktokfer_assets.challenges import load_challenge
from tiktokfer_assets.checks import checks_per_table
from tiktokfer_assets.checks.invariants import (
    attach,
    boxes_outside,
    duplicate_keys,
    missing_values,
    not_positive,
    shared_keys,
    spans_outside,
    unresolved_references,
)
from tiktokfer_assets.checks.videos import VIDEO_CHECKS
from tiktokfer_assets.registry import register_challenge


def test_duplicate_keys_returns_every_copy():
    rows = pl.DataFrame({"video_id": ["a", "b", "a", "c", "a"], "n": [1, 2, 3, 4, 5]})
    assert duplicate_keys(rows, "video_id")["n"].to_list() == [1, 3, 5]
    pairs = pl.DataFrame({"video_id": ["a", "a", "b"], "t": [0.0, 0.5, 0.0]})
    assert duplicate_keys(pairs, ["video_id", "t"]).is_empty()


def test_missing_values_counts_null_and_nan():
    rows = pl.DataFrame({"id": ["a", None, "c", "d"], "x": [1.0, 2.0, math.nan, 4.0]})
    assert missing_values(rows, ["id", "x"])["x"].is_nan().to_list() == [False, True]
    assert missing_values(rows, ["id", "x"]).height == 2


def test_unresolved_references_ignores_null_keys():
    videos = pl.DataFrame({"video_id": ["v1", "v2"]})
    frames = pl.DataFrame({"video_id": ["v1", "vX", "v2", None, "vX"], "t": [0.0, 0.5, 1.0, 1.5, 2.0]})
    assert unresolved_references(frames, videos, "video_id")["t"].to_list() == [0.5, 2.0]
    faces = pl.DataFrame({"vid": ["v2", "v3"]})
    assert unresolved_references(faces, videos, "vid", parent_on="video_id")["vid"].to_list() == ["v3"]


def test_shared_keys_finds_rows_in_both_tables():
    failures = pl.DataFrame({"video_id": ["v1", "v9"], "role": ["performance", "performance"]})
    stored = pl.DataFrame({"video_id": ["v1", "v9"], "role": ["performance", "baseline"]})
    assert shared_keys(failures, stored, ["video_id", "role"])["video_id"].to_list() == ["v1"]


def test_spans_outside_a_duration():
    spans = pl.DataFrame({
        "name": ["ok", "negative", "backwards", "too_long", "rounding", "no_parent"],
        "start_s": [0.0, -0.1, 2.0, 1.0, 1.0, 1.0],
        "end_s": [1.0, 1.0, 1.0, 10.5, 10.0005, 2.0],
        "duration_s": [10.0, 10.0, 10.0, 10.0, 10.0, None],
    })
    assert spans_outside(spans, "start_s", "end_s", "duration_s")["name"].to_list() == [
        "negative", "backwards", "too_long", "no_parent"
    ]
    assert spans_outside(spans, 0.0, "end_s", 10.0, tolerance=0.6)["name"].to_list() == []


def test_attach_brings_the_parent_columns():
    frames = pl.DataFrame({"video_id": ["v1", "v2", "v3"], "timestamp_s": [9.5, 12.0, 1.0]})
    videos = pl.DataFrame({"video_id": ["v1", "v2"], "duration_s": [10.0, 11.0]})
    joined = attach(frames, videos, "video_id", "duration_s")
    assert joined["duration_s"].to_list() == [10.0, 11.0, None]
    assert spans_outside(joined, 0.0, "timestamp_s", "duration_s")["video_id"].to_list() == ["v2", "v3"]


def test_boxes_outside_the_frame():
    faces = pl.DataFrame({
        "face": ["ok", "edge", "right", "empty", "negative", "partial"],
        "box": [[10.0, 10, 50, 60], [0.0, 0, 360.5, 640], [300.0, 10, 400, 60], [10.0, 10, 10, 60], [-5.0, 10, 50, 60],
                [1.0, 2]],
        "width": [360] * 6,
        "height": [640] * 6,
    })
    assert boxes_outside(faces, "box", "width", "height")["face"].to_list() == ["right", "empty", "negative", "partial"]
    split = faces.filter(pl.col("box").list.len() == 4).with_columns(
        pl.col("box").list.to_struct(fields=["x1", "y1", "x2", "y2"])).unnest("box")
    assert boxes_outside(split, ["x1", "y1", "x2", "y2"], 360, 640)["face"].to_list() == ["right", "empty", "negative"]


def test_not_positive():
    rows = pl.DataFrame({"id": ["a", "b", "c", "d"], "fps": [30.0, 0.0, None, 25.0], "width": [1, 2, 3, -1]})
    assert not_positive(rows, ["fps", "width"])["id"].to_list() == ["b", "c", "d"]


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    return small_challenge(tmp_path_factory.mktemp("checks") / "small")


def checks_of(result) -> dict[str, tuple[bool, int]]:
    return {
        e.asset_check_key.to_user_string(): (e.passed, e.metadata["offending_rows"].value)
        for e in result.get_asset_check_evaluations()
    }


@pytest.mark.media
def test_video_checks_pass_on_a_real_run_and_block_on_broken_rows(small, resources, instance):
    challenge = load_challenge(small.challenge_yaml)
    register_challenge(challenge, resources["table_store"], instance)
    defs = Definitions(
        assets=[videos, subvideos],
        asset_checks=checks_per_table(VIDEO_CHECKS),
        jobs=[
            define_asset_job("ingest", selection=AssetSelection.assets("videos", "video_failures")),
            define_asset_job("checks_then_subvideos",
                             selection=AssetSelection.checks_for_assets("videos") | AssetSelection.assets("subvideos")),
        ],
        resources=resources,
    )
    ingested = defs.resolve_job_def("ingest").execute_in_process(partition_key="small", instance=instance)
    checks = checks_of(ingested)
    assert checks["videos:video_id_unique"] == (True, 0)
    assert checks["videos:object_stored"] == (True, 0)
    assert checks["videos:duration_within_cap"] == (True, 0)
    assert all(passed for passed, _ in checks.values()) and len(checks) == 8
    assert resources["table_store"].count("videos", "small") == 3  # baseline + 2 performances

    # break the stored partition: v02's object disappears, v01's row is stored twice
    store, objects = resources["table_store"], resources["object_store"]
    rows = store.read("videos", ["small"])
    objects.delete(rows.filter(pl.col("video_id") == "v02")["object_key"][0])
    store.replace_partition("videos", "small", pl.concat([rows, rows.filter(pl.col("video_id") == "v01")]))

    blocked = defs.resolve_job_def("checks_then_subvideos").execute_in_process(
        partition_key="small", instance=instance, raise_on_error=False
    )
    checks = checks_of(blocked)
    assert checks["videos:object_stored"] == (False, 1)
    assert checks["videos:video_id_unique"] == (False, 2)
    assert checks["videos:required_columns"] == (True, 0)
    failed = {e.asset_check_key.name: e for e in blocked.get_asset_check_evaluations() if not e.passed}
    assert "v02" in failed["object_stored"].metadata["sample"].value
    # blocking: subvideos did not run on the broken videos
    steps = {(e.event_type_value, e.step_key) for e in blocked.all_events if e.step_key}
    assert {step for event, step in steps if event == "STEP_FAILURE"} == {"videos_checks"}
    assert not any(step == "subvideos" for _, step in steps)
    assert instance.get_latest_materialization_event(AssetKey("subvideos")) is None
