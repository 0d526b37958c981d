"""Sideways faces re-detected upright: landmarks mapped back through quarter turns."""

from __future__ import annotations

import numpy as np
import pytest

from tiktokfer_assets.vision.upright import unturn_points


@pytest.mark.parametrize("turns", [1, 2, 3])
def test_unturn_points_inverts_np_rot90(turns):
    square = np.zeros((10, 10), dtype=np.uint8)
    square[2, 7] = 1  # pixel (x=7, y=2); its centre (7.5, 2.5) in pixel-edge coordinates
    y, x = np.argwhere(np.rot90(square, turns))[0]
    assert unturn_points(np.array([x + 0.5, y + 0.5]), turns, 10).tolist() == [7.5, 2.5]
