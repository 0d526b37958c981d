"""frames and faces on the generated challenge: grid, labels, known people, duet, crops, stable ids."""

from __future__ import annotations

import io

import polars as pl
import pytest
from dagster import AssetKey, materialize
from PIL import Image

from tiktokfer_assets.assets.frames import label_frames
from tiktokfer_assets.checks.invariants import boxes_outside
from tiktokfer_assets.definitions import ASSETS
from tiktokfer_assets.media.frames import sample_times

pytestmark = [pytest.mark.media, pytest.mark.slow]


@pytest.fixture(scope="module")
def tables(pipeline):
    resources, _, result = pipeline
    store = resources["table_store"]
    return {name: store.read(name, ["demo"]) for name in ("videos", "subvideos", "frames", "faces", "nofaces")}


def test_frames_on_the_grid_for_every_video(generated, tables):
    frames_df, videos = tables["frames"], tables["videos"]
    for video in videos.iter_rows(named=True):
        got = frames_df.filter(pl.col("video_id") == video["video_id"]).sort("timestamp_s")["timestamp_s"].to_list()
        assert got == sample_times(video["duration_s"], 0.5, 20.0), video["video_id"]
    assert frames_df.filter(pl.col("video_id") == "v08")["timestamp_s"].max() == 19.5  # capped at max_video_seconds
    assert frames_df["decode_error"].null_count() == frames_df.height


def test_frame_labels_follow_the_prompt_spans(tables, generated):
    frames_df = tables["frames"]
    v01 = {p["label"]: p for p in generated.video("v01")["prompts"]}
    labelled = frames_df.filter(pl.col("video_id") == "v01").drop_nulls("prompt_label")
    for row in labelled.iter_rows(named=True):
        span = v01[row["prompt_label"]]
        assert span["start_s"] - 0.03 <= row["timestamp_s"] <= span["end_s"] + 0.03
    assert set(labelled["prompt_label"]) >= {"ready", "surprise"}
    no_audio = frames_df.filter(pl.col("video_id") == "v07")
    assert no_audio["prompt_label"].null_count() == no_audio.height


def test_label_frames_pure():
    frames_df = pl.DataFrame(
        {"frame_id": ["a/0", "a/500", "a/1000"], "video_id": ["a"] * 3, "timestamp_s": [0.0, 0.5, 1.0]}
    )
    spans = pl.DataFrame({"video_id": ["a", "a"], "label": ["x", "y"], "prompt_index": [0, 1], "found": [True, False],
                          "label_start_s": [0.4, 0.9], "label_end_s": [0.6, 1.2]})
    assert label_frames(frames_df, spans)["prompt_label"].to_list() == [None, "x", None]


def shown_at(video: dict, timestamp_s: float, slack_s: float = 0.07) -> list[dict]:
    """The truth's photos on screen at ``timestamp_s`` (with slack: a frame at a photo change may show either)."""
    return [e for e in video["on_screen"] if e["start_s"] - slack_s <= timestamp_s < e["end_s"] + slack_s]


def test_faces_of_the_known_people_where_they_are(generated, tables):
    faces_df, frames_df = tables["faces"], tables["frames"]
    assert boxes_outside(faces_df, ["x1", "y1", "x2", "y2"], "frame_width", "frame_height", tolerance=0).is_empty()
    for video in generated.truth["videos"]:
        if video["corrupt"]:
            continue
        video_faces = faces_df.filter(pl.col("video_id") == video["video_id"])
        times = frames_df.filter(pl.col("video_id") == video["video_id"])["timestamp_s"]
        someone = {t for t in times if shown_at(video, t, slack_s=0.0)}
        per_frame = video_faces.group_by("timestamp_s").len()
        assert len(someone & set(per_frame["timestamp_s"])) >= 0.9 * len(someone), video["video_id"]
        assert per_frame["len"].max() == len(video["people"]), video["video_id"]
        # every face's centre lies in the region of a photo shown at that time
        for face in video_faces.iter_rows(named=True):
            cx, cy = (face["x1"] + face["x2"]) / 2, (face["y1"] + face["y2"]) / 2
            inside = any(e["region"][0] <= cx <= e["region"][2] and e["region"][1] <= cy <= e["region"][3]
                         for e in shown_at(video, face["timestamp_s"]))
            assert inside, face["face_id"]


def test_frames_and_faces_carry_the_expression_of_their_prompt(generated, tables):
    vocabulary = generated.truth["expressions"]
    for name in ("frames", "faces", "nofaces"):
        table = tables[name]
        expected = [vocabulary.get(label) if label else None for label in table["prompt_label"]]
        assert table["expression"].to_list() == expected, name
    assert set(tables["faces"]["expression"].drop_nulls()) == {c for c in vocabulary.values() if c}


def test_duet_has_one_face_per_half(tables):
    duet = tables["faces"].filter(pl.col("video_id") == "v06")
    duet = duet.with_columns(left=(pl.col("x1") + pl.col("x2")) / 2 < 360)
    per_side = duet.group_by("frame_id", "left").len()
    assert per_side["len"].max() == 1 and set(per_side["left"]) == {True, False}
    assert (duet.group_by("frame_id").len()["len"] == 2).mean() > 0.5


def test_crops_are_square_jpegs_in_the_store(pipeline, tables):
    resources, _, result = pipeline
    store = resources["object_store"]
    for face in tables["faces"].head(20).iter_rows(named=True):
        assert face["object_key"] == f"faces/demo/{face['frame_id']}_{face['face_id'].rsplit('/', 1)[1]}.jpg"
        assert face["aligned_key"] == face["object_key"].replace("faces/", "aligned/", 1)
        with Image.open(io.BytesIO(store.get_bytes(face["object_key"]))) as image:
            assert image.format == "JPEG" and abs(image.width - image.height) <= 1
        with Image.open(io.BytesIO(store.get_bytes(face["aligned_key"]))) as image:
            assert image.format == "JPEG" and image.size == (112, 112)
    metadata = result.asset_materializations_for_node("faces")[0].metadata
    assert metadata["contact_sheet"].value.startswith("![contact sheet](data:image/png;base64,")



def test_every_table_check_ran_and_passed(pipeline):
    _, _, result = pipeline
    checks = {(c.asset_key.path[-1], c.check_name): c.passed for c in result.get_asset_check_evaluations()}
    for key in [("faces", "boxes_inside_frames"), ("frames", "timestamps_on_grid_inside_videos"),
                ("subvideos", "found_spans_disjoint"), ("individuals", "no_frame_holds_one_person_twice"),
                ("unique_faces", "faces_exist"), ("videos", "object_stored"), ("unique_faces", "every_label_kept"),
                ("faces", "aligned_crops_upright")]:
        assert key in checks, key
    assert all(checks.values()), [k for k, ok in checks.items() if not ok]


def test_face_ids_are_stable_on_rerun(pipeline, tables):
    resources, instance, _ = pipeline
    store = resources["table_store"]
    # re-run faces only, from the stored frames
    assert materialize(ASSETS, partition_key="demo", resources=resources, instance=instance,
                       selection=[AssetKey("faces"), AssetKey("nofaces")]).success
    again = store.read("faces", ["demo"]).sort("face_id")
    before = tables["faces"].sort("face_id")
    assert again["face_id"].to_list() == before["face_id"].to_list()
    assert (again["x1"] - before["x1"]).abs().max() < 1e-6
