"""Benchmark: single-pass frame sampling against a plain ffmpeg decode of the same file.

For each video, the time of ``list(iter_frames(video))`` (ffprobe + one ffmpeg pass,
frames every 0.5 s piped out as BGR arrays) is divided by the time of
``ffmpeg -i VIDEO -f null -`` (decode everything, audio included, write nothing),
both measured in this run, alternating; the median over ``--repeats`` rounds of each
round's ratio is reported, for wall time and for CPU time (this process and its
children; steadier than wall time when other jobs share the machine). The goal is a ratio
of at most 1.2. A video-only decode (``-an``) is timed too, since sampling skips the
audio. Videos: the real white-house clip (640x360, 10 s) and a generated 60 s
720x1280 portrait H.264 video with AAC audio (TikTok's usual shape).

Many videos: the frames asset's own per-video step (``extract_video_frames``: fetch from a
local object store, sample, encode and store JPEGs) over ``--videos`` (32) stored 10 s
720x1280 videos, with the frames asset's default pool (one worker per CPU core) against one
video at a time; the ratio of their wall times is printed (goal: close to the core count).
Measured on a 2-core machine shared with other jobs: 78.6 s one at a time, 78.2 s with the
pool of 2, 1.00x (each ffmpeg decode already uses every core: its frame threads).

    .venv/bin/python bench/bench_frames.py [--repeats 5] [--videos 32]
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from tiktokfer_assets.assets.frames import extract_video_frames
from tiktokfer_assets.challenges import parse_challenge
from tiktokfer_assets.media.frames import iter_frames
from tiktokfer_assets.paths import media_dir
from tiktokfer_assets.resources.object_store import LocalObjectStore
from tiktokfer_assets.scope import ChallengeScope


def _cpu_seconds() -> float:
    """CPU time of this process and its finished children (ffmpeg, ffprobe)."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def _measure(fn) -> tuple[float, float]:
    """(wall seconds, CPU seconds) of ``fn()``."""
    wall, cpu = time.perf_counter(), _cpu_seconds()
    fn()
    return time.perf_counter() - wall, _cpu_seconds() - cpu


def _ffmpeg(*args: str) -> None:
    subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-y", *args], check=True)


def make_portrait_video(path: Path, duration_s: int = 60) -> Path:
    """``duration_s`` of 720x1280 30 fps testsrc2 (x264 veryfast, High profile, CABAC) with AAC audio."""
    _ffmpeg(
        "-f", "lavfi", "-i", f"testsrc2=size=720x1280:rate=30:duration={duration_s}",
        "-f", "lavfi", "-i", f"sine=frequency=440:sample_rate=44100:duration={duration_s}",
        "-c:v", "libx264", "-preset", "veryfast", "-pix_fmt", "yuv420p", "-c:a", "aac", "-shortest", str(path),
    )  # fmt: skip
    return path


def bench(video: Path, repeats: int) -> None:
    plain = ["ffmpeg", "-nostdin", "-v", "error", "-i", str(video), "-f", "null", "-"]
    video_only = [*plain[:-3], "-an", "-f", "null", "-"]
    runs: dict[str, list[tuple[float, float]]] = {"plain": [], "video_only": [], "sampling": []}
    frames = []
    for _ in range(repeats):
        runs["plain"].append(_measure(lambda: subprocess.run(plain, check=True)))
        runs["video_only"].append(_measure(lambda: subprocess.run(video_only, check=True)))
        runs["sampling"].append(_measure(lambda: frames.append(sum(1 for _ in iter_frames(video)))))

    def ratio(baseline: str, index: int) -> float:
        # Per round (the runs of a round share the machine's load), then the median.
        return statistics.median(s[index] / b[index] for s, b in zip(runs["sampling"], runs[baseline]))

    wall = {k: statistics.median(w for w, _ in v) for k, v in runs.items()}
    print(
        f"{video.name}: {frames[-1]} frames sampled in {wall['sampling']:.3f} s; plain decode {wall['plain']:.3f} s, "
        f"video-only {wall['video_only']:.3f} s (median wall)\n"
        f"  wall ratio {ratio('plain', 0):.2f} (goal <= 1.2), vs video-only {ratio('video_only', 0):.2f}; "
        f"CPU-time ratio {ratio('plain', 1):.2f}, vs video-only {ratio('video_only', 1):.2f}"
    )


def bench_many(video: Path, count: int, workdir: Path) -> None:
    """Frames of ``count`` stored videos: the default pool against one video at a time (see the module doc)."""
    store = LocalObjectStore(root=str(workdir / "objects"))
    scope = ChallengeScope("bench", table_store=None)
    # a content collection with the default 60 s cap, given rather than read from a registry
    scope.definition = parse_challenge({"name": "bench", "source": {"kind": "records", "path": str(workdir)}})
    videos = []
    for n in range(count):
        key = f"videos/bench/v{n:02d}/video.mp4"
        store.put_file(key, video)
        videos.append({"video_id": f"v{n:02d}", "object_key": key})
    workers = os.cpu_count() or 1

    frames: list[int] = []

    def run(pool_size: int) -> None:
        with ThreadPoolExecutor(max_workers=pool_size) as pool:
            done = pool.map(lambda v: extract_video_frames(v, scope, 0.5, 90, store, workdir), videos)
            frames.append(sum(len(rows) for rows, _ in done))

    pooled_wall, pooled_cpu = _measure(lambda: run(workers))
    serial_wall, serial_cpu = _measure(lambda: run(1))
    print(f"{count} videos ({video.name}, {frames[-1]} frames a run): one at a time {serial_wall:.2f} s "
          f"({serial_cpu / serial_wall:.2f} cores busy), pool of {workers} (os.cpu_count()) {pooled_wall:.2f} s "
          f"({pooled_cpu / pooled_wall:.2f} cores busy); speed-up {serial_wall / pooled_wall:.2f} "
          f"(goal: close to {workers}; at most the cores one at a time leaves idle)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--videos", type=int, default=32, help="videos of the many-videos case")
    args = parser.parse_args()
    bench(media_dir() / "video" / "white_house_poetry_jam_10s.mp4", args.repeats)
    with tempfile.TemporaryDirectory() as tmp:
        bench(make_portrait_video(Path(tmp) / "portrait_60s_720x1280.mp4"), args.repeats)
        bench_many(make_portrait_video(Path(tmp) / "portrait_10s_720x1280.mp4", 10), args.videos, Path(tmp))


if __name__ == "__main__":
    main()
