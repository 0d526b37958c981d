"""Train, evaluate and store the expression model of one dataset release (the asset's, the CLI's and the demo's work).

A release folder holds ``manifest.parquet`` (one row per face, with its ``split`` and
``expression``) and the aligned crops it names. The classes are the expressions of
the train split; val and test faces of another expression are left out of the
evaluation (and counted in a warning). The result folder gets the artifact
(:mod:`artifact`), ``agreement.parquet`` (per face, keyed by ``face_id``),
``performers.parquet`` (per video, individual and expression), ``confusion.png`` and
``learning_curves.png``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import polars as pl
import torch

from tiktokfer_assets.expression.agreement import AGREEMENT_THRESHOLD, face_agreement, performer_agreement
from tiktokfer_assets.expression.artifact import save_artifact
from tiktokfer_assets.expression.data import (
    EXTERNAL_CLASSES,
    SPLITS,
    decode,
    labelled_photos,
    release_images,
)
from tiktokfer_assets.expression.metrics import classification_metrics
from tiktokfer_assets.expression.plots import confusion_png, learning_curves_png
from tiktokfer_assets.expression.settings import MIN_TEST_FACES, TrainConfig
from tiktokfer_assets.expression.train import EpochLog, predict_proba, train_classifier

MANIFEST = "manifest.parquet"


@dataclass
class ReleaseModel:
    release_id: str
    folder: Path
    metrics: dict
    faces: pl.DataFrame
    """:func:`agreement.face_agreement`, one row per exported face."""
    performers: pl.DataFrame
    warnings: list[str] = field(default_factory=list)


def split_counts(manifest: pl.DataFrame) -> dict[str, dict[str, int]]:
    """Faces, persons and videos per split."""
    return {
        split: {
            "faces": part.height,
            "persons": part["person_id"].n_unique() if part.height else 0,
            "videos": part["video_id"].n_unique() if part.height else 0,
        }
        for split in SPLITS
        for part in [manifest.filter(pl.col("split") == split)]
    }


def external_test(model, classes: list[str], photos_dir: Path) -> dict | None:
    """Metrics on the external photos of the classes the model shares with them (``EXTERNAL_CLASSES``).

    The model's choice is restricted to the shared classes; ``None`` when none is shared.
    """
    shared = {c: EXTERNAL_CLASSES[c.lower()] for c in classes if c.lower() in EXTERNAL_CLASSES}
    photos = labelled_photos(photos_dir)
    wanted = sorted(set(shared.values()) & set(photos.labels))
    if not wanted:
        return None
    keep = [i for i, label in enumerate(photos.labels) if label in wanted]
    photos = photos.subset(keep)
    columns = [i for i, c in enumerate(classes) if shared.get(c) in wanted]
    probs = predict_proba(model, decode(photos.paths))[:, columns]
    predicted = [wanted.index(shared[classes[columns[j]]]) for j in probs.argmax(1)]
    metrics = classification_metrics([wanted.index(label) for label in photos.labels], predicted, wanted)
    return metrics | {"class_map": {c: shared[c] for c in classes if shared.get(c) in wanted}}


def train_release(
    release_dir: str | Path,
    out_dir: str | Path,
    release_id: str,
    config: TrainConfig,
    weights_path: str | Path,
    device: str = "cpu",
    progress: Callable[[EpochLog], None] | None = None,
    external_dir: str | Path | None = None,
    min_test_faces: int = MIN_TEST_FACES,
    agreement_threshold: float = AGREEMENT_THRESHOLD,
) -> ReleaseModel:
    """Fine-tune on the release's train split, early-stop on val, evaluate on test (and the external photos)."""
    manifest_path = Path(release_dir) / MANIFEST
    if not manifest_path.is_file():
        raise FileNotFoundError(f"{manifest_path} is missing: not a dataset release")
    manifest = pl.read_parquet(manifest_path).sort("face_id")
    unknown = sorted(set(manifest["split"]) - set(SPLITS))
    if unknown:
        raise ValueError(f"{manifest_path}: unknown split(s) {unknown}; expected {list(SPLITS)}")
    classes = sorted(set(manifest.filter(pl.col("split") == "train")["expression"]))
    crops = decode(release_images(release_dir, manifest.to_dicts()).paths)
    index = {c: i for i, c in enumerate(classes)}
    labels = torch.tensor([index.get(c, -1) for c in manifest["expression"]])
    rows = {s: torch.from_numpy(((manifest["split"] == s).to_numpy()) & (labels >= 0).numpy()) for s in SPLITS}
    warnings = []
    outside = manifest.filter(pl.col("split") != "train", ~pl.col("expression").is_in(classes))
    if outside.height:
        warnings.append(f"{outside.height} val/test faces have an expression absent from train "
                        f"({', '.join(sorted(set(outside['expression'])))}); left out of the evaluation")
    if not rows["val"].any():
        warnings.append("no val faces: no early stopping, the last epoch is kept")
    result = train_classifier(
        crops[rows["train"]], labels[rows["train"]], crops[rows["val"]], labels[rows["val"]],
        classes, config, weights_path, device, progress,
    )
    probs = predict_proba(result.model, crops)
    test = None
    if rows["test"].any():
        test = classification_metrics(labels[rows["test"]].numpy(), probs[rows["test"].numpy()].argmax(1), classes)
        small = [f"{c['class']} ({c['support']})" for c in test["per_class"] if c["support"] < min_test_faces]
        if small:
            warnings.append(f"test classes with fewer than {min_test_faces} faces: {', '.join(small)}")
    else:
        warnings.append("no test faces: the model is not evaluated on this release")
    external = external_test(result.model, classes, Path(external_dir)) if external_dir else None
    faces = face_agreement(manifest, probs, classes)
    performers = performer_agreement(faces, agreement_threshold)
    history = [asdict(e) for e in result.history]
    metrics = {
        "release_id": release_id,
        "classes": classes,
        "test": test,
        "external_test": external,
        "splits": split_counts(manifest),
        "history": history,
        "best_epoch": result.best_epoch,
        "stopped_early": result.stopped_early,
        "device": result.device,
        "train_images_per_s": result.images_per_s,
        "agreement": {
            "threshold": agreement_threshold,
            "faces_agreeing": int(faces["agrees"].sum() or 0),
            "faces_compared": int(faces["agrees"].is_not_null().sum()),
            "performers_flagged": int(performers["flagged"].sum() or 0),
            "performers": performers.height,
        },
        "warnings": warnings,
    }
    folder = save_artifact(out_dir, result.model, classes, config.to_dict(), metrics)
    faces.write_parquet(folder / "agreement.parquet")
    performers.write_parquet(folder / "performers.parquet")
    if test is not None:
        (folder / "confusion.png").write_bytes(confusion_png(test["confusion_matrix"], classes, "test"))
    (folder / "learning_curves.png").write_bytes(learning_curves_png(history))
    return ReleaseModel(release_id, folder, metrics, faces, performers, warnings)
