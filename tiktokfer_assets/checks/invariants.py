"""Row-level invariants of tiktokfer's tables, as pure functions on polars frames.

Each function returns the **offending rows** (an empty frame when the invariant
holds), so a failed asset check can show exactly which rows are wrong and a test can
assert on them. They know nothing of Dagster; :mod:`tiktokfer_assets.checks.factory`
turns one into an asset check.
"""

from __future__ import annotations

from collections.abc import Sequence

import polars as pl


def _columns(columns: str | Sequence[str]) -> list[str]:
    return [columns] if isinstance(columns, str) else list(columns)


def duplicate_keys(rows: pl.DataFrame, keys: str | Sequence[str]) -> pl.DataFrame:
    """Rows whose ``keys`` value occurs more than once (every copy is returned)."""
    keys = _columns(keys)
    return rows.filter(pl.len().over(keys) > 1).sort(keys)


def missing_values(rows: pl.DataFrame, columns: str | Sequence[str]) -> pl.DataFrame:
    """Rows with a null (or NaN, for floats) in any of ``columns``."""
    columns = _columns(columns)
    missing = [
        pl.col(c).is_null() | (pl.col(c).is_nan() if rows.schema[c].is_float() else pl.lit(False))
        for c in columns
    ]
    return rows.filter(pl.any_horizontal(missing))


def unresolved_references(
    rows: pl.DataFrame,
    parent: pl.DataFrame,
    on: str | Sequence[str],
    parent_on: str | Sequence[str] | None = None,
) -> pl.DataFrame:
    """Rows whose foreign key ``on`` matches no row of ``parent`` (``parent_on``, default the same names).

    Rows with a null in the key are not references (SQL semantics); require the
    column with :func:`missing_values` when it must be set.
    """
    on = _columns(on)
    parent_on = on if parent_on is None else _columns(parent_on)
    keys = parent.select([pl.col(p).alias(c) for c, p in zip(on, parent_on, strict=True)]).unique()
    present = rows.drop_nulls(on)
    return present.join(keys, on=on, how="anti")


def lost_groups(before: pl.DataFrame, after: pl.DataFrame, keys: str | Sequence[str]) -> pl.DataFrame:
    """The distinct ``keys`` of ``before`` that no row of ``after`` has (nulls match nulls: a null is a value here)."""
    keys = _columns(keys)
    return before.select(keys).unique().join(after.select(keys).unique(), on=keys, how="anti", nulls_equal=True).sort(
        keys, nulls_last=True
    )


def shared_keys(rows: pl.DataFrame, other: pl.DataFrame, on: str | Sequence[str]) -> pl.DataFrame:
    """Rows of ``rows`` whose key ``on`` also occurs in ``other`` (for tables that must be disjoint)."""
    on = _columns(on)
    return rows.join(other.select(on).unique(), on=on, how="semi")


def attach(
    rows: pl.DataFrame, parent: pl.DataFrame, on: str | Sequence[str], columns: str | Sequence[str]
) -> pl.DataFrame:
    """``rows`` with ``columns`` of their ``parent`` row (a left join; rows without a parent get nulls).

    Used to check a row against its parent, e.g. a frame's timestamp against its
    video's duration: ``spans_outside(attach(frames, videos, "video_id", "duration_s"), ...)``.
    """
    on, columns = _columns(on), _columns(columns)
    clash = [c for c in columns if c in rows.columns]
    picked = parent.select(*on, *columns).unique(on, keep="first")
    if clash:
        picked = picked.rename({c: f"{c}_parent" for c in clash})
    return rows.join(picked, on=on, how="left")


def spans_outside(
    rows: pl.DataFrame,
    start: str | float,
    end: str,
    limit: str | float,
    *,
    tolerance: float = 1e-3,
) -> pl.DataFrame:
    """Rows whose span ``[start, end]`` is not inside ``[0, limit]`` or runs backwards.

    ``start`` and ``limit`` are column names or constants (e.g. a video's stored
    duration from 0 to ``max_video_seconds``); ``end`` is a column. A row whose
    limit is null (no parent row) is outside: check the reference itself with
    :func:`unresolved_references`. ``tolerance`` absorbs rounding of times that
    come from containers and decoders.
    """
    lo = pl.col(start) if isinstance(start, str) else pl.lit(float(start))
    hi = pl.col(end)
    cap = pl.col(limit) if isinstance(limit, str) else pl.lit(float(limit))
    inside = (lo >= -tolerance) & (hi >= lo) & (hi <= cap + tolerance)
    return rows.filter(~inside.fill_null(False))


def boxes_outside(
    rows: pl.DataFrame,
    box: str | Sequence[str],
    width: str | int,
    height: str | int,
    *,
    tolerance: float = 1.0,
) -> pl.DataFrame:
    """Rows whose box is empty or not inside the ``width`` x ``height`` frame.

    ``box`` is either one list column ``[x1, y1, x2, y2]`` or the four column names,
    in pixels of the frame; ``width``/``height`` are column names or constants.
    ``tolerance`` (pixels) allows the sub-pixel overshoot of regressed boxes.
    """
    if isinstance(box, str):
        x1, y1, x2, y2 = (pl.col(box).list.get(i, null_on_oob=True) for i in range(4))
    else:
        x1, y1, x2, y2 = (pl.col(c) for c in box)
    w = pl.col(width) if isinstance(width, str) else pl.lit(width)
    h = pl.col(height) if isinstance(height, str) else pl.lit(height)
    inside = (
        (x1 >= -tolerance) & (y1 >= -tolerance) & (x2 <= w + tolerance) & (y2 <= h + tolerance)
        & (x2 > x1) & (y2 > y1)
    )
    return rows.filter(~inside.fill_null(False))


def not_positive(rows: pl.DataFrame, columns: str | Sequence[str]) -> pl.DataFrame:
    """Rows where any of ``columns`` is null, zero or negative (sizes, rates, durations)."""
    return rows.filter(~pl.all_horizontal([(pl.col(c) > 0).fill_null(False) for c in _columns(columns)]))
