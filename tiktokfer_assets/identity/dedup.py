"""Near-duplicate face removal with imagededup's perceptual hash (PHash).

Frames are sampled every 0.5 s, so a performer holding still yields several crops
that differ only by compression noise, a pixel of shift or a small change of
scale. :func:`select_unique` keeps one face per group of such near-duplicates within
each individual and expression (``group_by``), so the dataset does not over-weight
still moments and never loses a label: a face of an expression window is never
removed as a duplicate of an unlabelled face of the same person (before, 16 of the
demo's 313 faces were kept and none carried an expression). A null expression is a
group of its own.

Of a duplicate group the kept face is the best by, in order: detection score
(rounded to 2 decimals: RetinaFace's scores of one face differ in the third decimal
by compression noise), frontality (the nose's offset from the eyes' bisector, from
the five landmarks, rounded to 2 decimals; see
:func:`~tiktokfer_assets.vision.align.frontality`), sharpness (variance of the
Laplacian, like the hash on the crop reduced to ``WORKING_SIDE``), then the smallest face id
(reruns keep the same face).

Duplicate groups are the **connected components** of the relation "PHash Hamming
distance <= threshold". That relation is not transitive (a ~ b and b ~ c do not
imply a ~ c), so some grouping rule is needed; components are the one that does not
depend on the order of the faces (imagededup's own ``find_duplicates_to_remove``
keeps whichever file it meets first) and they collapse a slow drift across
consecutive frames (a ~ b ~ c ~ ...) into a single group, which is what a still
pose sampled over a few seconds looks like. The price is that a long chain can join
two faces further apart than the threshold; keep the threshold small (default 10
of 64 bits, imagededup's default).

Hashing is imagededup's; the search is not (its search creates a ``multiprocessing.Pool``
per call even with ``num_dist_workers=0``: 14 s per individual inside a multiprocess
step). :func:`select_unique` hashes every face once, streaming from ``images``, and
finds the close pairs of all groups in one call of
:func:`~tiktokfer_assets.identity.hamming.near_pairs` (all-pairs within small groups,
multi-index hashing within large ones). ``bench/bench_dedup.py`` (families of 8
near-duplicate 48x48 JPEGs in one individual, 2 loaded cores): search 0.19 / 0.48 /
2.2 s for 2k / 8k / 32k faces (x2.6, x4.6 per 4x; imagededup's 3.8 s on 2k, 20x slower),
the whole call 5.5 / 17.7 / 86 s (x3.2, x4.9; hashing dominates), the same groups as
all pairs, no worker pool.

Image inputs: a decoded ``(H, W, 3)`` ``uint8`` numpy array in **BGR** order (the
detector's crops), or a path to an image file, or the encoded bytes of one (e.g. an
object read from the object store). Everything is converted to RGB before hashing.
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from os import PathLike
from typing import TYPE_CHECKING

import numpy as np
import polars as pl
from PIL import Image
from scipy import ndimage

from tiktokfer_assets.identity.hamming import components, hex_to_uint64, near_pairs

if TYPE_CHECKING:
    from imagededup.methods import PHash

ImageSource = np.ndarray | str | PathLike | bytes
"""A BGR ``uint8`` array, an image file path, or an encoded image file's bytes."""

WORKING_SIDE = 256
"""Hash and sharpness are computed on the image reduced (by an integer factor) to a short side of at least this
many pixels: PHash looks at 32x32 anyway. On ``bench_scale``'s 48-video 720p partition (1,114 context crops of
about 1100x1100 px) 3.3 ms a crop against 30.8 at full size, 0.34 of the 64 hash bits differ on average (at most
4), and 30 faces are kept instead of 29 (one group split; two groups keep another face of equal score and pose)."""


def load_rgb(image: ImageSource, min_side: int | None = None) -> np.ndarray:
    """``(H, W, 3)`` ``uint8`` RGB array of ``image`` (BGR arrays are channel-swapped).

    ``min_side``: reduced by the largest integer factor that keeps the short side at least this
    long (a JPEG is decoded at 1/2, 1/4 or 1/8 scale, which costs less than a full decode)."""
    if isinstance(image, np.ndarray):
        if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
            raise ValueError(f"expected an (H, W, 3) uint8 BGR array, got shape {image.shape} dtype {image.dtype}")
        rgb = np.ascontiguousarray(image[..., ::-1])
        return rgb if min_side is None else np.asarray(_reduced(Image.fromarray(rgb), min_side))
    source = io.BytesIO(image) if isinstance(image, bytes) else image
    with Image.open(source) as opened:
        if min_side is not None:
            opened.draft(None, (min_side, min_side))
            return np.asarray(_reduced(opened, min_side).convert("RGB"))
        return np.asarray(opened.convert("RGB"))


def _reduced(image: Image.Image, min_side: int) -> Image.Image:
    factor = min(image.size) // min_side
    return image.reduce(factor) if factor >= 2 else image


def sharpness(rgb: np.ndarray) -> float:
    """Variance of the Laplacian of the grey image: higher means more in-focus detail."""
    grey = np.asarray(Image.fromarray(rgb).convert("L"), dtype=np.float64)
    return float(ndimage.laplace(grey).var())


def new_hasher() -> PHash:
    """imagededup's PHash (imported here: imagededup imports torch, ~10 s, for its CNN methods)."""
    from imagededup.methods import PHash

    return PHash(verbose=False)


def phash(rgb: np.ndarray, hasher: PHash | None = None) -> str:
    """imagededup's 64-bit perceptual hash of an RGB image, as 16 hex digits."""
    return (hasher or new_hasher()).encode_image(image_array=rgb)


def find_duplicate_groups(images: Mapping[str, ImageSource], max_distance_threshold: int = 10) -> list[list[str]]:
    """Partition the keys of ``images`` into groups of perceptual near-duplicates.

    Two images are linked when the Hamming distance of their PHashes is at most
    ``max_distance_threshold`` (0-64); groups are the connected components of those
    links (see the module docstring). Every key is in exactly one group; an image
    without duplicates is a group of one. Groups keep the mapping's key order and
    come in the order of their first key.
    """
    hasher = new_hasher()
    keys = list(images)
    hashes = hex_to_uint64([phash(load_rgb(images[key], WORKING_SIDE), hasher) for key in keys])
    labels = components(len(keys), near_pairs(hashes, max_distance_threshold))
    groups: list[list[str]] = [[] for _ in range(int(labels.max()) + 1 if keys else 0)]
    for key, label in zip(keys, labels):
        groups[label].append(key)
    return groups


def select_unique(
    faces: pl.DataFrame,
    images: Mapping[str, ImageSource] | None = None,
    *,
    path_column: str | None = None,
    max_distance_threshold: int = 10,
    group_by: Sequence[str] = ("individual_id",),
) -> pl.DataFrame:
    """Keep the best face of each duplicate group within each group of ``group_by``.

    Args:
        faces: one row per face with ``face_id`` (unique, string), the ``group_by``
            columns and ``score`` (detection score); optional ``frontality`` (0..1);
            other columns are carried along.
        images: face id -> image (see :data:`ImageSource`); or ``None`` to read each
            face from the file named in ``path_column``.
        path_column: column holding local image paths, used when ``images`` is None.
        max_distance_threshold: PHash Hamming distance (0-64) up to which two crops
            of one group count as duplicates.
        group_by: faces are compared only within equal values of these columns
            (e.g. ``("individual_id", "expression")``); nulls form a group of their own.

    Returns:
        The kept rows, in their input order, with two new columns: ``sharpness``
        (variance of the Laplacian, the tie-breaker after ``score``) and
        ``duplicates`` (sorted list of the face ids removed in favour of this one;
        empty when it had none). Faces of different groups are never compared.
        Within a duplicate group the kept face is chosen by the rule of the module
        docstring.
    """
    missing = {"face_id", "score", *group_by} - set(faces.columns)
    if missing:
        raise ValueError(f"faces lacks column(s) {sorted(missing)}")
    if faces["face_id"].n_unique() != faces.height:
        raise ValueError("face_id values must be unique")
    face_ids = [str(f) for f in faces["face_id"]]
    if images is None:
        if path_column is None or path_column not in faces.columns:
            raise ValueError("pass images, or path_column naming a column of local image paths")
        images = dict(zip(face_ids, faces[path_column]))
    absent = [f for f in face_ids if f not in images]
    if absent:
        raise KeyError(f"no image for {len(absent)} face(s), e.g. {absent[:3]}")

    hasher = new_hasher()
    hashes, sharpness_of = [], []
    for face_id in face_ids:  # one image in memory at a time: ``images`` may read lazily
        rgb = load_rgb(images[face_id], WORKING_SIDE)
        hashes.append(phash(rgb, hasher))
        sharpness_of.append(sharpness(rgb))
    group_of: dict[tuple, int] = {}
    groups = np.array([group_of.setdefault(key, len(group_of)) for key in faces.select(group_by).iter_rows()],
                      dtype=np.int64)
    pairs = near_pairs(hex_to_uint64(hashes), max_distance_threshold, groups)
    ranked = pl.DataFrame({
        "face_id": face_ids,
        "component": components(len(face_ids), pairs),
        "score": faces["score"].cast(pl.Float64).round(2),
        "frontality": faces["frontality"].cast(pl.Float64).round(2) if "frontality" in faces.columns else 0.0,
        "sharpness": sharpness_of,
    }).sort(["component", "score", "frontality", "sharpness", "face_id"], descending=[False, True, True, True, False])
    best = ranked.group_by("component", maintain_order=True).agg(
        pl.col("face_id").first().alias("best"), pl.col("face_id").slice(1).sort().alias("duplicates"))
    removed_by = dict(zip(best["best"], best["duplicates"].to_list()))
    return (
        faces.with_columns(
            pl.Series("sharpness", sharpness_of, dtype=pl.Float64),
            pl.Series("duplicates", [removed_by.get(f, []) for f in face_ids], dtype=pl.List(pl.String)),
        )
        .filter(pl.Series([f in removed_by for f in face_ids], dtype=pl.Boolean))
    )
