"""Content collections in the challenge assets: which assets skip them, and how a skip is recorded.

A content collection (a definition without baseline and prompts) runs ``videos``,
``frames``, ``contents`` and, when the ``faces`` asset's config sets
``content_collections``, ``faces``. The audio and identity assets (``subvideos``,
``faces``/``nofaces`` unless asked, ``face_embeddings``, ``individuals`` and its other
outputs, ``unique_faces``) skip it: each materialises an **empty table** whose
materialisation carries the metadata entry ``skipped`` with the reason, and logs one line.

Why empty tables rather than optional outputs (``Output`` not yielded, ``is_required=False``):
Dagster skips every step downstream of an output that is not yielded, and ``frames`` reads
``subvideos`` (its labels), so a collection's frames would be skipped too. An empty table
keeps the run whole: ``frames`` labels nothing, the table checks pass on no rows, the
dataset export finds the partition present with no faces, and a challenge and a
collection have the same tables.
"""

from collections.abc import Iterator, Mapping

import polars as pl
from dagster import AssetExecutionContext, MetadataValue, Output

from tiktokfer_assets.tables import empty

SKIPPED = "skipped"
"""Metadata key of a skipped materialisation; its value is the reason."""
NO_PROMPTS = "content collection (no prompts)"
FACES_NOT_ASKED = "content collection (faces not asked: set the faces config's content_collections)"


def skipped_outputs(
    context: AssetExecutionContext, tables: Mapping[str, str | pl.DataFrame], reason: str = NO_PROMPTS
) -> Iterator[Output]:
    """One empty output per ``output name -> table name`` (or the empty frame itself), each saying ``reason``
    (an ``@asset``'s one output is named ``result``)."""
    skipped = ", ".join(sorted(key.to_user_string() for key in context.selected_asset_keys))
    context.log.info(f"{context.partition_key}: {skipped} skipped: {reason}")
    for output, table in tables.items():
        frame = empty(table) if isinstance(table, str) else table
        yield Output(frame, output, metadata={SKIPPED: MetadataValue.text(reason), "dagster/row_count": 0})
