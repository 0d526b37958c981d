"""Asset 6, ``unique_faces``: each individual's face crops per expression without perceptual duplicates (PHash)."""

import json
from collections.abc import Iterator, Mapping

import numpy as np
import polars as pl
from dagster import AssetExecutionContext, Config, MetadataValue, Output, asset

from tiktokfer_assets.assets.collection import skipped_outputs
from tiktokfer_assets.identity.dedup import select_unique
from tiktokfer_assets.partitions import challenge_partitions
from tiktokfer_assets.resources.io_managers import markdown_preview
from tiktokfer_assets.resources.object_store import ObjectStore
from tiktokfer_assets.resources.table_store import TableStore
from tiktokfer_assets.scope import challenge_scope
from tiktokfer_assets.tables import LANDMARK_COLUMNS, conform
from tiktokfer_assets.vision.align import frontality

KEPT_COLUMNS = [
    "face_id", "individual_id", "video_id", "track_id", "timestamp_s", "prompt_label", "expression", "score",
    "object_key", "aligned_key", "is_baseline_creator",
]


class StoredCrops(Mapping[str, bytes]):
    """Face id -> the crop's encoded bytes, read from the object store on each look-up (never all at once)."""

    def __init__(self, object_store: ObjectStore, keys: dict[str, str]):
        self._store, self._keys = object_store, keys

    def __getitem__(self, face_id: str) -> bytes:
        return self._store.get_bytes(self._keys[face_id])

    def __contains__(self, face_id: object) -> bool:
        return face_id in self._keys

    def __iter__(self) -> Iterator[str]:
        return iter(self._keys)

    def __len__(self) -> int:
        return len(self._keys)


class UniqueFacesConfig(Config):
    max_distance_threshold: int = 10
    """PHash Hamming distance (0-64) up to which two crops of one individual are duplicates."""


@asset(
    partitions_def=challenge_partitions,
    io_manager_key="table_io_manager",
    kinds={"polars"},
    group_name="individuals",
    description="Best face of each group of near-duplicate crops per individual and expression, with the removed "
                "duplicates.",
)
def unique_faces(
    context: AssetExecutionContext,
    config: UniqueFacesConfig,
    individuals: pl.DataFrame,
    object_store: ObjectStore,
    table_store: TableStore,
):
    scope = challenge_scope(context, table_store)
    if scope.definition.is_collection:
        yield from skipped_outputs(context, {"result": "unique_faces"})
        return
    crops = StoredCrops(object_store, dict(individuals.select("face_id", "object_key").iter_rows()))
    pose = pl.Series("frontality", [frontality(np.reshape(row, (5, 2)))
                                    for row in individuals.select(LANDMARK_COLUMNS).iter_rows()], dtype=pl.Float64)
    kept = select_unique(
        individuals.select(KEPT_COLUMNS).with_columns(pose),
        crops,
        max_distance_threshold=config.max_distance_threshold,
        group_by=("individual_id", "expression"),
    )
    duplicates = pl.Series("duplicates", [json.dumps(ids) for ids in kept["duplicates"].to_list()], dtype=pl.String)
    table = conform("unique_faces", kept.with_columns(duplicates)).sort("face_id")
    removed = individuals.height - table.height
    context.log.info(f"{scope.name}: {table.height} unique faces kept, {removed} duplicates removed")
    yield Output(table, metadata={
        "unique_faces": table.height,
        "duplicates_removed": removed,
        "individuals": table["individual_id"].n_unique(),
        "labelled_unique_faces": table.filter(pl.col("expression").is_not_null()).height,
        "per_expression": MetadataValue.md(markdown_preview(
            table.group_by("expression").agg(faces=pl.len(), individuals=pl.col("individual_id").n_unique())
            .sort("expression", nulls_last=True), rows=50)),
    })
