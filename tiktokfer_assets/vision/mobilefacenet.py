"""MobileFaceNet (Chen et al., 2018, "MobileFaceNets: Efficient CNNs for Accurate
Real-Time Face Verification on Mobile Devices") in PyTorch.

The module names match the public CASIA-WebFace checkpoint used by the tests
(``models.MOBILEFACENET_WEIGHTS``: a dict whose ``net_state_dict`` holds
``conv1.*``, ``dw_conv1.*``, ``blocks.<i>.conv.<j>.*``, ``conv2.*``, ``linear7.*``,
``linear1.*``), so the checkpoint loads with ``strict=True`` and nothing is renamed.

Input: a batch of face crops aligned to the 96x112 SphereFace template (see
:mod:`tiktokfer_assets.vision.align`), shape ``(N, 3, 112, 96)``, RGB, scaled as
``(x - 127.5) / 128``. Output: ``(N, 128)`` un-normalised embeddings.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

INPUT_SIZE = (112, 96)  # (height, width) of the aligned crop the network expects
EMBEDDING_DIM = 128

# (expansion, output channels, repeats, stride of the first repeat), from the paper.
BOTTLENECK_SETTING: tuple[tuple[int, int, int, int], ...] = (
    (2, 64, 5, 2),
    (4, 128, 1, 2),
    (2, 128, 6, 1),
    (4, 128, 1, 2),
    (2, 128, 2, 1),
)


class ConvBlock(nn.Module):
    """Convolution (no bias) + batch norm, followed by PReLU unless ``linear``."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel: int | tuple[int, int],
        stride: int = 1,
        padding: int = 0,
        depthwise: bool = False,
        linear: bool = False,
    ) -> None:
        super().__init__()
        self.conv = nn.Conv2d(
            in_channels,
            out_channels,
            kernel,
            stride,
            padding,
            groups=in_channels if depthwise else 1,
            bias=False,
        )
        self.bn = nn.BatchNorm2d(out_channels)
        self.prelu = None if linear else nn.PReLU(out_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.bn(self.conv(x))
        return x if self.prelu is None else self.prelu(x)


class Bottleneck(nn.Module):
    """Inverted residual: 1x1 expand, 3x3 depthwise, 1x1 linear projection.

    The shortcut is added when the block keeps the resolution and the channel count.
    """

    def __init__(self, in_channels: int, out_channels: int, stride: int, expansion: int) -> None:
        super().__init__()
        hidden = in_channels * expansion
        self.residual = stride == 1 and in_channels == out_channels
        self.conv = nn.Sequential(
            nn.Conv2d(in_channels, hidden, 1, 1, 0, bias=False),
            nn.BatchNorm2d(hidden),
            nn.PReLU(hidden),
            nn.Conv2d(hidden, hidden, 3, stride, 1, groups=hidden, bias=False),
            nn.BatchNorm2d(hidden),
            nn.PReLU(hidden),
            nn.Conv2d(hidden, out_channels, 1, 1, 0, bias=False),
            nn.BatchNorm2d(out_channels),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv(x)
        return x + out if self.residual else out


class MobileFaceNet(nn.Module):
    """MobileFaceNet for 112x96 inputs; the global depthwise ``linear7`` is 7x6."""

    def __init__(self, embedding_dim: int = EMBEDDING_DIM) -> None:
        super().__init__()
        self.conv1 = ConvBlock(3, 64, 3, 2, 1)
        self.dw_conv1 = ConvBlock(64, 64, 3, 1, 1, depthwise=True)
        blocks: list[nn.Module] = []
        channels = 64
        for expansion, out_channels, repeats, stride in BOTTLENECK_SETTING:
            for i in range(repeats):
                blocks.append(Bottleneck(channels, out_channels, stride if i == 0 else 1, expansion))
                channels = out_channels
        self.blocks = nn.Sequential(*blocks)
        self.conv2 = ConvBlock(channels, 512, 1)
        self.linear7 = ConvBlock(512, 512, (7, 6), depthwise=True, linear=True)
        self.linear1 = ConvBlock(512, embedding_dim, 1, linear=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.dw_conv1(self.conv1(x))
        x = self.conv2(self.blocks(x))
        x = self.linear1(self.linear7(x))
        return x.flatten(1)


def load_mobilefacenet(weights_path: str | Path, device: str | torch.device = "cpu") -> MobileFaceNet:
    """Build :class:`MobileFaceNet`, load ``weights_path`` strictly and return it in eval mode.

    The checkpoint is either a bare state dict or a dict holding it under
    ``net_state_dict`` (the training script's format). A ``module.`` prefix left by
    ``nn.DataParallel`` is stripped. Any missing or unexpected key raises.
    """
    path = Path(weights_path)
    if not path.is_file():
        raise FileNotFoundError(
            f"MobileFaceNet checkpoint not found: {path}. Fetch the weights with `tiktokfer fetch` "
            "or point the embedder's weights_path at a local copy of mobilefacenet_casia.ckpt."
        )
    # The training script pickled the epoch number next to the tensors; weights_only
    # loading accepts that (plain ints and tensors), so no arbitrary code runs.
    checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    state_dict = checkpoint.get("net_state_dict", checkpoint)
    state_dict = {k.removeprefix("module."): v for k, v in state_dict.items()}
    model = MobileFaceNet()
    model.load_state_dict(state_dict, strict=True)
    return model.to(device).eval()
