"""Asset ``dataset_export``: a release of the labelled expression dataset over the selected challenges.

Unpartitioned, downstream of every challenge's ``unique_faces`` (with their embeddings
and videos); it runs in its own job, ``dataset_release``, never in the per-challenge jobs.
The release goes to the object store under ``datasets/<release_id>/`` (see
:mod:`tiktokfer_assets.dataset.release`); the person and split of every exported face go
to the ``dataset_splits`` table, which the next release reads so that earlier persons
keep their split.
"""

import polars as pl
from dagster import (
    AssetExecutionContext,
    AssetIn,
    Config,
    MaterializeResult,
    MetadataValue,
    asset,
)

from tiktokfer_assets.assets.faces import png_image_md
from tiktokfer_assets.challenges import challenge_from_json
from tiktokfer_assets.dataset import DatasetError
from tiktokfer_assets.dataset.card import counts_table, persons_per_split
from tiktokfer_assets.dataset.release import ExportSettings, Release, prepare_release, write_release
from tiktokfer_assets.dataset.splits import DEFAULT_RATIOS, SPLITS
from tiktokfer_assets.identity.thresholds import SAME_PERSON_SIMILARITY
from tiktokfer_assets.registry import stored_challenges
from tiktokfer_assets.resources.io_managers import table_metadata
from tiktokfer_assets.resources.object_store import ObjectStore
from tiktokfer_assets.resources.table_store import TableStore
from tiktokfer_assets.tables import PARTITION_COLUMN
from tiktokfer_assets.vision.crops import contact_sheet, decode_image

ASSIGNMENT_TABLE = "dataset_splits"
DATASET_GROUP = "dataset"


class DatasetExportConfig(Config):
    challenges: list[str] = []
    """Challenges to export; empty: every registered challenge."""
    ratios: list[float] = list(DEFAULT_RATIOS)
    """Shares of train, val and test (persons are split, so the faces' shares are approximate)."""
    include_baseline_creator: bool = False
    """Keep the faces of the baseline's creator (in duets); excluded by default."""
    gallery_faces: int = 12
    """Aligned crops shown per expression in the materialisation's gallery."""


def selected_versions(store: TableStore, wanted: list[str]) -> dict[str, str]:
    """challenge -> version of the wanted registered challenges (all when ``wanted`` is empty); content
    collections have no labelled faces: never in a release."""
    stored = stored_challenges(store).select(PARTITION_COLUMN, "version", "definition_json").iter_rows()
    versions = {name: version for name, version, text in stored if not challenge_from_json(text).is_collection}
    unknown = sorted(set(wanted) - set(versions))
    if unknown:
        raise DatasetError(f"unknown challenges {unknown}; registered: {sorted(versions) or 'none'}")
    return {name: versions[name] for name in sorted(wanted or versions)}


def gallery(release: Release, objects: ObjectStore, per_expression: int) -> str:
    """Markdown: per expression a heading with its counts and a contact sheet of aligned crops."""
    sections = []
    for (expression,), rows in release.manifest.group_by("expression", maintain_order=True):
        paths = rows["aligned_path"][:per_expression]
        crops = [decode_image(objects.get_bytes(release.crop_keys[path])) for path in paths]
        per_split = dict(rows.group_by("split").len().iter_rows())
        splits = ", ".join(f"{s} {per_split[s]}" for s in SPLITS if s in per_split)
        sections.append(f"### {expression}: {rows.height} faces ({splits}), {rows['person_id'].n_unique()} persons\n\n"
                        + png_image_md(contact_sheet(crops, columns=6, cell=64), expression))
    return "\n\n".join(sections)


@asset(
    group_name=DATASET_GROUP,
    kinds={"polars", "parquet"},
    ins={
        "unique_faces": AssetIn(),
        "face_embeddings": AssetIn(metadata={"allow_missing_partitions": True}),
        "videos": AssetIn(),
    },
    description="A release of the labelled expression dataset (manifest, image tree, card) split by person.",
)
def dataset_export(
    context: AssetExecutionContext,
    config: DatasetExportConfig,
    unique_faces: pl.DataFrame,
    face_embeddings: pl.DataFrame,
    videos: pl.DataFrame,
    object_store: ObjectStore,
    table_store: TableStore,
) -> MaterializeResult:
    versions = selected_versions(table_store, config.challenges)
    chosen = pl.col(PARTITION_COLUMN).is_in(list(versions))
    embeddings = face_embeddings.filter(chosen)
    backends = set(embeddings["backend"]) if "backend" in embeddings.columns else set()
    if len(backends) > 1:
        raise DatasetError(f"the challenges' embeddings come from different backends {sorted(backends)}; "
                           "re-materialise face_embeddings with one")
    release = prepare_release(
        unique_faces.filter(chosen), embeddings, videos.filter(chosen), versions,
        previous=table_store.read(ASSIGNMENT_TABLE),
        threshold=SAME_PERSON_SIMILARITY[backends.pop() if backends else "mobilefacenet"],
        settings=ExportSettings(tuple(config.ratios), config.include_baseline_creator),
        uri=object_store.uri,
    )
    uri = write_release(release, object_store)
    assignment = release.assignment()
    for challenge in versions:  # after the release is whole: a failed write never moves a person
        table_store.replace_partition(ASSIGNMENT_TABLE, challenge,
                                      assignment.filter(pl.col(PARTITION_COLUMN) == challenge).drop(PARTITION_COLUMN))
    per_split = pl.DataFrame([{"split": s, **v} for s, v in persons_per_split(release.manifest).items()])
    context.log.info(f"release {release.release_id}: {release.manifest.height} faces of {len(versions)} challenges "
                     f"at {uri}")
    return MaterializeResult(metadata={
        "release_id": MetadataValue.text(release.release_id),
        "release_uri": MetadataValue.path(uri),
        "challenges": MetadataValue.json(versions),
        "dagster/row_count": release.manifest.height,
        "counts": table_metadata(counts_table(release.manifest)),
        "persons_per_split": table_metadata(per_split),
        "excluded": MetadataValue.json(release.excluded),
        "gallery": MetadataValue.md(gallery(release, object_store, config.gallery_faces)),
    })
