"""Benchmark: face detection batching, and the faces + face_embeddings steps: pipeline against serial loop.

1. Detection batching (``--steps detect``): batched RetinaFace against a one-frame-at-a-time
   loop of the same model. Frames are the white-house clip's 20 sampled frames (640x360, 0-5
   faces each, three without a face so the rotation retry runs too), repeated to ``--frames``.
   Both modes use the same :class:`FaceDetector` object (same weights, thresholds, preprocessing,
   decoding and NMS); the loop calls ``detect_one`` per frame, the batched mode one ``detect``
   over all frames for each of ``--batch-sizes``. On CPU this is repeated for each torch thread
   count in ``--threads``. With CUDA, frames/s is also measured for each batch size in
   ``--gpu-batch-sizes`` to find the best.
2. The faces and embeddings steps (``--steps pipeline``), on the generated demo challenge's
   sampled frames (8 readable videos, 235 frames of 360x640 / 640x360 / 640x720 as JPEGs in a
   local object store; ``--upscale 2`` makes them TikTok-shaped 720x1280): the loop of the
   assets before issue 17 (:func:`serial_steps`: faces decodes each frame in turn, detects per
   chunk of 256 with batch 16 and cuts, encodes and stores the crops one after another;
   face_embeddings decodes every frame again and aligns each face in PIL) against the assets'
   code now (:func:`pipelined_steps`: frames decoded and crops stored on a thread pool while the
   detector runs, on CPU one chunk per core on one torch thread each; embeddings from the stored
   aligned crops, decoded ahead) for each detection batch size in ``--pipeline-batch-sizes``; the
   old loop also on one torch thread, to tell the pipeline's share from torch's threads'. Every
   k-th frame is used, for at most ``--max-frames``. Frames/s (wall) and CPU-seconds per frame
   (all threads of the process; less sensitive to other load), and the cosine of each face's
   embedding old against new. Both share the crop functions (so the loop has the 2x faster
   upright crop too: the speed-up over the code before is understated).

   Measured (57 frames, 2 cores at load average 10 from other jobs, median of 2 rounds): serial
   0.8 frames/s, 398 CPU-ms/frame; serial on 1 torch thread 2.0 frames/s, 117; pipeline batch 4
   3.4 frames/s (x4.46), 117 CPU-ms/frame (x3.41 less); batch 16 2.9 frames/s (x3.77), 118.
   Embeddings from the stored crops against aligned from the frame: cosine min 0.9946, median
   0.9985 (45 faces; 193 faces of all 227 frames: min 0.9946, median 0.9986). ``--upscale 2``
   (720x1280, 57 frames, load average ~6, 2 rounds): serial 2.2 frames/s, 379 CPU-ms/frame; on 1
   torch thread 4.1, 178; pipeline batch 4 4.9 frames/s (x2.24), 188 CPU-ms/frame (x2.01 less).
   Most of the gain is torch on one thread per model call; the pipeline adds x1.2 over that loop.

Runs alternate within a round and the median of the per-round speed-ups is reported, so
load from other processes hits both alike.

    PYTHONPATH=tests .venv/bin/python bench/bench_faces.py [--steps detect pipeline] [--frames 40]
        [--batch-sizes 4 16] [--threads 1 2] [--pipeline-batch-sizes 4 16] [--max-frames 60] [--upscale 1]
"""

from __future__ import annotations

import argparse
import logging
import os
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import polars as pl
import torch
from PIL import Image

from tiktokfer_assets.assets.faces import FacesConfig, detect_and_store, face_crops, face_row
from tiktokfer_assets.assets.individuals import EmbeddingConfig
from tiktokfer_assets.identity.embedders import MobileFaceNetEmbedder, embed_stored_crops
from tiktokfer_assets.media.frames import FrameExtractionError, iter_frames
from tiktokfer_assets.models import RETINAFACE_WEIGHTS
from tiktokfer_assets.paths import media_dir
from tiktokfer_assets.resources.object_store import LocalObjectStore
from tiktokfer_assets.scope import ChallengeScope
from tiktokfer_assets.tables import LANDMARK_COLUMNS
from tiktokfer_assets.testkit.generator import build_challenge
from tiktokfer_assets.vision.crops import decode_image, encode_jpeg
from tiktokfer_assets.vision.detector import FaceDetector
from tiktokfer_assets.vision.upright import redetect_sideways
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


SERIAL_CHUNK = 256  # frames per detector call and faces per embed call in the loop before issue 17
SERIAL_BATCH = 16  # the GPU resource's default batch size, which the CPU ran with


def demo_frames(store: LocalObjectStore, workdir: Path, upscale: int) -> pl.DataFrame:
    """The generated demo challenge's sampled frames, stored as the frames asset does (JPEG 90), as its rows."""
    generated = build_challenge(workdir / "demo", name="demo", seed=0)
    rows = []
    for video in sorted((generated.root / "videos").glob("*.mp4")):
        try:
            for t, image in iter_frames(video, 0.5, 20.0):
                if upscale > 1:
                    height, width = image.shape[:2]
                    image = np.asarray(Image.fromarray(image).resize((width * upscale, height * upscale)))
                fid = f"{video.stem}/{round(t * 1000):06d}"
                key = f"frames/demo/{fid}.jpg"
                store.put_bytes(key, encode_jpeg(image, 90))
                rows.append({"frame_id": fid, "video_id": video.stem, "timestamp_s": t, "width": image.shape[1],
                             "height": image.shape[0], "object_key": key, "prompt_label": None, "expression": None})
        except FrameExtractionError:
            continue  # the challenge's deliberately broken video
    return pl.DataFrame(rows)


def serial_steps(frames: pl.DataFrame, store: LocalObjectStore, detector: FaceDetector,
                 embedder: MobileFaceNetEmbedder) -> tuple[pl.DataFrame, np.ndarray]:
    """The faces and face_embeddings loops as they were before issue 17 (the reference): faces and embeddings."""
    config, detector.batch_size, face_rows = FacesConfig(), SERIAL_BATCH, []
    ordered = frames.sort("frame_id").to_dicts()
    for start in range(0, len(ordered), SERIAL_CHUNK):
        chunk = ordered[start : start + SERIAL_CHUNK]
        images = [decode_image(store.get_bytes(frame["object_key"])) for frame in chunk]
        found = redetect_sideways(detector, images, detector.detect(images))
        for frame, image, detections in zip(chunk, images, found):
            for rank, detection in enumerate(detections):
                crop, aligned, roll, aligned_roll = face_crops(image, detection, config.margin)
                keys = tuple(f"{kind}/serial/{frame['frame_id']}_{rank}.jpg" for kind in ("faces", "aligned"))
                for key, picture in zip(keys, (crop, aligned)):
                    store.put_bytes(key, encode_jpeg(picture, config.jpeg_quality))
                face_rows.append(face_row(frame, rank, detection, keys, (roll, aligned_roll)))
    faces = pl.DataFrame(face_rows).sort("frame_id", "face_id")
    keys = dict(frames.select("frame_id", "object_key").iter_rows())
    vectors = []
    for chunk in faces.iter_slices(SERIAL_CHUNK):
        decoded = {fid: decode_image(store.get_bytes(keys[fid])) for fid in chunk["frame_id"].unique()}
        landmarks = [np.asarray(row, np.float64).reshape(5, 2) for row in chunk.select(LANDMARK_COLUMNS).iter_rows()]
        vectors.append(embedder.embed([decoded[fid] for fid in chunk["frame_id"]], landmarks))
    return faces, np.concatenate(vectors)


def pipelined_steps(frames: pl.DataFrame, store: LocalObjectStore, detector: FaceDetector,
                    embedder: MobileFaceNetEmbedder, batch_size: int) -> tuple[pl.DataFrame, np.ndarray]:
    """The faces and face_embeddings assets' code now, with detection batch ``batch_size``."""
    detector.batch_size = batch_size
    scope = ChallengeScope("pipeline", table_store=None)  # keys only: no definition is read
    face_rows, _, _ = detect_and_store(frames, scope, detector, store, FacesConfig(), logging.getLogger("bench"))
    faces = pl.DataFrame(face_rows).sort("frame_id", "face_id")
    chunk = EmbeddingConfig().chunk_faces
    return faces, embed_stored_crops(embedder, faces["aligned_key"].to_list(), store.get_bytes, chunk)


def _measured(fn) -> tuple[float, float, object]:
    """Wall seconds, CPU seconds of the whole process (every thread) and the result of ``fn()``."""
    wall, cpu = time.perf_counter(), time.process_time()
    result = fn()
    return time.perf_counter() - wall, time.process_time() - cpu, result


def compare_pipeline(batch_sizes: list[int], repeats: int, upscale: int, max_frames: int) -> None:
    """Print frames/s and CPU-s/frame of the serial loop and of the pipeline per batch size, and embeddings'
    agreement (see the module docstring)."""
    detector = FaceDetector(WEIGHTS, device="cpu")
    embedder = MobileFaceNetEmbedder(device="cpu", batch_size=SERIAL_BATCH)
    with tempfile.TemporaryDirectory(prefix="bench-faces-") as tmp:
        store = LocalObjectStore(root=str(Path(tmp) / "objects"))
        frames = demo_frames(store, Path(tmp), upscale)
        frames = frames.gather_every(max(1, -(-frames.height // max_frames)))
        sizes = frames.group_by("width", "height").len().sort("len", descending=True).iter_rows()
        print(f"pipeline: {frames.height} demo frames ({', '.join(f'{n} of {w}x{h}' for w, h, n in sizes)}), "
              f"{os.cpu_count()} cores, torch threads {torch.get_num_threads()}, median of {repeats} rounds")
        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        serial_faces, serial_vectors = serial_steps(frames, store, detector, embedder)  # warm-up, reference
        runs: dict[str, list[tuple[float, float]]] = {"serial": [], "serial, 1 torch thread": []}
        runs |= {f"pipeline batch {b}": [] for b in batch_sizes}
        for _ in range(repeats):
            for name, count in (("serial", threads), ("serial, 1 torch thread", 1)):
                torch.set_num_threads(count)
                runs[name].append(_measured(lambda: serial_steps(frames, store, detector, embedder))[:2])
            torch.set_num_threads(threads)
            for batch_size in batch_sizes:
                wall, cpu, (faces, vectors) = _measured(
                    lambda: pipelined_steps(frames, store, detector, embedder, batch_size))
                runs[f"pipeline batch {batch_size}"].append((wall, cpu))
                if faces["face_id"].to_list() != serial_faces["face_id"].to_list():
                    raise AssertionError(f"batch size {batch_size}: the pipeline found other faces than the loop")
        cosines = np.sum(serial_vectors * vectors, axis=1)
        for name, rounds in runs.items():
            wall = statistics.median(w for w, _ in rounds)
            cpu = statistics.median(c for _, c in rounds)
            speedup = statistics.median(s[0] / r[0] for s, r in zip(runs["serial"], rounds))
            saving = statistics.median(s[1] / r[1] for s, r in zip(runs["serial"], rounds))
            print(f"{name:24s} {frames.height / wall:6.1f} frames/s  {cpu / frames.height * 1000:6.1f} CPU-ms/frame  "
                  f"x{speedup:.2f} frames/s, x{saving:.2f} less CPU than serial (goal >= 1.5)")
        print(f"embeddings, stored aligned crop vs aligned from the frame: cosine min {cosines.min():.4f} "
              f"median {np.median(cosines):.4f} over {len(cosines)} faces")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", nargs="+", choices=["detect", "pipeline"], default=["detect", "pipeline"])
    parser.add_argument("--frames", type=int, default=40)
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[4, 16])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, nargs="+", default=sorted({1, os.cpu_count() or 1}))
    parser.add_argument("--gpu-batch-sizes", type=int, nargs="+", default=[1, 2, 4, 8, 16, 32, 64, 128])
    parser.add_argument("--pipeline-batch-sizes", type=int, nargs="+", default=[4, 16])
    parser.add_argument("--max-frames", type=int, default=60, help="every k-th demo frame, k for at most this many")
    parser.add_argument("--upscale", type=int, default=1, help="enlarge the demo frames by this factor (2: 720x1280)")
    args = parser.parse_args()
    if "pipeline" in args.steps:
        compare_pipeline(args.pipeline_batch_sizes, args.repeats, args.upscale, args.max_frames)
    if "detect" in args.steps:
        compare_detection(args)


def compare_detection(args: argparse.Namespace) -> None:
    """Print batched detection against one frame at a time (see the module docstring)."""
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
