"""Benchmark: batched RetinaFace against a one-frame-at-a-time loop of the same model.

Frames are the white-house clip's 20 sampled frames (640x360, 0-5 faces each, three
without a face so the rotation retry runs too), repeated to ``--frames``. Both modes
use the same :class:`FaceDetector` object (same weights, thresholds, preprocessing,
decoding and NMS); the loop calls ``detect_one`` per frame, the batched mode one
``detect`` over all frames for each of ``--batch-sizes``. Runs alternate within a round
and the median of the per-round speed-ups is reported, so load from other processes
hits both alike. On CPU this is repeated for
each torch thread count in ``--threads``. With CUDA, frames/s is also measured for
each batch size in ``--gpu-batch-sizes`` to find the best.

    .venv/bin/python bench/bench_faces.py [--frames 40] [--batch-sizes 4 16] [--threads 1 2]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import torch

from tiktokfer_assets.media.frames import iter_frames
from tiktokfer_assets.models import RETINAFACE_WEIGHTS
from tiktokfer_assets.paths import media_dir
from tiktokfer_assets.vision.detector import FaceDetector
from tiktokfer_assets.weights import destination_of

WEIGHTS = destination_of(RETINAFACE_WEIGHTS)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def _timed(fn, device: torch.device) -> tuple[float, object]:
    _sync(device)
    start = time.perf_counter()
    result = fn()
    _sync(device)
    return time.perf_counter() - start, result


def compare(
    detector: FaceDetector, frames: list, batch_sizes: list[int], repeats: int
) -> tuple[list[float], dict[int, list[float]], int]:
    """Seconds of the one-at-a-time loop and of ``detect`` per batch size, one entry per
    round (runs alternate within a round), and the number of faces found."""
    detector.detect(frames[: max(batch_sizes)])  # warm-up: allocator, anchors, kernels
    loop_s: list[float] = []
    batched_s: dict[int, list[float]] = {b: [] for b in batch_sizes}
    for _ in range(repeats):
        seconds, looped = _timed(lambda: [detector.detect_one(f) for f in frames], detector.device)
        loop_s.append(seconds)
        for batch_size in batch_sizes:
            detector.batch_size = batch_size
            seconds, batched = _timed(lambda: detector.detect(frames), detector.device)
            batched_s[batch_size].append(seconds)
            if [len(x) for x in batched] != [len(x) for x in looped]:
                raise AssertionError(f"batch size {batch_size}: batched and looped detection disagree")
    faces = sum(len(x) for x in looped)
    return loop_s, batched_s, faces


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--frames", type=int, default=40)
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[4, 16])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, nargs="+", default=sorted({1, os.cpu_count() or 1}))
    parser.add_argument("--gpu-batch-sizes", type=int, nargs="+", default=[1, 2, 4, 8, 16, 32, 64, 128])
    args = parser.parse_args()

    clip = [f for _, f in iter_frames(media_dir() / "video" / "white_house_poetry_jam_10s.mp4")]
    frames = (clip * (args.frames // len(clip) + 1))[: args.frames]
    print(f"{len(frames)} frames 640x360 (white-house clip), max_size 640, median of {args.repeats} rounds")

    cpu = FaceDetector(WEIGHTS, device="cpu")
    for threads in args.threads:
        torch.set_num_threads(threads)
        loop_s, batched_s, faces = compare(cpu, frames, args.batch_sizes, args.repeats)
        loop = statistics.median(loop_s)
        print(f"cpu threads={threads}: one-at-a-time {len(frames) / loop:6.1f} frames/s {faces / loop:6.1f} faces/s")
        for batch_size, rounds in batched_s.items():
            seconds = statistics.median(rounds)
            speedup = statistics.median(lo / b for lo, b in zip(loop_s, rounds))
            print(
                f"cpu threads={threads}: batch {batch_size:3d}     {len(frames) / seconds:6.1f} frames/s "
                f"{faces / seconds:6.1f} faces/s  speed-up x{speedup:.2f} (goal >= 2)"
            )

    if not torch.cuda.is_available():
        print("cuda: not available on this machine; GPU batch-size sweep skipped")
        return
    gpu = FaceDetector(WEIGHTS, device="cuda")
    loop_s, batched_s, _ = compare(gpu, frames, [16], args.repeats)
    speedup = statistics.median(lo / b for lo, b in zip(loop_s, batched_s[16]))
    print(f"cuda ({torch.cuda.get_device_name()}): batch 16 x{speedup:.2f} faster than one-at-a-time")
    gpu_frames = (clip * (512 // len(clip) + 1))[:512]
    best = (0.0, 0)
    for batch_size in args.gpu_batch_sizes:
        gpu.batch_size = batch_size
        gpu.detect(gpu_frames[:batch_size])
        seconds = statistics.median(
            _timed(lambda: gpu.detect(gpu_frames), gpu.device)[0] for _ in range(args.repeats)
        )
        rate = len(gpu_frames) / seconds
        best = max(best, (rate, batch_size))
        print(f"cuda batch {batch_size:4d}: {rate:8.1f} frames/s at 640 px")
    print(f"cuda best: {best[0]:.1f} frames/s with batch size {best[1]}")


if __name__ == "__main__":
    main()
