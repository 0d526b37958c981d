"""Near neighbours of 64-bit hashes under Hamming distance, without comparing all pairs.

Multi-index hashing (Norouzi, Punjani & Fleet, "Fast search in Hamming space with
multi-index hashing", CVPR 2012): split the 64 bits into ``m`` disjoint chunks; if two
hashes differ in at most ``r`` bits, some chunk differs in at most ``r // m`` bits
(pigeonhole). So every pair within ``r`` is found by looking up, for each chunk,
the buckets of all chunk values within ``r // m`` bits of the query's, and checking
the full distance of those candidates only. ``m`` is chosen per call to minimise
(probes per chunk) x (expected bucket size), which for PHash's default ``r = 10``
gives 4 chunks of 16 bits probed at radius 2 (137 probes each).

Hashes are compared only within equal ``groups`` (the group id is part of every
bucket key), so one call covers a whole partition of many groups. The work is
vectorised (sorted keys and ``searchsorted``), with no worker processes. Measured
by ``bench/bench_dedup.py``.
"""

from __future__ import annotations

from functools import lru_cache
from itertools import combinations
from math import comb

import numpy as np

HASH_BITS = 64
MAX_CHUNK_BITS = 16
"""Chunks of at most 16 bits: each chunk's buckets are a dense table of at most 65536 entries."""
BRUTE_FORCE_MAX = 512
"""Groups up to this size are compared all-pairs (cheaper than building the tables)."""
PAIR_BUDGET = 1 << 22
"""Candidate pairs checked per vectorised step (bounds memory: ~100 MiB)."""


def hex_to_uint64(hashes: list[str]) -> np.ndarray:
    """16-hex-digit hashes (imagededup's format) as a ``uint64`` array."""
    return np.array([int(h, 16) for h in hashes], dtype=np.uint64)


@lru_cache(maxsize=None)
def _masks(width: int, radius: int) -> np.ndarray:
    """Every ``width``-bit value with at most ``radius`` bits set."""
    return np.array([sum(1 << b for b in bits) for k in range(radius + 1) for bits in combinations(range(width), k)],
                    dtype=np.int64)


@lru_cache(maxsize=None)
def _chunking(max_distance: int) -> tuple[tuple[tuple[int, int], ...], int]:
    """(chunks as (first bit, width), probe radius per chunk) of the cheapest multi-index layout.

    The cost, (chunks x probes per chunk) x (1 + expected bucket size), is evaluated for
    a group of ``2**MAX_CHUNK_BITS`` hashes rather than the actual size, so the layout is
    the same for every group and the cost grows linearly up to that size (for ``r = 10``:
    4 chunks of 16 bits at radius 2; 6 chunks of 11 bits at radius 1 are 6x faster on
    2k hashes but quadratic beyond, see ``bench/bench_dedup.py``).
    """
    best: tuple[float, tuple[tuple[int, int], ...], int] | None = None
    fewest = -(-HASH_BITS // MAX_CHUNK_BITS)
    for m in range(fewest, max(fewest, min(HASH_BITS, max_distance + 1)) + 1):
        widths = [HASH_BITS // m + (1 if c < HASH_BITS % m else 0) for c in range(m)]
        radius = max_distance // m
        probes = sum(comb(widths[0], k) for k in range(radius + 1))
        cost = m * probes * (1 + 2**MAX_CHUNK_BITS / 2 ** widths[-1])
        if best is None or cost < best[0]:
            best = (cost, tuple(zip(np.cumsum([0, *widths[:-1]]).tolist(), widths)), radius)
    assert best is not None
    return best[1], best[2]


def _close(hashes: np.ndarray, max_distance: int, rows: np.ndarray, lo: np.ndarray, hits: np.ndarray,
           order: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Pairs ``(rows[k], order[lo[k] + t])``, ``t < hits[k]``, with ``i < j`` and distance <= ``max_distance``."""
    total = int(hits.sum())
    i = np.repeat(rows, hits)
    j = order[np.repeat(lo - (np.cumsum(hits) - hits), hits) + np.arange(total)]
    keep = i < j
    i, j = i[keep], j[keep]
    keep = np.bitwise_count(hashes[i] ^ hashes[j]) <= max_distance
    return i[keep], j[keep]


def _batches(hits: np.ndarray) -> list[slice]:
    """Consecutive slices of ``hits`` whose sums stay near :data:`PAIR_BUDGET`."""
    batch = np.cumsum(hits) // PAIR_BUDGET
    edges = np.flatnonzero(np.diff(batch)) + 1
    bounds = [0, *edges.tolist(), len(hits)]
    return [slice(a, b) for a, b in zip(bounds[:-1], bounds[1:])]


def _multi_index_pairs(hashes: np.ndarray, members: np.ndarray,
                       max_distance: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """Close pairs among ``hashes[members]`` by multi-index hashing (see the module docstring)."""
    chunks, radius = _chunking(max_distance)
    found = []
    for start, width in chunks:
        values = ((hashes[members] >> np.uint64(start)) & np.uint64((1 << width) - 1)).astype(np.int64)
        counts = np.bincount(values, minlength=1 << width)
        starts = np.cumsum(counts) - counts
        order = members[np.argsort(values, kind="stable")]
        masks = _masks(width, radius)
        for part in _batches(np.full(len(members), len(masks))):
            query = (values[part, None] ^ masks[None, :]).ravel()
            rows = np.repeat(members[part], len(masks))
            found.append(_close(hashes, max_distance, rows, starts[query], counts[query], order))
    return found


def near_pairs(hashes: np.ndarray, max_distance: int,
               groups: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Index pairs ``(i, j)``, ``i < j``, of equal group whose Hamming distance is at most ``max_distance``.

    ``hashes``: ``uint64`` array; ``groups``: integer group ids (default: one group).
    Groups of at most :data:`BRUTE_FORCE_MAX` hashes are compared all-pairs, together
    in vectorised batches; larger ones by multi-index hashing. A pair may be returned
    more than once.
    """
    if max_distance < 0:
        raise ValueError(f"max_distance must be >= 0, got {max_distance}")
    hashes = np.asarray(hashes, dtype=np.uint64)
    count = len(hashes)
    groups = np.zeros(count, dtype=np.int64) if groups is None else np.asarray(groups)
    order = np.argsort(groups, kind="stable")
    _, first, sizes = np.unique(groups[order], return_index=True, return_counts=True)
    found = [(np.empty(0, dtype=np.int64), np.empty(0, dtype=np.int64))]
    for begin, size in zip(first[sizes > BRUTE_FORCE_MAX], sizes[sizes > BRUTE_FORCE_MAX]):
        found += _multi_index_pairs(hashes, order[begin:begin + size], max_distance)
    small = np.repeat(sizes <= BRUTE_FORCE_MAX, sizes)
    ends = np.repeat(first + sizes, sizes)
    positions = np.flatnonzero(small)
    hits = ends[positions] - positions - 1  # every later member of its group
    for part in _batches(hits):
        found.append(_close(hashes, max_distance, order[positions[part]], positions[part] + 1, hits[part], order))
    return np.concatenate([i for i, _ in found]), np.concatenate([j for _, j in found])


def brute_force_pairs(hashes: np.ndarray, max_distance: int,
                      groups: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """All-pairs reference of :func:`near_pairs` (quadratic; for tests and benchmarks)."""
    hashes = np.asarray(hashes, dtype=np.uint64)
    groups = np.zeros(len(hashes), dtype=np.int64) if groups is None else np.asarray(groups)
    close = np.bitwise_count(hashes[:, None] ^ hashes[None, :]) <= max_distance
    close &= groups[:, None] == groups[None, :]
    i, j = np.nonzero(np.triu(close, k=1))
    return i.astype(np.int64), j.astype(np.int64)


def components(count: int, pairs: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
    """Connected-component label of each of ``count`` nodes linked by ``pairs``; labels in order of first node."""
    from scipy.sparse import coo_matrix  # 0.6 s CPU to import: not at the code location's
    from scipy.sparse.csgraph import connected_components

    i, j = pairs
    graph = coo_matrix((np.ones(len(i), dtype=np.int8), (i, j)), shape=(count, count))
    return connected_components(graph, directed=False)[1]
