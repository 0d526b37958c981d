"""The expression_model asset on a small release in the export's layout, built from the real labelled photos."""

from __future__ import annotations

import io
import re

import polars as pl
import pytest
from dagster import AssetKey, AssetMaterialization, materialize
from PIL import Image

from tiktokfer_assets.assets.expression_model import expression_model, fetch_model, train_on_latest_release
from tiktokfer_assets.expression.artifact import ARTIFACT_FILES, load_model
from tiktokfer_assets.expression.data import CROP_SIZE, labelled_photos
from tiktokfer_assets.expression.errors import ExpressionInputError
from tiktokfer_assets.paths import media_dir

pytestmark = pytest.mark.media

RELEASE = "r-test"
# research-style class names mapped onto the photo set's
CLASSES = {"Angry": "anger", "Smiling": "happiness", "sad": "sadness"}
PER_SPLIT = {"train": 8, "val": 3, "test": 3}
CONFIG = {"backbone": "retinaface", "epochs": 1, "external_test": False}
RUN_CONFIG = {"ops": {"expression_model": {"config": CONFIG}}}


@pytest.fixture
def release(resources):
    """datasets/<RELEASE>/: manifest.parquet and <split>/<expression>/<face>.jpg, 14 faces per class."""
    store = resources["object_store"]
    photos = labelled_photos(media_dir() / "expressions")
    rows = []
    for expression, photo_class in CLASSES.items():
        files = iter(p for p, label in zip(photos.paths, photos.labels) if label == photo_class)
        for split, count in PER_SPLIT.items():
            for n in range(count):
                face_id = f"{expression}-{split}-{n}"
                path = f"{split}/{expression}/{face_id}.jpg"
                buffer = io.BytesIO()
                Image.open(next(files)).convert("RGB").resize(CROP_SIZE).save(buffer, "JPEG")
                store.put_bytes(f"datasets/{RELEASE}/{path}", buffer.getvalue())
                rows.append({
                    "face_id": face_id, "challenge": "demo", "video_id": f"v{n % 4}", "author": "a",
                    "individual_id": f"i{n % 4}", "person_id": f"p{n % 4}", "expression": expression,
                    "split": split, "aligned_path": path, "context_path": "", "timestamp_s": 0.5 * n,
                    "score": 0.99, "source_url": "",
                })
    buffer = io.BytesIO()
    pl.DataFrame(rows).write_parquet(buffer)
    store.put_bytes(f"datasets/{RELEASE}/manifest.parquet", buffer.getvalue())
    return store, pl.DataFrame(rows)


@pytest.mark.slow
def test_expression_model_trains_on_the_latest_release_and_stores_the_artifact(release, resources, instance, tmp_path):
    store, manifest = release
    before = {key: store.get_bytes(key) for key in store.list_keys(f"datasets/{RELEASE}/")}
    instance.report_runless_asset_event(AssetMaterialization("dataset_export", metadata={"release_id": RELEASE}))
    line = train_on_latest_release(instance, resources, CONFIG)  # what the demo prints
    metadata = instance.get_latest_materialization_event(AssetKey("expression_model")).asset_materialization.metadata
    expected = (rf"Expression model on release {RELEASE}: test macro-F1 [01]\.\d{{3}} \(9 faces\); "
                r"external test macro-F1 n/a; checkpoint .+/model\.pt")
    assert re.fullmatch(expected, line)

    assert metadata["release_id"].value == RELEASE
    key = metadata["model_key"].value
    assert key.startswith(f"models/{RELEASE}/")
    stored = {k.removeprefix(key + "/") for k in store.list_keys(key)}
    assert set(ARTIFACT_FILES) | {"agreement.parquet", "performers.parquet", "confusion.png"} <= stored
    assert 0 <= metadata["test_macro_f1"].value <= 1
    assert [r.data["class"] for r in metadata["test_per_class"].value.records] == sorted(CLASSES)
    assert [(r.data["split"], r.data["faces"], r.data["persons"]) for r in metadata["splits"].value.records] == [
        ("train", 24, 4), ("val", 9, 3), ("test", 9, 3)]
    for image in ("confusion_matrix", "learning_curves"):
        assert metadata[image].value.startswith("![") and "data:image/png;base64," in metadata[image].value
    assert "test classes with fewer than 10 faces" in metadata["warning"].value

    agreement = pl.read_parquet(io.BytesIO(store.get_bytes(f"{key}/agreement.parquet")))
    assert sorted(agreement["face_id"]) == sorted(manifest["face_id"])
    assert agreement["agrees"].null_count() == 0
    # the release is left as it was; the model loads back from the object store
    assert {k: store.get_bytes(k) for k in store.list_keys(f"datasets/{RELEASE}/")} == before
    assert load_model(fetch_model(None, store, lambda: instance, tmp_path)).classes == sorted(CLASSES)


def test_expression_model_without_an_export_fails_with_the_fix(resources, instance):
    result = materialize(
        [expression_model], resources=resources, instance=instance, run_config=RUN_CONFIG, raise_on_error=False
    )
    assert not result.success
    error = result.get_step_failure_events()[0].step_failure_data.error
    messages = [error.message] + ([error.cause.message] if error.cause else [])
    assert any("dataset_export has never been materialised" in m for m in messages)


def test_fetch_model_names_what_is_missing(resources, instance, tmp_path):
    with pytest.raises(ExpressionInputError, match="no expression model materialised yet"):
        fetch_model(None, resources["object_store"], lambda: instance, tmp_path)
    with pytest.raises(ExpressionInputError, match="models/none: neither a model folder"):
        fetch_model("models/none", resources["object_store"], lambda: instance, tmp_path)
