"""Benchmark of near-duplicate removal within one large individual, against imagededup's brute-force search.

Generates ``--sizes`` (default 2000, 8000, 32000) face crops of ONE individual and
expression as JPEG bytes: families of 8 near-duplicates (a smooth random 48x48
image, each member shifted by up to 2 px and re-encoded at quality 60-95) whose
PHashes differ in a few bits. Then, in the same run:

1. ``select_unique`` on each size, end to end (decode, hash, sharpness, search,
   choice of the kept face), with ``multiprocessing.Pool`` patched to raise, so a
   worker pool anywhere in the path fails the run; the time per 4x growth is printed
   for the whole call and for the search alone (``near_pairs`` on the hashes);
2. the same groups as the brute force: the components of all pairs within the
   threshold (``brute_force_pairs``) on the smallest size;
3. the baseline: imagededup's ``find_duplicates(search_method="brute_force_cython",
   num_dist_workers=0)`` (what ``identity/dedup.py`` called per individual before)
   on the hashes of the sizes up to ``--baseline-max`` (default 2000: it is x17-23
   per 4x), with the speed-up of the search.

    .venv/bin/python bench/bench_dedup.py [--sizes 2000 8000 32000] [--baseline-max 2000]
"""

from __future__ import annotations

import argparse
import io
import multiprocessing
import multiprocessing.pool
import time
import warnings
from contextlib import contextmanager

import imagededup.utils.general_utils
import numpy as np
import polars as pl
from imagededup.methods import PHash
from PIL import Image

from tiktokfer_assets.identity.dedup import select_unique
from tiktokfer_assets.identity.hamming import brute_force_pairs, components, hex_to_uint64, near_pairs

FAMILY = 8
THRESHOLD = 10


def crops(count: int, seed: int) -> dict[str, bytes]:
    """``count`` JPEG crops in families of :data:`FAMILY` near-duplicates."""
    rng = np.random.default_rng(seed)
    out: dict[str, bytes] = {}
    for family in range(-(-count // FAMILY)):
        base = Image.fromarray(rng.integers(0, 256, (12, 12, 3), dtype=np.uint8)).resize((52, 52), Image.BICUBIC)
        for member in range(min(FAMILY, count - family * FAMILY)):
            dx, dy = rng.integers(0, 3, 2)
            buffer = io.BytesIO()
            base.crop((dx, dy, dx + 48, dy + 48)).save(buffer, "JPEG", quality=int(rng.integers(60, 96)))
            out[f"f{family:05d}_{member}"] = buffer.getvalue()
    return out


def partition(labels: np.ndarray) -> set[frozenset[int]]:
    groups: dict[int, set[int]] = {}
    for index, label in enumerate(labels):
        groups.setdefault(int(label), set()).add(index)
    return {frozenset(g) for g in groups.values()}


def imagededup_groups(hashes: list[str]) -> np.ndarray:
    """The former search: imagededup's brute force (it creates a worker pool per call), then components."""
    keys = [str(k) for k in range(len(hashes))]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        found = PHash(verbose=False).find_duplicates(
            encoding_map=dict(zip(keys, hashes)), max_distance_threshold=THRESHOLD,
            search_method="brute_force_cython", num_dist_workers=0)
    pairs = (np.array([int(k) for k, dups in found.items() for _ in dups], dtype=np.int64),
             np.array([int(d) for dups in found.values() for d in dups], dtype=np.int64))
    return components(len(hashes), pairs)


@contextmanager
def no_worker_pools():
    """``multiprocessing.Pool`` (and imagededup's imported name of it) raise while inside."""
    def refuse(*args, **kwargs):
        raise AssertionError("a worker pool was created")

    targets = [(multiprocessing, "Pool"), (multiprocessing.pool, "Pool"), (imagededup.utils.general_utils, "Pool")]
    saved = [getattr(module, name) for module, name in targets]
    for module, name in targets:
        setattr(module, name, refuse)
    try:
        yield
    finally:
        for (module, name), value in zip(targets, saved):
            setattr(module, name, value)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[2000, 8000, 32000])
    parser.add_argument("--baseline-max", type=int, default=2000)
    args = parser.parse_args()
    hasher = PHash(verbose=False)
    rows = []
    for size in args.sizes:
        images = crops(size, seed=size)
        faces = pl.DataFrame({"face_id": list(images), "individual_id": 0, "expression": None, "score": 0.9})
        with no_worker_pools():
            start = time.perf_counter()
            kept = select_unique(faces, images, max_distance_threshold=THRESHOLD,
                                 group_by=("individual_id", "expression"))
            total = time.perf_counter() - start
        hex_hashes = [hasher.encode_image(image_array=np.asarray(Image.open(io.BytesIO(b)).convert("RGB")))
                      for b in images.values()]
        hashes = hex_to_uint64(hex_hashes)
        with no_worker_pools():
            start = time.perf_counter()
            labels = components(size, near_pairs(hashes, THRESHOLD))
            search = time.perf_counter() - start
        assert kept.height == labels.max() + 1, "select_unique and near_pairs disagree"
        row = {"faces": size, "kept": kept.height, "select_unique_s": round(total, 3), "search_s": round(search, 4)}
        if size == min(args.sizes):
            same = partition(labels) == partition(components(size, brute_force_pairs(hashes, THRESHOLD)))
            assert same, "groups differ from the brute force"
            row["same_groups_as_brute_force"] = same
        if size <= args.baseline_max:
            start = time.perf_counter()
            baseline = imagededup_groups(hex_hashes)
            row["imagededup_search_s"] = round(time.perf_counter() - start, 3)
            row["search_speedup"] = round(row["imagededup_search_s"] / max(search, 1e-9), 1)
            assert partition(baseline) == partition(labels), "groups differ from imagededup's"
        rows.append(row)
    table = pl.DataFrame(rows)
    for column in ("select_unique_s", "search_s"):
        table = table.with_columns((pl.col(column) / pl.col(column).shift(1)).round(2).alias(f"{column}_growth"))
    with pl.Config(tbl_cols=-1, tbl_width_chars=200):
        print(table)
    print("no worker pool was created by select_unique or near_pairs (multiprocessing.Pool raised if called)")


if __name__ == "__main__":
    main()
