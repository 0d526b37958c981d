"""Vectorised embedding columns equal the former Python-list conversion."""

import numpy as np
import polars as pl
import pytest

from tiktokfer_assets.identity.embedding_io import embedding_matrix, embedding_series


def test_round_trip_equals_the_list_conversion():
    matrix = np.random.default_rng(0).standard_normal((300, 512)).astype(np.float32)
    series = embedding_series(matrix)
    assert series.equals(pl.Series("embedding", matrix.tolist(), dtype=pl.List(pl.Float32)))
    back = embedding_matrix(series)
    assert back.dtype == np.float32 and back.shape == (300, 512)
    np.testing.assert_array_equal(back, np.asarray(series.to_list(), dtype=np.float32))
    # a column that went through a join (not contiguous from offset 0) converts too
    sliced = pl.DataFrame({"embedding": series}).slice(7, 50)["embedding"]
    np.testing.assert_array_equal(embedding_matrix(sliced), matrix[7:57])


def test_empty_and_bad_columns():
    assert embedding_matrix(embedding_series(np.empty((0, 8)))).shape == (0, 0)
    with pytest.raises(ValueError, match="1 null embedding"):
        embedding_matrix(pl.Series("embedding", [[1.0, 2.0], None], dtype=pl.List(pl.Float32)))
    with pytest.raises(ValueError, match="different lengths \\[1, 2\\]"):
        embedding_matrix(pl.Series("embedding", [[1.0, 2.0], [3.0]], dtype=pl.List(pl.Float32)))
    with pytest.raises(ValueError, match="expected an \\(n, d\\) matrix"):
        embedding_series(np.zeros(3))
