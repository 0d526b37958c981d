"""The invariants behind the checks of the pipeline's tables, on hand-made rows."""

from __future__ import annotations

import polars as pl

from tiktokfer_assets.checks.invariants import attach, lost_groups, spans_outside
from tiktokfer_assets.checks.pipeline import overlapping_spans


def test_overlapping_and_outside_spans():
    videos = pl.DataFrame({"video_id": ["a"], "duration_s": [10.0]})
    rows = pl.DataFrame({
        "video_id": ["a", "a", "a"], "label": ["x", "y", "z"],
        "start_s": [1.0, 1.5, 9.5], "end_s": [2.0, 2.5, 10.5],
    })
    assert overlapping_spans(rows, "video_id", "start_s", "end_s")["label"].to_list() == ["y"]
    outside = spans_outside(attach(rows, videos, "video_id", "duration_s"), "start_s", "end_s", "duration_s")
    assert outside["label"].to_list() == ["z"]


def test_spans_of_different_videos_never_overlap_each_other():
    rows = pl.DataFrame({"video_id": ["a", "b"], "start_s": [1.0, 1.2], "end_s": [2.0, 2.2]})
    assert overlapping_spans(rows, "video_id", "start_s", "end_s").is_empty()


def test_lost_groups_counts_a_null_expression_as_a_group():
    before = pl.DataFrame({"individual_id": ["a", "a", "a", "b"], "expression": ["anger", None, "sadness", None]})
    after = pl.DataFrame({"individual_id": ["a", "b"], "expression": ["anger", None]})
    assert lost_groups(before, after, ["individual_id", "expression"]).rows() == [("a", "sadness"), ("a", None)]
    assert lost_groups(before, before, ["individual_id", "expression"]).is_empty()
