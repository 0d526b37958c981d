"""The dataset export in production mode: release on S3 (SeaweedFS), tables and splits in Postgres.

Reuses the production test stack (``test_production_storage``): a stored world of two
challenges is written straight to the production stores, then ``dataset_release`` runs.
"""

from __future__ import annotations

import io

import polars as pl
import pytest
from dagster import AssetKey

from dataset_support import Appearance, store_world
from support.seaweedfs import seaweedfs
from test_production_storage import BUCKET, pg, production, production_env
from tiktokfer_assets.dataset.release import CARD, MANIFEST, release_root
from tiktokfer_assets.definitions import build_definitions, materialize_dataset

pytestmark = [pytest.mark.postgres, pytest.mark.s3, pytest.mark.media, pytest.mark.slow]

WORLD = [
    Appearance("a", "v1", "i0000", "P0"), Appearance("a", "v2", "i0001", "P1"), Appearance("a", "v3", "i0002", "P2"),
    Appearance("b", "w1", "i0000", "P0"), Appearance("b", "w2", "i0001", "P3"),
]


@pytest.fixture(scope="module")
def s3():
    with seaweedfs() as server:
        yield server


def test_export_on_s3_and_postgres(s3, database, tmp_path):
    with production(production_env(s3, database, "dataset"), tmp_path / "home") as (resources, instance):
        truth = store_world(resources, instance, WORLD)
        materialize_dataset(build_definitions(resources), instance)
        event = instance.get_latest_materialization_event(AssetKey("dataset_export")).asset_materialization
        release_id = event.metadata["release_id"].value
        root = release_root(release_id)
        assert event.metadata["release_uri"].value == f"s3://{BUCKET}/dataset/{root}"
        keys = set(resources["object_store"].list_keys(f"{root}/"))
        manifest = pl.read_parquet(io.BytesIO(resources["object_store"].get_bytes(f"{root}/{MANIFEST}")))

    labelled = truth.filter(pl.col("expression").is_not_null())
    assert manifest.height == labelled.height
    files = [*manifest["aligned_path"], MANIFEST, CARD, *(f"{split}/metadata.csv" for split in set(manifest["split"]))]
    assert keys == {f"{root}/{path}" for path in files}
    client = s3.client()  # straight from the server, under the prefix
    assert client.head_object(Bucket=BUCKET, Key=f"dataset/{root}/{CARD}")["ContentLength"] > 500
    assert all(uri.startswith(f"s3://{BUCKET}/dataset/faces/") for uri in manifest["context_path"])
    p0 = manifest.join(truth, on=["challenge", "face_id"]).filter(pl.col("person") == "P0")
    assert p0["person_id"].n_unique() == 1 and set(p0["challenge"]) == {"a", "b"}
    stored = pg(database, "SELECT challenge, count(*), count(DISTINCT split) FROM dataset.dataset_splits "
                          "WHERE release_id = %s GROUP BY challenge ORDER BY challenge", [release_id])
    assert stored == [("a", manifest.filter(pl.col("challenge") == "a").height, len(set(manifest.filter(
        pl.col("challenge") == "a")["split"]))), ("b", manifest.filter(pl.col("challenge") == "b").height, len(set(
            manifest.filter(pl.col("challenge") == "b")["split"])))]
