"""The demo's agreement of a release with truth.json (pure), with a stand-in for testkit.truth.expression_on_screen."""

from __future__ import annotations

import polars as pl

from tiktokfer_assets.dataset.agreement import truth_agreement

TRUTH = {"videos": [{"video_id": "v1", "prompts": [
    {"label": "ready", "start_s": 0.0, "end_s": 1.0}, {"label": "smile", "start_s": 2.0, "end_s": 3.0},
]}]}


def on_screen(truth: dict, video_id: str, timestamp_s: float, x: float | None) -> str | None:
    """Stand-in for the generator's truth (part A): happiness on the left half during 'smile', else nothing."""
    return "happiness" if 2.0 <= timestamp_s <= 3.0 and (x is None or x < 320) else None


def test_agreement_counts_matches_instructions_and_the_creator():
    exported = pl.DataFrame({
        "video_id": ["v1"] * 4, "timestamp_s": [2.5, 2.5, 0.5, 2.0], "x": [100.0, 500.0, 100.0, None],
        "expression": ["happiness"] * 4, "is_baseline_creator": [False, True, False, None],
    })
    counts = truth_agreement(exported, TRUTH, on_screen, {"ready"})
    assert counts == {"faces": 4, "agreeing": 2, "share": 0.5, "from_instruction_prompts": 1, "of_baseline_creator": 1}
