"""Cover a platform watermark with ffmpeg's ``delogo`` filter over configured regions.

TikTok burns its logo and the author's handle into the downloadable file, and moves
it during the video: near the top-left early on, near the bottom-right later. When
no watermark-free format exists, the videos asset masks those regions before storing
the file, so the logo never reaches frames, face crops or the dataset.

``delogo`` replaces a rectangle by interpolating its border pixels, which removes a
logo on any background without leaving a blurred box that a face detector or an
expression classifier could learn from. A region is given as fractions of the frame
(so one setting fits every resolution), with a time span in seconds or as fractions
of the duration (TikTok's watermark switches corners half-way through).
"""

from __future__ import annotations

import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path


class WatermarkError(RuntimeError):
    """ffmpeg could not mask the file."""


@dataclass(frozen=True)
class WatermarkRegion:
    """A rectangle ``(x, y, w, h)`` in fractions of the displayed frame, masked during a time span.

    The span is ``start_s``..``end_s`` seconds (``end_s=None``: to the end), or, when
    ``start_frac``/``end_frac`` are given, those fractions of the video's duration.
    """

    x: float
    y: float
    w: float
    h: float
    start_s: float = 0.0
    end_s: float | None = None
    start_frac: float | None = None
    end_frac: float | None = None

    def __post_init__(self) -> None:
        if not (0 <= self.x < 1 and 0 <= self.y < 1 and 0 < self.w <= 1 and 0 < self.h <= 1):
            raise ValueError(f"region {self}: x, y must be in [0, 1) and w, h in (0, 1]")
        if self.x + self.w > 1 + 1e-9 or self.y + self.h > 1 + 1e-9:
            raise ValueError(f"region {self} extends past the frame")
        for name in ("start_frac", "end_frac"):
            value = getattr(self, name)
            if value is not None and not 0 <= value <= 1:
                raise ValueError(f"region {self}: {name} must be in [0, 1]")
        if self.start_frac is not None and self.start_s:
            raise ValueError(f"region {self}: give start_s or start_frac, not both")
        if self.end_frac is not None and self.end_s is not None:
            raise ValueError(f"region {self}: give end_s or end_frac, not both")

    def span(self, duration_s: float) -> tuple[float, float | None]:
        """The masked span in seconds for a video of ``duration_s`` (end None: to the end)."""
        start = self.start_s if self.start_frac is None else self.start_frac * duration_s
        end = self.end_s if self.end_frac is None else self.end_frac * duration_s
        if end is not None and end <= start:
            raise ValueError(f"region {self} has an empty span in a {duration_s:.2f} s video")
        return start, end

    def pixels(self, width: int, height: int) -> tuple[int, int, int, int]:
        """``(x, y, w, h)`` in pixels, kept one pixel inside the frame (``delogo`` needs that border)."""
        x = max(1, round(self.x * width))
        y = max(1, round(self.y * height))
        w = min(round(self.w * width), width - 1 - x)
        h = min(round(self.h * height), height - 1 - y)
        if w < 1 or h < 1:
            raise ValueError(f"region {self} is empty in a {width}x{height} frame")
        return x, y, w, h


# TikTok's watermark (logo + @handle): top-left during the first half, bottom-right
# during the second half, about 45% of the width and 9% of the height of a portrait
# frame, a little inside the edges.
DEFAULT_TIKTOK_REGIONS: tuple[WatermarkRegion, ...] = (
    WatermarkRegion(x=0.02, y=0.02, w=0.46, h=0.10, end_frac=0.5),
    WatermarkRegion(x=0.52, y=0.86, w=0.46, h=0.11, start_frac=0.5),
)


def delogo_filter(regions: Sequence[WatermarkRegion], *, width: int, height: int, duration_s: float) -> str:
    """The ffmpeg filter chain masking ``regions`` (one ``delogo`` per region, time-gated)."""
    if not regions:
        raise ValueError("no watermark regions to mask")
    parts = []
    for region in regions:
        x, y, w, h = region.pixels(width, height)
        start, end = region.span(duration_s)
        when = f"gte(t,{start:.3f})" if end is None else f"between(t,{start:.3f},{end:.3f})"
        parts.append(f"delogo=x={x}:y={y}:w={w}:h={h}:enable='{when}'")
    return ",".join(parts)


def mask_watermark(
    src: Path,
    dst: Path,
    regions: Sequence[WatermarkRegion] = DEFAULT_TIKTOK_REGIONS,
    *,
    width: int,
    height: int,
    duration_s: float,
    crf: int = 18,
) -> Path:
    """Write ``src`` to ``dst`` (MP4) with ``regions`` masked; returns ``dst``.

    ``width``/``height`` are the displayed frame size (after any rotation, which
    ffmpeg applies while decoding) and ``duration_s`` the video's duration, as probed.
    The video is re-encoded with x264 at ``crf`` (18: visually lossless), audio is
    copied. On failure ``dst`` is removed and :class:`WatermarkError` carries ffmpeg's
    message.
    """
    src, dst = Path(src), Path(dst)
    chain = delogo_filter(regions, width=width, height=height, duration_s=duration_s)
    cmd = [
        "ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error", "-y", "-i", str(src),
        "-map", "0:v:0", "-map", "0:a?", "-vf", chain,
        "-c:v", "libx264", "-preset", "veryfast", "-crf", str(crf), "-pix_fmt", "yuv420p",
        "-c:a", "copy", "-movflags", "+faststart", "-f", "mp4", str(dst),
    ]
    result = subprocess.run(cmd, capture_output=True, text=True)
    if result.returncode != 0:
        dst.unlink(missing_ok=True)
        raise WatermarkError(f"ffmpeg could not mask {src}: {result.stderr.strip() or f'exit {result.returncode}'}")
    return dst
