"""The corrections file: validation, each kind's effect, stale entries."""

from __future__ import annotations

import textwrap
from pathlib import Path

import numpy as np
import polars as pl
import pytest
import yaml

from tiktokfer_assets.identity.clustering import cluster_tracks
from tiktokfer_assets.identity.corrections import (
    Corrections,
    CorrectionsError,
    CorrectionsFile,
    StaleCorrection,
    apply_track_corrections,
    constraints,
    load_corrections,
)

REPO_FILE = Path(__file__).resolve().parent.parent / "corrections.yaml"


def faces_table() -> pl.DataFrame:
    """Video v: track v/t0 at 0.0-4.5 s, v/t1 at 0.0-2.0 s; video w: track w/t0 at 0.0-1.0 s."""
    rows = [("v", "v/t0", k * 0.5) for k in range(10)]
    rows += [("v", "v/t1", k * 0.5) for k in range(5)]
    rows += [("w", "w/t0", k * 0.5) for k in range(3)]
    return pl.DataFrame(
        {
            "face_id": [f"{v}/{round(t * 1000):06d}/{track[-1]}" for v, track, t in rows],
            "video_id": [v for v, _, _ in rows],
            "track_id": [track for _, track, _ in rows],
            "timestamp_s": [t for _, _, t in rows],
        }
    )


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "corrections.yaml"
    path.write_text(textwrap.dedent(text))
    return path


def track_of(faces: pl.DataFrame) -> dict[str, str]:
    return dict(zip(faces["face_id"], faces["track_id"]))


def test_repository_file_is_empty_and_its_example_is_valid():
    assert load_corrections(REPO_FILE, "emoji_challenge") == Corrections()
    lines = REPO_FILE.read_text().splitlines()
    example = lines[lines.index("# Example:") + 2 :]
    example = [line[2:] for line in example if line.startswith("# ")]
    parsed = yaml.safe_load("version: 1\n" + "\n".join(example))
    corrections = CorrectionsFile.model_validate(parsed).challenges["emoji_challenge"]
    assert [len(corrections.split), len(corrections.drop), len(corrections.keep_apart), len(corrections.merge)] == [
        1, 1, 1, 1,
    ]
    assert corrections.split[0].new_track == "6571234567890123456/t0/s7500"


def test_split_moves_faces_at_and_after_the_time(tmp_path):
    path = write(
        tmp_path,
        """
        version: 1
        challenges:
          emoji_challenge:
            split:
              - {track: v/t0, at_s: 3.0}
              - {track: v/t0, at_s: 1.0, note: second cut of the same track}
          face_challenge:
            drop: [{track: v/t0}]
        """,
    )
    corrections = load_corrections(path, "emoji_challenge")
    faces, report = apply_track_corrections(faces_table(), corrections)
    assert faces["face_id"].to_list() == faces_table()["face_id"].to_list()  # rows kept, in order
    v_t0 = faces_table().filter(pl.col("track_id") == "v/t0")
    expected = {
        face: "v/t0" if t < 1.0 else "v/t0/s1000" if t < 3.0 else "v/t0/s3000"
        for face, t in zip(v_t0["face_id"], v_t0["timestamp_s"])
    }
    got = track_of(faces)
    assert {face: got[face] for face in expected} == expected
    assert all(got[f] == t for f, t in track_of(faces_table()).items() if f not in expected)  # others untouched
    assert report.stale == []
    assert report.applied == ["split v/t0: 4 faces to v/t0/s3000", "split v/t0: 4 faces to v/t0/s1000"]
    # Same result on every run and whatever the row order.
    again, _ = apply_track_corrections(faces_table().reverse(), corrections)
    assert track_of(again) == got


def test_drop_removes_the_track_after_splits():
    corrections = Corrections.model_validate(
        {"split": [{"track": "v/t0", "at_s": 2.0}], "drop": [{"track": "v/t0/s2000"}, {"track": "w/t0"}]}
    )
    faces, report = apply_track_corrections(faces_table(), corrections)
    assert sorted(faces["track_id"].unique().to_list()) == ["v/t0", "v/t1"]
    assert faces.filter(pl.col("track_id") == "v/t0")["timestamp_s"].max() == 1.5
    assert report.applied == ["split v/t0: 6 faces to v/t0/s2000", "drop v/t0/s2000: 6 faces", "drop w/t0: 3 faces"]


def test_keep_apart_and_merge_constrain_clustering():
    corrections = Corrections.model_validate(
        {"keep_apart": [{"tracks": ["v/t0", "w/t0"]}], "merge": [{"tracks": ["v/t1", "x/t0", "y/t0"]}]}
    )
    tracks = ["v/t0", "v/t1", "w/t0", "x/t0", "y/t0"]
    result = constraints(corrections, tracks)
    assert result.cannot_link == {frozenset({"v/t0", "w/t0"})}
    assert result.must_link == {frozenset({"v/t1", "x/t0"}), frozenset({"v/t1", "y/t0"}), frozenset({"x/t0", "y/t0"})}
    assert result.stale == []
    # v/t0 and w/t0 look alike; v/t1, x/t0 and y/t0 do not look alike at all.
    pairs = (np.array([0]), np.array([2]), np.array([0.95]))
    plain = cluster_tracks(tracks, None, pairs, threshold=0.5)
    assert plain["v/t0"] == plain["w/t0"] and len({plain["v/t1"], plain["x/t0"], plain["y/t0"]}) == 3
    corrected = cluster_tracks(
        tracks, None, pairs, threshold=0.5, cannot_link=result.cannot_link, must_link=result.must_link
    )
    assert corrected["v/t0"] != corrected["w/t0"]
    assert corrected["v/t1"] == corrected["x/t0"] == corrected["y/t0"]


def test_stale_corrections_are_reported():
    corrections = Corrections.model_validate(
        {
            "split": [
                {"track": "gone/t0", "at_s": 1.0},
                {"track": "v/t1", "at_s": 9.0},  # after the track's last face (2.0 s)
                {"track": "v/t1", "at_s": 0.0},  # before or at its first face
                {"track": "v/t0", "at_s": 2.0},
                {"track": "v/t0", "at_s": 2.2},  # takes nothing: the next face is at 2.5 s...
                {"track": "v/t0", "at_s": 2.4},  # ...and this later cut takes it
            ],
            "drop": [{"track": "v/t7"}],
            "keep_apart": [{"tracks": ["v/t0", "v/t5"]}],
            "merge": [{"tracks": ["w/t0", "v/t9"]}],
        }
    )
    faces, report = apply_track_corrections(faces_table(), corrections)
    assert report.stale == [
        StaleCorrection("split", "track gone/t0 is not in the data"),
        StaleCorrection("split", "split of v/t1 at 9.0 s leaves the track whole (its faces span 0.0-2.0 s)"),
        StaleCorrection("split", "split of v/t1 at 0.0 s leaves the track whole (its faces span 0.0-2.0 s)"),
        StaleCorrection("split", "split of v/t0 at 2.2 s moves no face"),
        StaleCorrection("drop", "track v/t7 is not in the data"),
    ]
    assert faces.height == faces_table().height
    assert sorted(faces["track_id"].unique().to_list()) == ["v/t0", "v/t0/s2000", "v/t0/s2400", "v/t1", "w/t0"]
    result = constraints(corrections, faces["track_id"].unique().to_list())
    assert result.stale == [
        StaleCorrection("keep_apart", "keep_apart[0]: track v/t5 is not in the data"),
        StaleCorrection("merge", "merge[0]: track v/t9 is not in the data"),
    ]
    assert result.cannot_link == set() and result.must_link == set()


def test_missing_challenge_and_empty_file_mean_no_corrections(tmp_path):
    assert load_corrections(write(tmp_path, ""), "emoji_challenge") == Corrections()
    path = write(tmp_path, "version: 1\nchallenges:\n  face_challenge:\n    drop: [{track: v/t0}]\n")
    assert load_corrections(path, "emoji_challenge") == Corrections()


@pytest.mark.parametrize(
    "body, message",
    [
        (
            """
            challenges:
              emoji_challenge:
                split:
                  - {track: v/t0, at_s: 1.0}
                  - {track: v/t0, at_s: soon}
            """,
            r"challenges\.emoji_challenge\.split\[1\]\.at_s: Input should be a valid number.*"
            r"entry: \{'track': 'v/t0', 'at_s': 'soon'\}",
        ),
        (
            """
            challenges:
              emoji_challenge:
                drop: [{track: v/t0, reason: poster}]
            """,
            r"challenges\.emoji_challenge\.drop\[0\]\.reason: Extra inputs are not permitted",
        ),
        (
            """
            challenges:
              emoji_challenge:
                merge: [{tracks: [v/t0, "row 17"]}]
            """,
            r"challenges\.emoji_challenge\.merge\[0\]\.tracks\[1\]: String should match pattern",
        ),
        (
            """
            challenges:
              emoji_challenge:
                keep_apart: [{tracks: [v/t0, w/t0]}]
                merge: [{tracks: [w/t0, v/t0, x/t1]}]
            """,
            r"merge\[0\] and keep_apart\[0\] contradict each other on \['v/t0', 'w/t0'\]",
        ),
        (
            """
            challenges:
              emoji_challenge:
                split: [{track: v/t0, at_s: 1.0}, {track: v/t0, at_s: 1.0001}]
            """,
            r"split\[1\] cuts v/t0 at the same millisecond as split\[0\]",
        ),
        (
            """
            challenges:
              Emoji Challenge: {}
            """,
            r"challenges\.Emoji Challenge\.\[key\]: String should match pattern",
        ),
        ("challenges: [oops", r"not valid YAML"),
    ],
)
def test_malformed_file_names_the_entry(tmp_path, body, message):
    text = textwrap.dedent(body)
    path = write(tmp_path, text if "oops" in text else "version: 1\n" + text)
    with pytest.raises(CorrectionsError, match=message) as error:
        load_corrections(path, "emoji_challenge")
    assert str(path) in str(error.value)


def test_missing_version_is_an_error(tmp_path):
    with pytest.raises(CorrectionsError, match="version: Field required"):
        load_corrections(write(tmp_path, "challenges: {}\n"), "emoji_challenge")
