"""Feature extractors from the project's face checkpoints, for transfer learning.

Every backbone takes float RGB pixels in ``[0, 255]`` at its ``input_size`` and
normalises them itself, the way its checkpoint was trained, so preprocessing is the
same resize for all:

* ``mobilefacenet``: MobileFaceNet (CASIA-WebFace face recognition), 112x96 input
  (the 112x112 aligned crop squeezed back to the 96-wide SphereFace template),
  ``(x - 127.5) / 128``; features: the 512-d global depthwise (``linear7``) output,
  before the identity embedding layer.
* ``retinaface``: the MobileNet-0.25 body of RetinaFace (WIDER FACE detection),
  112x112 input, BGR minus ``MEAN_BGR``; features: its stride-32 map (256 channels)
  average-pooled.

Measured with ``bench/bench_expression.py`` on ``media/expressions`` (396 train / 132
val / 132 test photos, seed 0, 2 CPU cores shared with other jobs): as frozen features
under a logistic-regression probe the two are equal (test macro-F1 0.587 MobileFaceNet,
0.592 RetinaFace; val 0.588 and 0.541). Fine-tuned from that probe (LP-FT, the
defaults then), RetinaFace's val macro-F1 rose to 0.600 in 6 epochs (test 0.587: no gain
over its probe), MobileFaceNet's fell every epoch (0.571, 0.557, 0.525, 0.512: its epoch
0, the probe, is kept), at about 9x the cost per training image (a 32-image step took
6.5-12 s against 1.6 s on the same CPU). Under ``TrainConfig``'s recipe before MixUp (a random
head, everything trained at 1e-3 for 60 epochs, found on RetinaFace) the two fine-tuned
models are equal within the noise: test macro-F1 0.682 MobileFaceNet, 0.662 RetinaFace on
the mean of split seeds 0-6 (MobileFaceNet better on 5 of 7; paired standard error 0.024),
MobileFaceNet at about 8x the CPU cost per training image (README, "Expression model").
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from tiktokfer_assets.vision.mobilefacenet import INPUT_SIZE as MOBILEFACENET_INPUT
from tiktokfer_assets.vision.mobilefacenet import MobileFaceNet, load_mobilefacenet
from tiktokfer_assets.vision.retinaface import MEAN_BGR, MobileNetV1, load_retinaface


class MobileFaceNetFeatures(nn.Module):
    """MobileFaceNet up to ``linear7``: ``(N, 3, 112, 96)`` RGB 0-255 -> ``(N, 512)``."""

    def __init__(self, weights_path: str | Path | None) -> None:
        super().__init__()
        net = load_mobilefacenet(weights_path) if weights_path is not None else MobileFaceNet()
        self.stem = nn.Sequential(net.conv1, net.dw_conv1, net.blocks, net.conv2, net.linear7)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.stem((x - 127.5) / 128.0).flatten(1)


class RetinaFaceFeatures(nn.Module):
    """RetinaFace's MobileNet-0.25 body: ``(N, 3, 112, 112)`` RGB 0-255 -> ``(N, 256)``."""

    def __init__(self, weights_path: str | Path | None) -> None:
        super().__init__()
        self.body = load_retinaface(weights_path, fuse=False).body if weights_path is not None else MobileNetV1()
        self.register_buffer("mean", torch.tensor(MEAN_BGR).view(1, 3, 1, 1), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _, _, c5 = self.body(x.flip(1) - self.mean)  # flip(1): RGB -> BGR
        return c5.mean(dim=(2, 3))


@dataclass(frozen=True)
class BackboneSpec:
    build: type[nn.Module]
    input_size: tuple[int, int]
    """(height, width) the 112x112 crops are resized to."""
    dim: int


BACKBONES = {
    "mobilefacenet": BackboneSpec(MobileFaceNetFeatures, MOBILEFACENET_INPUT, 512),
    "retinaface": BackboneSpec(RetinaFaceFeatures, (112, 112), 256),
}



def backbone_spec(name: str) -> BackboneSpec:
    if name not in BACKBONES:
        raise ValueError(f"unknown backbone {name!r}; choose one of {sorted(BACKBONES)}")
    return BACKBONES[name]


class ExpressionNet(nn.Module):
    """A backbone and a new linear head: ``(N, 3, H, W)`` RGB 0-255 -> ``(N, classes)`` logits."""

    def __init__(
        self, backbone: str, num_classes: int, weights_path: str | Path | None, dropout: float = 0.2
    ) -> None:
        super().__init__()
        spec = backbone_spec(backbone)
        self.backbone_name = backbone
        self.input_size = spec.input_size
        # weights_path None: random weights, replaced by loading a fine-tuned state dict
        self.features = spec.build(weights_path)
        self.head = nn.Sequential(nn.Dropout(dropout), nn.Linear(spec.dim, num_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))
