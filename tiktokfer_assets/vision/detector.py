"""Batched face detection with RetinaFace MobileNet-0.25 on CUDA or CPU.

:class:`FaceDetector` loads the network once and detects faces in any number of BGR
``uint8`` images of any sizes:

1. each image is resized on the device (bilinear, antialiased) so its longer side is
   ``max_size``, keeping the aspect ratio, and mean-subtracted;
2. images are grouped by their input size rounded up to the network stride (32 px)
   and zero-padded (zero = the mean colour after subtraction) at the bottom/right, so
   a video's frames form full batches of ``batch_size`` and anchors are built once
   per size; one forward pass per batch (batch norms folded into the convolutions;
   channels-last layout on CPU), decoding and NMS on the device. Images are uploaded
   batch by batch, so device memory is bounded by one batch;
3. a face cut by the image's edge (its box reaches within ``EDGE_MARGIN`` of its size of
   the border: ``Detection.truncated``) is kept from ``edge_score_threshold`` on, lower
   than ``score_threshold``: half a face scores 0.47-1.0 (median 0.95) where a whole one
   scores above 0.9 (measured on the 13 person photos cut through the face's centre at
   each side, 52 images: 35 found at 0.9, 50 at 0.5), while no face-free image, scene or
   portrait here has any detection under 0.9 down to 0.3; a low box over a confident
   face (``_covers``) is dropped;
4. images without a face are retried rotated 90 degrees
   anticlockwise and clockwise (landscape videos filmed sideways), again batched;
5. boxes and landmarks are mapped back to each image's own pixel coordinates
   (unrotated, unresized) and boxes are clipped to the image.

Rotation convention: :attr:`Detection.rotation` is the angle in degrees,
anticlockwise positive (``np.rot90``'s and Pillow's convention), by which the image
was rotated when the face was found: ``np.rot90(image, detection.rotation // 90)``
shows that face upright. 0 means found in the image as given.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F

from tiktokfer_assets.vision.device import resolve_device
from tiktokfer_assets.vision.retinaface import MEAN_BGR, detect_batch, load_retinaface

STRIDE = 32  # coarsest network stride; inputs are padded to a multiple of it
RETRY_ROTATIONS = (90, -90)  # anticlockwise, clockwise
EDGE_MARGIN = 0.1  # a box this close to the image's border (as a fraction of its size) is of a face cut by the edge


@dataclass(frozen=True)
class Detection:
    """One face in the coordinates of the image passed to :meth:`FaceDetector.detect`.

    ``box``: ``(x1, y1, x2, y2)`` in pixels, clipped to the image. ``landmarks``: five
    ``(x, y)`` points - left eye, right eye, nose, left and right mouth corner (as seen
    in the upright face; left = smaller x when upright). ``rotation``: see the module
    docstring. ``truncated``: the face is cut by the image's edge (see ``EDGE_MARGIN``).
    """

    box: tuple[float, float, float, float]
    score: float
    landmarks: tuple[tuple[float, float], ...]
    rotation: int
    truncated: bool = False


def _unrotate_points(points: np.ndarray, rotation: int, width: int, height: int) -> np.ndarray:
    """Map ``(..., 2)`` points from the image rotated by ``rotation`` back to the ``width x height`` image.

    ``np.rot90(k=1)`` sends ``(x, y)`` to ``(y, W - x)``; ``k=-1`` sends it to ``(H - y, x)``
    (continuous pixel-edge coordinates), and these are their inverses.
    """
    xr, yr = points[..., 0], points[..., 1]
    if rotation == 90:
        return np.stack([width - yr, xr], axis=-1)
    if rotation == -90:
        return np.stack([yr, height - xr], axis=-1)
    raise ValueError(f"unsupported rotation {rotation}")


@dataclass(frozen=True)
class _Found:
    """Detections of one image in network-input pixels: boxes ``(K, 4)``, scores ``(K,)``, points ``(K, 5, 2)``,
    and whether each is cut by the image's edge ``(K,)``."""

    boxes: np.ndarray
    scores: np.ndarray
    points: np.ndarray
    truncated: np.ndarray

    @classmethod
    def empty(cls) -> _Found:
        points = np.zeros((0, 5, 2), np.float32)
        return cls(np.zeros((0, 4), np.float32), np.zeros(0, np.float32), points, np.zeros(0, bool))

    @property
    def best_score(self) -> float:
        return float(self.scores[0]) if len(self.scores) else -1.0

    def unrotated(self, rotation: int, width: int, height: int) -> _Found:
        """These detections, found in the image rotated by ``rotation``, in the unrotated image."""
        corners = _unrotate_points(self.boxes.reshape(-1, 2, 2), rotation, width, height)
        boxes = np.concatenate([corners.min(axis=1), corners.max(axis=1)], axis=1)
        return _Found(boxes, self.scores, _unrotate_points(self.points, rotation, width, height), self.truncated)


class FaceDetector:
    """RetinaFace MobileNet-0.25, loaded once, detecting in batches on ``device``.

    ``device``: ``auto`` (CUDA when available), ``cpu`` or ``cuda``; the same code runs
    on both. ``batch_size`` images per forward pass (on CPU 2-4 was fastest here: larger
    batches overflow the caches; GPUs want large ones); ``score_threshold`` on the face
    probability, ``edge_score_threshold`` for a face cut by the image's edge;
    ``nms_threshold`` IoU for non-maximum suppression; ``max_size`` the
    longer side, in pixels, images are resized to (up or down) before detection.
    """

    def __init__(
        self,
        weights_path: str | Path,
        device: Literal["auto", "cpu", "cuda"] | str = "auto",
        batch_size: int = 16,
        score_threshold: float = 0.9,
        edge_score_threshold: float = 0.5,
        nms_threshold: float = 0.4,
        max_size: int = 640,
    ) -> None:
        if batch_size < 1 or max_size < STRIDE:
            raise ValueError(f"batch_size must be >= 1 and max_size >= {STRIDE}")
        self.device = torch.device(resolve_device(device))
        self.batch_size = batch_size
        self.score_threshold = score_threshold
        self.edge_score_threshold = edge_score_threshold
        self.nms_threshold = nms_threshold
        self.max_size = max_size
        # NHWC is faster for these (mostly depthwise) convolutions on CPU (measured); CUDA keeps NCHW.
        self._memory_format = torch.channels_last if self.device.type == "cpu" else torch.contiguous_format
        self.model = load_retinaface(weights_path, self.device).to(memory_format=self._memory_format)
        self._mean = torch.tensor(MEAN_BGR, device=self.device).view(3, 1, 1)

    @torch.inference_mode()
    def detect(self, images: Sequence[np.ndarray]) -> list[list[Detection]]:
        """Faces in each BGR ``uint8`` ``(H, W, 3)`` image, best score first; ``[]`` where none.

        Device memory is bounded by one batch: images are resized and uploaded batch by batch.
        """
        sizes = [self._input_size(image) for image in images]
        found = self._run(images, sizes, [(i, 0) for i in range(len(images))])
        rotations = [0] * len(images)
        misses = [i for i, f in enumerate(found) if not len(f.scores)]
        if misses:
            retried = self._run(images, sizes, [(i, r) for r in RETRY_ROTATIONS for i in misses])
            for j, i in enumerate(misses):
                candidates = [(retried[k * len(misses) + j], r) for k, r in enumerate(RETRY_ROTATIONS)]
                best, rotation = max(candidates, key=lambda c: c[0].best_score)
                if len(best.scores):
                    height, width = sizes[i]
                    found[i], rotations[i] = best.unrotated(rotation, width, height), rotation
        return [_to_detections(*args) for args in zip(images, sizes, found, rotations)]

    def detect_one(self, image: np.ndarray) -> list[Detection]:
        """:meth:`detect` for a single image."""
        return self.detect([image])[0]

    def _input_size(self, image: np.ndarray) -> tuple[int, int]:
        """``(height, width)`` of ``image`` resized so its longer side is ``max_size``."""
        if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
            raise ValueError(f"expected a BGR uint8 (H, W, 3) image, got {image.dtype} {image.shape}")
        height, width = image.shape[:2]
        scale = self.max_size / max(height, width)
        return max(1, round(height * scale)), max(1, round(width * scale))

    def _input(self, image: np.ndarray, size: tuple[int, int], rotation: int) -> torch.Tensor:
        """``image`` on the device, resized to ``size``, mean-subtracted, rotated: ``(3, h, w)`` float."""
        pixels = torch.from_numpy(np.require(image, requirements=["C", "W"]))  # from_numpy needs writable
        tensor = pixels.to(self.device).permute(2, 0, 1).float()
        if size != image.shape[:2]:
            tensor = F.interpolate(tensor[None], size=size, mode="bilinear", antialias=True)[0]
        tensor = tensor - self._mean
        return torch.rot90(tensor, rotation // 90, dims=(1, 2)) if rotation else tensor

    def _run(
        self, images: Sequence[np.ndarray], sizes: list[tuple[int, int]], jobs: list[tuple[int, int]]
    ) -> list[_Found]:
        """Detect for each ``(image index, rotation)`` job; results in that rotated input's pixels."""
        groups: dict[tuple[int, int], list[int]] = defaultdict(list)
        for j, (i, rotation) in enumerate(jobs):
            height, width = sizes[i] if rotation == 0 else sizes[i][::-1]
            groups[(-(-height // STRIDE) * STRIDE, -(-width // STRIDE) * STRIDE)].append(j)
        out = [_Found.empty()] * len(jobs)
        for (height, width), members in groups.items():
            for start in range(0, len(members), self.batch_size):
                chunk = members[start : start + self.batch_size]
                batch = torch.empty(
                    (len(chunk), 3, height, width), device=self.device, memory_format=self._memory_format
                ).zero_()  # zero padding = the mean colour after subtraction
                for row, j in enumerate(chunk):
                    i, rotation = jobs[j]
                    tensor = self._input(images[i], sizes[i], rotation)
                    batch[row, :, : tensor.shape[1], : tensor.shape[2]] = tensor
                threshold = min(self.score_threshold, self.edge_score_threshold)
                raw = detect_batch(self.model, batch, threshold, self.nms_threshold)
                for row, j in enumerate(chunk):
                    i, rotation = jobs[j]
                    in_size = sizes[i] if rotation == 0 else sizes[i][::-1]
                    mask = (raw.image_index == row).numpy()
                    boxes, scores = raw.boxes.numpy()[mask], raw.scores.numpy()[mask]
                    cut = _cut_by_edge(boxes, *in_size)
                    whole = scores >= self.score_threshold
                    keep = whole | (cut & (scores >= self.edge_score_threshold) & ~_covers(boxes, whole))
                    out[j] = _Found(boxes[keep], scores[keep], raw.landmarks.numpy()[mask][keep], cut[keep])
        return out


def _covers(boxes: np.ndarray, whole: np.ndarray) -> np.ndarray:
    """Whether each box overlaps a ``whole`` (confident) box by half of the smaller one's area or more.

    A low-scoring box around a confident face (a head-and-shoulders box reaching the
    edge, score 0.72 on a sideways portrait) is no second face.
    """
    anchors = boxes[whole]
    if not len(anchors):
        return np.zeros(len(boxes), bool)
    lo, hi = np.maximum(boxes[:, None, :2], anchors[None, :, :2]), np.minimum(boxes[:, None, 2:], anchors[None, :, 2:])
    inter = np.prod(np.clip(hi - lo, 0, None), axis=2)
    area = np.prod(boxes[:, 2:] - boxes[:, :2], axis=1)
    smaller = np.minimum(area[:, None], np.prod(anchors[:, 2:] - anchors[:, :2], axis=1)[None, :])
    return (inter >= 0.5 * np.maximum(smaller, 1e-6)).any(axis=1)


def _cut_by_edge(boxes: np.ndarray, height: int, width: int) -> np.ndarray:
    """Whether each ``(x1, y1, x2, y2)`` box reaches within ``EDGE_MARGIN`` of its size of the image's border."""
    margin = EDGE_MARGIN * np.maximum(boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1])
    near_start = (boxes[:, 0] <= margin) | (boxes[:, 1] <= margin)
    return near_start | (boxes[:, 2] >= width - margin) | (boxes[:, 3] >= height - margin)


def _to_detections(image: np.ndarray, size: tuple[int, int], found: _Found, rotation: int) -> list[Detection]:
    """Scale from the ``size`` (h, w) network input to ``image``'s pixels, clip boxes, wrap as :class:`Detection`."""
    height, width = image.shape[:2]
    scale = np.array([size[1] / width, size[0] / height])
    boxes = (found.boxes.reshape(-1, 2, 2) / scale).reshape(-1, 4).clip(0, [width, height, width, height])
    points = found.points / scale
    return [
        Detection(
            box=tuple(float(v) for v in box),
            score=float(score),
            landmarks=tuple((float(x), float(y)) for x, y in pts),
            rotation=rotation,
            truncated=bool(cut),
        )
        for box, score, pts, cut in zip(boxes, found.scores, points, found.truncated)
    ]
