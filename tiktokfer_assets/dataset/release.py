"""A dataset release: which faces, their person and split, the manifest, the image tree, the release id.

Layout under ``datasets/<release_id>/`` in the object store (local folder or S3)::

    manifest.parquet                      one row per face (MANIFEST_SCHEMA)
    README.md                             the dataset card
    <split>/metadata.csv                  file_name (relative to <split>/), face_id, challenge, person_id, expression
    <split>/<expression>/<file>.jpg       the face's aligned crop (112x112 RGB JPEG, copied byte for byte)

``datasets.load_dataset("imagefolder", data_dir=<release>)`` reads the splits from the folder
names (``val`` becomes ``validation``) and the columns from each ``metadata.csv``;
``torchvision.datasets.ImageFolder(<release>/<split>)`` takes the expression folders as classes
and ignores ``metadata.csv``. Context crops stay where they are: ``context_path`` is their URI.

The release id is a hash of the inputs: the export settings, the selected challenges'
versions, the ``unique_faces`` rows used and the person and split of each (which earlier
releases fix), so the same inputs give the same release.
"""

from __future__ import annotations

import hashlib
import io
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Protocol

import polars as pl

from tiktokfer_assets.dataset import DatasetError
from tiktokfer_assets.dataset.card import dataset_card
from tiktokfer_assets.dataset.persons import individual_means, link_persons, majority_person
from tiktokfer_assets.dataset.splits import DEFAULT_RATIOS, assign_splits, check_ratios

RELEASES_PREFIX = "datasets"
MANIFEST = "manifest.parquet"
CARD = "README.md"
METADATA = "metadata.csv"
ID_LENGTH = 16
MANIFEST_SCHEMA: dict[str, pl.DataType] = {
    "face_id": pl.String,
    "challenge": pl.String,
    "video_id": pl.String,
    "author": pl.String,
    "individual_id": pl.String,
    "person_id": pl.String,
    "expression": pl.String,
    "split": pl.String,
    "aligned_path": pl.String,  # relative to the release's folder
    "context_path": pl.String,  # URI of the context crop in the object store
    "timestamp_s": pl.Float64,
    "score": pl.Float64,
    "source_url": pl.String,
}
FACE_COLUMNS = ("challenge", "face_id", "individual_id", "video_id", "timestamp_s", "score", "expression",
                "object_key", "aligned_key", "is_baseline_creator")


@dataclass(frozen=True)
class ExportSettings:
    ratios: tuple[float, float, float] = DEFAULT_RATIOS
    include_baseline_creator: bool = False

    def as_json(self) -> dict:
        return {"ratios": list(check_ratios(self.ratios)), "include_baseline_creator": self.include_baseline_creator}


@dataclass
class Release:
    release_id: str
    manifest: pl.DataFrame
    versions: dict[str, str]
    settings: ExportSettings
    crop_keys: dict[str, str]  # aligned_path -> object key of the aligned crop it copies
    excluded: dict[str, int] = field(default_factory=dict)  # reason -> faces left out

    @property
    def root(self) -> str:
        return release_root(self.release_id)

    def assignment(self) -> pl.DataFrame:
        """What later releases must keep: (challenge, face_id, individual_id, person_id, split, release_id)."""
        return self.manifest.select("challenge", "face_id", "individual_id", "person_id", "split",
                                    release_id=pl.lit(self.release_id))


def release_root(release_id: str) -> str:
    return f"{RELEASES_PREFIX}/{release_id}"


def safe_file_name(challenge: str, face_id: str) -> str:
    """A unique file name for a face: readable (``/`` and other odd characters become ``_``) plus a hash."""
    readable = re.sub(r"[^A-Za-z0-9._-]+", "_", f"{challenge}__{face_id}")
    digest = hashlib.sha1(f"{challenge}\0{face_id}".encode()).hexdigest()[:8]
    return f"{readable}-{digest}.jpg"


def select_faces(unique_faces: pl.DataFrame, settings: ExportSettings) -> tuple[pl.DataFrame, dict[str, int]]:
    """The faces a release holds (labelled with an expression; no baseline creator by default) and what was left out."""
    missing = sorted(set(FACE_COLUMNS) - set(unique_faces.columns))
    if missing:
        raise DatasetError(f"unique_faces lacks the columns {missing}; re-materialise unique_faces")
    labelled = unique_faces.filter(pl.col("expression").is_not_null())
    creator = pl.col("is_baseline_creator").fill_null(False)
    kept = labelled if settings.include_baseline_creator else labelled.filter(~creator)
    excluded = {"no expression (instruction prompts, outside every window)": unique_faces.height - labelled.height,
                "baseline creator": labelled.height - kept.height}
    unaligned = kept.filter(pl.col("aligned_key").is_null())
    if unaligned.height:
        raise DatasetError(f"{unaligned.height} faces have no aligned crop (e.g. {unaligned['face_id'][0]}); "
                           "re-materialise unique_faces")
    bad = sorted({e for e in kept["expression"].unique() if "/" in e or e in ("", ".", "..")})
    if bad:
        raise DatasetError(f"expressions {bad} cannot be folder names")
    return kept.sort("challenge", "face_id"), excluded


def release_id(
    settings: ExportSettings, versions: Mapping[str, str], faces: pl.DataFrame, assigned: pl.DataFrame,
) -> str:
    """Hash of the export's inputs (see the module docstring)."""
    digest = hashlib.sha256()
    digest.update(json.dumps({"settings": settings.as_json(), "versions": dict(sorted(versions.items()))},
                             sort_keys=True).encode())
    digest.update(faces.select(sorted(faces.columns)).sort("challenge", "face_id").write_ndjson().encode())
    digest.update(assigned.sort("challenge", "face_id").write_ndjson().encode())
    return digest.hexdigest()[:ID_LENGTH]


def prepare_release(
    unique_faces: pl.DataFrame,
    embeddings: pl.DataFrame,
    videos: pl.DataFrame,
    versions: Mapping[str, str],
    previous: pl.DataFrame,
    threshold: float,
    settings: ExportSettings = ExportSettings(),
    uri: Callable[[str], str] = str,
) -> Release:
    """Persons, splits and the manifest of the selected challenges' ``unique_faces`` (with ``challenge`` column).

    ``previous``: the assignment earlier releases persisted (:meth:`Release.assignment`);
    ``threshold``: the embedder's identity threshold; ``uri``: object key -> URI of the context crops.
    """
    faces, excluded = select_faces(unique_faces, settings)
    if faces.is_empty():
        raise DatasetError(f"nothing to export: no face with an expression in {sorted(versions) or 'no challenge'}")
    has_vectors = "embedding" in embeddings.columns
    embedded = set(embeddings.select("challenge", "face_id").iter_rows()) if has_vectors else set()
    missing = [f"{c}:{f}" for c, f in faces.select("challenge", "face_id").iter_rows() if (c, f) not in embedded]
    if missing:
        raise DatasetError(f"{len(missing)} faces have no embedding (e.g. {missing[0]}); "
                           "re-materialise face_embeddings")
    keys, means = individual_means(faces, embeddings)
    persons = link_persons(keys, means, threshold, majority_person(faces, previous))
    faces = faces.with_columns(
        person_id=pl.concat_str("challenge", pl.lit("/"), "individual_id").replace_strict(
            persons, return_dtype=pl.String)
    )
    counts = faces.group_by("person_id", "expression").agg(faces=pl.len())
    earlier = dict(previous.select("person_id", "split").unique("person_id", keep="first").iter_rows())
    splits = assign_splits(counts, earlier, settings.ratios)
    faces = faces.with_columns(split=pl.col("person_id").replace_strict(splits, return_dtype=pl.String))
    assigned = faces.select("challenge", "face_id", "person_id", "split")
    rid = release_id(settings, versions, faces.drop("person_id", "split"), assigned)
    sources = videos.select("challenge", "video_id", "author", source_url="url")
    file_names = pl.struct("challenge", "face_id").map_elements(
        lambda r: safe_file_name(r["challenge"], r["face_id"]), return_dtype=pl.String)
    manifest = faces.join(sources, on=["challenge", "video_id"], how="left").with_columns(
        aligned_path=pl.concat_str("split", pl.lit("/"), "expression", pl.lit("/"), file_names),
        context_path=pl.col("object_key").map_elements(uri, return_dtype=pl.String),
    )
    crop_keys = dict(manifest.select("aligned_path", "aligned_key").iter_rows())
    manifest = manifest.select([pl.col(name).cast(dtype) for name, dtype in MANIFEST_SCHEMA.items()])
    return Release(rid, manifest.sort("split", "expression", "challenge", "face_id"), dict(versions), settings,
                   crop_keys, excluded)


def metadata_csv(manifest: pl.DataFrame, split: str) -> bytes:
    """The ``metadata.csv`` of one split folder: paths relative to it, as the imagefolder loader wants."""
    rows = manifest.filter(pl.col("split") == split)
    return rows.select(
        file_name=pl.col("aligned_path").str.strip_prefix(f"{split}/"), face_id="face_id", challenge="challenge",
        person_id="person_id", expression="expression",
    ).write_csv().encode()


class Objects(Protocol):
    """What writing a release needs of an object store (``ObjectStore`` has it)."""

    def get_bytes(self, key: str) -> bytes: ...

    def put_bytes(self, key: str, data: bytes) -> None: ...

    def uri(self, key: str) -> str: ...


def write_release(release: Release, objects: Objects) -> str:
    """Copy the aligned crops, then write each split's metadata.csv, the manifest and the card; returns the URI.

    The card is written last: a release folder with a README.md is complete.
    """
    root = release.root
    for path, key in release.crop_keys.items():
        objects.put_bytes(f"{root}/{path}", objects.get_bytes(key))
    for split in sorted(set(release.manifest["split"])):
        objects.put_bytes(f"{root}/{split}/{METADATA}", metadata_csv(release.manifest, split))
    buffer = io.BytesIO()
    release.manifest.write_parquet(buffer)
    objects.put_bytes(f"{root}/{MANIFEST}", buffer.getvalue())
    card = dataset_card(release.release_id, release.manifest, release.versions, release.settings.as_json(),
                        release.excluded)
    objects.put_bytes(f"{root}/{CARD}", card.encode())
    return objects.uri(root)
