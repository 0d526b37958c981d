"""Tracks to individuals: clustering the sparse track-similarity graph under constraints.

Input is the output of ``similarity.top_k_similarities``: pairs ``(i, j, sim)`` of
track indices. Three methods:

* ``"threshold"``: connected components of the pairs with ``sim >= threshold``
  (the original pipeline's rule). Cheap, but one strong false pair chains two
  people together.
* ``"average"``: average-linkage agglomeration on the sparse graph: clusters merge,
  most similar first, while the mean similarity of the graph's pairs between them
  is at least ``threshold``. Pairs absent from the graph are unknown, not 0: with
  ``k`` below an individual's number of tracks most of its pairs are absent, and
  counting them as 0 fragmented planted identities badly (pairwise F1 0.58 against
  0.996 at threshold 0.5 with k=20 on 20k planted tracks while developing this;
  ``bench/bench_clustering.py`` measures the kept variant). One strong
  stray pair no longer chains two people when the other pairs between them are
  weak.
* ``"hdbscan"``: the ``hdbscan`` package on the unit vectors (Euclidean distance on
  unit vectors is a monotone function of cosine similarity); noise points become
  individuals of their own. Needs the vectors, ignores ``pairs`` and ``threshold``.

Constraints hold for every method. ``must_link`` pairs (from ``merge`` corrections)
are always in one individual. ``cannot_link`` pairs (tracks seen in the same frame,
``keep_apart`` corrections) are never: the graph is first cut into candidate groups
(components for threshold and average, clusters for HDBSCAN, each joined along
must-links); a group containing a cannot-link pair is rebuilt Kruskal-style, taking
its pairs in descending similarity and refusing any union that would put a
cannot-link pair in one cluster. A must-link that contradicts the cannot-links
raises :class:`ConstraintConflict`.

Individual ids are 0, 1, 2, ... numbered by the smallest track id (string order) of
each individual, so the same tracks and pairs give the same ids on every run.
"""

from __future__ import annotations

import heapq
from collections import defaultdict
from collections.abc import Collection, Hashable, Mapping, Sequence
from typing import Literal

import numpy as np
import polars as pl

from tiktokfer_assets.identity.hamming import components

Method = Literal["threshold", "average", "hdbscan"]
Pairs = tuple[np.ndarray, np.ndarray, np.ndarray]


class ConstraintConflict(ValueError):
    """A must-link chain joins two tracks that must be kept apart."""


def cannot_link_from_frames(faces_with_tracks: pl.DataFrame) -> set[frozenset[str]]:
    """Pairs of tracks that share a ``frame_id``: two faces in one frame are two people."""
    per_frame = faces_with_tracks.select("frame_id", "track_id").unique()
    pairs = (
        per_frame.join(per_frame, on="frame_id", suffix="_other")
        .filter(pl.col("track_id") < pl.col("track_id_other"))
        .select("track_id", "track_id_other")
        .unique()
    )
    return {frozenset(pair) for pair in pairs.iter_rows()}


def pairwise_f1(predicted: Mapping[str, int], truth: Mapping[str, Hashable]) -> float:
    """Pairwise F1 of a clustering against the truth (both keyed by the same items).

    A pair of items is a true positive when both clusterings put them together.
    F1 = 2 TP / (pairs together in predicted + pairs together in truth); 1.0 when
    neither has any pair (all singletons in both).
    """
    if predicted.keys() != truth.keys():
        missing = sorted(set(truth) - set(predicted))[:5]
        extra = sorted(set(predicted) - set(truth))[:5]
        raise ValueError(f"predicted and truth cover different items (missing {missing}, extra {extra})")
    table = pl.DataFrame(
        {"p": [str(predicted[key]) for key in truth], "t": [str(value) for value in truth.values()]}
    )

    def together(columns: list[str]) -> int:
        counts = table.group_by(columns).len()["len"].to_numpy().astype(np.int64)
        return int((counts * (counts - 1) // 2).sum())

    denominator = together(["p"]) + together(["t"])
    return 1.0 if denominator == 0 else 2 * together(["p", "t"]) / denominator


class _ConstrainedUnionFind:
    """Union-find whose unions refuse to join two sets containing a cannot-link pair."""

    def __init__(self, n: int, cannot: Sequence[tuple[int, int]]):
        self.parent = list(range(n))
        self.size = [1] * n
        self.apart: list[set[int]] = [set() for _ in range(n)]
        for a, b in cannot:
            self.apart[a].add(b)
            self.apart[b].add(a)

    def find(self, a: int) -> int:
        root = a
        while self.parent[root] != root:
            root = self.parent[root]
        while self.parent[a] != root:
            self.parent[a], a = root, self.parent[a]
        return root

    def union(self, a: int, b: int) -> bool:
        """Join the sets of ``a`` and ``b``; False (and nothing done) if they must stay apart."""
        a, b = self.find(a), self.find(b)
        if a == b:
            return True
        if b in self.apart[a]:
            return False
        if self.size[a] < self.size[b]:
            a, b = b, a
        self.parent[b] = a
        self.size[a] += self.size[b]
        for other in self.apart[b]:  # the roots b was kept apart from now avoid a
            self.apart[other].discard(b)
            self.apart[other].add(a)
        self.apart[a] |= self.apart[b]
        self.apart[b] = set()
        return True

    def labels(self) -> np.ndarray:
        return np.array([self.find(a) for a in range(len(self.parent))], dtype=np.int64)


def _apply_must_links(
    uf: _ConstrainedUnionFind, must: Sequence[tuple[int, int]], names: Sequence[str]
) -> None:
    for a, b in must:
        if not uf.union(a, b):
            raise ConstraintConflict(
                f"tracks {names[a]!r} and {names[b]!r} must be merged, but that joins two tracks "
                "that must be kept apart (same frame or a keep_apart correction)"
            )


def _kruskal(
    n: int,
    edges: Pairs,
    must: Sequence[tuple[int, int]],
    cannot: Sequence[tuple[int, int]],
    names: Sequence[str],
) -> np.ndarray:
    """Cluster labels from must-links, then edges in descending similarity, never
    joining a cannot-link pair (ties in similarity are taken in (i, j) order)."""
    uf = _ConstrainedUnionFind(n, cannot)
    _apply_must_links(uf, must, names)
    i, j, sim = edges
    for e in np.lexsort((j, i, -sim)):
        uf.union(int(i[e]), int(j[e]))
    return uf.labels()


def _average_linkage(
    n: int,
    edges: Pairs,
    must: Sequence[tuple[int, int]],
    cannot: Sequence[tuple[int, int]],
    threshold: float,
    names: Sequence[str],
) -> np.ndarray:
    """Average linkage over the known pairs of a sparse graph, with constraints.

    The linkage of two clusters is the mean similarity of the pairs between them
    that are in the graph. Clusters are merged in order of highest linkage while it
    is at least ``threshold`` (ties by cluster key); a merge of two clusters
    holding a cannot-link pair is refused for good (clusters only grow, so the
    conflict stays).

    A lazy max-heap of linkages: an entry is stale once a side has merged away or
    the pair's linkage has changed. A merge changes only the linkages to the
    neighbours of the cluster with fewer neighbours, which is folded into the other
    (the survivor keeps its key), so each merge pushes min(degrees) entries and the
    whole run O(E log E) of them for E pairs. Re-pushing every neighbour of the
    merged cluster instead made one large connected cluster ~n^2.3 (144 s for 8k
    tracks); ``bench/bench_clustering.py --large-cluster`` measures this one.
    """
    uf = _ConstrainedUnionFind(n, cannot)
    _apply_must_links(uf, must, names)
    # (sum of similarities, number of pairs) between clusters, keyed by a member of each cluster.
    between: defaultdict[int, dict[int, tuple[float, int]]] = defaultdict(dict)
    i, j, sim = edges
    for a, b, s in zip(i.tolist(), j.tolist(), sim.tolist()):
        a, b = uf.find(a), uf.find(b)
        if a != b:
            total, count = between[a].get(b, (0.0, 0))
            between[a][b] = between[b][a] = (total + s, count + 1)

    def entry(a: int, b: int, mean: float) -> tuple[float, int]:
        return (-mean, min(a, b) * n + max(a, b))  # the pair as one int: a smaller heap, same order as (a, b)

    # Only linkages at or above the threshold can merge: a pair below it is pushed again if it rises.
    heap = [
        entry(a, b, total / count)
        for a, nbrs in between.items()
        for b, (total, count) in nbrs.items()
        if a < b and total / count >= threshold
    ]
    heapq.heapify(heap)
    push, pop = heapq.heappush, heapq.heappop
    while heap:
        neg_mean, pair = pop(heap)
        a, b = divmod(pair, n)
        link = between.get(a, {}).get(b)
        if link is None or -link[0] / link[1] != neg_mean:
            continue  # stale entry: a side has merged away, or their linkage has changed since
        if not uf.union(a, b):
            continue  # a cannot-link pair would end up together
        keep, gone = (a, b) if len(between[a]) >= len(between[b]) else (b, a)
        nbrs_keep, nbrs_gone = between[keep], between.pop(gone)
        del nbrs_keep[gone], nbrs_gone[keep]
        for other, (total, count) in nbrs_gone.items():
            total_keep, count_keep = nbrs_keep.get(other, (0.0, 0))
            merged = nbrs_keep[other] = (total_keep + total, count_keep + count)
            nbrs_other = between[other]
            del nbrs_other[gone]
            nbrs_other[keep] = merged
            if merged[0] / merged[1] >= threshold:
                push(heap, entry(keep, other, merged[0] / merged[1]))
    return uf.labels()


def _hdbscan_labels(unit: np.ndarray, min_cluster_size: int) -> np.ndarray:
    """HDBSCAN clusters of unit vectors; each noise point its own cluster."""
    import hdbscan  # with scikit-learn ~10 s to import: only this method pays for it

    labels = hdbscan.HDBSCAN(min_cluster_size=min_cluster_size, metric="euclidean").fit_predict(
        unit.astype(np.float64)
    )
    noise = labels < 0
    labels[noise] = labels.max(initial=-1) + 1 + np.arange(noise.sum())
    return labels


def _index_pairs(
    constraints: Collection[frozenset[str]], position: Mapping[str, int], kind: str
) -> list[tuple[int, int]]:
    pairs = []
    for pair in sorted(constraints, key=sorted):
        names = sorted(pair)
        unknown = [name for name in names if name not in position]
        if len(names) != 2 or unknown:
            raise ValueError(f"{kind} pair {names} must name two distinct known tracks (unknown: {unknown})")
        pairs.append((position[names[0]], position[names[1]]))
    return pairs


def cluster_tracks(
    track_ids: Sequence[str],
    vectors: np.ndarray | None,
    pairs: Pairs | None,
    *,
    method: Method = "threshold",
    threshold: float | None = None,
    cannot_link: Collection[frozenset[str]] = frozenset(),
    must_link: Collection[frozenset[str]] = frozenset(),
    min_cluster_size: int = 2,
) -> dict[str, int]:
    """Map each track id to an individual id (see the module docstring for methods).

    ``vectors`` (tracks, d) are the mean track embeddings in ``track_ids`` order
    (only ``"hdbscan"`` reads them, also to re-split HDBSCAN clusters that break a
    cannot-link); ``pairs`` are ``(i, j, sim)`` arrays indexing ``track_ids``
    (required except for ``"hdbscan"``, which may get None).
    ``threshold`` is required for ``"threshold"`` and ``"average"``;
    ``min_cluster_size`` is HDBSCAN's. Constraints are sets of two track ids.
    """
    names = list(track_ids)
    n = len(names)
    position = {name: k for k, name in enumerate(names)}
    if len(position) != n:
        raise ValueError("track_ids must be distinct")
    if n == 0:
        return {}
    must = _index_pairs(must_link, position, "must_link")
    cannot = _index_pairs(cannot_link, position, "cannot_link")
    i, j, sim = (np.empty(0), np.empty(0), np.empty(0)) if pairs is None else pairs
    i, j, sim = np.asarray(i, dtype=np.int64), np.asarray(j, dtype=np.int64), np.asarray(sim, dtype=np.float64)
    if len(i) and (min(i.min(), j.min()) < 0 or max(i.max(), j.max()) >= n):
        raise ValueError(f"pairs index tracks outside 0..{n - 1}")
    must_i = np.array([a for a, _ in must], dtype=np.int64)
    must_j = np.array([b for _, b in must], dtype=np.int64)

    if method in ("threshold", "average"):
        if threshold is None or pairs is None:
            raise ValueError(f"method {method!r} needs pairs and a threshold")
        strong = sim >= threshold
        groups = components(n, (np.r_[i[strong], must_i], np.r_[j[strong], must_j]))
    elif method == "hdbscan":
        if vectors is None or len(vectors) != n:
            raise ValueError("method 'hdbscan' needs one vector per track")
        vectors = np.asarray(vectors, dtype=np.float64)
        unit = vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
        clusters = _hdbscan_labels(unit, min_cluster_size) if n > 1 else np.zeros(n, dtype=np.int64)
        _, first, inverse = np.unique(clusters, return_index=True, return_inverse=True)
        groups = components(n, (np.r_[np.arange(n), must_i], np.r_[first[inverse], must_j]))
    else:
        raise ValueError(f"unknown clustering method {method!r}")

    # Groups that are not final yet: every multi-track group for average linkage,
    # groups holding a cannot-link pair otherwise.
    if method == "average":
        rework = np.flatnonzero(np.bincount(groups, minlength=n) > 1)
    else:
        cannot_a = np.array([a for a, _ in cannot], dtype=np.int64)
        cannot_b = np.array([b for _, b in cannot], dtype=np.int64)
        rework = np.unique(groups[cannot_a][groups[cannot_a] == groups[cannot_b]])
    members_of = _indices_by_key(groups, rework)
    edges_of = _indices_by_key(np.where(groups[i] == groups[j], groups[i], -1), rework)
    must_of = _pairs_by_group(must, groups)
    cannot_of = _pairs_by_group(cannot, groups)

    labels = groups.astype(np.int64)
    local = np.empty(n, dtype=np.int64)
    for group in rework.tolist():
        members = members_of[group]
        local[members] = np.arange(len(members))
        local_must = [(int(local[a]), int(local[b])) for a, b in must_of.get(group, [])]
        local_cannot = [(int(local[a]), int(local[b])) for a, b in cannot_of.get(group, [])]
        local_names = [names[m] for m in members]
        if method == "hdbscan":
            # HDBSCAN put them together: rebuild from all their similarities.
            li, lj = np.triu_indices(len(members), k=1)
            edges = (li, lj, (unit[members] @ unit[members].T)[li, lj])
        else:
            e = edges_of[group]
            edges = (local[i[e]], local[j[e]], sim[e])
        if method == "average":
            sub = _average_linkage(len(members), edges, local_must, local_cannot, threshold, local_names)
        else:
            if method == "threshold":
                keep = edges[2] >= threshold
                edges = (edges[0][keep], edges[1][keep], edges[2][keep])
            sub = _kruskal(len(members), edges, local_must, local_cannot, local_names)
        labels[members] = n + members[sub]  # fresh labels, distinct from every group id

    return _number_by_smallest_track(names, labels)


def _indices_by_key(keys: np.ndarray, wanted: np.ndarray) -> dict[int, np.ndarray]:
    """Positions of each wanted key in ``keys``, in increasing order."""
    order = np.argsort(keys, kind="stable")
    sorted_keys = keys[order]
    lo = np.searchsorted(sorted_keys, wanted, side="left")
    hi = np.searchsorted(sorted_keys, wanted, side="right")
    return {int(key): order[a:b] for key, a, b in zip(wanted, lo, hi)}


def _pairs_by_group(pairs: Sequence[tuple[int, int]], groups: np.ndarray) -> dict[int, list[tuple[int, int]]]:
    by_group: dict[int, list[tuple[int, int]]] = {}
    for a, b in pairs:
        if groups[a] == groups[b]:
            by_group.setdefault(int(groups[a]), []).append((a, b))
    return by_group


def _number_by_smallest_track(names: Sequence[str], labels: np.ndarray) -> dict[str, int]:
    smallest: dict[int, str] = {}
    for name, label in zip(names, labels.tolist()):
        if label not in smallest or name < smallest[label]:
            smallest[label] = name
    ids = {label: k for k, (_, label) in enumerate(sorted((name, label) for label, name in smallest.items()))}
    return {name: ids[label] for name, label in zip(names, labels.tolist())}
