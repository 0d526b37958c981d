"""RetinaFace (Deng et al., 2019) with the MobileNet-0.25 backbone, in PyTorch.

Why it is written here: ``retinaface-pytorch`` on PyPI pins ``torch==1.9`` and cannot
be installed beside the torch this project needs, so the network of
biubug6/Pytorch_Retinaface (MIT) is re-implemented with the same module names. The
public checkpoint ``mobilenet0.25_Final.pth`` (``models.RETINAFACE_WEIGHTS``,
keys ``body.*``, ``fpn.*``, ``ssh1..3.*``, ``ClassHead.*``, ``BboxHead.*``,
``LandmarkHead.*``) therefore loads unchanged with ``strict=True``; a ``module.``
prefix left by ``nn.DataParallel`` is stripped.

Conventions of that checkpoint (the caller must follow them):

* input: BGR, float, ``MEAN_BGR`` = (104, 117, 123) subtracted, no scaling, shape
  ``(N, 3, H, W)``;
* anchors: min sizes ``MIN_SIZES`` per level at strides ``STEPS``, two per location;
* box/landmark regression relative to the anchors with ``VARIANCES`` = (0.1, 0.2).

This module holds the network, the anchors (cached per input size and device),
decoding and NMS (torchvision), all running on the model's device. Resizing,
batching, rotation retries and mapping back to the caller's images live in
:mod:`tiktokfer_assets.vision.detector`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval
from torchvision.ops import batched_nms

MEAN_BGR = (104.0, 117.0, 123.0)
MIN_SIZES: tuple[tuple[int, int], ...] = ((16, 32), (64, 128), (256, 512))
STEPS: tuple[int, ...] = (8, 16, 32)
VARIANCES = (0.1, 0.2)
NUM_ANCHORS = 2  # anchors per feature-map location (one per min size)
NUM_LANDMARKS = 5  # left eye, right eye, nose, left mouth corner, right mouth corner


class CheckpointError(ValueError):
    """The file is not a RetinaFace MobileNet-0.25 state dict of the expected layout."""


# --- building blocks (names and layouts follow Pytorch_Retinaface) ---------------------


def _conv_bn(inp: int, oup: int, stride: int = 1, leaky: float = 0.0) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(inp, oup, 3, stride, 1, bias=False),
        nn.BatchNorm2d(oup),
        nn.LeakyReLU(negative_slope=leaky, inplace=True),
    )


def _conv_bn_no_relu(inp: int, oup: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(inp, oup, 3, 1, 1, bias=False), nn.BatchNorm2d(oup))


def _conv_bn_1x1(inp: int, oup: int, leaky: float) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(inp, oup, 1, 1, 0, bias=False),
        nn.BatchNorm2d(oup),
        nn.LeakyReLU(negative_slope=leaky, inplace=True),
    )


def _conv_dw(inp: int, oup: int, stride: int, leaky: float = 0.1) -> nn.Sequential:
    """Depthwise 3x3 + pointwise 1x1, each with batch norm and leaky ReLU."""
    return nn.Sequential(
        nn.Conv2d(inp, inp, 3, stride, 1, groups=inp, bias=False),
        nn.BatchNorm2d(inp),
        nn.LeakyReLU(negative_slope=leaky, inplace=True),
        nn.Conv2d(inp, oup, 1, 1, 0, bias=False),
        nn.BatchNorm2d(oup),
        nn.LeakyReLU(negative_slope=leaky, inplace=True),
    )


class MobileNetV1(nn.Module):
    """MobileNet-0.25 trunk; returns the stride 8, 16 and 32 feature maps (64/128/256 channels).

    The ImageNet classifier (``avg``/``fc``) of the original is not part of the
    detector checkpoint and is left out.
    """

    def __init__(self) -> None:
        super().__init__()
        self.stage1 = nn.Sequential(
            _conv_bn(3, 8, 2, leaky=0.1),
            _conv_dw(8, 16, 1),
            _conv_dw(16, 32, 2),
            _conv_dw(32, 32, 1),
            _conv_dw(32, 64, 2),
            _conv_dw(64, 64, 1),
        )
        self.stage2 = nn.Sequential(
            _conv_dw(64, 128, 2),
            *(_conv_dw(128, 128, 1) for _ in range(5)),
        )
        self.stage3 = nn.Sequential(_conv_dw(128, 256, 2), _conv_dw(256, 256, 1))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        c3 = self.stage1(x)
        c4 = self.stage2(c3)
        c5 = self.stage3(c4)
        return c3, c4, c5


class FPN(nn.Module):
    """Feature pyramid: lateral 1x1 convs, nearest upsampling, 3x3 merge convs."""

    def __init__(self, in_channels: tuple[int, int, int], out_channels: int) -> None:
        super().__init__()
        leaky = 0.1 if out_channels <= 64 else 0.0
        self.output1 = _conv_bn_1x1(in_channels[0], out_channels, leaky)
        self.output2 = _conv_bn_1x1(in_channels[1], out_channels, leaky)
        self.output3 = _conv_bn_1x1(in_channels[2], out_channels, leaky)
        self.merge1 = _conv_bn(out_channels, out_channels, leaky=leaky)
        self.merge2 = _conv_bn(out_channels, out_channels, leaky=leaky)

    def forward(self, feats: tuple[torch.Tensor, torch.Tensor, torch.Tensor]) -> list[torch.Tensor]:
        out1 = self.output1(feats[0])
        out2 = self.output2(feats[1])
        out3 = self.output3(feats[2])
        out2 = self.merge2(out2 + F.interpolate(out3, size=out2.shape[2:], mode="nearest"))
        out1 = self.merge1(out1 + F.interpolate(out2, size=out1.shape[2:], mode="nearest"))
        return [out1, out2, out3]


class SSH(nn.Module):
    """Single Stage Headless context module: parallel 3x3, 5x5 and 7x7 (stacked 3x3) branches."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        if out_channels % 4:
            raise ValueError("SSH out_channels must be divisible by 4")
        leaky = 0.1 if out_channels <= 64 else 0.0
        self.conv3X3 = _conv_bn_no_relu(in_channels, out_channels // 2)
        self.conv5X5_1 = _conv_bn(in_channels, out_channels // 4, leaky=leaky)
        self.conv5X5_2 = _conv_bn_no_relu(out_channels // 4, out_channels // 4)
        self.conv7X7_2 = _conv_bn(out_channels // 4, out_channels // 4, leaky=leaky)
        self.conv7x7_3 = _conv_bn_no_relu(out_channels // 4, out_channels // 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        branch5_1 = self.conv5X5_1(x)
        out = torch.cat(
            [self.conv3X3(x), self.conv5X5_2(branch5_1), self.conv7x7_3(self.conv7X7_2(branch5_1))], dim=1
        )
        return F.relu(out)


class _Head(nn.Module):
    """1x1 conv predicting ``per_anchor`` values for each of the anchors of every location."""

    def __init__(self, in_channels: int, per_anchor: int) -> None:
        super().__init__()
        self.per_anchor = per_anchor
        self.conv1x1 = nn.Conv2d(in_channels, NUM_ANCHORS * per_anchor, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv1x1(x).permute(0, 2, 3, 1)  # (N, H, W, A*k): location-major, like the anchors
        return out.reshape(out.shape[0], -1, self.per_anchor)


class RetinaFace(nn.Module):
    """The detector network.

    ``forward(x)`` takes a mean-subtracted BGR batch ``(N, 3, H, W)`` and returns
    ``(loc (N, P, 4), face_prob (N, P), landmarks (N, P, 10))`` for the ``P`` anchors of
    :func:`prior_boxes` ``(H, W)``; regressions are still encoded against the anchors.
    """

    def __init__(self) -> None:
        super().__init__()
        in_ch, out_ch = 32, 64
        self.body = MobileNetV1()
        self.fpn = FPN((in_ch * 2, in_ch * 4, in_ch * 8), out_ch)
        self.ssh1 = SSH(out_ch, out_ch)
        self.ssh2 = SSH(out_ch, out_ch)
        self.ssh3 = SSH(out_ch, out_ch)
        self.ClassHead = nn.ModuleList(_Head(out_ch, 2) for _ in STEPS)
        self.BboxHead = nn.ModuleList(_Head(out_ch, 4) for _ in STEPS)
        self.LandmarkHead = nn.ModuleList(_Head(out_ch, 2 * NUM_LANDMARKS) for _ in STEPS)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        fpn = self.fpn(self.body(x))
        feats = (self.ssh1(fpn[0]), self.ssh2(fpn[1]), self.ssh3(fpn[2]))
        loc = torch.cat([head(f) for head, f in zip(self.BboxHead, feats)], dim=1)
        logits = torch.cat([head(f) for head, f in zip(self.ClassHead, feats)], dim=1)
        landmarks = torch.cat([head(f) for head, f in zip(self.LandmarkHead, feats)], dim=1)
        return loc, logits.softmax(dim=-1)[..., 1], landmarks


def load_retinaface(weights_path: str | Path, device: str | torch.device = "cpu", fuse: bool = True) -> RetinaFace:
    """Build :class:`RetinaFace`, load ``weights_path`` strictly, move it to ``device``, eval mode.

    With ``fuse`` (inference only) every batch norm is folded into the convolution before
    it, which saves a pass over each activation (about 25 % of CPU time here) and
    changes outputs only by float rounding. Raises :class:`CheckpointError` naming the
    file and the offending keys when the checkpoint is not the MobileNet-0.25 layout.
    """
    path = Path(weights_path)
    state = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(state, Mapping) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise CheckpointError(f"{path}: expected a state dict of tensors, got {type(state).__name__}")
    state = {k.removeprefix("module."): v for k, v in state.items()}
    model = RetinaFace()
    expected = set(model.state_dict())
    missing, unexpected = sorted(expected - set(state)), sorted(set(state) - expected)
    if missing or unexpected:
        raise CheckpointError(
            f"{path} is not a RetinaFace MobileNet-0.25 checkpoint (mobilenet0.25_Final.pth): "
            f"{len(missing)} missing keys {missing[:5]}, {len(unexpected)} unexpected keys {unexpected[:5]}"
        )
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:  # same keys, wrong shapes (e.g. a ResNet-50 RetinaFace)
        raise CheckpointError(f"{path}: tensor shapes do not match RetinaFace MobileNet-0.25: {exc}") from exc
    model.eval()
    if fuse:
        fuse_conv_bn(model)
    return model.to(device)


def fuse_conv_bn(model: nn.Module) -> nn.Module:
    """Fold each ``BatchNorm2d`` that follows a ``Conv2d`` in a ``Sequential`` into that
    convolution (eval-mode statistics, :func:`torch.nn.utils.fusion.fuse_conv_bn_eval`);
    the batch norm becomes ``Identity``. In place; returns ``model``."""
    for module in model.modules():
        if isinstance(module, nn.Sequential):
            for i in range(len(module) - 1):
                if isinstance(module[i], nn.Conv2d) and isinstance(module[i + 1], nn.BatchNorm2d):
                    module[i] = fuse_conv_bn_eval(module[i], module[i + 1])
                    module[i + 1] = nn.Identity()
    return model


@lru_cache(maxsize=64)
def prior_boxes(height: int, width: int, device: str | torch.device = "cpu") -> torch.Tensor:
    """Anchors ``(P, 4)`` as normalised ``(cx, cy, w, h)`` for an ``height x width`` input.

    Order matches the heads' output: level, then row, column, and min size. Feature
    maps are ``ceil(size / step)``, which is what the stride-2 3x3 convolutions
    (padding 1) produce. Cached per (size, device): video frames share one size.
    """
    levels = []
    for step, min_sizes in zip(STEPS, MIN_SIZES):
        rows, cols = -(-height // step), -(-width // step)
        cy = (torch.arange(rows, dtype=torch.float32) + 0.5) * step / height
        cx = (torch.arange(cols, dtype=torch.float32) + 0.5) * step / width
        grid_y, grid_x = torch.meshgrid(cy, cx, indexing="ij")
        centres = torch.stack([grid_x, grid_y], dim=-1)[:, :, None, :].expand(rows, cols, len(min_sizes), 2)
        sizes = torch.tensor([[m / width, m / height] for m in min_sizes])[None, None].expand(rows, cols, -1, 2)
        levels.append(torch.cat([centres, sizes], dim=-1).reshape(-1, 4))
    return torch.cat(levels).to(device)


def decode_boxes(loc: torch.Tensor, priors: torch.Tensor) -> torch.Tensor:
    """Regressions ``(..., 4)`` against anchors ``(..., 4)`` -> normalised ``(x1, y1, x2, y2)``."""
    centres = priors[..., :2] + loc[..., :2] * VARIANCES[0] * priors[..., 2:]
    sizes = priors[..., 2:] * torch.exp(loc[..., 2:] * VARIANCES[1])
    return torch.cat([centres - sizes / 2, centres + sizes / 2], dim=-1)


def decode_landmarks(landmarks: torch.Tensor, priors: torch.Tensor) -> torch.Tensor:
    """Regressions ``(..., 10)`` against anchors ``(..., 4)`` -> normalised points ``(..., 5, 2)``."""
    offsets = landmarks.reshape(*landmarks.shape[:-1], NUM_LANDMARKS, 2)
    return priors[..., None, :2] + offsets * VARIANCES[0] * priors[..., None, 2:]


@dataclass(frozen=True)
class RawDetections:
    """Detections of one batch, in pixel coordinates of the (padded) network input.

    ``image_index[i]`` says which image of the batch row ``i`` belongs to; rows are
    sorted by image, then by decreasing score. CPU numpy-convertible tensors.
    """

    image_index: torch.Tensor  # (K,) int64
    boxes: torch.Tensor  # (K, 4) x1, y1, x2, y2
    scores: torch.Tensor  # (K,)
    landmarks: torch.Tensor  # (K, 5, 2)


@torch.inference_mode()
def detect_batch(
    model: RetinaFace, batch: torch.Tensor, score_threshold: float, nms_threshold: float
) -> RawDetections:
    """One forward pass over a preprocessed batch, then thresholding, decoding and NMS.

    ``batch`` is ``(N, 3, H, W)`` BGR minus :data:`MEAN_BGR`, on the model's device.
    Only anchors above ``score_threshold`` are decoded; NMS runs per image
    (``batched_nms`` keyed by image) in one call. Everything stays on the device
    until the (small) result is copied to the CPU once at the end.
    """
    n, _, height, width = batch.shape
    loc, scores, landmarks = model(batch)
    priors = prior_boxes(height, width, batch.device)
    if priors.shape[0] != loc.shape[1]:
        raise RuntimeError(f"anchor count {priors.shape[0]} != network outputs {loc.shape[1]} for {height}x{width}")
    image_idx, anchor_idx = torch.nonzero(scores > score_threshold, as_tuple=True)
    cand_priors = priors[anchor_idx]
    scale = torch.tensor([width, height], dtype=loc.dtype, device=batch.device)
    boxes = decode_boxes(loc[image_idx, anchor_idx], cand_priors) * scale.repeat(2)
    points = decode_landmarks(landmarks[image_idx, anchor_idx], cand_priors) * scale
    cand_scores = scores[image_idx, anchor_idx]
    keep = batched_nms(boxes, cand_scores, image_idx, nms_threshold)  # sorted by decreasing score
    keep = keep[torch.argsort(image_idx[keep], stable=True)]  # group by image, score order kept
    return RawDetections(
        image_index=image_idx[keep].cpu(),
        boxes=boxes[keep].float().cpu(),
        scores=cand_scores[keep].float().cpu(),
        landmarks=points[keep].float().cpu(),
    )
