"""Asset 5: face embeddings, tracks within videos, track similarities and individuals across videos."""

from pathlib import Path

import numpy as np
import polars as pl
from dagster import AssetExecutionContext, AssetOut, Config, MetadataValue, Output, asset, multi_asset

from tiktokfer_assets.assets.collection import skipped_outputs
from tiktokfer_assets.assets.faces import png_image_md
from tiktokfer_assets.identity.clustering import cannot_link_from_frames, cluster_tracks
from tiktokfer_assets.identity.corrections import apply_track_corrections, constraints, load_corrections
from tiktokfer_assets.identity.embedding_io import embedding_matrix, embedding_series
from tiktokfer_assets.identity.thresholds import SAME_PERSON_SIMILARITY
from tiktokfer_assets.identity.tracking import assign_tracks
from tiktokfer_assets.partitions import challenge_partitions
from tiktokfer_assets.paths import PROJECT_ROOT
from tiktokfer_assets.resources.gpu import GPU_OP_TAGS, GPU_POOL, GpuResource
from tiktokfer_assets.resources.io_managers import markdown_preview
from tiktokfer_assets.resources.object_store import ObjectStore
from tiktokfer_assets.resources.table_store import TableStore
from tiktokfer_assets.scope import challenge_scope
from tiktokfer_assets.tables import conform
from tiktokfer_assets.vision.crops import contact_sheet, decode_image

GALLERY_FACES = 6  # thumbnails per individual in the materialisation's gallery
NO_EMBEDDINGS = pl.DataFrame(schema={"face_id": pl.String, "backend": pl.String, "embedding": pl.List(pl.Float32)})



class EmbeddingConfig(Config):
    backend: str = "mobilefacenet"
    """``mobilefacenet`` (a face-recognition network from a local checkpoint) or ``open_clip``."""
    model_name: str = "ViT-B-32"
    """open_clip only: architecture."""
    pretrained: str | None = None
    """open_clip only: a pretrained tag in the local open_clip cache, or a checkpoint file."""
    weights_path: str | None = None
    """mobilefacenet only: checkpoint (default: weights/mobilefacenet_casia.ckpt)."""
    chunk_faces: int = 64
    """Faces per embed call (it batches within them); their aligned crops are decoded ahead on a thread pool, and
    on CPU one chunk per core is embedded at once."""


@asset(
    partitions_def=challenge_partitions,
    io_manager_key="parquet_io_manager",
    kinds={"parquet", "pytorch"},
    group_name="individuals",
    pool=GPU_POOL,
    op_tags=GPU_OP_TAGS,
    description="One L2-normalised embedding per face (Parquet), kept so re-clustering never recomputes them.",
)
def face_embeddings(
    context: AssetExecutionContext,
    config: EmbeddingConfig,
    faces: pl.DataFrame,
    object_store: ObjectStore,
    gpu: GpuResource,
    table_store: TableStore,
):
    if challenge_scope(context, table_store).definition.is_collection:
        yield from skipped_outputs(context, {"result": NO_EMBEDDINGS})
        return
    # torch: only the step that embeds imports it
    from tiktokfer_assets.identity.embedders import build_embedder, embed_stored_crops

    options = (
        {"weights_path": config.weights_path} if config.backend == "mobilefacenet"
        else {"model_name": config.model_name, "pretrained": config.pretrained}
    )
    embedder = gpu.model(
        f"embedder:{config.backend}:{sorted(options.items())}",
        lambda device, batch_size: build_embedder(config.backend, device=device, batch_size=batch_size, **options),
    )
    # the faces step stored each face's 112x112 ArcFace-aligned crop: embedded from it, no frame decoded again
    ordered = faces.sort("frame_id", "face_id")
    matrix = embed_stored_crops(embedder, ordered["aligned_key"].to_list(), object_store.get_bytes, config.chunk_faces)
    context.log.info(f"{context.partition_key}: {len(matrix)} faces embedded with {embedder.name} ({embedder.dim}-d)")
    yield Output(pl.DataFrame({
        "face_id": ordered["face_id"],
        "backend": [embedder.name] * len(matrix),
        "embedding": embedding_series(matrix),
    }), metadata={"backend": embedder.name, "dim": embedder.dim, "faces": len(matrix)})


class IndividualsConfig(Config):
    method: str = "average"
    """``average`` (average linkage on the sparse graph), ``threshold`` (connected components above the
    threshold) or ``hdbscan``. Average linkage is the default: on 100k planted-identity tracks it reached
    pairwise F1 0.995 against 0.989 for components, and degrades less off the best threshold
    (bench/bench_clustering.py); HDBSCAN needs many tracks per person and split/merged the demo's people."""
    threshold: float | None = None
    """Track similarity that joins two tracks; default per backend: identity.thresholds.SAME_PERSON_SIMILARITY."""
    similarity_floor: float = 0.2
    """Pairs below this are not stored in ``similarities``."""
    neighbours: int = 20
    """At most this many most-similar tracks per track are kept (never a dense n x n table)."""
    max_gap_s: float = 1.5
    """Tracking: a face unseen for longer starts a new track."""
    corrections_file: str = str(PROJECT_ROOT / "corrections.yaml")


def gallery_markdown(final: pl.DataFrame, object_store: ObjectStore, per_individual: int = GALLERY_FACES) -> str:
    """Markdown: per individual, its track ids and a strip of context crops spread over its faces (labelled
    ones first), so a user can see who is who and write a correction naming the tracks."""
    sections = []
    for (individual,), faces in final.sort("face_id").group_by(["individual_id"], maintain_order=True):
        picked = faces.sort(pl.col("expression").is_null(), "face_id").gather_every(
            max(1, faces.height // per_individual))[:per_individual]
        sheet = contact_sheet([decode_image(object_store.get_bytes(key)) for key in picked["object_key"]],
                              columns=per_individual, cell=72)
        labels = ", ".join(f"{t:.1f}s {e or '-'}" for t, e in picked.select("timestamp_s", "expression").iter_rows())
        creator = " (baseline creator)" if faces["is_baseline_creator"].any() else ""
        sections.append(
            f"**{individual}**{creator}: {faces.height} faces; tracks {', '.join(sorted(faces['track_id'].unique()))}"
            f"  \n{png_image_md(sheet, individual)}  \n{labels}"
        )
    return "\n\n".join(sections)


def flag_baseline_creator(final: pl.DataFrame, baseline_video_id: str | None) -> pl.DataFrame:
    """Mark every face of the individuals seen in the baseline video: the challenge's creator.

    In duet videos the creator appears beside the performer; flagged, those faces do
    not make the creator a performer of every duet.
    """
    creators = final.filter(pl.col("video_id") == baseline_video_id)["individual_id"].unique()
    return final.with_columns(is_baseline_creator=pl.col("individual_id").is_in(creators.implode()))


@multi_asset(
    outs={
        "faces_with_intra_ind": AssetOut(
            io_manager_key="table_io_manager",
            kinds={"polars"},
            description="Faces with their track within the video (coordinate tracking).",
        ),
        "similarities": AssetOut(
            io_manager_key="table_io_manager",
            kinds={"polars", "pytorch"},
            description="Cosine similarity of track mean embeddings: top-k pairs above a floor.",
        ),
        "individuals": AssetOut(
            io_manager_key="table_io_manager",
            kinds={"polars"},
            metadata={"table": "faces_with_final_ind"},
            description="Faces with their individual across videos, after manual corrections "
            "(table faces_with_final_ind).",
        ),
    },
    partitions_def=challenge_partitions,
    group_name="individuals",
)
def individuals(
    context: AssetExecutionContext,
    config: IndividualsConfig,
    faces: pl.DataFrame,
    face_embeddings: pl.DataFrame,
    videos: pl.DataFrame,
    gpu: GpuResource,
    object_store: ObjectStore,
    table_store: TableStore,
):
    scope = challenge_scope(context, table_store)
    challenge = scope.name
    if scope.definition.is_collection:
        yield from skipped_outputs(context, {"faces_with_intra_ind": "faces_with_intra_ind",
                                             "similarities": "similarities", "individuals": "faces_with_final_ind"})
        return
    from tiktokfer_assets.identity.similarity import top_k_similarities, track_means  # torch: lazily

    face_columns = [c for c in faces.columns if c != "challenge"]
    tracked = assign_tracks(faces.select(face_columns))
    yield Output(conform("faces_with_intra_ind", tracked).sort("face_id"), "faces_with_intra_ind", metadata={
        "tracks": tracked["track_id"].n_unique(),
    })

    corrections = load_corrections(Path(config.corrections_file), challenge)
    corrected, report = apply_track_corrections(tracked, corrections)
    embedded = corrected.join(face_embeddings.select("face_id", "backend", "embedding"), on="face_id", how="left")
    missing = embedded.filter(pl.col("embedding").is_null()).height
    if missing:
        raise RuntimeError(f"{challenge}: {missing} faces have no embedding; re-materialise face_embeddings")
    backend = embedded["backend"][0] if embedded.height else "mobilefacenet"
    track_ids, vectors = track_means(embedding_matrix(embedded["embedding"]), embedded["track_id"].to_list())
    if vectors.size:
        i, j, sim = top_k_similarities(
            vectors, k=config.neighbours, floor=config.similarity_floor, device=gpu.torch_device
        )
    else:
        i, j, sim = np.empty(0, np.int64), np.empty(0, np.int64), np.empty(0, np.float32)
    pairs_table = conform("similarities", pl.DataFrame({
        "track_a": [track_ids[k] for k in i], "track_b": [track_ids[k] for k in j],
        "similarity": sim.astype(np.float64),
    }))
    yield Output(pairs_table, "similarities", metadata={"pairs": pairs_table.height, "tracks": len(track_ids)})

    rules = constraints(corrections, track_ids)
    threshold = config.threshold if config.threshold is not None else SAME_PERSON_SIMILARITY[backend]
    clusters = cluster_tracks(
        track_ids, vectors, (i, j, sim), method=config.method, threshold=threshold,
        cannot_link=cannot_link_from_frames(corrected) | rules.cannot_link, must_link=rules.must_link,
    )
    mapping = pl.DataFrame({"track_id": list(clusters), "individual_id": [f"i{n:04d}" for n in clusters.values()]})
    baseline = videos.filter(pl.col("role") == "baseline")["video_id"]
    final = flag_baseline_creator(
        corrected.join(mapping, on="track_id", how="left"), baseline[0] if len(baseline) else None
    )
    stale = report.stale + rules.stale
    for entry in stale:
        context.log.warning(f"{challenge}: stale correction ({entry.kind}): {entry.detail}")
    table = conform("faces_with_final_ind", final).sort("face_id")
    per_individual = table.group_by("individual_id").agg(
        videos=pl.col("video_id").n_unique(), faces=pl.len(), creator=pl.col("is_baseline_creator").first()
    ).sort("individual_id")
    context.log.info(
        f"{challenge}: {len(track_ids)} tracks -> {per_individual.height} individuals "
        f"({config.method}, threshold {threshold})"
    )
    yield Output(table, "individuals", metadata={
        "individuals": per_individual.height,
        "tracks": len(track_ids),
        "method": config.method,
        "threshold": threshold,
        "corrections_applied": MetadataValue.json(report.applied),
        "stale_corrections": MetadataValue.json([f"{s.kind}: {s.detail}" for s in stale]),
        "per_individual": MetadataValue.md(markdown_preview(per_individual, rows=50)),
        "gallery": MetadataValue.md(gallery_markdown(table, object_store)),
    })
