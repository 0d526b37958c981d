"""The dataset package (pure): splits stratified by expression, earlier persons kept; file names; input errors."""

from __future__ import annotations

import polars as pl
import pytest

from tiktokfer_assets.dataset import DatasetError
from tiktokfer_assets.dataset.release import prepare_release, safe_file_name
from tiktokfer_assets.dataset.splits import SPLITS, assign_splits


def counts(rows: list[tuple[str, str, int]]) -> pl.DataFrame:
    return pl.DataFrame(rows, schema={"person_id": pl.String, "expression": pl.String, "faces": pl.Int64}, orient="row")


def test_each_expression_spreads_over_the_splits_in_the_ratios():
    rows = [(f"h{k:02d}", "happy", 4) for k in range(20)] + [(f"s{k:02d}", "sad", 4) for k in range(20)]
    splits = assign_splits(counts(rows), {})
    for expression in ("h", "s"):
        per_split = [sum(1 for p, s in splits.items() if p.startswith(expression) and s == split) for split in SPLITS]
        assert per_split == [14, 3, 3]
    assert assign_splits(counts(rows[::-1]), {}) == splits  # the order of the rows does not matter


def test_earlier_persons_keep_their_split_and_the_others_fill_around_them():
    rows = [(f"p{k}", "happy", 5) for k in range(10)]
    earlier = {"p0": "test", "p1": "test", "p2": "val"}
    splits = assign_splits(counts(rows), earlier)
    assert {p: splits[p] for p in earlier} == earlier
    assert [list(splits.values()).count(s) for s in SPLITS] == [7, 1, 2]


def test_a_few_persons_still_fill_every_split():
    """Four performers (the demo's): 70/15/15 by faces alone gives test nobody; every split gets one."""
    rows = [("a", "happy", 6), ("b", "happy", 5), ("c", "sad", 4), ("d", "sad", 3)]
    splits = assign_splits(counts(rows), {})
    assert sorted(splits.values()) == ["test", "train", "train", "val"]
    assert assign_splits(counts(rows[:2]), {}) == {"a": "train", "b": "val"}  # fewer persons than splits
    assert assign_splits(counts(rows), {}, ratios=(0.85, 0.15, 0.0))["d"] != "test"  # a zero ratio stays empty


def test_bad_ratios_are_refused():
    with pytest.raises(ValueError, match="3 non-negative numbers summing to 1"):
        assign_splits(counts([("p", "happy", 1)]), {}, (0.5, 0.5))


def test_file_names_are_safe_and_unique():
    names = {safe_file_name("c", "v/000500/0"), safe_file_name("c", "v_000500_0"), safe_file_name("c2", "v/000500/0")}
    assert len(names) == 3 and all("/" not in n and n.endswith(".jpg") for n in names)


def test_faces_without_an_embedding_or_an_expression_are_clear_errors():
    faces = pl.DataFrame({
        "challenge": ["c"], "face_id": ["v/000000/0"], "individual_id": ["i0000"], "video_id": ["v"],
        "timestamp_s": [0.0], "score": [0.99], "expression": ["happy"], "object_key": ["f.jpg"],
        "aligned_key": ["a.jpg"], "is_baseline_creator": [False],
    })
    no_videos = pl.DataFrame(schema=dict.fromkeys(["challenge", "video_id", "author", "url"], pl.String))
    none = pl.DataFrame(schema={"challenge": pl.String})
    with pytest.raises(DatasetError, match=r"^1 faces have no embedding \(e.g. c:v/000000/0\)"):
        prepare_release(faces, none, no_videos, {"c": "1"}, none, threshold=0.4)
    with pytest.raises(DatasetError, match=r"^nothing to export: no face with an expression in \['c'\]"):
        prepare_release(faces.with_columns(expression=None), none, no_videos, {"c": "1"}, none, threshold=0.4)
    with pytest.raises(DatasetError, match=r"lacks the columns \['aligned_key', 'expression'\]"):
        prepare_release(faces.drop("aligned_key", "expression"), none, no_videos, {"c": "1"}, none, threshold=0.4)
