"""Asset ``expression_model``: fine-tune, evaluate and store an expression classifier on a dataset release.

The release is the one named by the ``release_id`` metadata of the latest
``dataset_export`` materialisation (or ``config.release_id``). It is downloaded from
the object store (``datasets/<release_id>/``), trained on (on the GPU resource's
device), and the result folder (:mod:`tiktokfer_assets.expression.release`) is
stored under ``models/<release_id>/<config digest>/``: the same release and
configuration always land in the same place, and releases stay untouched.

Label agreement is stored beside the model (``agreement.parquet``, keyed by
``face_id``, joinable to the release's manifest) rather than written into the
manifest: a release is immutable (its id names exactly one set of files), while the
agreement depends on the model that computed it; a re-trained model gives new
agreement without changing the dataset others may have downloaded.
"""


import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import polars as pl
from dagster import (
    AssetExecutionContext,
    AssetKey,
    Config,
    DagsterInstance,
    MaterializeResult,
    MetadataValue,
    asset,
    materialize,
)

from tiktokfer_assets.assets.dataset_export import DATASET_GROUP
from tiktokfer_assets.assets.faces import png_markdown
from tiktokfer_assets.expression.agreement import AGREEMENT_THRESHOLD
from tiktokfer_assets.expression.errors import ExpressionInputError
from tiktokfer_assets.expression.settings import DEFAULT_BACKBONE, MIN_TEST_FACES, TrainConfig
from tiktokfer_assets.models import MOBILEFACENET_WEIGHTS, RETINAFACE_WEIGHTS
from tiktokfer_assets.paths import media_dir
from tiktokfer_assets.resources.gpu import GPU_OP_TAGS, GPU_POOL, GpuResource
from tiktokfer_assets.resources.io_managers import table_metadata
from tiktokfer_assets.resources.object_store import ObjectStore
from tiktokfer_assets.weights import require_file

if TYPE_CHECKING:
    from tiktokfer_assets.expression.release import ReleaseModel

BACKBONE_WEIGHTS = {"mobilefacenet": MOBILEFACENET_WEIGHTS, "retinaface": RETINAFACE_WEIGHTS}
"""Backbone name -> manifest path of its checkpoint."""

EXPORT_ASSET = "dataset_export"
FLAGGED_ROWS_SHOWN = 20


def backbone_weights(backbone: str) -> Path:
    """The fetched checkpoint of ``backbone`` (an unknown name or a missing file is a one-line error)."""
    from tiktokfer_assets.expression.backbones import backbone_spec

    backbone_spec(backbone)
    return require_file(BACKBONE_WEIGHTS[backbone])


class ExpressionModelConfig(Config):
    release_id: str = ""
    """Dataset release to train on; empty: the latest ``dataset_export`` materialisation's."""
    backbone: str = DEFAULT_BACKBONE
    epochs: int = TrainConfig.epochs
    patience: int = TrainConfig.patience
    select_after: float = TrainConfig.select_after
    """Share of the epochs whose states are never kept (the best val epoch is chosen from the rest)."""
    batch_size: int = TrainConfig.batch_size
    mix: str = TrainConfig.mix
    """Batch mixing of the training images and their labels: none, mixup, cutmix or both."""
    mix_alpha: float = TrainConfig.mix_alpha
    seed: int = TrainConfig.seed
    min_test_faces: int = MIN_TEST_FACES
    """A test class with fewer faces gets a warning in the metadata."""
    agreement_threshold: float = AGREEMENT_THRESHOLD
    """A performer whose share of faces agreeing with the prompt is below this is flagged."""
    external_test: bool = True
    """Also evaluate on the external photos (``media/expressions``) when they are fetched."""

    def train_config(self) -> TrainConfig:
        return TrainConfig(
            backbone=self.backbone, epochs=self.epochs, patience=self.patience,
            select_after=self.select_after, batch_size=self.batch_size, mix=self.mix, mix_alpha=self.mix_alpha,
            seed=self.seed,
        )


def latest_release_id(instance: DagsterInstance) -> str:
    event = instance.get_latest_materialization_event(AssetKey(EXPORT_ASSET))
    if event is None or event.asset_materialization is None:
        raise ExpressionInputError(
            f"{EXPORT_ASSET} has never been materialised: export a dataset first, or set release_id"
        )
    entry = event.asset_materialization.metadata.get("release_id")
    if entry is None:
        raise ExpressionInputError(
            f"the latest {EXPORT_ASSET} materialisation has no release_id metadata; set release_id"
        )
    return str(entry.value)


def download_prefix(store: ObjectStore, prefix: str, folder: Path) -> int:
    """Download every object under ``prefix`` into ``folder`` (keys relative to it); how many."""
    keys = store.list_keys(prefix)
    for key in keys:
        target = folder / key.removeprefix(prefix)
        target.parent.mkdir(parents=True, exist_ok=True)
        store.download(key, target)
    return len(keys)


def download_release(store: ObjectStore, release_id: str, folder: Path) -> Path:
    prefix = f"datasets/{release_id}/"
    if not download_prefix(store, prefix, folder):
        raise ExpressionInputError(f"release {release_id!r} not found: nothing under {store.uri(prefix)}")
    return folder


def fetch_model(
    model: str | None, store: ObjectStore, instance: Callable[[], DagsterInstance], folder: Path
) -> Path:
    """The model folder for ``model``: a local folder as is, else an object-store prefix downloaded into ``folder``.

    ``None``: the latest ``expression_model`` materialisation's ``model_key`` (``instance`` is called only then)."""
    if model and Path(model).is_dir():
        return Path(model)
    if not model:
        event = instance().get_latest_materialization_event(AssetKey("expression_model"))
        entry = None if event is None else event.asset_materialization.metadata.get("model_key")
        if entry is None:
            raise ExpressionInputError("no expression model materialised yet: train one, or pass --model")
        model = str(entry.value)
    if not download_prefix(store, model.rstrip("/") + "/", folder):
        raise ExpressionInputError(f"{model}: neither a model folder nor a model in the object store")
    return folder


PER_CLASS_COLUMNS = ["class", "precision", "recall", "f1", "support"]
EVALUATIONS = {"test": "faces", "external_test": "external photos (media/expressions)"}
"""Metadata prefix of an evaluation -> what it was evaluated on."""
FLAGGED_COLUMNS = ["video_id", "individual_id", "expression", "faces", "share", "splits"]


def model_metadata(result: "ReleaseModel", model_key: str, model_uri: str, digest: str) -> dict:
    metrics = result.metrics
    metadata = {
        "release_id": result.release_id,
        "model_key": model_key,
        "model_uri": MetadataValue.path(model_uri),
        "config_digest": digest,
        "device": metrics["device"],
        "best_epoch": metrics["best_epoch"],
        "train_images_per_s": round(metrics["train_images_per_s"], 1),
        "splits": table_metadata(pl.DataFrame([{"split": s, **counts} for s, counts in metrics["splits"].items()])),
        "learning_curves": png_markdown((result.folder / "learning_curves.png").read_bytes(), "learning curves"),
    }
    for name in EVALUATIONS:
        part = metrics[name]
        if part is not None:
            metadata[f"{name}_samples"] = part["samples"]
            metadata[f"{name}_accuracy"] = round(part["accuracy"], 4)
            metadata[f"{name}_macro_f1"] = round(part["macro_f1"], 4)
            metadata[f"{name}_per_class"] = table_metadata(pl.DataFrame(part["per_class"]).select(PER_CLASS_COLUMNS))
    if metrics["test"] is not None:
        metadata["confusion_matrix"] = png_markdown((result.folder / "confusion.png").read_bytes(), "confusion matrix")
    agreement = metrics["agreement"]
    metadata["faces_agreeing_with_prompt"] = f"{agreement['faces_agreeing']} of {agreement['faces_compared']}"
    metadata["performers_flagged"] = f"{agreement['performers_flagged']} of {agreement['performers']}"
    flagged = result.performers.filter("flagged").select(FLAGGED_COLUMNS)
    if flagged.height:
        metadata["flagged_performers"] = table_metadata(flagged, FLAGGED_ROWS_SHOWN)
    if result.warnings:
        metadata["warning"] = MetadataValue.md("\n".join(f"- {w}" for w in result.warnings))
    return metadata


@asset(
    group_name=DATASET_GROUP,
    kinds={"pytorch"},
    deps=[EXPORT_ASSET],
    pool=GPU_POOL,
    op_tags=GPU_OP_TAGS,
    description="Expression classifier fine-tuned on a dataset release: test and external metrics, label agreement.",
)
def expression_model(
    context: AssetExecutionContext, config: ExpressionModelConfig, object_store: ObjectStore, gpu: GpuResource
) -> MaterializeResult:
    from tiktokfer_assets.expression.release import train_release  # torch: only the step that trains loads it

    release_id = config.release_id or latest_release_id(context.instance)
    train_config = config.train_config()
    external = media_dir() / "expressions"
    prefix = f"models/{release_id}/{train_config.digest()}/"
    with tempfile.TemporaryDirectory() as tmp:
        release_dir = download_release(object_store, release_id, Path(tmp) / "release")
        context.log.info(f"training {train_config.backbone} on release {release_id} ({gpu.torch_device})")
        result = train_release(
            release_dir, Path(tmp) / "model", release_id, train_config, backbone_weights(train_config.backbone),
            gpu.torch_device,
            progress=lambda e: context.log.info(
                f"epoch {e.epoch}: train loss {e.train_loss:.3f}, accuracy {e.train_accuracy:.3f}; val macro-F1 "
                f"{e.val_macro_f1 if e.val_macro_f1 is None else round(e.val_macro_f1, 3)} ({e.seconds:.1f} s)"
            ),
            external_dir=external if config.external_test and external.is_dir() else None,
            min_test_faces=config.min_test_faces,
            agreement_threshold=config.agreement_threshold,
        )
        for file in sorted(result.folder.iterdir()):
            object_store.put_file(prefix + file.name, file)
        for warning in result.warnings:
            context.log.warning(warning)
        metadata = model_metadata(result, prefix.rstrip("/"), object_store.uri(prefix), train_config.digest())
        return MaterializeResult(metadata=metadata)


def train_on_latest_release(instance: DagsterInstance, resources: dict, config: dict | None = None) -> str:
    """Materialise ``expression_model`` on the latest export (the demo's last step).

    One line: the test macro-F1 (the demo's test split has a few faces), the external
    photos' (hundreds, the classes shared with the release), where the checkpoint is.

    ``config``: :class:`ExpressionModelConfig` fields (the defaults when ``None``)."""
    run_config = {"ops": {"expression_model": {"config": config or {}}}}
    result = materialize([expression_model], instance=instance, resources=resources, run_config=run_config)
    metadata = result.asset_materializations_for_node("expression_model")[0].metadata
    return f"Expression model on release {metadata['release_id'].value}: " + "; ".join([
        *(scores_line(metadata, name, what) for name, what in EVALUATIONS.items()),
        f"checkpoint {metadata['model_uri'].value}/model.pt",
    ])


def scores_line(metadata: dict, name: str, what: str) -> str:
    """``<name> macro-F1 0.123 (N <what>)``, or ``n/a`` when that evaluation did not run."""
    label = name.replace("_", " ")
    f1 = metadata.get(f"{name}_macro_f1")
    if f1 is None:
        return f"{label} macro-F1 n/a"
    return f"{label} macro-F1 {f1.value:.3f} ({metadata[f'{name}_samples'].value} {what})"
