"""Ingest N real videos over HTTP with 1 worker and with W workers; print both times and the speed-up.

The videos (made with ffmpeg) are served from a loopback server that behaves like a
remote host: every request waits a fixed latency and bodies are sent at a limited
rate per connection, so the time goes where it goes against TikTok's CDN (waiting on
the network) rather than into local disk reads. Both runs go through the real path:
``download_pool.fetch_all`` + ``YtDlpSource`` (yt-dlp's generic extractor, download,
ffprobe check). Expected: a near-linear speed-up while neither the server nor the
CPU is the bottleneck; the CPU seconds a video (yt-dlp, ffprobe) are printed so a
shortfall on a busy machine can be told apart from one in the pool.

The defaults (300 ms a request, 256 KiB/s a connection: about 1.3 s of network
time for each 170 KB clip, two requests) keep the network's share of a video's
time below that of a typical TikTok download (a page request, then a 2-4 MB file), so the
speed-up measured here is, if anything, a lower bound.

    PYTHONPATH=tests .venv/bin/python bench/bench_ingest.py \
        [--videos 20] [--workers 4] [--latency-ms 300] [--kib-per-s 256]
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import tempfile
import time
from pathlib import Path

from support.video_server import Route, serve_videos
from tiktokfer_assets.sources.base import VideoRef
from tiktokfer_assets.sources.download_pool import fetch_all
from tiktokfer_assets.sources.ytdlp import YtDlpSource


def make_videos(folder: Path, count: int) -> dict[str, bytes]:
    """``count`` distinct 3 s 240x426 H.264/AAC clips (about 150-300 KB each), keyed by URL path."""
    routes = {}
    for i in range(count):
        path = folder / f"clip{i:02d}.mp4"
        subprocess.run(
            ["ffmpeg", "-nostdin", "-v", "error", "-y",
             "-f", "lavfi", "-i", f"testsrc2=size=240x426:rate=30:duration=3,hue=h={i * 17}",
             "-f", "lavfi", "-i", f"sine=frequency={300 + 20 * i}:duration=3",
             "-c:v", "libx264", "-preset", "veryfast", "-crf", "23", "-c:a", "aac", "-shortest", str(path)],
            check=True)
        routes[f"/{path.name}"] = path.read_bytes()
    return routes


def _cpu_seconds() -> float:
    """CPU time of this process and its finished children (ffprobe)."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def ingest(urls: list[str], workers: int, dest: Path) -> tuple[float, float]:
    """Wall and CPU seconds to fetch every URL with ``workers`` threads; fails loudly if any video is missing."""
    refs = [VideoRef(Path(u).stem, u) for u in urls]
    started, cpu = time.perf_counter(), _cpu_seconds()
    outcomes = fetch_all(YtDlpSource([]), refs, dest, workers=workers, backoff_s=0.1)
    elapsed, cpu = time.perf_counter() - started, _cpu_seconds() - cpu
    failed = [o.error for o in outcomes if o.error]
    if failed:
        raise SystemExit(f"{len(failed)} downloads failed, the timing is meaningless: {failed[0]}")
    return elapsed, cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--videos", type=int, default=20)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--latency-ms", type=float, default=300.0, help="per request, before the answer")
    parser.add_argument("--kib-per-s", type=float, default=256.0, help="per connection")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="bench-ingest-") as tmp:
        tmp = Path(tmp)
        (tmp / "src").mkdir()
        bodies = make_videos(tmp / "src", args.videos)
        total_kib = sum(len(b) for b in bodies.values()) / 1024
        routes = {path: Route(body) for path, body in bodies.items()}
        with serve_videos(routes, latency_s=args.latency_ms / 1000, bytes_per_s=args.kib_per_s * 1024) as server:
            urls = [server.url(path) for path in routes]
            ingest(urls[:1], 1, tmp / "warm-up")  # imports, yt-dlp's extractor list, ffprobe in the page cache
            serial, serial_cpu = ingest(urls, 1, tmp / "serial")
            parallel, parallel_cpu = ingest(urls, args.workers, tmp / "parallel")

    n = args.videos
    print(f"{n} videos, {total_kib:.0f} KiB in all; server: {args.latency_ms:.0f} ms latency a request, "
          f"{args.kib_per_s:.0f} KiB/s a connection")
    print(f"machine: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f} at the end")
    print(f"1 worker : {serial:6.2f} s  ({serial / n:.2f} s a video, {serial_cpu / n:.2f} CPU-s a video)")
    print(f"{args.workers} workers: {parallel:6.2f} s  ({parallel / n:.2f} s a video, "
          f"{parallel_cpu / n:.2f} CPU-s a video)")
    print(f"speed-up : {serial / parallel:.2f}x with {args.workers} workers "
          f"({serial / parallel / args.workers:.0%} of linear)")


if __name__ == "__main__":
    main()
