"""Benchmark of track similarity + clustering at scale, against the dense n x n approach.

Builds ``--n`` (default 100,000) unit vectors of ``--dim`` (512) dimensions: a
planted part (``--identities`` identities, 5-45 tracks each, each track the
identity's centre plus noise giving same-identity cosines of about 0.5-0.8; a
quarter of the identities are look-alikes whose centre is mixed with another
identity's) and random background tracks (each its own identity). Then, in the
same run:

1. baseline: at ``--dense-n`` tracks (default 8,000), the dense approach (full
   n x n similarity matrix, then top-k) against ``top_k_similarities`` on the same
   vectors: time, peak memory, and a check that both give the same pairs;
2. ``top_k_similarities`` on all ``--n`` tracks: time and peak memory, with the
   memory the dense n x n float32 matrix would need (n^2 * 4 bytes) and the ratio;
3. ``cluster_tracks`` with ``threshold`` and ``average`` linkage over a sweep of
   thresholds: time, peak memory and pairwise F1 against the planted identities;
4. with ``--hdbscan-n N``: the three methods, HDBSCAN included, on N new tracks
   drawn the same way (HDBSCAN on 512-d vectors is roughly quadratic; keep N in
   the thousands on CPU);
5. with ``--large-cluster N [N ...]``: ``average`` linkage on N tracks of one
   identity (one performer in every video: a single connected component that
   merges into one individual), with the growth of time per 4x tracks. Alone
   (``--n 0``) it skips 1-3.

Peak memory is the process's resident set size, sampled every 2 ms while a step
runs, above what it was when the step started; on CUDA torch's peak allocation is
printed too. So that the resident size follows the memory actually in use, glibc
is told to serve every allocation of 64 KiB or more with its own mapping (given
back to the OS when freed) and free heap is trimmed before each step; with glibc's
defaults the resident size also counts freed heap that glibc keeps (about 2x the
live memory of the similarity step on 20k tracks).

    .venv/bin/python bench/bench_clustering.py [--n 100000] [--device cpu|cuda] [--hdbscan-n 0]
        [--large-cluster 2000 8000 32000]

Measured (2-core machine shared with other jobs, load 7-11, CPU seconds), one 512-d identity,
k=20, threshold 0.5: 2k / 8k / 32k tracks in 0.7 / 3.8 / 24.1 s (x5.7, x6.3 per 4x; heap
operations x4.8, x4.4: the rest is a heap and dicts outgrowing the caches); before the lazy heap
re-pushed every neighbour of a merged cluster: 9.8 s CPU for 2k, 8k not done in 280 s wall.
"""

from __future__ import annotations

import argparse
import ctypes
import os
import resource
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from tiktokfer_assets.identity.clustering import cluster_tracks, pairwise_f1
from tiktokfer_assets.identity.similarity import top_k_similarities

PAGE = os.sysconf("SC_PAGE_SIZE")
MIB = 2**20


_LIBC = ctypes.CDLL("libc.so.6")
_M_MMAP_THRESHOLD = -3


def _rss() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * PAGE


@dataclass
class Measured:
    result: Any
    seconds: float
    cpu_seconds: float  # this process's CPU time (all threads): the work, whatever else shares the machine
    peak_bytes: int  # resident memory above the step's start
    cuda_peak_bytes: int | None


def measure(step: Callable[[], Any], device: str) -> Measured:
    """Run ``step``, timing it and sampling its peak resident memory."""
    _LIBC.malloc_trim(0)
    start_rss = _rss()
    peak = [start_rss]
    done = threading.Event()

    def sample() -> None:
        while not done.wait(0.002):
            peak[0] = max(peak[0], _rss())

    sampler = threading.Thread(target=sample, daemon=True)
    if device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats(device)
    sampler.start()
    started, cpu_started = time.perf_counter(), time.process_time()
    try:
        result = step()
    finally:
        seconds, cpu_seconds = time.perf_counter() - started, time.process_time() - cpu_started
        done.set()
        sampler.join()
    peak[0] = max(peak[0], _rss())
    cuda_peak = torch.cuda.max_memory_allocated(device) if device.startswith("cuda") else None
    return Measured(result, seconds, cpu_seconds, peak[0] - start_rss, cuda_peak)


def planted_vectors(
    n: int, dim: int, identities: int, seed: int
) -> tuple[np.ndarray, list[str], dict[str, str]]:
    """Vectors (shuffled), track names and each track's true identity (see module docstring)."""
    rng = np.random.default_rng(seed)
    sizes = rng.integers(5, 46, size=identities)
    if sizes.sum() > n:
        raise SystemExit(f"{identities} identities need about {sizes.sum()} tracks; raise --n or lower --identities")
    centres = rng.standard_normal((identities, dim), dtype=np.float32)
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    look_alike = rng.random(identities) < 0.25
    mixed = 0.8 * centres + 0.6 * centres[rng.integers(0, identities, size=identities)]
    mixed /= np.linalg.norm(mixed, axis=1, keepdims=True)
    centres = np.where(look_alike[:, None], mixed, centres)
    noise = rng.uniform(0.5, 1.0, size=identities).astype(np.float32)

    vectors = np.empty((n, dim), dtype=np.float32)
    truth = np.empty(n, dtype=object)
    row = 0
    for identity, size in enumerate(sizes):
        spread = rng.standard_normal((size, dim), dtype=np.float32) * (noise[identity] / np.sqrt(dim))
        vectors[row : row + size] = centres[identity] + spread
        truth[row : row + size] = f"id{identity}"
        row += size
    vectors[row:] = rng.standard_normal((n - row, dim), dtype=np.float32)
    truth[row:] = [f"bg{b}" for b in range(n - row)]
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    order = rng.permutation(n)
    names = [f"v{k:07d}/t0" for k in range(n)]
    return vectors[order], names, dict(zip(names, truth[order].tolist()))


def one_identity(n: int, dim: int, seed: int) -> np.ndarray:
    """``n`` unit vectors of one identity, drawn like a planted identity's tracks."""
    rng = np.random.default_rng(seed)
    centre = rng.standard_normal(dim, dtype=np.float32)
    noise = rng.uniform(0.5, 1.0, size=(n, 1)).astype(np.float32)
    vectors = centre / np.linalg.norm(centre) + rng.standard_normal((n, dim), dtype=np.float32) * noise / np.sqrt(dim)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def large_cluster(sizes: list[int], args: argparse.Namespace) -> None:
    """Section 5: average linkage on one large connected cluster, growth per 4x."""
    print(f"\n5. average linkage on one identity (one connected cluster), threshold {args.large_threshold}")
    previous: tuple[int, float] | None = None
    for n in sizes:
        vectors = one_identity(n, args.dim, args.seed + n)
        pairs = top_k_similarities(vectors, k=args.k, floor=args.floor, block_size=args.block_size, device=args.device)
        names = [f"v{k:07d}/t0" for k in range(n)]
        run = measure(
            lambda: cluster_tracks(names, None, pairs, method="average", threshold=args.large_threshold), "cpu"
        )
        individuals = len(set(run.result.values()))
        growth = ""
        if previous is not None:
            per_4x = np.log(4) / np.log(n / previous[0])
            growth = f"   x{(run.cpu_seconds / previous[1]) ** per_4x:.1f} CPU per 4x tracks"
        report(f"{n:>7,} tracks {len(pairs[0]):>9,} pairs -> {individuals} ind.", run)
        if growth:
            print(growth)
        previous = (n, run.cpu_seconds)


def dense_top_k(vectors: np.ndarray, k: int, floor: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The dense approach: the whole n x n similarity matrix, then each row's top-k."""
    with torch.no_grad():
        v = torch.from_numpy(vectors)
        sims = v @ v.T
        sims.fill_diagonal_(-torch.inf)
        vals, idx = sims.topk(k, dim=1)
    keep = (vals >= floor).numpy()
    i = np.repeat(np.arange(len(vectors)), k).reshape(-1, k)[keep]
    j, sim = idx.numpy()[keep], vals.numpy()[keep]
    lo, hi = np.minimum(i, j), np.maximum(i, j)
    _, first = np.unique(lo * len(vectors) + hi, return_index=True)
    return lo[first], hi[first], sim[first]


def mib(value: int | None) -> str:
    return "-" if value is None else f"{value / MIB:,.0f} MiB"


def report(label: str, measured: Measured) -> None:
    cuda = f", torch CUDA peak {mib(measured.cuda_peak_bytes)}" if measured.cuda_peak_bytes is not None else ""
    print(
        f"  {label:<40} {measured.seconds:7.1f} s wall {measured.cpu_seconds:7.1f} s CPU"
        f"   peak +{mib(measured.peak_bytes)}{cuda}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--dim", type=int, default=512)
    parser.add_argument("--identities", type=int, default=2000)
    parser.add_argument("--k", type=int, default=20)
    parser.add_argument("--floor", type=float, default=0.3)
    parser.add_argument("--block-size", type=int, default=4096)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--thresholds", type=float, nargs="+", default=[0.4, 0.45, 0.5, 0.55, 0.6])
    parser.add_argument("--dense-n", type=int, default=8000)
    parser.add_argument("--hdbscan-n", type=int, default=0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--large-cluster", type=int, nargs="*", default=[])
    parser.add_argument("--large-threshold", type=float, default=0.5)
    args = parser.parse_args()
    _LIBC.mallopt(_M_MMAP_THRESHOLD, 64 * 1024)

    print(f"torch {torch.__version__}, {torch.get_num_threads()} CPU threads, device {args.device}")
    if args.n:
        planted_scale(args)
    if args.large_cluster:
        large_cluster(args.large_cluster, args)


def planted_scale(args: argparse.Namespace) -> None:
    """Sections 1-4: similarity and clustering of ``--n`` planted tracks."""
    vectors, names, truth = planted_vectors(args.n, args.dim, args.identities, args.seed)
    planted = sum(1 for t in truth.values() if t.startswith("id"))
    print(
        f"{args.n:,} tracks x {args.dim}: {planted:,} in {args.identities:,} planted identities, "
        f"{args.n - planted:,} background; k={args.k}, floor={args.floor}, block {args.block_size}"
    )

    m = min(args.dense_n, args.n)
    print(f"\n1. baseline at n={m:,}: dense n x n matrix vs blocked top-k (same vectors)")
    dense = measure(lambda: dense_top_k(vectors[:m], args.k, args.floor), "cpu")
    blocked = measure(
        lambda: top_k_similarities(
            vectors[:m], k=args.k, floor=args.floor, block_size=args.block_size, device=args.device
        ),
        args.device,
    )
    report("dense (full matrix + topk, CPU)", dense)
    report(f"blocked top_k_similarities ({args.device})", blocked)
    same = all(np.array_equal(a, b) for a, b in zip(dense.result[:2], blocked.result[:2])) and np.allclose(
        dense.result[2], blocked.result[2], atol=1e-5
    )
    print(f"  same pairs: {same} ({len(dense.result[0]):,} pairs); CPU time ratio blocked/dense "
          f"{blocked.cpu_seconds / dense.cpu_seconds:.2f}, memory ratio dense/blocked "
          f"{dense.peak_bytes / max(blocked.peak_bytes, 1):.1f}")

    print(f"\n2. top_k_similarities on all {args.n:,} tracks")
    topk = measure(
        lambda: top_k_similarities(vectors, k=args.k, floor=args.floor, block_size=args.block_size, device=args.device),
        args.device,
    )
    report("top_k_similarities", topk)
    dense_bytes = args.n * args.n * 4
    print(f"  dense n x n float32 would need {dense_bytes / 2**30:,.1f} GiB = "
          f"{dense_bytes / max(topk.peak_bytes, 1):,.0f} x the measured peak; "
          f"{len(topk.result[0]):,} pairs kept ({len(topk.result[0]) * 16 / MIB:,.0f} MiB as i, j, sim)")

    print("\n3. cluster_tracks on those pairs, pairwise F1 against the planted identities")
    best: dict[str, tuple[float, float]] = {}
    for method in ("threshold", "average"):
        for threshold in args.thresholds:
            run = measure(
                lambda: cluster_tracks(names, vectors, topk.result, method=method, threshold=threshold), "cpu"
            )
            f1 = pairwise_f1(run.result, truth)
            individuals = len(set(run.result.values()))
            report(f"{method:<9} t={threshold:.2f} F1 {f1:.4f} ({individuals:,} ind.)", run)
            if f1 > best.get(method, (0.0, 0.0))[0]:
                best[method] = (f1, threshold)
    for method, (f1, threshold) in best.items():
        print(f"  best {method}: F1 {f1:.4f} at threshold {threshold}")
    print(f"  F1 ratio best average / best threshold: {best['average'][0] / best['threshold'][0]:.4f}")
    print(f"\nprocess peak RSS (getrusage, whole run): "
          f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / MIB:,.0f} MiB")

    if args.hdbscan_n:
        h = min(args.hdbscan_n, args.n)
        sub_identities = max(1, args.identities * h // args.n)
        sub_vectors, sub_names, sub_truth = planted_vectors(h, args.dim, sub_identities, args.seed + 1)
        sub_pairs = top_k_similarities(sub_vectors, k=args.k, floor=args.floor, device=args.device)
        print(f"\n4. the three methods on {h:,} new tracks of the same kind ({sub_identities} planted identities)")
        for method, threshold in (
            ("threshold", best["threshold"][1]),
            ("average", best["average"][1]),
            ("hdbscan", None),
        ):
            run = measure(
                lambda: cluster_tracks(sub_names, sub_vectors, sub_pairs, method=method, threshold=threshold), "cpu"
            )
            report(f"{method:<9} F1 {pairwise_f1(run.result, sub_truth):.4f}", run)


if __name__ == "__main__":
    main()
