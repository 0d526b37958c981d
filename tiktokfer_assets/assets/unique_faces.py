"""Asset 6, ``unique_faces``: each individual's face crops without perceptual duplicates (PHash)."""

import json

import polars as pl
from dagster import AssetExecutionContext, Config, Output, asset

from tiktokfer_assets.identity.dedup import select_unique
from tiktokfer_assets.partitions import challenge_partitions
from tiktokfer_assets.resources.object_store import ObjectStore
from tiktokfer_assets.tables import conform


class UniqueFacesConfig(Config):
    max_distance_threshold: int = 10
    """PHash Hamming distance (0-64) up to which two crops of one individual are duplicates."""


@asset(
    partitions_def=challenge_partitions,
    io_manager_key="table_io_manager",
    group_name="individuals",
    description="Best face of each group of near-duplicate crops per individual, with the removed duplicates.",
)
def unique_faces(
    context: AssetExecutionContext,
    config: UniqueFacesConfig,
    individuals: pl.DataFrame,
    object_store: ObjectStore,
):
    crops = {
        row["face_id"]: object_store.get_bytes(row["object_key"])
        for row in individuals.select("face_id", "object_key").iter_rows(named=True)
    }
    kept = select_unique(
        individuals.select(
            "face_id", "individual_id", "video_id", "track_id", "timestamp_s", "prompt_label", "score", "object_key",
            "is_baseline_creator",
        ),
        crops,
        max_distance_threshold=config.max_distance_threshold,
    )
    duplicates = pl.Series("duplicates", [json.dumps(ids) for ids in kept["duplicates"].to_list()], dtype=pl.String)
    table = conform("unique_faces", kept.with_columns(duplicates)).sort("face_id")
    removed = individuals.height - table.height
    context.log.info(f"{context.partition_key}: {table.height} unique faces kept, {removed} duplicates removed")
    yield Output(table, metadata={
        "unique_faces": table.height,
        "duplicates_removed": removed,
        "individuals": table["individual_id"].n_unique(),
        "labelled_unique_faces": table.filter(pl.col("prompt_label").is_not_null()).height,
    })
