"""Tracking faces within a video on synthetic boxes whose true identities are known."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from tiktokfer_assets.identity.tracking import assign_tracks, box_iou, centre_distance, track_video

STEP_S = 0.5
SIDE = 80.0


def box(cx: float, cy: float, side: float = SIDE) -> list[float]:
    return [cx - side / 2, cy - side / 2, cx + side / 2, cy + side / 2]


def faces_frame(video_id: str, detections: list[tuple[float, list[float], str]]) -> pl.DataFrame:
    """A faces table from (timestamp_s, box, person) triples; ``person`` is the truth."""
    rows = []
    per_frame: dict[float, int] = {}
    for t, (x1, y1, x2, y2), person in detections:
        i = per_frame.get(t, 0)
        per_frame[t] = i + 1
        t_ms = round(t * 1000)
        rows.append(
            {
                "face_id": f"{video_id}/{t_ms:06d}/{i}",
                "frame_id": f"{video_id}/{t_ms:06d}",
                "video_id": video_id,
                "timestamp_s": t,
                "x1": x1,
                "y1": y1,
                "x2": x2,
                "y2": y2,
                "score": 0.99,
                "person": person,
            }
        )
    return pl.DataFrame(rows)


def tracks_by_person(tracked: pl.DataFrame) -> dict[str, set[str]]:
    grouped = tracked.group_by("person").agg(pl.col("track_id").unique())
    return {row["person"]: set(row["track_id"]) for row in grouped.iter_rows(named=True)}


def assert_tracks_are_people(tracked: pl.DataFrame) -> None:
    """Every person is one track and every track is one person."""
    pairs = tracked.select("person", "track_id").unique()
    assert pairs["person"].n_unique() == pairs.height
    assert pairs["track_id"].n_unique() == pairs.height


def test_box_geometry():
    a = np.array([box(100, 100)])
    b = np.array([box(100, 100), box(140, 100), box(300, 300)])
    np.testing.assert_allclose(box_iou(a, b), [[1.0, 40 * 80 / (2 * 6400 - 40 * 80), 0.0]])
    np.testing.assert_allclose(centre_distance(a, b)[0, :2], [0.0, 0.5])
    # Normalised by face size: the same relative move of a face twice as large.
    np.testing.assert_allclose(
        centre_distance(np.array([box(100, 100, 160)]), np.array([box(180, 100, 160)])), [[0.5]]
    )


def test_crossing_paths_keep_identities_by_motion():
    # Two faces at the same height swap sides slowly; at t=5 s they are 12 px apart,
    # half a second later each is closer to where the *other* face was. Only the
    # motion tells them apart.
    detections = []
    for k in range(21):
        t = k * STEP_S
        detections.append((t, box(50 + 25 * k, 200), "left_to_right"))
        detections.append((t, box(562 - 25 * k, 200), "right_to_left"))
    tracked = assign_tracks(faces_frame("cross", detections))
    assert_tracks_are_people(tracked)
    assert tracks_by_person(tracked) == {"left_to_right": {"cross/t0"}, "right_to_left": {"cross/t1"}}


def test_face_leaving_and_returning_resumes_its_track_within_the_gap():
    detections = [(k * STEP_S, box(500, 200), "stays") for k in range(20)]
    # Last seen at 3.0 s, missing at 3.5 and 4.0, back a bit lower at 4.5 s: 1.5 s away.
    detections += [(k * STEP_S, box(150, 200), "returns") for k in range(7)]
    detections += [(k * STEP_S, box(155, 215), "returns") for k in range(9, 20)]
    tracked = assign_tracks(faces_frame("gap", detections), max_gap_s=1.5)
    assert_tracks_are_people(tracked)
    assert tracks_by_person(tracked)["returns"] == {"gap/t0"}

    # Away longer than max_gap_s: a new track starts.
    tracked = assign_tracks(faces_frame("gap", detections), max_gap_s=1.0)
    assert tracks_by_person(tracked) == {"stays": {"gap/t1"}, "returns": {"gap/t0", "gap/t2"}}


def test_shot_change_starts_new_tracks():
    detections = []
    for k in range(10):
        detections.append((k * STEP_S, box(150, 200), "a"))
        detections.append((k * STEP_S, box(450, 200), "b"))
    for k in range(10, 20):  # cut: a close-up and a small face elsewhere
        detections.append((k * STEP_S, box(300, 420, side=260), "c"))
        detections.append((k * STEP_S, box(580, 60, side=40), "d"))
    tracked = assign_tracks(faces_frame("cut", detections))
    assert_tracks_are_people(tracked)
    assert tracks_by_person(tracked) == {
        "a": {"cut/t0"},
        "b": {"cut/t1"},
        "c": {"cut/t2"},
        "d": {"cut/t3"},
    }


def test_duet_is_two_tracks_even_with_missed_detections():
    rng = np.random.default_rng(0)
    detections = []
    for k in range(40):
        t = k * STEP_S
        jitter = rng.normal(0, 4, size=4)
        if k % 7 != 3:  # the detector misses the left face now and then
            detections.append((t, box(160 + jitter[0], 180 + jitter[1], 120), "creator"))
        detections.append((t, box(480 + jitter[2], 180 + jitter[3], 120), "performer"))
    tracked = assign_tracks(faces_frame("duet", detections))
    assert tracked["track_id"].n_unique() == 2
    assert_tracks_are_people(tracked)


def test_single_face_video_is_one_track_even_when_the_box_jumps():
    detections = [(k * STEP_S, box(100 + 200 * (k % 3), 100 + 50 * (k % 2)), "solo") for k in range(12)]
    detections.append((20.0, box(600, 400, side=30), "solo"))  # long gap too
    tracked = assign_tracks(faces_frame("solo", detections))
    assert tracked["track_id"].unique().to_list() == ["solo/t0"]


def test_two_faces_of_one_frame_are_never_one_track():
    # Two overlapping detections of one frame compete for a single track.
    detections = [(k * STEP_S, box(200, 200), "p") for k in range(5)]
    detections.append((2.5, box(200, 200), "p"))
    detections.append((2.5, box(210, 205), "q"))
    tracked = assign_tracks(faces_frame("overlap", detections))
    at_25 = tracked.filter(pl.col("timestamp_s") == 2.5)
    assert at_25["track_id"].n_unique() == 2
    assert tracks_by_person(tracked)["p"] == {"overlap/t0"}


def test_ids_are_stable_and_independent_of_row_order():
    detections = []
    for k in range(10):
        detections.append((k * STEP_S, box(150, 200), "a"))
        detections.append((k * STEP_S, box(450, 200), "b"))
    videos = pl.concat(
        [faces_frame("v1", detections), faces_frame("v2", detections[::2]), faces_frame("v3", detections)]
    )
    first = assign_tracks(videos)
    assert first["face_id"].to_list() == videos["face_id"].to_list()  # input order kept
    again = assign_tracks(videos)
    shuffled = assign_tracks(videos.sample(fraction=1.0, shuffle=True, seed=7))
    expected = dict(zip(first["face_id"], first["track_id"]))
    assert dict(zip(again["face_id"], again["track_id"])) == expected
    assert dict(zip(shuffled["face_id"], shuffled["track_id"])) == expected
    # Numbered by first appearance, left to right; v2 has one face per frame.
    assert sorted(set(expected.values())) == ["v1/t0", "v1/t1", "v2/t0", "v3/t0", "v3/t1"]
    assert first.filter(pl.col("person") == "a", pl.col("video_id") == "v1")["track_id"].unique().to_list() == [
        "v1/t0"
    ]


def test_track_video_core_on_arrays():
    times = np.array([1.0, 0.0, 0.0, 1.0])
    frames = np.array([1, 0, 0, 1])
    boxes = np.array([box(410, 100), box(400, 100), box(100, 100), box(110, 100)])
    np.testing.assert_array_equal(track_video(times, frames, boxes), [1, 1, 0, 0])
    assert track_video(np.empty(0), np.empty(0), np.empty((0, 4))).shape == (0,)
    with pytest.raises(ValueError, match="one timestamp"):
        track_video(np.array([0.0, 0.5]), np.array([3, 3]), boxes[:2])
    with pytest.raises(ValueError, match="one row per face"):
        track_video(times, frames[:3], boxes)


def test_missing_columns_are_named():
    with pytest.raises(ValueError, match="frame_id"):
        assign_tracks(pl.DataFrame({"video_id": ["v"], "timestamp_s": [0.0]}))
