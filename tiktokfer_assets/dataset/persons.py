"""Persons: the individuals of several challenges linked by their mean embeddings.

Individuals are per challenge (``individual_id`` is unique within its challenge only).
A person is a group of individuals whose mean embeddings pass the embedder's identity
threshold, joined by average linkage on the sparse top-k graph
(:func:`~tiktokfer_assets.identity.clustering.cluster_tracks`). Two individuals of one
challenge are never joined (the challenge's own clustering kept them apart), unless an
earlier release already made them one person.

Earlier releases bind: every individual whose faces an earlier release assigned keeps
that release's person (its faces' majority), individuals of one earlier person stay
together and individuals of two earlier persons stay apart, so adding a challenge can
only attach new individuals to existing persons or create new persons.
"""

from __future__ import annotations

import hashlib
from itertools import combinations

import numpy as np
import polars as pl

from tiktokfer_assets.identity.clustering import cluster_tracks
from tiktokfer_assets.identity.hamming import components

NEIGHBOURS = 20
"""Most similar individuals kept per individual when linking (the top-k graph)."""


def unit_key(challenge: str, individual_id: str) -> str:
    """One individual's key across challenges (challenge names never contain '/')."""
    return f"{challenge}/{individual_id}"


def individual_means(faces: pl.DataFrame, embeddings: pl.DataFrame) -> tuple[list[str], np.ndarray]:
    """Unit keys and the L2-normalised mean embedding of each individual's ``faces``.

    ``faces`` has ``challenge``, ``face_id``, ``individual_id``; ``embeddings`` has
    ``challenge``, ``face_id``, ``embedding`` for every one of them.
    """
    joined = faces.select("challenge", "face_id", "individual_id").join(
        embeddings.select("challenge", "face_id", "embedding"), on=["challenge", "face_id"], how="inner"
    )
    joined = joined.with_columns(unit=pl.concat_str("challenge", pl.lit("/"), "individual_id")).sort("unit", "face_id")
    keys = joined["unit"].unique(maintain_order=True).to_list()
    matrix = np.asarray(joined["embedding"].to_list(), dtype=np.float64)
    index = joined["unit"].cast(pl.Enum(keys)).to_physical().to_numpy()
    sums = np.zeros((len(keys), matrix.shape[1] if matrix.size else 0))
    np.add.at(sums, index, matrix)
    means = sums / np.maximum(np.linalg.norm(sums, axis=1, keepdims=True), 1e-12)
    return keys, means.astype(np.float32)


def majority_person(faces: pl.DataFrame, previous: pl.DataFrame) -> dict[str, str]:
    """Unit key -> the person an earlier release gave most of its faces (ties: the smallest id).

    ``previous`` is the persisted assignment (``challenge``, ``face_id``, ``person_id``).
    """
    joined = faces.select("challenge", "face_id", "individual_id").join(
        previous.select("challenge", "face_id", "person_id"), on=["challenge", "face_id"], how="inner"
    )
    counts = (
        joined.with_columns(unit=pl.concat_str("challenge", pl.lit("/"), "individual_id"))
        .group_by("unit", "person_id").len()
        .sort(["unit", "len", "person_id"], descending=[False, True, False])
        .unique("unit", keep="first", maintain_order=True)
    )
    return dict(counts.select("unit", "person_id").iter_rows())


def _challenge(key: str) -> str:
    return key.split("/", 1)[0]


def new_person_id(members: list[str], taken: set[str]) -> str:
    """A deterministic id for a new person: a hash of its smallest member, unused so far."""
    seed, attempt = min(members), 0
    while True:
        candidate = "p" + hashlib.sha1(f"{seed}#{attempt}".encode()).hexdigest()[:10]
        if candidate not in taken:
            return candidate
        attempt += 1


def link_persons(keys: list[str], means: np.ndarray, threshold: float, earlier: dict[str, str]) -> dict[str, str]:
    """Unit key -> person id. ``earlier``: unit key -> person id of an earlier release (binding)."""
    from tiktokfer_assets.identity.similarity import top_k_similarities  # torch: only the export step loads it

    n = len(keys)
    if n == 0:
        return {}
    if n > 1:
        i, j, sim = top_k_similarities(means, k=NEIGHBOURS, floor=threshold)
    else:
        i = j = np.empty(0, np.int64)
        sim = np.empty(0, np.float32)
    position = {key: k for k, key in enumerate(keys)}
    by_person: dict[str, list[str]] = {}
    for key in keys:
        if key in earlier:
            by_person.setdefault(earlier[key], []).append(key)
    must_pairs = [(a, b) for members in by_person.values() for a, b in zip(members, members[1:])]

    def joinable(a: str, b: str) -> bool:
        pa, pb = earlier.get(a), earlier.get(b)
        if pa is not None and pb is not None:
            return pa == pb
        return _challenge(a) != _challenge(b)

    keep = np.array([joinable(keys[a], keys[b]) for a, b in zip(i, j)], dtype=bool)
    i, j, sim = i[keep], j[keep], sim[keep]
    # cannot-links only matter inside a component of the candidate graph: list them there, not over all pairs
    rows = np.r_[i, [position[a] for a, _ in must_pairs]].astype(np.int64)
    cols = np.r_[j, [position[b] for _, b in must_pairs]].astype(np.int64)
    component = components(n, (rows, cols))
    cannot = set()
    for label in np.unique(component):
        members = [keys[k] for k in np.flatnonzero(component == label)]
        cannot |= {frozenset((a, b)) for a, b in combinations(members, 2) if not joinable(a, b)}
    clusters = cluster_tracks(keys, means, (i, j, sim), method="average", threshold=threshold,
                              cannot_link=cannot, must_link={frozenset(pair) for pair in must_pairs})
    groups: dict[int, list[str]] = {}
    for key in keys:
        groups.setdefault(clusters[key], []).append(key)
    persons, taken = {}, set(earlier.values())
    for members in sorted(groups.values(), key=min):
        known = {earlier[key] for key in members if key in earlier}
        person = known.pop() if known else new_person_id(members, taken)
        taken.add(person)
        persons.update(dict.fromkeys(members, person))
    return persons
