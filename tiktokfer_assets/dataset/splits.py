"""Splits by person: every person in exactly one of train/val/test, stratified by expression.

Persons an earlier release assigned keep their split. The others are assigned one at a
time, most faces first (ties by person id, so the order is deterministic), each to the
split that most needs its faces: the split maximising
``sum_e c_e * (ratio_s * total_e - current_se) / total_e`` over the person's expression
counts ``c_e``, where ``total_e`` counts every face of expression ``e`` (earlier persons
included) and ``current_se`` what split ``s`` holds so far. Rare expressions weigh more,
so each expression's faces spread over the splits in the ratios as far as whole persons
allow; ties go to the split named first. A split with a positive ratio is never left
without a person while persons remain to fill it: when no more new persons are left than
such empty splits, the next goes to the empty split that needs it most (the demo's four
performers give train 2 / val 1 / test 1 instead of 3 / 1 / 0, so the model has a test set).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping

import polars as pl

SPLITS = ("train", "val", "test")
DEFAULT_RATIOS = (0.7, 0.15, 0.15)


def check_ratios(ratios: tuple[float, ...]) -> tuple[float, float, float]:
    if len(ratios) != len(SPLITS) or any(r < 0 for r in ratios) or abs(sum(ratios) - 1) > 1e-6:
        raise ValueError(f"split ratios must be {len(SPLITS)} non-negative numbers summing to 1 ({'/'.join(SPLITS)}), "
                         f"got {list(ratios)}")
    return tuple(float(r) for r in ratios)


def assign_splits(
    counts: pl.DataFrame,
    earlier: Mapping[str, str],
    ratios: tuple[float, ...] = DEFAULT_RATIOS,
) -> dict[str, str]:
    """Person id -> split. ``counts``: one row per (``person_id``, ``expression``) with ``faces``.

    ``earlier``: person id -> split of an earlier release; those persons keep it.
    """
    ratios = check_ratios(ratios)
    unknown = set(earlier.values()) - set(SPLITS)
    if unknown:
        raise ValueError(f"earlier splits {sorted(unknown)} are not among {SPLITS}")
    totals = dict(counts.group_by("expression").agg(pl.col("faces").sum()).iter_rows())
    current = {(split, expression): 0 for split in SPLITS for expression in totals}
    per_person: dict[str, dict[str, int]] = {}
    for person, expression, faces in counts.select("person_id", "expression", "faces").iter_rows():
        bucket = per_person.setdefault(person, {})
        bucket[expression] = bucket.get(expression, 0) + faces
    assigned = {person: earlier[person] for person in per_person if person in earlier}
    for person, split in assigned.items():
        for expression, faces in per_person[person].items():
            current[split, expression] += faces
    new = sorted((p for p in per_person if p not in assigned), key=lambda p: (-sum(per_person[p].values()), p))
    members = Counter(assigned.values())
    for index, person in enumerate(new):
        def need(split_ratio: tuple[str, float]) -> float:
            split, ratio = split_ratio
            return sum(faces * (ratio * totals[e] - current[split, e]) / totals[e]
                       for e, faces in per_person[person].items())

        candidates = list(zip(SPLITS, ratios))
        empty = [(split, ratio) for split, ratio in candidates if ratio > 0 and members[split] == 0]
        if empty and len(new) - index <= len(empty):
            candidates = empty
        split = max(candidates, key=need)[0]  # max keeps the first of equal needs
        assigned[person] = split
        members[split] += 1
        for expression, faces in per_person[person].items():
            current[split, expression] += faces
    return assigned
