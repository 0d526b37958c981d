"""Sample a video's frames on a fixed time grid in one ffmpeg decode pass.

The original pipeline seeked once per timestamp; here a single ffmpeg process
decodes the video once, its ``fps`` filter picks the frames of the sampling grid,
and raw BGR frames stream through a pipe.

Which frame a timestamp gets: the frame on screen at that instant, i.e. the last
decoded frame whose presentation time is <= t (``fps=round=up``). This works on
presentation timestamps, so variable-frame-rate input is sampled correctly. Times
are on ffmpeg's output timeline, which starts at 0 at the container's start (the
same origin as the audio decoded for ``subvideos``); grid times before the first
video frame get the first frame (``start_time=0`` pads with it).

Which timestamps: ``t = n * every_s`` for n = 0, 1, ... while ``t < max_seconds`` and
the video lasts at least half a sampling interval past ``t`` (``t + every_s / 2 <
duration``), so a 10.0 s clip sampled every 0.5 s gives 0.0 ... 9.5 s (20 frames).
Timestamps are exact grid values (``n * every_s``), not decoded pts.

Rotated videos (display-matrix side data or a ``rotate`` tag) are auto-rotated by
ffmpeg; frames come out as displayed, so their shape is the displayed height x width.
"""

from __future__ import annotations

import logging
import math
import subprocess
import tempfile
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path

import ffmpeg
import numpy as np

from tiktokfer_assets.media.probe import ProbeError, probe

log = logging.getLogger(__name__)

_STDERR_TAIL_CHARS = 2000


class FrameExtractionError(RuntimeError):
    """ffmpeg failed or stopped early while decoding; carries ffmpeg's stderr tail.

    Raised by :func:`iter_frames` *after* it has yielded every frame it got, so a
    caller keeps the frames of a video that broke mid-way and records this error.
    """

    def __init__(self, message: str, frames_yielded: int, stderr_tail: str) -> None:
        super().__init__(f"{message}\n--- ffmpeg stderr (tail) ---\n{stderr_tail}" if stderr_tail else message)
        self.frames_yielded = frames_yielded
        self.stderr_tail = stderr_tail


def sample_times(duration_s: float, every_s: float = 0.5, max_seconds: float = 60.0) -> list[float]:
    """The grid times :func:`iter_frames` samples for a video of ``duration_s`` (see module doc)."""
    if every_s <= 0 or max_seconds <= 0:
        raise ValueError("every_s and max_seconds must be positive")
    by_duration = math.ceil(duration_s / every_s - 0.5)
    by_cap = math.ceil(max_seconds / every_s)
    return [round(n * every_s, 9) for n in range(max(0, min(by_duration, by_cap)))]


def iter_frames(
    video_path: str | Path, every_s: float = 0.5, max_seconds: float = 60.0
) -> Iterator[tuple[float, np.ndarray]]:
    """Yield ``(timestamp_s, frame)`` on the sampling grid; ``frame`` is BGR ``uint8`` ``(H, W, 3)``.

    One ffmpeg process decodes the video stream once (audio is skipped); ffprobe runs
    while it starts (the frame size and the grid are needed only to read its output).
    Contract on failure: every frame ffmpeg produced is yielded first; then
    :class:`FrameExtractionError` (with ffmpeg's stderr tail) is raised if ffmpeg ended
    before the grid's last timestamp with an exit error or decode errors (a truncated
    or corrupt file). A file ffprobe cannot read at all raises
    :class:`FrameExtractionError` before any frame. Once the grid is read, or when the
    consumer closes the generator early, ffmpeg is stopped.
    """
    command = (
        ffmpeg.input(str(video_path), t=max_seconds)
        .video.filter("fps", fps=str(1 / Fraction(str(every_s))), round="up", start_time=0)
        .output("pipe:", format="rawvideo", pix_fmt="bgr24")
        .global_args("-nostdin", "-hide_banner", "-loglevel", "error")
        .compile()
    )
    produced, ended = 0, False  # ended: ffmpeg closed its output before the grid was read
    with tempfile.TemporaryFile() as stderr_file:
        process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=stderr_file)
        assert process.stdout is not None
        try:
            try:
                info = probe(video_path)
            except ProbeError as exc:
                raise FrameExtractionError(f"cannot read {video_path}: {exc}", 0, "") from exc
            times = sample_times(info.duration_s, every_s, max_seconds)
            width, height = info.display_size
            for t in times:
                buffer = _read_frame(process.stdout, width * height * 3)
                if buffer is None:
                    ended = True
                    break
                produced += 1
                yield t, np.frombuffer(buffer, dtype=np.uint8).reshape(height, width, 3)
        finally:
            process.stdout.close()
            if not ended:
                process.kill()  # grid complete (ffmpeg may hold one frame past it), or consumer gone
            returncode = process.wait()
        if not ended:
            return
        stderr_file.seek(0)
        stderr_tail = stderr_file.read().decode(errors="replace")[-_STDERR_TAIL_CHARS:].strip()
    if returncode != 0 or stderr_tail:
        raise FrameExtractionError(
            f"ffmpeg stopped at {produced} of {len(times)} frames of {video_path} ({info.duration_s:.2f} s)"
            + (f", exit status {returncode}" if returncode else ": decode errors"),
            produced,
            stderr_tail,
        )
    # ffmpeg ended cleanly: the video stream is shorter than the container (e.g. longer audio).
    log.info("%s: video stream ended after %d of %d grid frames", video_path, produced, len(times))


def _read_frame(stream, size: int) -> bytearray | None:
    """Exactly ``size`` bytes read into a fresh (writable) buffer, or ``None`` at end of stream
    (a partial last frame is dropped)."""
    buffer = bytearray(size)
    view = memoryview(buffer)
    filled = 0
    while filled < size:
        n = stream.readinto(view[filled:])
        if not n:
            return None
        filled += n
    return buffer
