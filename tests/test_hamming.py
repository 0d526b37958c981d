"""Multi-index Hamming search against all pairs, and no worker pool in dedup."""

import multiprocessing
import multiprocessing.pool

import numpy as np
import pytest

from tiktokfer_assets.identity import hamming
from tiktokfer_assets.identity.dedup import find_duplicate_groups


def _families(rng: np.random.Generator, count: int, size: int = 8, flips: int = 6) -> np.ndarray:
    """Random 64-bit centres, each repeated ``size`` times with up to ``flips`` random bits flipped."""
    hashes = np.repeat(rng.integers(0, 2**63, size=count // size, dtype=np.uint64) * np.uint64(2), size)
    for _ in range(flips):
        bit = np.uint64(1) << rng.integers(0, 64, size=len(hashes)).astype(np.uint64)
        hashes ^= np.where(rng.random(len(hashes)) < 0.7, bit, np.uint64(0))
    return hashes


def _pair_set(pairs: tuple[np.ndarray, np.ndarray]) -> set[tuple[int, int]]:
    return {(int(i), int(j)) for i, j in zip(*pairs)}


@pytest.mark.parametrize("max_distance", [0, 3, 10, 12])
def test_near_pairs_equal_all_pairs_on_random_hashes(max_distance):
    """One large group (multi-index hashing) and many small ones (all pairs), random and clustered hashes."""
    rng = np.random.default_rng(max_distance)
    hashes = np.concatenate([_families(rng, 1600), rng.integers(0, 2**63, size=400, dtype=np.uint64)])
    hashes[100:150] = hashes[:50]  # exact copies
    groups = np.where(np.arange(2000) < 1200, 7, rng.integers(0, 40, size=2000))
    assert (groups == 7).sum() > hamming.BRUTE_FORCE_MAX
    expected = _pair_set(hamming.brute_force_pairs(hashes, max_distance, groups))
    assert _pair_set(hamming.near_pairs(hashes, max_distance, groups)) == expected
    assert len(expected) >= 50


def test_near_pairs_rejects_a_negative_distance():
    with pytest.raises(ValueError, match="max_distance must be >= 0"):
        hamming.near_pairs(np.zeros(3, dtype=np.uint64), -1)


def test_dedup_creates_no_worker_pool(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("a worker pool was created")

    monkeypatch.setattr(multiprocessing, "Pool", refuse)
    monkeypatch.setattr(multiprocessing.pool, "Pool", refuse)
    monkeypatch.setattr("imagededup.utils.general_utils.Pool", refuse)
    rng = np.random.default_rng(0)
    base = rng.integers(0, 256, size=(48, 48, 3), dtype=np.uint8)
    images = {"a": base, "b": base.copy(), "c": rng.integers(0, 256, size=(48, 48, 3), dtype=np.uint8)}
    assert find_duplicate_groups(images) == [["a", "b"], ["c"]]
