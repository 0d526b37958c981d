"""Asset ``contents``: every stored video with its metadata and frames, one JSON Lines record each, in the object store.

The frame-extraction notebook's output (see :mod:`tiktokfer_assets.contents`) for any
partition, a content collection's or a challenge's: ``contents/<partition>/contents.jsonl``.
"""

import polars as pl
from dagster import AssetExecutionContext, MaterializeResult, MetadataValue, asset

from tiktokfer_assets.contents import content_records, to_json_lines
from tiktokfer_assets.partitions import challenge_partitions
from tiktokfer_assets.resources.object_store import ObjectStore
from tiktokfer_assets.resources.table_store import TableStore
from tiktokfer_assets.scope import challenge_scope


@asset(
    partitions_def=challenge_partitions,
    group_name="frames_and_faces",
    description="Each stored video as a content record (metadata, content_type VIDEO, its frames' keys, timestamps "
                "and sizes): contents/<partition>/contents.jsonl in the object store (schemas/content.schema.json).",
)
def contents(
    context: AssetExecutionContext,
    videos: pl.DataFrame,
    frames: pl.DataFrame,
    object_store: ObjectStore,
    table_store: TableStore,
) -> MaterializeResult:
    scope = challenge_scope(context, table_store)
    challenge = scope.definition
    records = content_records(videos, frames, object_store.uri, challenge.max_video_seconds)
    key = scope.contents_key()
    object_store.put_bytes(key, to_json_lines(records))
    failures = table_store.count("video_failures", challenge.name)
    context.log.info(f"{challenge.name}: {len(records)} content records written to {object_store.uri(key)} "
                     f"({failures} videos failed, see video_failures)")
    return MaterializeResult(metadata={
        "dagster/row_count": len(records),
        "frames": frames.height,
        "video_failures": failures,
        "uri": MetadataValue.path(object_store.uri(key)),
    })
