"""Questions answered from a generated challenge's ``truth.json`` (see :mod:`tiktokfer_assets.testkit.generator`)."""

from __future__ import annotations


def _entry(truth: dict, video_id: str) -> dict:
    if video_id == "baseline":
        return truth["baseline"]
    for video in truth["videos"]:
        if video["video_id"] == video_id:
            return video
    raise KeyError(f"truth has no video {video_id!r}")


def expression_on_screen(truth: dict, video_id: str, timestamp_s: float, x: float | None = None) -> str | None:
    """The expression class shown in ``video_id`` at ``timestamp_s`` ("neutral" outside expression windows).

    ``x``: the face's centre in the displayed frame, to pick the side of a duet (the photo whose region
    holds it, else the nearest); without it a duet's first photo on screen answers. None when nothing is
    on screen then (a performer who stepped out) or the photo is not labelled.
    """
    shown = [e for e in _entry(truth, video_id)["on_screen"] if e["start_s"] <= timestamp_s < e["end_s"]]
    if not shown:
        return None
    if x is not None:
        shown.sort(key=lambda e: 0.0 if e["region"][0] <= x <= e["region"][2] else
                   min(abs(x - e["region"][0]), abs(x - e["region"][2])))
    return shown[0]["expression"]
