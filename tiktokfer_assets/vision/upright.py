"""Landmarks of faces found sideways, re-detected upright.

RetinaFace is trained on upright faces. In a video filmed sideways it still finds most
faces in the frame as given, but their landmarks are poor: on the demo's sideways
video the eye line of faces that lie at 90 degrees measured 33 to 87 degrees (once
-37), and crops aligned on those landmarks came out 10 to 25 degrees off (landmarks
re-detected on the aligned crops), up to 82 for the worst. Faces the detector only
found after its quarter-turn retry had good landmarks (87 degrees).

:func:`redetect_sideways` does that for every face whose roll is over 20 degrees: it
detects again in the face's neighbourhood turned a quarter turn each way and keeps the
landmarks of the detection with the highest score among those that saw the face within
45 degrees of upright (where landmarks are reliable), mapped back to the frame. In a
landscape frame (where a phone video filmed sideways lands) every face is re-detected,
its neighbourhood as given competing with the two turns: RetinaFace now and then reads a
sideways face's eye line as level (roll -3 where the truth is 90, after the edge-face
detection came in), which the 20-degree trigger alone never revisits. The
score matters: on these grayscale photos RetinaFace also "finds" an upside-down face
with an upright-looking eye line, at a lower score (0.91-0.98 against 0.999-1.0 for
the right turn on the demo's sideways video). Box and score stay those of the first
detection (tracking and the checks use them); a face not found again keeps its
landmarks.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Protocol

import numpy as np

from tiktokfer_assets.vision.align import roll_degrees
from tiktokfer_assets.vision.crops import square_crop, square_origin
from tiktokfer_assets.vision.detector import Detection

TILTED_DEG = 20.0  # a face whose roll is beyond this is re-detected
UPRIGHT_DEG = 45.0  # a re-detection counts when it sees the face within this of upright
TURNS = (1, 3)  # np.rot90's k: a quarter turn anticlockwise, and clockwise
NEIGHBOURHOOD_MARGIN = 0.5  # the square re-detected: the box plus this fraction of its side on each side


class Detects(Protocol):
    def detect(self, images: Sequence[np.ndarray]) -> list[list[Detection]]: ...


def unturn_points(points: np.ndarray, turns: int, side: int) -> np.ndarray:
    """Points of a ``side`` x ``side`` square turned by ``np.rot90(k=turns)``, back in the unturned square.

    One turn sends ``(x, y)`` to ``(y, side - x)`` (continuous pixel-edge coordinates); its inverse
    sends ``(x, y)`` to ``(side - y, x)``.
    """
    points = np.asarray(points, dtype=np.float64)
    for _ in range(turns % 4):
        points = np.stack([side - points[..., 1], points[..., 0]], axis=-1)
    return points


def redetect_sideways(detector: Detects, images: Sequence[np.ndarray],
                      detections: Sequence[Sequence[Detection]]) -> list[list[Detection]]:
    """``detections`` of each image, with the landmarks of tilted faces re-detected upright (one detector call)."""
    jobs, crops = [], []
    for i, found in enumerate(detections):
        landscape = images[i].shape[1] > images[i].shape[0]
        for j, detection in enumerate(found):
            tilted = abs(roll_degrees(detection.landmarks)) > TILTED_DEG
            if tilted or landscape:
                crop = square_crop(images[i], detection.box, NEIGHBOURHOOD_MARGIN)
                for turns in TURNS if tilted else (0, *TURNS):
                    jobs.append((i, j, turns, square_origin(detection.box, NEIGHBOURHOOD_MARGIN)))
                    crops.append(np.ascontiguousarray(np.rot90(crop, turns)))
    best: dict[tuple[int, int], tuple[float, tuple]] = {}
    for (i, j, turns, (left, top, side)), again in zip(jobs, detector.detect(crops) if crops else []):
        centre = np.array([side / 2, side / 2])
        for found in sorted(again, key=lambda d: float(np.hypot(*(np.add(d.box[:2], d.box[2:]) / 2 - centre))))[:1]:
            if abs(roll_degrees(found.landmarks)) <= UPRIGHT_DEG and found.score > best.get((i, j), (-1.0,))[0]:
                points = unturn_points(np.array(found.landmarks), turns, side) + np.array([left, top])
                best[(i, j)] = (found.score, tuple((float(x), float(y)) for x, y in points))
    refined = [list(found) for found in detections]
    for (i, j), (_, landmarks) in best.items():
        refined[i][j] = replace(refined[i][j], landmarks=landmarks)
    return refined
