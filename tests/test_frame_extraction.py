"""Single-pass frame sampling: exact grid timestamps, the right frame for each, VFR,
rotation metadata, caps and broken files.

The oracle for "the right frame" is an independent decode of *every* frame with its
presentation time (ffprobe + ffmpeg passthrough): grid time t must get the last frame
whose pts <= t (the first frame before the video starts), bit for bit.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch

from tiktokfer_assets.media.frames import FrameExtractionError, iter_frames, sample_times
from tiktokfer_assets.media.probe import probe
from tiktokfer_assets.models import RETINAFACE_WEIGHTS
from tiktokfer_assets.paths import media_dir
from tiktokfer_assets.vision.detector import FaceDetector
from tiktokfer_assets.weights import destination_of

WHITE_HOUSE = media_dir() / "video" / "white_house_poetry_jam_10s.mp4"


def ffmpeg(*args: str) -> None:
    subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-y", *args], check=True)


def make_video(
    path: Path, seconds: float, *, size: str = "320x240", vf: str = "", extra: tuple[str, ...] = (), faststart=True
) -> Path:
    """A 30 fps testsrc2 H.264 video without B-frames; with ``faststart`` the index (moov)
    is at the front, so a truncated copy still opens."""
    filters = ["-vf", vf] if vf else []
    ffmpeg(
        "-f", "lavfi", "-t", str(seconds), "-i", f"testsrc2=size={size}:rate=30", *filters,
        "-c:v", "libx264", "-preset", "ultrafast", "-bf", "0", "-pix_fmt", "yuv420p",
        *(["-movflags", "+faststart"] if faststart else []), *extra, str(path),
    )  # fmt: skip
    return path


def decode_all(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Every frame of ``path`` (displayed orientation) and its presentation time in seconds."""
    listing = subprocess.run(
        ["ffprobe", "-v", "error", "-select_streams", "v:0", "-show_entries", "frame=best_effort_timestamp_time",
         "-of", "json", str(path)],
        check=True, capture_output=True, text=True,
    ).stdout  # fmt: skip
    times = [float(f["best_effort_timestamp_time"]) for f in json.loads(listing)["frames"]]
    raw = subprocess.run(
        ["ffmpeg", "-nostdin", "-v", "error", "-i", str(path), "-map", "0:v:0", "-fps_mode", "passthrough",
         "-f", "rawvideo", "-pix_fmt", "bgr24", "-"],
        check=True, capture_output=True,
    ).stdout  # fmt: skip
    width, height = probe(path).display_size
    start = float(probe_start(path))
    frames = np.frombuffer(raw, np.uint8).reshape(-1, height, width, 3)
    assert len(frames) == len(times)
    return np.array(times) - start, frames


def probe_start(path: Path) -> str:
    return subprocess.run(
        ["ffprobe", "-v", "error", "-show_entries", "format=start_time", "-of", "csv=p=0", str(path)],
        check=True, capture_output=True, text=True,
    ).stdout.strip()  # fmt: skip


def assert_frames_on_screen(path: Path, sampled: list[tuple[float, np.ndarray]]) -> None:
    pts, frames = decode_all(path)
    for t, frame in sampled:
        expected = max(int(np.searchsorted(pts, t + 1e-6, side="right")) - 1, 0)
        assert np.array_equal(frame, frames[expected]), f"t={t}: not the frame at {pts[expected]:.3f} s"


@pytest.fixture(scope="module")
def white_house_frames() -> list[tuple[float, np.ndarray]]:
    return list(iter_frames(WHITE_HOUSE))


@pytest.mark.media
def test_white_house_clip_frames(white_house_frames):
    assert [t for t, _ in white_house_frames] == [n * 0.5 for n in range(20)]
    assert all(f.shape == (360, 640, 3) and f.dtype == np.uint8 for _, f in white_house_frames)
    # Its video starts at 0.844 s: 0.0 and 0.5 show the first frame; the rest the frame on screen.
    assert_frames_on_screen(WHITE_HOUSE, white_house_frames)


@pytest.mark.media
def test_white_house_clip_faces(white_house_frames):
    """Found by looking: 0.0-2.0 s a performer on stage (and a seated man), 2.5-3.5 s cutaways
    with only half faces, 4.0-7.5 s Lin-Manuel Miranda facing the camera, 8.0-9.5 s the
    audience (several faces)."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)  # the test machine's cores are shared; see test_retinaface.py
    try:
        detector = FaceDetector(destination_of(RETINAFACE_WEIGHTS), batch_size=8)
        faces = dict(zip((t for t, _ in white_house_frames), detector.detect([f for _, f in white_house_frames])))
    finally:
        torch.set_num_threads(previous)
    for t in np.arange(4.0, 8.0, 0.5):
        (face,) = faces[t]
        x1, y1, x2, y2 = face.box
        assert 150 < (x1 + x2) / 2 < 350 and y1 < 180 and (x2 - x1) > 60, f"t={t}: {face}"
    assert all(len(faces[t]) >= 3 for t in (8.0, 8.5, 9.0, 9.5))
    assert all(faces[t] for t in (0.0, 0.5, 1.0, 1.5))
    assert sum(bool(f) for f in faces.values()) >= 16
    assert all(f.rotation == 0 for found in faces.values() for f in found)


def test_exact_grid_and_frames_on_a_generated_video(tmp_path):
    video = make_video(tmp_path / "cfr.mp4", 4)
    sampled = list(iter_frames(video))
    assert [t for t, _ in sampled] == [0.0, 0.5, 1.0, 1.5, 2.0, 2.5, 3.0, 3.5]
    assert_frames_on_screen(video, sampled)
    odd = list(iter_frames(video, every_s=0.3))
    assert [t for t, _ in odd] == [round(0.3 * n, 9) for n in range(13)]  # 0.0 ... 3.6
    assert_frames_on_screen(video, odd)


def test_max_seconds_caps_the_grid(tmp_path):
    video = make_video(tmp_path / "long.mp4", 8)
    assert [t for t, _ in iter_frames(video, every_s=0.5, max_seconds=3)] == [0.0, 0.5, 1.0, 1.5, 2.0, 2.5]
    frames = iter_frames(video)
    assert next(frames)[0] == 0.0
    frames.close()  # a consumer that stops early: ffmpeg is stopped, no error
    assert sample_times(75.0) == [n * 0.5 for n in range(120)]  # default cap: 60 s
    assert sample_times(10.2) == sample_times(10.008) == [n * 0.5 for n in range(20)]
    assert sample_times(10.3)[-1] == 10.0 and sample_times(9.8)[-1] == 9.5


def test_variable_frame_rate_gets_the_frame_on_screen(tmp_path):
    # 21 frames at 0, 0.45, 0.74, 1.19, 1.48, ... 7.4 s (alternating 0.45 s and 0.29 s gaps).
    video = make_video(
        tmp_path / "vfr.mp4",
        0.7,
        vf="settb=1/1000,setpts='(0.37*N+0.08*mod(N,2))/TB'",
        extra=("-fps_mode", "passthrough", "-enc_time_base", "1:1000", "-video_track_timescale", "1000"),
    )
    pts, _ = decode_all(video)
    assert np.allclose(pts[:5], [0, 0.45, 0.74, 1.19, 1.48])
    sampled = list(iter_frames(video))
    assert [t for t, _ in sampled] == [n * 0.5 for n in range(15)]  # last frame 7.4 s + 0.29 s shown
    # 0.5 s shows the 0.45 s frame (a nearest-frame or constant-rate guess would take 0.74 s).
    assert_frames_on_screen(video, sampled)


def test_rotation_metadata_gives_the_displayed_frames(tmp_path):
    upright = make_video(tmp_path / "upright.mp4", 2)
    sideways = tmp_path / "sideways.mp4"
    ffmpeg("-i", str(upright), "-c", "copy", "-metadata:s:v", "rotate=90", str(sideways))
    # The muxer turns the tag into a display matrix: 90 degrees anticlockwise (ffprobe's sign).
    assert probe(sideways).rotation == 90
    plain = list(iter_frames(upright))
    turned = list(iter_frames(sideways))
    assert [t for t, _ in turned] == [t for t, _ in plain] == [0.0, 0.5, 1.0, 1.5]
    for (_, a), (_, b) in zip(plain, turned):
        assert b.shape == (320, 240, 3)
        assert np.abs(np.rot90(a, 1).astype(int) - b).mean() < 1  # as displayed
        assert np.abs(np.rot90(a, -1).astype(int) - b).mean() > 50


def test_truncated_file_yields_its_first_frames_then_raises(tmp_path):
    whole = make_video(tmp_path / "whole.mp4", 10)
    truncated = tmp_path / "truncated.mp4"
    truncated.write_bytes(whole.read_bytes()[: whole.stat().st_size * 3 // 10])
    got = []
    with pytest.raises(FrameExtractionError) as info:
        for t, frame in iter_frames(truncated):
            got.append((t, frame))
    assert 1 <= len(got) < 20 and info.value.frames_yielded == len(got)
    assert [t for t, _ in got] == [n * 0.5 for n in range(len(got))]
    assert_frames_on_screen(whole, got)  # what came out is right
    assert "partial file" in info.value.stderr_tail and "ffmpeg stderr" in str(info.value)


def test_unreadable_file_raises_before_any_frame(tmp_path):
    whole = make_video(tmp_path / "whole.mp4", 2, faststart=False)
    headless = tmp_path / "no_index.mp4"
    headless.write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])  # moov atom cut off
    with pytest.raises(FrameExtractionError, match="cannot read") as info:
        next(iter_frames(headless))
    assert info.value.frames_yielded == 0
