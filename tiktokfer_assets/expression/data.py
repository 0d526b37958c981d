"""Labelled face images: a release's faces (its manifest's ImageFolder files), the external photo set, seeded splits.

Images are decoded once into a ``(N, 3, 112, 112)`` ``uint8`` RGB tensor (the size of
the export's aligned crops; grayscale photos are repeated over the three channels), so
training epochs only augment, never decode.
"""

from __future__ import annotations

import random
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from tiktokfer_assets.expression.errors import ExpressionInputError
from tiktokfer_assets.vision.crops import PHOTO_SUFFIXES

CROP_SIZE = (112, 112)
"""(height, width) of the export's aligned face crops; every image is resized to it."""

SPLITS = ("train", "val", "test")

EXTERNAL_CLASSES = {
    "anger": "anger", "angry": "anger",
    "disgust": "disgust", "disgusted": "disgust",
    "happiness": "happiness", "happy": "happiness", "smiling": "happiness", "smile": "happiness",
    "neutral": "neutral",
    "sadness": "sadness", "sad": "sadness", "cry": "sadness", "crying": "sadness",
    "surprise": "surprise", "surprised": "surprise",
}
"""Challenge expression label (lower-cased) -> class of the external photo set
(``media/expressions``: anger, disgust, happiness, neutral, sadness, surprise). The
demo's names are the photo set's; the original research's ``Angry``, ``Smiling``,
``sad`` and ``surprise`` are their Ekman class, and ``Cry`` counts as sadness. A
label missing here has no external counterpart and is left out of the external test."""


@dataclass(frozen=True)
class LabelledImages:
    """Image files with their class names (parallel lists)."""

    paths: list[Path]
    labels: list[str]

    def __len__(self) -> int:
        return len(self.paths)

    def subset(self, indices) -> LabelledImages:
        return LabelledImages([self.paths[i] for i in indices], [self.labels[i] for i in indices])


def release_images(release_dir: str | Path, manifest_rows: list[dict]) -> LabelledImages:
    """The manifest's faces as files of the release (``aligned_path`` is relative to its root)."""
    root = Path(release_dir)
    paths = [root / row["aligned_path"] for row in manifest_rows]
    return LabelledImages(paths, [row["expression"] for row in manifest_rows])


def labelled_photos(folder: str | Path) -> LabelledImages:
    """The external photo set: ``<folder>/<expression>/<file>.jpg`` (the ImageFolder layout, as fetched)."""
    folder = Path(folder)
    rows = sorted((path.parent.name, path) for path in folder.glob("*/*") if path.suffix.lower() in PHOTO_SUFFIXES)
    if not rows:
        raise FileNotFoundError(f"no <expression>/<photo> files in {folder}: fetch the media with `tiktokfer fetch`")
    return LabelledImages([path for _, path in rows], [label for label, _ in rows])


def split_by_file(images: LabelledImages, seed: int, fractions=(0.6, 0.2, 0.2)) -> dict[str, LabelledImages]:
    """Stratified split into ``SPLITS`` by file: each class shuffled with ``seed`` and cut by ``fractions``."""
    by_class: dict[str, list[int]] = defaultdict(list)
    for i, label in enumerate(images.labels):
        by_class[label].append(i)
    parts: dict[str, list[int]] = {split: [] for split in SPLITS}
    rng = random.Random(seed)
    for label in sorted(by_class):
        indices = by_class[label]
        rng.shuffle(indices)
        cut_train = round(fractions[0] * len(indices))
        cut_val = cut_train + round(fractions[1] * len(indices))
        for split, part in zip(SPLITS, (indices[:cut_train], indices[cut_train:cut_val], indices[cut_val:])):
            parts[split].extend(part)
    return {split: images.subset(sorted(part)) for split, part in parts.items()}


def load_rgb(path: str | Path) -> np.ndarray:
    """One image as ``CROP_SIZE`` ``uint8`` RGB ``(H, W, 3)``; an unreadable file names itself."""
    try:
        with Image.open(path) as image:
            rgb = image.convert("RGB").resize(CROP_SIZE[::-1], Image.Resampling.BILINEAR)
    except OSError as exc:
        raise ExpressionInputError(f"cannot read image {path}: {exc}") from exc
    return np.array(rgb)


def decode(paths: list[Path]) -> torch.Tensor:
    """``(N, 3, 112, 112)`` ``uint8`` RGB tensor of the images."""
    out = torch.empty((len(paths), 3, *CROP_SIZE), dtype=torch.uint8)
    for i, path in enumerate(paths):
        out[i] = torch.from_numpy(load_rgb(path)).permute(2, 0, 1)
    return out
