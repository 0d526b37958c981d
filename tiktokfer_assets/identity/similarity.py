"""Track-to-track cosine similarity without ever holding an n x n matrix.

The ``similarities`` table keeps, for each track, its ``k`` most similar other tracks
whose cosine similarity is at least ``floor``. With 100k tracks a dense float32
matrix would need 40 GB; here the matrix is computed in ``block_size`` x
``block_size`` tiles on the chosen torch device and only a running top-k per track
is kept, so memory is O(n * d + n * k + block_size^2). The similarity is symmetric,
so only tiles on or above the diagonal are computed and each serves the top-k of
both its row tracks and its column tracks (half the matrix products).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch


def track_means(embeddings: np.ndarray, track_ids: Sequence[str]) -> tuple[list[str], np.ndarray]:
    """Mean embedding of each track, re-normalised to unit length.

    ``embeddings`` (n, d) has one row per face and ``track_ids`` (n) the face's track.
    Weighing faces by size and frontality was measured and dropped: on the demo it split one
    performer into two individuals at thresholds 0.40-0.45.
    Returns the sorted distinct track ids and a float32 (tracks, d) array in that
    order. Averaging L2-normalised face embeddings and normalising again gives the
    direction the track's faces agree on (the original pipeline's "mean features").
    A mean of exactly zero length (faces pointing in opposite directions) stays
    zero, which makes the track similar to nothing.
    """
    embeddings = np.asarray(embeddings, dtype=np.float32)
    if embeddings.ndim != 2 or len(embeddings) != len(track_ids):
        raise ValueError(
            f"embeddings {embeddings.shape} must be (faces, dim) with one row per track id ({len(track_ids)})"
        )
    ids, inverse = np.unique(np.asarray(track_ids, dtype=object).astype(str), return_inverse=True)
    order = np.argsort(inverse, kind="stable")
    starts = np.flatnonzero(np.r_[True, np.diff(inverse[order]) != 0])
    sums = np.add.reduceat(embeddings[order], starts, axis=0) if len(order) else embeddings[:0]
    norms = np.linalg.norm(sums, axis=1, keepdims=True)
    means = np.divide(sums, norms, out=np.zeros_like(sums), where=norms > 0)
    return ids.tolist(), means


def _top_k_per_row(
    rows: torch.Tensor, cols: torch.Tensor, vals: torch.Tensor, k: int, n: int, floor: float
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Keep the ``k`` largest ``vals`` of each row of a directed edge list.

    Returns the kept ``(rows, cols, vals)``, grouped by row, and each row's admission
    threshold for later candidates: its k-th best value when it has ``k`` edges,
    ``floor`` otherwise. Stable sorts make ties resolve the same way on every run.
    """
    order = torch.argsort(vals, descending=True, stable=True)
    order = order[torch.argsort(rows[order], stable=True)]
    rows, cols, vals = rows[order], cols[order], vals[order]
    counts = torch.bincount(rows, minlength=n)
    rank = torch.arange(len(rows), device=rows.device) - (torch.cumsum(counts, 0) - counts)[rows]
    keep = rank < k
    rows, cols, vals, rank = rows[keep], cols[keep], vals[keep], rank[keep]
    threshold = torch.full((n,), floor, dtype=vals.dtype, device=vals.device)
    full = rank == k - 1
    threshold[rows[full]] = vals[full]
    return rows, cols, vals, threshold


def _tile_candidates(
    sims: torch.Tensor, row_threshold: torch.Tensor, col_threshold: torch.Tensor, r0: int, c0: int, k: int
) -> list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
    """Directed candidate edges ``(source, neighbour, sim)`` of one similarity tile.

    The tile holds rows ``r0...`` against columns ``c0...``, with their admission
    thresholds (a candidate must pass its source's); off the diagonal it also
    serves the column vectors (read by columns). When few entries pass the
    threshold (the usual case: most faces are of different people) they are taken
    directly; otherwise only each row's and column's ``k`` best are taken, which is
    all a top-k can use.
    """
    on_diagonal = r0 == c0
    # One scalar comparison (the exact per-vector thresholds are applied to the few
    # candidates by the caller); count_nonzero, unlike sum, makes no int64 copy.
    passing = sims >= torch.minimum(row_threshold.min(), col_threshold.min())
    n_rows, n_cols = sims.shape
    if int(torch.count_nonzero(passing)) <= k * (n_rows + n_cols):
        r, c = torch.nonzero(passing, as_tuple=True)
        val = sims[r, c]
        edges = [(r + r0, c + c0, val)]
        if not on_diagonal:
            edges.append((c + c0, r + r0, val))
        return edges
    vals, pos = sims.topk(min(k, n_cols), dim=1)
    rows = torch.arange(r0, r0 + n_rows, device=sims.device)[:, None].expand_as(pos)
    edges = [(rows.reshape(-1), (pos + c0).reshape(-1), vals.reshape(-1))]
    if not on_diagonal:
        vals, pos = sims.topk(min(k, n_rows), dim=0)
        cols = torch.arange(c0, c0 + n_cols, device=sims.device)[None, :].expand_as(pos)
        edges.append((cols.reshape(-1), (pos + r0).reshape(-1), vals.reshape(-1)))
    return edges


def top_k_similarities(
    vectors: np.ndarray,
    *,
    k: int = 20,
    floor: float = 0.3,
    block_size: int = 4096,
    device: str = "cpu",
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Sparse cosine-similarity graph: each vector's ``k`` nearest others above ``floor``.

    ``vectors`` (n, d) are normalised here (so any non-zero rows work). Returns
    ``(i, j, sim)``: int64, int64, float32 arrays of the pairs with ``i < j`` where
    ``j`` is among the ``k`` most similar vectors of ``i`` or ``i`` among those of
    ``j``, and ``sim >= floor``; sorted by ``(i, j)``, each pair once.

    Only tiles on or above the diagonal are computed (the matrix is symmetric). Each
    tile is thresholded against every vector's admission threshold (``floor``,
    raised to its current k-th best once it has ``k`` neighbours), so only
    candidates that can still enter a top-k leave the tile; they go to an edge
    buffer that is cut back to the top ``k`` per vector whenever it holds more than
    ``2 * n * k`` edges. On data where most pairs are dissimilar (faces of different
    people) this costs little more than the matrix products.

    Runs on the torch ``device`` given (``"cuda"`` or ``"cuda:1"`` for a GPU; torch
    raises if it is not there). Memory on that device is O(n * d + n * k +
    block_size^2), never O(n^2).
    """
    if k < 1 or block_size < 1:
        raise ValueError(f"k ({k}) and block_size ({block_size}) must be positive")
    if not -1.0 <= floor <= 1.0:
        raise ValueError(f"floor ({floor}) must be a cosine similarity in [-1, 1]")
    vectors = np.asarray(vectors, dtype=np.float32)
    if vectors.ndim != 2:
        raise ValueError(f"vectors must be (n, dim), got shape {vectors.shape}")
    n = len(vectors)
    empty = (np.empty(0, np.int64), np.empty(0, np.int64), np.empty(0, np.float32))
    if n < 2:
        return empty

    with torch.no_grad():
        v = torch.nn.functional.normalize(torch.from_numpy(vectors).to(device), dim=1)
        threshold = torch.full((n,), floor, dtype=v.dtype, device=device)
        edges: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = []
        buffered = 0
        for r0 in range(0, n, block_size):
            rows = slice(r0, min(r0 + block_size, n))
            for c0 in range(r0, n, block_size):
                cols = slice(c0, min(c0 + block_size, n))
                sims = v[rows] @ v[cols].T
                if c0 == r0:
                    sims.fill_diagonal_(-torch.inf)  # a vector is not its own neighbour
                for edge in _tile_candidates(sims, threshold[rows], threshold[cols], r0, c0, k):
                    for_source = edge[2] >= threshold[edge[0]]
                    edges.append(tuple(t[for_source] for t in edge))
                    buffered += int(for_source.sum())
                del sims  # free the tile before the next one is computed
                if buffered > 2 * n * k:
                    kept = _top_k_per_row(*map(torch.cat, zip(*edges)), k, n, floor)
                    edges, threshold, buffered = [kept[:3]], kept[3], len(kept[0])
        i, j, sim = (t.cpu().numpy() for t in _top_k_per_row(*map(torch.cat, zip(*edges)), k, n, floor)[:3])

    lo, hi = np.minimum(i, j), np.maximum(i, j)
    _, first = np.unique(lo * n + hi, return_index=True)
    return lo[first], hi[first], sim[first]
