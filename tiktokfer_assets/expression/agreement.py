"""Label agreement: does the model see the expression the prompt asked for?

Challenge data has a known noise source: performers who do not make the face the
prompt names (they laugh through "anger", miss the cue, or cover their face). Per
exported face, the model's prediction is compared with the prompt's label
(``agrees``, and ``label_probability``: the probability the model gives the label).
Per performer and prompt (video, individual, expression) the share of agreeing faces
is taken; a share below ``threshold`` flags the performer as not having made the
face. Faces of the train split were seen in training, so their agreement is
optimistic: the split is kept on every row for the reader to filter.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import polars as pl

AGREEMENT_THRESHOLD = 0.5

FACE_COLUMNS = ("face_id", "challenge", "video_id", "individual_id", "person_id", "split", "expression")


def face_agreement(manifest: pl.DataFrame, probs: np.ndarray, classes: Sequence[str]) -> pl.DataFrame:
    """One row per manifest face: prediction, its probability, the label's probability, ``agrees``.

    ``label_probability`` and ``agrees`` are null for a label the model has no class for.
    """
    index = {name: i for i, name in enumerate(classes)}
    label_index = [index.get(label) for label in manifest["expression"]]
    predicted = probs.argmax(1)
    return manifest.select(FACE_COLUMNS).with_columns(
        predicted=pl.Series([classes[i] for i in predicted], dtype=pl.String),
        predicted_probability=pl.Series(probs[np.arange(len(probs)), predicted], dtype=pl.Float64),
        label_probability=pl.Series(
            [None if i is None else float(p[i]) for p, i in zip(probs, label_index)], dtype=pl.Float64
        ),
        agrees=pl.Series([None if i is None else bool(i == j) for i, j in zip(label_index, predicted)]),
    )


def performer_agreement(faces: pl.DataFrame, threshold: float = AGREEMENT_THRESHOLD) -> pl.DataFrame:
    """Per (video, individual, expression): faces, agreeing share, mean label probability, ``flagged``."""
    return (
        faces.filter(pl.col("agrees").is_not_null())
        .group_by("challenge", "video_id", "individual_id", "expression", maintain_order=True)
        .agg(
            faces=pl.len(),
            share=pl.col("agrees").mean(),
            label_probability=pl.col("label_probability").mean(),
            splits=pl.col("split").unique().sort().str.join(","),
        )
        .with_columns(flagged=pl.col("share") < threshold)
        .sort("challenge", "video_id", "individual_id", "expression")
    )
