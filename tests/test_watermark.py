"""Masking a moving watermark with ffmpeg's delogo, checked on decoded frames.

The test video is a smooth colour ramp (so the true background under the logo
is known: the same video rendered without the logo) with a white "logo" box in the
top-left during the first second and in the bottom-right during the second, like
TikTok's watermark. After masking, the logo must be gone (pixels back near the clean
background), and everything outside the masked rectangles must be unchanged.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import pytest

from tiktokfer_assets.media.probe import probe
from tiktokfer_assets.media.watermark import (
    DEFAULT_TIKTOK_REGIONS,
    WatermarkError,
    WatermarkRegion,
    delogo_filter,
    mask_watermark,
)

W, H, FPS, DURATION = 180, 320, 10, 2.0
# Logo boxes (pixels) inside the two masked regions below.
LOGO_EARLY = (20, 24, 60, 20)  # x, y, w, h: top-left, t < 1 s
LOGO_LATE = (105, 278, 60, 20)  # bottom-right, t >= 1 s
REGIONS = (
    WatermarkRegion(x=0.06, y=0.05, w=0.45, h=0.12, end_frac=0.5),
    WatermarkRegion(x=0.53, y=0.84, w=0.43, h=0.12, start_frac=0.5),
)


def _encode(dst: Path, vf: str | None) -> Path:
    # A smooth colour ramp over the whole frame, drifting slowly over time.
    ramp = "geq=r='40+0.6*X+10*T':g='60+0.4*Y':b='220-0.3*X-0.3*Y'"
    source = f"color=c=black:s={W}x{H}:r={FPS}:d={DURATION},format=rgb24,{ramp}"
    cmd = ["ffmpeg", "-nostdin", "-v", "error", "-y", "-f", "lavfi", "-i", source,
           "-f", "lavfi", "-i", f"sine=frequency=300:duration={DURATION}"]
    if vf:
        cmd += ["-vf", vf]
    cmd += ["-c:v", "libx264", "-crf", "10", "-pix_fmt", "yuv420p", "-c:a", "aac", "-shortest", str(dst)]
    subprocess.run(cmd, check=True)
    return dst


def _frames(path: Path) -> np.ndarray:
    raw = subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-i", str(path), "-f", "rawvideo",
                          "-pix_fmt", "rgb24", "-"], check=True, capture_output=True).stdout
    return np.frombuffer(raw, np.uint8).reshape(-1, H, W, 3).astype(np.float32)


def _box(frames: np.ndarray, box: tuple[int, int, int, int]) -> np.ndarray:
    x, y, w, h = box
    return frames[:, y:y + h, x:x + w]


@pytest.fixture(scope="module")
def videos(tmp_path_factory: pytest.TempPathFactory) -> dict[str, np.ndarray]:
    tmp = tmp_path_factory.mktemp("watermark")
    clean = _encode(tmp / "clean.mp4", None)
    boxes = ",".join(
        f"drawbox=x={x}:y={y}:w={w}:h={h}:color=white:t=fill:enable='{when}'"
        for (x, y, w, h), when in ((LOGO_EARLY, "lt(t,1)"), (LOGO_LATE, "gte(t,1)")))
    marked = _encode(tmp / "marked.mp4", boxes)
    info = probe(marked)
    masked = mask_watermark(marked, tmp / "masked.mp4", REGIONS,
                            width=info.width, height=info.height, duration_s=info.duration_s)
    assert probe(masked).has_audio, "the audio track is kept"
    return {"clean": _frames(clean), "marked": _frames(marked), "masked": _frames(masked)}


def test_logo_is_removed_while_it_is_shown(videos: dict[str, np.ndarray]) -> None:
    early, late = slice(0, FPS), slice(FPS, 2 * FPS)
    for box, span in ((LOGO_EARLY, early), (LOGO_LATE, late)):
        clean = _box(videos["clean"][span], box)
        marked = _box(videos["marked"][span], box)
        masked = _box(videos["masked"][span], box)
        assert np.abs(marked - clean).mean() > 60, "the logo is visible before masking"
        assert np.abs(masked - clean).mean() < 4, "after masking the logo area looks like the background"
        assert masked.mean(axis=(1, 2, 3)).max() < marked.mean(axis=(1, 2, 3)).min() - 40


def test_rest_of_frame_and_inactive_region_unchanged(videos: dict[str, np.ndarray]) -> None:
    marked, masked = videos["marked"], videos["masked"]
    outside = np.ones((H, W), bool)
    for region in REGIONS:
        x, y, w, h = region.pixels(W, H)
        outside[y:y + h, x:x + w] = False
    assert np.abs(masked - marked)[:, outside].mean() < 2.0
    # Each region is only masked during its own half: the other half keeps its pixels.
    early, late = slice(0, FPS - 1), slice(FPS + 1, 2 * FPS)
    tl = REGIONS[0].pixels(W, H)
    br = REGIONS[1].pixels(W, H)
    assert np.abs(_box(masked[late], tl) - _box(marked[late], tl)).mean() < 2.0
    assert np.abs(_box(masked[early], br) - _box(marked[early], br)).mean() < 2.0


def test_region_pixels_stay_inside_the_frame_and_spans_follow_duration() -> None:
    assert WatermarkRegion(0.0, 0.0, 1.0, 1.0).pixels(100, 200) == (1, 1, 98, 198)
    tl, br = DEFAULT_TIKTOK_REGIONS
    assert tl.span(12.0) == (0.0, 6.0) and br.span(12.0) == (6.0, None)
    chain = delogo_filter(DEFAULT_TIKTOK_REGIONS, width=1080, height=1920, duration_s=12.0)
    assert chain == ("delogo=x=22:y=38:w=497:h=192:enable='between(t,0.000,6.000)',"
                     "delogo=x=562:y=1651:w=497:h=211:enable='gte(t,6.000)'")


@pytest.mark.parametrize("kwargs", [
    {"x": 0.7, "y": 0.0, "w": 0.5, "h": 0.1},
    {"x": 0.0, "y": 0.0, "w": 0.0, "h": 0.1},
    {"x": 0.0, "y": 0.0, "w": 0.5, "h": 0.1, "end_s": 2.0, "end_frac": 0.5},
    {"x": 0.0, "y": 0.0, "w": 0.5, "h": 0.1, "start_frac": 1.5},
])
def test_invalid_regions_are_refused(kwargs: dict) -> None:
    with pytest.raises(ValueError):
        WatermarkRegion(**kwargs)


def test_empty_span_is_refused() -> None:
    with pytest.raises(ValueError, match="empty span"):
        WatermarkRegion(0.1, 0.1, 0.2, 0.2, start_s=5.0, end_s=3.0).span(10.0)


def test_unreadable_input_raises_and_leaves_no_output(tmp_path: Path) -> None:
    src = tmp_path / "not_a_video.mp4"
    src.write_text("this is text")
    dst = tmp_path / "out.mp4"
    with pytest.raises(WatermarkError, match="not_a_video.mp4"):
        mask_watermark(src, dst, width=W, height=H, duration_s=DURATION)
    assert not dst.exists()
