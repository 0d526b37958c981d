"""A short text summary of what a challenge's materialisation produced."""

from __future__ import annotations

import polars as pl

from tiktokfer_assets.resources.object_store import ObjectStore
from tiktokfer_assets.resources.table_store import TableStore

SUMMARY_TABLES = (
    "videos", "video_failures", "subvideos", "frames", "faces", "nofaces",
    "faces_with_intra_ind", "similarities", "faces_with_final_ind", "unique_faces",
)


def prompts_found(store: TableStore, challenge: str) -> tuple[int, int]:
    """How many prompts of the performance videos were found, and how many not (the baseline's are given)."""
    subvideos = store.read("subvideos", [challenge])
    if "found" not in subvideos.columns:
        return 0, 0
    performance_ids = store.read("videos", [challenge]).filter(pl.col("role") == "performance").select("video_id")
    performances = subvideos.join(performance_ids, on="video_id")
    found = int(performances["found"].sum() or 0)
    return found, performances.height - found


def challenge_summary(challenge: str, store: TableStore, objects: ObjectStore) -> str:
    lines = [f"Challenge {challenge!r}: rows per table"]
    for table in SUMMARY_TABLES:
        df = store.read(table, [challenge])
        if df.width <= 1 and df.is_empty():
            continue
        detail = ""
        if table == "subvideos" and "found" in df.columns:
            found, not_found = prompts_found(store, challenge)
            detail = f"  ({found} prompts found, {not_found} not found in performance videos)"
        if table == "faces_with_final_ind" and "individual_id" in df.columns:
            detail = f"  ({df['individual_id'].n_unique()} individuals)"
        lines.append(f"  {table:<22}{df.height:>7}{detail}")
        if table == "unique_faces" and "expression" in df.columns:
            lines.append("  unique faces per expression:")
            counts = df.group_by("expression").agg(faces=pl.len(), individuals=pl.col("individual_id").n_unique())
            for expression, faces, individuals in counts.sort("expression", nulls_last=True).iter_rows():
                lines.append(f"    {expression or '(none)':<20}{faces:>7}  ({individuals} individuals)")
    lines.append(f"Media (videos, frames, face crops): {objects.location()}")
    lines.append(f"Tables: {store.location()}")
    return "\n".join(lines)
