"""Track similarity graph and track clustering on vectors with planted identities."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from tiktokfer_assets.identity.clustering import (
    ConstraintConflict,
    cannot_link_from_frames,
    cluster_tracks,
    pairwise_f1,
)
from tiktokfer_assets.identity.similarity import top_k_similarities, track_means


def planted(
    n_identities: int, per_identity: int, n_background: int, dim: int, noise: float, seed: int
) -> tuple[list[str], np.ndarray, dict[str, str]]:
    """Unit vectors around random identity centres plus random background vectors.

    Returns track names (shuffled order), vectors and the true identity of each track.
    """
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(n_identities, dim))
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    vectors = [c + noise * rng.normal(size=(per_identity, dim)) / np.sqrt(dim) for c in centres]
    vectors.append(rng.normal(size=(n_background, dim)))
    truth = [f"id{c}" for c in range(n_identities) for _ in range(per_identity)]
    truth += [f"bg{b}" for b in range(n_background)]
    x = np.vstack(vectors)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    perm = rng.permutation(len(x))
    names = [f"v{p:04d}/t0" for p in range(len(x))]
    return names, x[perm].astype(np.float32), {names[k]: truth[p] for k, p in enumerate(perm)}


def brute_force_pairs(x: np.ndarray, k: int, floor: float) -> dict[tuple[int, int], float]:
    sims = x.astype(np.float64) @ x.T.astype(np.float64)
    np.fill_diagonal(sims, -np.inf)
    expected = {}
    for a in range(len(x)):
        for b in np.argsort(-sims[a])[:k]:
            if sims[a, b] >= floor:
                expected[(min(a, b), max(a, b))] = sims[a, b]
    return expected


def as_dict(pairs: tuple[np.ndarray, np.ndarray, np.ndarray]) -> dict[tuple[int, int], float]:
    i, j, sim = pairs
    assert np.all(i < j)
    assert len(set(zip(i.tolist(), j.tolist()))) == len(i)
    return {(a, b): s for a, b, s in zip(i.tolist(), j.tolist(), sim.tolist())}


def assert_same_pairs(got: dict, expected: dict) -> None:
    assert got.keys() == expected.keys()
    np.testing.assert_allclose([got[p] for p in expected], list(expected.values()), atol=1e-5)


# --- track_means -------------------------------------------------------------------


def test_track_means_average_and_renormalise_per_track():
    emb = np.array([[1, 0, 0], [0, 1, 0], [0, 0, 1], [1, 0, 0], [-1, 0, 0]], dtype=np.float32)
    ids, means = track_means(emb, ["b", "b", "a", "c", "c"])
    assert ids == ["a", "b", "c"]
    np.testing.assert_allclose(means, [[0, 0, 1], [2**-0.5, 2**-0.5, 0], [0, 0, 0]], atol=1e-6)
    with pytest.raises(ValueError, match="one row per track id"):
        track_means(emb, ["a"])


# --- top_k_similarities ------------------------------------------------------------


def test_top_k_matches_brute_force_across_tile_boundaries():
    _, x, _ = planted(20, 8, 140, dim=24, noise=0.9, seed=1)  # 300 vectors
    expected = brute_force_pairs(x, k=5, floor=0.2)
    assert len(expected) > 300  # the planted groups give plenty of pairs above the floor
    for block_size in (64, 100, 1000):  # ragged tiles, and one tile for everything
        assert_same_pairs(as_dict(top_k_similarities(x, k=5, floor=0.2, block_size=block_size)), expected)


def test_top_k_when_most_pairs_pass_the_floor():
    # Every vector close to one direction: tiles take the dense (top-k per tile) path.
    rng = np.random.default_rng(2)
    x = (np.ones(16) + 0.5 * rng.normal(size=(250, 16))).astype(np.float32)
    xn = x / np.linalg.norm(x, axis=1, keepdims=True)
    expected = brute_force_pairs(xn, k=4, floor=0.1)
    assert_same_pairs(as_dict(top_k_similarities(x, k=4, floor=0.1, block_size=64)), expected)


def test_top_k_edge_cases():
    x = np.eye(3, dtype=np.float32)
    assert all(len(a) == 0 for a in top_k_similarities(x, k=2, floor=0.1))
    assert all(len(a) == 0 for a in top_k_similarities(x[:1], k=2))
    i, j, sim = top_k_similarities(np.array([[1, 0], [1, 1], [0, 1]], dtype=np.float32), k=1, floor=0.5)
    assert list(zip(i, j)) == [(0, 1), (1, 2)]
    np.testing.assert_allclose(sim, [2**-0.5, 2**-0.5], atol=1e-6)
    with pytest.raises(ValueError, match="floor"):
        top_k_similarities(x, floor=1.5)


@pytest.mark.gpu
def test_top_k_on_cuda_matches_cpu():
    _, x, _ = planted(20, 8, 140, dim=24, noise=0.9, seed=1)
    cpu = as_dict(top_k_similarities(x, k=5, floor=0.2, block_size=64))
    assert_same_pairs(as_dict(top_k_similarities(x, k=5, floor=0.2, block_size=64, device="cuda")), cpu)


# --- cluster_tracks ----------------------------------------------------------------


def graph(names: list[str], edges: dict[tuple[str, str], float]):
    pos = {n: k for k, n in enumerate(names)}
    i = np.array([pos[a] for a, _ in edges])
    j = np.array([pos[b] for _, b in edges])
    return i, j, np.array(list(edges.values()))


NAMES = ["a", "b", "c", "d", "e"]


def test_threshold_is_connected_components_numbered_by_smallest_track():
    pairs = graph(NAMES, {("a", "b"): 0.9, ("b", "c"): 0.8, ("e", "d"): 0.7, ("c", "d"): 0.4})
    assert cluster_tracks(NAMES, None, pairs, threshold=0.5) == {"a": 0, "b": 0, "c": 0, "d": 1, "e": 1}
    assert set(cluster_tracks(NAMES, None, pairs, threshold=0.3).values()) == {0}
    # Same answer whatever the order of the tracks.
    shuffled = ["e", "c", "a", "d", "b"]
    pairs2 = graph(shuffled, {("a", "b"): 0.9, ("b", "c"): 0.8, ("e", "d"): 0.7, ("c", "d"): 0.4})
    assert cluster_tracks(shuffled, None, pairs2, threshold=0.5) == {"a": 0, "b": 0, "c": 0, "d": 1, "e": 1}


@pytest.mark.parametrize("method", ["threshold", "average"])
def test_cannot_link_refuses_the_weaker_union(method):
    apart = {frozenset({"a", "c"})}
    pairs = graph(NAMES, {("a", "b"): 0.9, ("b", "c"): 0.8, ("d", "e"): 0.7})
    assert cluster_tracks(NAMES, None, pairs, method=method, threshold=0.5, cannot_link=apart) == {
        "a": 0, "b": 0, "c": 1, "d": 2, "e": 2,
    }
    pairs = graph(NAMES, {("a", "b"): 0.8, ("b", "c"): 0.9, ("d", "e"): 0.7})
    assert cluster_tracks(NAMES, None, pairs, method=method, threshold=0.5, cannot_link=apart) == {
        "a": 0, "b": 1, "c": 1, "d": 2, "e": 2,
    }


@pytest.mark.parametrize("method", ["threshold", "average"])
def test_must_link_joins_and_conflicts_are_errors(method):
    pairs = graph(NAMES, {("a", "b"): 0.9})
    result = cluster_tracks(NAMES, None, pairs, method=method, threshold=0.5, must_link={frozenset({"a", "e"})})
    assert result == {"a": 0, "b": 0, "c": 1, "d": 2, "e": 0}
    with pytest.raises(ConstraintConflict, match="'b'.*'e'|'e'.*'b'"):
        cluster_tracks(
            NAMES, None, pairs, method=method, threshold=0.5,
            must_link={frozenset({"a", "e"}), frozenset({"b", "e"})},
            cannot_link={frozenset({"b", "a"})},
        )


def test_average_linkage_resists_a_single_bridging_pair():
    left, right = ["l0", "l1", "l2", "l3"], ["r0", "r1", "r2", "r3"]
    names = left + right
    edges = {(a, b): 0.8 for side in (left, right) for x, a in enumerate(side) for b in side[x + 1 :]}
    edges[("l3", "r0")] = 0.6  # one look-alike pair
    edges.update({(a, b): 0.31 for a in left for b in right if (a, b) != ("l3", "r0")})
    pairs = graph(names, edges)
    assert len(set(cluster_tracks(names, None, pairs, method="threshold", threshold=0.5).values())) == 1
    average = cluster_tracks(names, None, pairs, method="average", threshold=0.5)
    assert average == {**{n: 0 for n in left}, **{n: 1 for n in right}}


@pytest.mark.parametrize(
    "method, min_f1",
    # HDBSCAN pulls a few background tracks into nearby identities (measured 0.94).
    [("threshold", 0.99), ("average", 0.99), ("hdbscan", 0.93)],
)
def test_planted_identities_are_recovered(method, min_f1):
    names, x, truth = planted(30, 6, 100, dim=64, noise=0.8, seed=3)
    pairs = top_k_similarities(x, k=10, floor=0.3)
    result = cluster_tracks(names, x, pairs, method=method, threshold=0.5)
    assert pairwise_f1(result, truth) >= min_f1
    # No identity is split, and ids are 0..m-1.
    for identity in {t for t in truth.values() if t.startswith("id")}:
        assert len({result[n] for n in names if truth[n] == identity}) == 1
    assert sorted(set(result.values())) == list(range(len(set(result.values()))))


def test_hdbscan_clusters_are_split_on_cannot_link():
    names, x, truth = planted(8, 6, 0, dim=32, noise=0.5, seed=4)
    members = sorted(n for n in names if truth[n] == "id0")
    apart = {frozenset({members[0], members[1]})}
    free = cluster_tracks(names, x, None, method="hdbscan")
    assert len({free[n] for n in members}) == 1
    constrained = cluster_tracks(names, x, None, method="hdbscan", cannot_link=apart)
    assert constrained[members[0]] != constrained[members[1]]
    assert len({constrained[n] for n in members}) == 2  # the rest joins one of the two
    others = [n for n in names if truth[n] != "id0"]
    assert pairwise_f1({n: constrained[n] for n in others}, {n: truth[n] for n in others}) == 1.0


def test_bad_arguments_are_named():
    pairs = graph(NAMES, {("a", "b"): 0.9})
    with pytest.raises(ValueError, match="unknown: \\['z'\\]"):
        cluster_tracks(NAMES, None, pairs, threshold=0.5, cannot_link={frozenset({"a", "z"})})
    with pytest.raises(ValueError, match="needs pairs and a threshold"):
        cluster_tracks(NAMES, None, pairs)
    with pytest.raises(ValueError, match="unknown clustering method"):
        cluster_tracks(NAMES, None, pairs, method="kmeans", threshold=0.5)
    with pytest.raises(ValueError, match="distinct"):
        cluster_tracks(["a", "a"], None, pairs, threshold=0.5)
    assert cluster_tracks([], None, graph([], {}), threshold=0.5) == {}


def test_cannot_link_from_frames():
    faces = pl.DataFrame(
        {
            "frame_id": ["f1", "f1", "f1", "f2", "f2", "f3"],
            "track_id": ["v/t0", "v/t1", "v/t2", "v/t0", "v/t1", "w/t0"],
        }
    )
    assert cannot_link_from_frames(faces) == {
        frozenset({"v/t0", "v/t1"}),
        frozenset({"v/t0", "v/t2"}),
        frozenset({"v/t1", "v/t2"}),
    }


def test_pairwise_f1_known_values():
    assert pairwise_f1({"a": 0, "b": 0, "c": 1}, {"a": "x", "b": "y", "c": "y"}) == 0.0
    assert pairwise_f1({"a": 0, "b": 0, "c": 0}, {"a": "x", "b": "x", "c": "y"}) == pytest.approx(0.5)
    assert pairwise_f1({"a": 5, "b": 5, "c": 1}, {"a": "x", "b": "x", "c": "y"}) == 1.0
    assert pairwise_f1({"a": 0, "b": 1}, {"a": "x", "b": "y"}) == 1.0
    with pytest.raises(ValueError, match="different items"):
        pairwise_f1({"a": 0}, {"b": 0})
