"""Face alignment: warp a face onto the SphereFace 96x112 five-point template.

Face-recognition networks such as MobileFaceNet are trained on faces whose eyes,
nose and mouth corners sit at fixed pixel positions; an unaligned detector crop
puts them elsewhere and the embeddings stop separating identities. The five
RetinaFace landmarks (left eye, right eye, nose, left mouth corner, right mouth
corner; "left" is the viewer's left, i.e. the smaller x) are mapped onto the
template by the least-squares similarity transform (rotation, uniform scale,
translation; no reflection or shear) of Umeyama (1991), and the image is resampled
with Pillow's bilinear affine warp.

Coordinates follow OpenCV's pixel-index convention, in which the template is
defined: the centre of pixel ``(i, j)`` (row, column) is the point ``(x=j, y=i)``,
so the template point ``(30.2946, 51.6963)`` lies between columns 30 and 31 of
row 51. RetinaFace's landmarks put pixel centres at +0.5 instead; that half-pixel
is left alone (subtracting it moved MobileFaceNet's similarities on the test
photos by about 0.01, not for the better).

The warp is channel-order agnostic: the output has the same channel order (BGR or
RGB) and dtype (``uint8``) as the input.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from PIL import Image

# SphereFace / MobileFaceNet template for a 96 (width) x 112 (height) crop, (x, y).
TEMPLATE_96X112 = np.array(
    [
        [30.2946, 51.6963],  # left eye
        [65.5318, 51.5014],  # right eye
        [48.0252, 71.7366],  # nose tip
        [33.5493, 92.3655],  # left mouth corner
        [62.7299, 92.2041],  # right mouth corner
    ],
    dtype=np.float64,
)
TEMPLATE_SIZE = (112, 96)  # (height, width) the template is defined for
# The ArcFace / InsightFace 112x112 template: the same points, 8 px further right (the crops of the dataset),
# so columns 8..104 of an ArcFace-aligned crop are the SphereFace-aligned 96x112 crop.
ARCFACE_SIZE = (112, 112)
ARCFACE_SHIFT_X = 8
TEMPLATE_ARCFACE_112 = TEMPLATE_96X112 + np.array([ARCFACE_SHIFT_X, 0.0])


def similarity_transform(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """Least-squares similarity transform taking ``src`` points onto ``dst`` points.

    Umeyama's closed form: with centred point sets, the rotation comes from the SVD
    of their covariance (sign-corrected so it is a proper rotation, never a
    reflection), the scale from the ratio of the singular values to the source
    variance, and the translation from the centroids.

    Args:
        src: ``(K, 2)`` points ``(x, y)``, K >= 2, not all equal.
        dst: ``(K, 2)`` points ``(x, y)``.

    Returns:
        A ``(2, 3)`` matrix ``M`` with ``dst ~= src @ M[:, :2].T + M[:, 2]``.
    """
    src = np.asarray(src, dtype=np.float64)
    dst = np.asarray(dst, dtype=np.float64)
    if src.shape != dst.shape or src.ndim != 2 or src.shape[1] != 2 or src.shape[0] < 2:
        raise ValueError(f"expected two (K, 2) point arrays with K >= 2, got {src.shape} and {dst.shape}")
    src_mean = src.mean(axis=0)
    dst_mean = dst.mean(axis=0)
    src_c = src - src_mean
    dst_c = dst - dst_mean
    src_var = (src_c**2).sum() / len(src)
    if src_var <= 1e-12:
        raise ValueError("source points are all identical; no similarity transform exists")
    covariance = dst_c.T @ src_c / len(src)
    u, singular, vt = np.linalg.svd(covariance)
    signs = np.ones(2)
    if np.linalg.det(u) * np.linalg.det(vt) < 0:
        signs[-1] = -1.0
    rotation = u @ np.diag(signs) @ vt
    scale = (singular * signs).sum() / src_var
    matrix = np.empty((2, 3))
    matrix[:, :2] = scale * rotation
    matrix[:, 2] = dst_mean - matrix[:, :2] @ src_mean
    return matrix


def template_for(size: tuple[int, int]) -> np.ndarray:
    """The five template points for an output of ``size = (height, width)``.

    The 96x112 template is scaled per axis, so other sizes keep the same framing.
    """
    height, width = size
    return TEMPLATE_96X112 * np.array([width / TEMPLATE_SIZE[1], height / TEMPLATE_SIZE[0]])


def roll_degrees(landmarks5: np.ndarray | Sequence[Sequence[float]]) -> float:
    """In-plane rotation of a face: the angle (degrees, -180..180) of its eye line, left eye to right eye.

    0 for an upright face; positive when the right eye is lower (image y grows downwards), i.e. the
    face is turned clockwise as seen; about +-90 for a face filmed sideways.
    """
    points = np.asarray(landmarks5, dtype=np.float64)
    dx, dy = points[1] - points[0]
    return float(np.degrees(np.arctan2(dy, dx)))


def frontality(landmarks5: np.ndarray | Sequence[Sequence[float]]) -> float:
    """How frontal a face is, 0..1, from the five landmarks: 1 when the nose lies on the perpendicular
    bisector of the eyes, 0 when it is half the eye distance or more to one side (a yaw proxy that
    needs no 3-D model and is independent of roll and scale)."""
    points = np.asarray(landmarks5, dtype=np.float64)
    left, right, nose = points[0], points[1], points[2]
    axis = right - left
    distance = float(np.hypot(*axis))
    if distance <= 1e-9:
        return 0.0
    offset = abs(float(np.dot(nose - (left + right) / 2, axis / distance)))
    return max(0.0, 1.0 - offset / (distance / 2))


def aligned_landmarks(landmarks5: np.ndarray | Sequence[Sequence[float]], template: np.ndarray) -> np.ndarray:
    """Where the five landmarks land in the crop aligned on ``template`` (the fitted similarity transform)."""
    points = np.asarray(landmarks5, dtype=np.float64)
    matrix = similarity_transform(points, template)
    return points @ matrix[:, :2].T + matrix[:, 2]


def align_face(
    image: np.ndarray,
    landmarks5: np.ndarray | Sequence[Sequence[float]],
    size: tuple[int, int] = TEMPLATE_SIZE,
    template: np.ndarray | None = None,
) -> np.ndarray:
    """Warp ``image`` so that its five landmarks land on the SphereFace template.

    Args:
        image: ``(H, W, 3)`` ``uint8`` array in any channel order (kept as is).
        landmarks5: five ``(x, y)`` points in the pixel coordinates of ``image``, in
            RetinaFace order: left eye, right eye, nose, left mouth, right mouth.
        size: ``(height, width)`` of the output; the default 112x96 is what
            MobileFaceNet expects.
        template: five target points in the output (default: the SphereFace template
            scaled to ``size``); e.g. :data:`TEMPLATE_ARCFACE_112` with :data:`ARCFACE_SIZE`.

    Returns:
        ``(height, width, 3)`` ``uint8`` aligned crop; pixels that fall outside
        ``image`` are black.
    """
    image = np.ascontiguousarray(image)
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError(f"expected an (H, W, 3) uint8 image, got shape {image.shape} dtype {image.dtype}")
    points = np.asarray(landmarks5, dtype=np.float64)
    if points.shape != (5, 2):
        raise ValueError(f"expected 5 (x, y) landmarks, got an array of shape {points.shape}")
    height, width = size
    template = template_for(size) if template is None else np.asarray(template, dtype=np.float64)
    # Fit image -> template (least squares in template pixels, as skimage's and
    # OpenCV's estimators do), then invert: Pillow wants the output -> input map.
    forward = similarity_transform(points, template)
    source = Image.fromarray(image)
    # A bilinear warp that shrinks by 2x or more aliases (it reads 4 input pixels per
    # output pixel); box-filter the image down by the integer part of the shrink first.
    # On the test photos this lowered the largest different-person similarity of
    # MobileFaceNet from 0.23 to 0.19. Pixel k of the reduced image averages input
    # pixels [k*f, (k+1)*f), whose centre is at k*f + (f-1)/2.
    factor = int(1.0 / np.sqrt(abs(np.linalg.det(forward[:, :2]))))
    if factor >= 2:
        source = source.reduce(factor)
        points = (points - (factor - 1) / 2) / factor
        forward = similarity_transform(points, template)
    linear = np.linalg.inv(forward[:, :2])
    translation = -linear @ forward[:, 2]
    # Pillow samples the input at A @ (x + 0.5, y + 0.5) + c in a frame where pixel
    # centres are at +0.5; shift the offset so that output index (x, y) reads input
    # index linear @ (x, y) + translation, the OpenCV convention of the template.
    offset = translation + 0.5 - linear @ np.array([0.5, 0.5])
    coefficients = (linear[0, 0], linear[0, 1], offset[0], linear[1, 0], linear[1, 1], offset[1])
    warped = source.transform(
        (width, height), Image.Transform.AFFINE, coefficients, resample=Image.Resampling.BILINEAR
    )
    return np.asarray(warped)
