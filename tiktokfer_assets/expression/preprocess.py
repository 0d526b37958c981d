"""Preprocessing (torchvision.transforms.v2) of the ``uint8`` 112x112 RGB crops for a backbone.

Evaluation resizes to the backbone's input and casts to float in ``[0, 255]`` (each
backbone normalises itself). Training first augments each crop independently, with one
of ``AUGMENTATIONS``:

* ``basic``: a random resized crop (80-100 % of the area, aspect 0.9-1.1), a
  horizontal flip, rotation up to 10 degrees, brightness/contrast/saturation jitter,
  grayscale with probability 0.2 (a fifth of TikTok's frames are filtered; most
  external photos are grayscale);
* ``trivial``: the same crop (70-100 %), flip and grayscale around TrivialAugmentWide
  (one random photometric or geometric operation of random strength per crop), then
  random erasing of a patch (p 0.25).
"""

from __future__ import annotations

import torch
from torchvision.transforms import v2

from tiktokfer_assets.expression.data import CROP_SIZE

ROTATION_DEGREES = 10.0
GRAYSCALE_P = 0.2
ERASING_P = 0.25

AUGMENTATIONS = {
    "basic": {
        "random_resized_crop": {"scale": [0.8, 1.0], "ratio": [0.9, 1.1]},
        "horizontal_flip": 0.5,
        "rotation_degrees": ROTATION_DEGREES,
        "color_jitter": {"brightness": 0.3, "contrast": 0.3, "saturation": 0.2},
        "grayscale": GRAYSCALE_P,
    },
    "trivial": {
        "random_resized_crop": {"scale": [0.7, 1.0], "ratio": [0.9, 1.1]},
        "horizontal_flip": 0.5,
        "trivial_augment_wide": True,
        "grayscale": GRAYSCALE_P,
        "random_erasing": ERASING_P,
    },
}
"""Augmentation name -> its settings (as stored in ``preprocessing.json``)."""


def eval_transform(input_size: tuple[int, int]) -> v2.Transform:
    """``uint8`` crops (one or a batch) -> float ``[0, 255]`` at ``input_size``."""
    return v2.Compose([v2.Resize(input_size, antialias=True), v2.ToDtype(torch.float32, scale=False)])


def train_transform(input_size: tuple[int, int], augmentation: str = "trivial") -> v2.Transform:
    """Augmentation then :func:`eval_transform`; apply to one crop at a time (each gets its own draw)."""
    if augmentation not in AUGMENTATIONS:
        raise ValueError(f"unknown augmentation {augmentation!r}; choose one of {sorted(AUGMENTATIONS)}")
    settings = AUGMENTATIONS[augmentation]
    crop = settings["random_resized_crop"]
    steps = [
        v2.RandomResizedCrop(CROP_SIZE, scale=crop["scale"], ratio=crop["ratio"], antialias=True),
        v2.RandomHorizontalFlip(settings["horizontal_flip"]),
    ]
    if augmentation == "basic":
        steps += [v2.RandomRotation(ROTATION_DEGREES), v2.ColorJitter(**settings["color_jitter"])]
    else:
        steps.append(v2.TrivialAugmentWide())
    steps += [v2.RandomGrayscale(GRAYSCALE_P), eval_transform(input_size)]
    if "random_erasing" in settings:  # on float pixels; erased patches get 0 (black)
        steps.append(v2.RandomErasing(settings["random_erasing"]))
    return v2.Compose(steps)


def batch_mixing(mix: str, alpha: float, num_classes: int) -> v2.Transform | None:
    """``(images, labels) -> (mixed images, soft labels)`` for a training batch, or None for ``mix="none"``.

    ``mixup`` blends each image with the next one of the batch, ``cutmix`` pastes a box of it, ``both`` draws one of
    the two per batch; the share comes from Beta(``alpha``, ``alpha``) and the labels are mixed by the same share.
    ``mix`` is one of ``settings.MIXES`` (checked by ``TrainConfig``)."""
    mixup, cutmix = v2.MixUp(alpha=alpha, num_classes=num_classes), v2.CutMix(alpha=alpha, num_classes=num_classes)
    return {"none": None, "mixup": mixup, "cutmix": cutmix, "both": v2.RandomChoice([mixup, cutmix])}[mix]


def describe(input_size: tuple[int, int], augmentation: str) -> dict:
    """The preprocessing as JSON-able data, stored with the model."""
    return {
        "decode": "RGB (grayscale repeated), bilinear resize to the export's crop size",
        "crop_size": list(CROP_SIZE),
        "input_size": list(input_size),
        "pixels": "float32 in [0, 255]; the backbone normalises",
        "train_augmentation": {"name": augmentation, **AUGMENTATIONS[augmentation]},
    }
