"""Identity thresholds per embedding backend: measured numbers, one home (no torch, so Dagster configs read them)."""

SAME_PERSON_SIMILARITY = {"mobilefacenet": 0.45, "open_clip": 0.85}
"""Cosine similarity from which two faces (or two tracks' mean embeddings) are taken for one person, per backend.

mobilefacenet: measured by bench/bench_identity.py on 52 labelled people (132 photos of
faces/ and expressions/, faces of 80 px or more, each with one generated variation):
same person, other photo: median 0.51, 5th percentile 0.22; different people: median
0.03, 99th percentile 0.34, 99.9th 0.46, at most 0.72 (look-alikes: single photos of
different people overlap the same-person range). Average-linkage clustering there:
pairwise F1 0.831 at its best (0.42, precision 0.93), 0.814 at 0.45 with precision 0.991
(recall 0.69), 0.824 at the former 0.4 (precision 0.93). 0.45 keeps wrong merges rare, the
costlier error for a dataset, and lies 0.01 under the different-person 99.9th percentile;
track means (several frames) are steadier than these single photos.
open_clip: not measured here (no open_clip weights in the data folder); a generic image
model puts any two faces close, so its threshold sits high."""
