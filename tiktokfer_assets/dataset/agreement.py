"""How well a release of a generated challenge agrees with its ``truth.json`` (the demo prints it)."""

from __future__ import annotations

from collections.abc import Callable, Collection

import polars as pl

OnScreen = Callable[[dict, str, float, float | None], str | None]
"""``expression_on_screen(truth, video_id, timestamp_s, x)``: the expression shown there and then, or None."""


def truth_agreement(
    exported: pl.DataFrame, truth: dict, on_screen: OnScreen, instruction_labels: Collection[str],
) -> dict:
    """Counts of the exported faces against the truth.

    ``exported``: manifest rows with ``x`` (the face centre, frame pixels) and ``is_baseline_creator``.
    Returns faces, agreeing (expression equals the one on screen), share, from_instruction_prompts
    (inside a prompt span of an instruction label in the truth) and of_baseline_creator.
    """
    videos = {video["video_id"]: video for video in truth["videos"]}
    agreeing = instructions = 0
    for row in exported.iter_rows(named=True):
        agreeing += row["expression"] == on_screen(truth, row["video_id"], row["timestamp_s"], row["x"])
        spans = videos.get(row["video_id"], {}).get("prompts", [])
        instructions += any(s["label"] in instruction_labels and s["start_s"] <= row["timestamp_s"] <= s["end_s"]
                            for s in spans)
    faces = exported.height
    return {
        "faces": faces,
        "agreeing": agreeing,
        "share": agreeing / faces if faces else 0.0,
        "from_instruction_prompts": instructions,
        "of_baseline_creator": int(exported["is_baseline_creator"].fill_null(False).sum()),
    }
