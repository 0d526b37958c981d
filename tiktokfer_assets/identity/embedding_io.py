"""Embedding matrices to and from polars ``List(Float32)`` columns through Arrow buffers, never Python lists.

The former ``matrix.tolist()`` / ``np.asarray(series.to_list())`` built one Python float
per element (+3.4 GB and ~10 s at 300k faces x 512 dimensions, issue 17); these go
through polars' fixed-size ``Array`` type, whose values are one contiguous buffer.
"""

from __future__ import annotations

import numpy as np
import polars as pl


def embedding_series(matrix: np.ndarray, name: str = "embedding") -> pl.Series:
    """``(n, d)`` matrix as a ``List(Float32)`` series of ``n`` rows (``float32``)."""
    matrix = np.ascontiguousarray(matrix, dtype=np.float32)
    if matrix.ndim != 2:
        raise ValueError(f"expected an (n, d) matrix, got shape {matrix.shape}")
    return pl.Series(name, matrix, dtype=pl.Array(pl.Float32, matrix.shape[1])).cast(pl.List(pl.Float32))


def embedding_matrix(series: pl.Series) -> np.ndarray:
    """``(n, d)`` ``float32`` matrix of a list column whose rows all have ``d`` values (no nulls)."""
    if series.null_count():
        raise ValueError(f"{series.name}: {series.null_count()} null embedding(s)")
    lengths = series.list.len().unique()
    if len(lengths) > 1:
        raise ValueError(f"{series.name}: embeddings of different lengths {sorted(lengths.to_list())}")
    width = int(lengths[0]) if len(lengths) else 0
    return series.cast(pl.Array(pl.Float32, width)).to_numpy().reshape(len(series), width)
