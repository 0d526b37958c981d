"""ffprobe a media file into the fields the ``videos`` table records."""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import ffmpeg


class ProbeError(RuntimeError):
    """ffprobe could not read the file as a video."""


@dataclass(frozen=True)
class VideoProbe:
    duration_s: float
    width: int
    height: int
    fps: float
    rotation: int
    has_audio: bool
    codec: str

    @property
    def display_size(self) -> tuple[int, int]:
        """Width and height as shown to a viewer (rotation applied)."""
        return (self.height, self.width) if self.rotation % 180 else (self.width, self.height)


def _rotation(stream: dict) -> int:
    for side in stream.get("side_data_list", []):
        if "rotation" in side:
            return int(round(float(side["rotation"]))) % 360
    rotate = stream.get("tags", {}).get("rotate")
    return int(rotate) % 360 if rotate else 0


def probe(path: str | Path) -> VideoProbe:
    """Probe ``path``; raise :class:`ProbeError` with ffprobe's message when it is not a readable video."""
    try:
        info = ffmpeg.probe(str(path))
    except ffmpeg.Error as exc:
        message = (exc.stderr or b"").decode(errors="replace").strip().splitlines()
        last = message[-1].replace(f"{path}: ", "") if message else str(exc)
        raise ProbeError(f"ffprobe failed: {last}") from exc
    video = next((s for s in info.get("streams", []) if s.get("codec_type") == "video"), None)
    if video is None:
        raise ProbeError("no video stream")
    duration = info.get("format", {}).get("duration") or video.get("duration")
    if duration is None or float(duration) <= 0:
        raise ProbeError("no duration (truncated or empty file)")
    rate = video.get("avg_frame_rate") or video.get("r_frame_rate") or "0/1"
    fps = float(Fraction(rate)) if rate != "0/0" else 0.0
    return VideoProbe(
        duration_s=float(duration),
        width=int(video["width"]),
        height=int(video["height"]),
        fps=fps,
        rotation=_rotation(video),
        has_audio=any(s.get("codec_type") == "audio" for s in info["streams"]),
        codec=video.get("codec_name", ""),
    )
