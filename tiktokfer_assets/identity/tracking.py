"""Face tracks within a video: which faces of consecutive frames are the same person.

This is the first, "intra-video" pass of the individuals asset (``faces_with_intra_ind``).
It only looks at boxes, never at pixels:

* When every frame of a video has at most one face, the whole video is one track
  (the original pipeline's rule: a challenge video is normally one performer, and
  boxes of a single face jump around with cuts and camera moves).
* Otherwise faces are linked frame by frame. Each live track predicts where its face
  is now (last box moved by its last velocity, so two faces crossing keep their
  identities) and each face of the frame is compared with every track seen within
  ``max_gap_s``. The cost of a link is ``(1 - IoU) + centre distance`` (centre
  distance divided by the mean side of the two boxes, so it means the same for
  close-ups and small faces), taken against the predicted or the last box, whichever
  is cheaper (a face that stopped or came back after a short gap matches its last
  box). A link is admissible only when IoU >= ``min_iou`` or centre distance <=
  ``max_centre_dist``; ``scipy.optimize.linear_sum_assignment`` picks the one-to-one
  set of admissible links with the most links and then the lowest cost. A face left
  without a link starts a new track, so a split-screen duet gives two tracks and a
  shot change (every box jumps) starts new tracks instead of merging two people.

Two faces of one frame are never in the same track. Track ids are
``"<video_id>/t<k>"`` with ``k`` counting tracks in order of first appearance (time,
then left to right), so they are the same on every run and do not depend on the row
order of the input.

Known limit, kept on purpose: with the one-face-per-frame rule, a single-face video
that cuts from one person to another is one track; such a track is cut with a
``split`` correction (see ``corrections.py``).
"""

from __future__ import annotations

import numpy as np
import polars as pl

# Cost given to inadmissible links in the assignment problem: larger than any sum of
# admissible costs, so the solver first maximises the number of admissible links.
_INADMISSIBLE = 1e9
# Two timestamps closer than this are the same instant (float noise in timestamp_s).
_TIME_EPS = 1e-6


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Intersection over union of every box in ``a`` (m, 4) with every box in ``b`` (n, 4).

    Boxes are ``x1, y1, x2, y2``. Returns an (m, n) array; boxes of zero area give 0.
    """
    ix1 = np.maximum(a[:, None, 0], b[None, :, 0])
    iy1 = np.maximum(a[:, None, 1], b[None, :, 1])
    ix2 = np.minimum(a[:, None, 2], b[None, :, 2])
    iy2 = np.minimum(a[:, None, 3], b[None, :, 3])
    inter = np.clip(ix2 - ix1, 0, None) * np.clip(iy2 - iy1, 0, None)
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    union = area_a[:, None] + area_b[None, :] - inter
    return np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)


def centre_distance(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Distance between box centres of ``a`` (m, 4) and ``b`` (n, 4), in face sizes.

    The Euclidean distance of the centres is divided by the mean side length
    (sqrt of the area) of the two boxes, so 0.5 means "half a face apart" whatever
    the resolution or the zoom. Returns an (m, n) array.
    """
    ca = (a[:, :2] + a[:, 2:]) / 2
    cb = (b[:, :2] + b[:, 2:]) / 2
    dist = np.linalg.norm(ca[:, None, :] - cb[None, :, :], axis=2)
    side_a = np.sqrt(np.clip((a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1]), 0, None))
    side_b = np.sqrt(np.clip((b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1]), 0, None))
    scale = (side_a[:, None] + side_b[None, :]) / 2
    return np.divide(dist, scale, out=np.full_like(dist, np.inf), where=scale > 0)


def _link_cost(
    track_boxes: np.ndarray, face_boxes: np.ndarray, min_iou: float, max_centre_dist: float
) -> tuple[np.ndarray, np.ndarray]:
    """(cost, admissible) of linking each track box (rows) to each face box (columns)."""
    iou = box_iou(track_boxes, face_boxes)
    dist = centre_distance(track_boxes, face_boxes)
    return (1.0 - iou) + dist, (iou >= min_iou) | (dist <= max_centre_dist)


def track_video(
    times: np.ndarray,
    frames: np.ndarray,
    boxes: np.ndarray,
    *,
    max_gap_s: float = 1.5,
    min_iou: float = 0.1,
    max_centre_dist: float = 0.5,
) -> np.ndarray:
    """Track labels for the faces of one video.

    ``times`` (n,) are the faces' timestamps in seconds, ``frames`` (n,) any integer
    or string code that is equal for faces of the same frame, ``boxes`` (n, 4) the
    ``x1, y1, x2, y2`` boxes. Returns an int64 array (n,) of track numbers 0, 1, ...
    in order of first appearance (time, then frame code, then left to right). The
    result does not depend on the order of the input faces.

    See the module docstring for the rule. Raises ``ValueError`` when the arrays
    disagree in length or faces of one frame have different timestamps.
    """
    times = np.asarray(times, dtype=np.float64)
    frames = np.unique(np.asarray(frames), return_inverse=True)[1].reshape(-1)
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    n = len(times)
    if len(frames) != n or len(boxes) != n:
        raise ValueError(
            f"times ({n}), frames ({len(frames)}) and boxes ({len(boxes)}) must have one row per face"
        )
    labels = np.zeros(n, dtype=np.int64)
    if n == 0:
        return labels

    # Faces by time, then frame, then left to right (then top to bottom, then size),
    # so numbering and tie-breaking depend on the faces, not on the input order.
    order = np.lexsort((boxes[:, 3], boxes[:, 2], boxes[:, 1], boxes[:, 0], frames, times))
    sorted_frames = frames[order]
    starts = np.flatnonzero(np.r_[True, sorted_frames[1:] != sorted_frames[:-1]])
    ends = np.r_[starts[1:], n]
    sorted_times = times[order]
    if len(np.unique(frames)) != len(starts) or np.any(
        np.abs(sorted_times - np.repeat(sorted_times[starts], ends - starts)) > _TIME_EPS
    ):
        raise ValueError("faces of one frame must share one timestamp")
    if np.all(ends - starts == 1):
        return labels  # at most one face in every frame: the whole video is one track

    last_box = np.empty((0, 4))
    velocity = np.empty((0, 4))
    last_time = np.empty(0)
    for start, end in zip(starts, ends):
        idx = order[start:end]
        t = sorted_times[start]
        face_boxes = boxes[idx]
        dt = t - last_time
        live = np.flatnonzero((dt > _TIME_EPS) & (dt <= max_gap_s + _TIME_EPS))
        assigned = np.full(len(idx), -1, dtype=np.int64)
        if len(live):
            predicted = last_box[live] + velocity[live] * dt[live, None]
            cost_pred, ok_pred = _link_cost(predicted, face_boxes, min_iou, max_centre_dist)
            cost_last, ok_last = _link_cost(last_box[live], face_boxes, min_iou, max_centre_dist)
            cost = np.where(
                ok_pred & ok_last,
                np.minimum(cost_pred, cost_last),
                np.where(ok_pred, cost_pred, np.where(ok_last, cost_last, _INADMISSIBLE)),
            )
            from scipy.optimize import linear_sum_assignment  # 1.0 s CPU to import: not at the code location's

            rows, cols = linear_sum_assignment(cost)
            keep = cost[rows, cols] < _INADMISSIBLE
            assigned[cols[keep]] = live[rows[keep]]
        new = np.flatnonzero(assigned < 0)
        first_new = len(last_box)
        assigned[new] = first_new + np.arange(len(new))
        last_box = np.vstack([last_box, np.zeros((len(new), 4))])
        velocity = np.vstack([velocity, np.zeros((len(new), 4))])
        last_time = np.r_[last_time, np.full(len(new), -np.inf)]

        old = assigned < first_new
        tracks_old = assigned[old]
        velocity[tracks_old] = (face_boxes[old] - last_box[tracks_old]) / (t - last_time[tracks_old])[:, None]
        last_box[assigned] = face_boxes
        last_time[assigned] = t
        labels[idx] = assigned
    return labels


def assign_tracks(
    faces: pl.DataFrame,
    *,
    max_gap_s: float = 1.5,
    min_iou: float = 0.1,
    max_centre_dist: float = 0.5,
) -> pl.DataFrame:
    """``faces`` with a ``track_id`` column (``"<video_id>/t<k>"``), rows in input order.

    ``faces`` needs ``video_id``, ``frame_id``, ``timestamp_s`` and the box columns
    ``x1, y1, x2, y2``; each video is tracked on its own with :func:`track_video`.
    """
    missing = {"video_id", "frame_id", "timestamp_s", "x1", "y1", "x2", "y2"} - set(faces.columns)
    if missing:
        raise ValueError(f"faces lacks columns {sorted(missing)}")
    track_ids = np.empty(faces.height, dtype=object)
    indexed = faces.select("video_id", "frame_id", "timestamp_s", "x1", "y1", "x2", "y2").with_row_index("_row")
    for (video_id,), video in indexed.group_by(["video_id"]):
        labels = track_video(
            video["timestamp_s"].to_numpy(),
            video["frame_id"].to_numpy(),
            video.select("x1", "y1", "x2", "y2").to_numpy(),
            max_gap_s=max_gap_s,
            min_iou=min_iou,
            max_centre_dist=max_centre_dist,
        )
        track_ids[video["_row"].to_numpy()] = [f"{video_id}/t{k}" for k in labels]
    return faces.with_columns(pl.Series("track_id", track_ids.tolist(), dtype=pl.String))
