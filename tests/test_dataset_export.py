"""The dataset export: persons across challenges, stable splits, the release's files, the CLI.

One stored world of three challenges (``dataset_support``), exported through the
``dataset_release`` job on local storage: first the two earlier challenges, then all three.
"""

from __future__ import annotations

from pathlib import Path

import datasets
import polars as pl
import pytest
import torchvision
from dagster import AssetKey, DagsterInstance

from dataset_support import Appearance, register_stub, store_world
from tiktokfer_assets import cli
from tiktokfer_assets.dataset.release import CARD, MANIFEST, RELEASES_PREFIX
from tiktokfer_assets.dataset.splits import SPLITS
from tiktokfer_assets.definitions import build_definitions, materialize_dataset
from tiktokfer_assets.environments import local_resources

pytestmark = [pytest.mark.media, pytest.mark.slow]  # the markers of main's test tiers

EARLIER = [
    # planted person P0: two videos of challenge c1 (one individual there) and one video of c2
    Appearance("c1", "v1", "i0000", "P0"), Appearance("c1", "v2", "i0000", "P0"),
    Appearance("c1", "v3", "i0001", "P1"), Appearance("c1", "v4", "i0002", "P2"),
    Appearance("c1", "v5", "i0003", "P3"), Appearance("c1", "v6", "i0004", "creator", creator=True),
    Appearance("c2", "w1", "i0000", "P0"), Appearance("c2", "w2", "i0001", "P4"),
    Appearance("c2", "w3", "i0002", "P5"), Appearance("c2", "w4", "i0003", "P1"),
]
LATER = [
    Appearance("c3", "x1", "i0000", "P0"), Appearance("c3", "x2", "i0001", "P6"),
    Appearance("c3", "x3", "i0002", "P7"), Appearance("c3", "x4", "i0003", "P2"),
]


def latest_metadata(instance: DagsterInstance) -> dict:
    event = instance.get_latest_materialization_event(AssetKey("dataset_export"))
    return {key: value.value for key, value in event.asset_materialization.metadata.items()}


def release_folder(resources: dict, metadata: dict) -> Path:
    return Path(resources["object_store"].root) / RELEASES_PREFIX / metadata["release_id"]


def manifest_of(resources: dict, metadata: dict) -> pl.DataFrame:
    return pl.read_parquet(release_folder(resources, metadata) / MANIFEST)


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """The export of c1 + c2, then (c3 added) of all three, then the same again; in the CLI's environment."""
    tmp = tmp_path_factory.mktemp("dataset")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("TIKTOKFER_HOME", str(tmp / "home"))
        patch.setenv("DAGSTER_HOME", str(tmp / "dagster"))
        instance = cli.dagster_instance()
        resources = local_resources(tmp / "home")
        defs = build_definitions(resources)
        truth = store_world(resources, instance, EARLIER)
        register_stub(resources["table_store"], instance, "fresh")  # registered, nothing materialised: skipped
        materialize_dataset(defs, instance)
        first = latest_metadata(instance)
        truth = pl.concat([truth, store_world(resources, instance, LATER)])
        materialize_dataset(defs, instance)
        second = latest_metadata(instance)
        materialize_dataset(defs, instance)
        again = latest_metadata(instance)
        yield {"resources": resources, "instance": instance, "truth": truth, "tmp": tmp,
               "first": first, "second": second, "again": again}


def test_a_person_in_two_videos_and_two_challenges_is_one_person_in_one_split(world):
    manifest = manifest_of(world["resources"], world["first"]).join(world["truth"], on=["challenge", "face_id"])
    p0 = manifest.filter(pl.col("person") == "P0")
    assert sorted(set(p0["video_id"])) == ["v1", "v2", "w1"]
    assert p0["person_id"].n_unique() == 1 and p0["split"].n_unique() == 1
    # the planted persons and the linked persons are the same partition of the faces
    pairs = manifest.select("person", "person_id").unique()
    assert pairs.height == manifest["person"].n_unique() == manifest["person_id"].n_unique() == 6
    assert manifest.group_by("person_id").agg(pl.col("split").n_unique())["split"].max() == 1
    assert set(manifest["split"]) == set(SPLITS)  # six persons: every split gets one


def test_adding_a_challenge_keeps_every_earlier_persons_split(world):
    before = manifest_of(world["resources"], world["first"]).select("challenge", "face_id", "person_id", "split")
    after = manifest_of(world["resources"], world["second"]).join(world["truth"], on=["challenge", "face_id"])
    assert world["second"]["release_id"] != world["first"]["release_id"]
    kept = before.join(after, on=["challenge", "face_id"], suffix="_after")
    assert kept.height == before.height
    moved = (pl.col("person_id") != pl.col("person_id_after")) | (pl.col("split") != pl.col("split_after"))
    assert kept.filter(moved).is_empty()
    # the earlier persons seen again in c3 join their person; the new ones are new persons
    for person in ("P0", "P2"):
        assert after.filter(pl.col("person") == person)["person_id"].n_unique() == 1
    assert after.select("person", "person_id").unique().height == after["person"].n_unique() == 8


def test_same_inputs_give_the_same_release(world):
    assert world["again"]["release_id"] == world["second"]["release_id"]


def test_release_leaves_out_instructions_and_the_baseline_creator(world):
    manifest = manifest_of(world["resources"], world["second"]).join(world["truth"], on=["challenge", "face_id"])
    labelled = world["truth"].filter(pl.col("expression").is_not_null() & (pl.col("person") != "creator"))
    assert manifest.height == labelled.height
    assert (manifest["expression"] == manifest["expression_right"]).all()
    assert manifest.filter(pl.col("author").is_null() | pl.col("source_url").is_null()).is_empty()
    assert all(Path(path).is_file() for path in manifest["context_path"])


def test_loaders_count_what_the_manifest_holds(world, tmp_path):
    folder = release_folder(world["resources"], world["second"])
    manifest = pl.read_parquet(folder / MANIFEST)
    expected = {(s, e): n for s, e, n in manifest.group_by("split", "expression").len().iter_rows()}

    loaded = datasets.load_dataset("imagefolder", data_dir=str(folder), cache_dir=str(tmp_path / "hf"))
    names = {"train": "train", "val": "validation", "test": "test"}
    from_hf = {}
    for split in SPLITS:
        rows = loaded[names[split]]
        assert rows[0]["image"].size == (112, 112)
        for expression in rows["expression"]:
            from_hf[split, expression] = from_hf.get((split, expression), 0) + 1
    assert from_hf == expected

    from_tv = {}
    for split in SPLITS:
        images = torchvision.datasets.ImageFolder(str(folder / split))
        for _, label in images.samples:
            key = (split, images.classes[label])
            from_tv[key] = from_tv.get(key, 0) + 1
    assert from_tv == expected


def test_materialisation_shows_counts_persons_and_a_gallery(world):
    metadata, manifest = world["second"], manifest_of(world["resources"], world["second"])
    assert metadata["release_uri"] == str(release_folder(world["resources"], metadata))
    counts = {row.data["expression"]: row.data for row in metadata["counts"].records}
    for expression, rows in manifest.group_by("expression"):
        assert counts[expression[0]]["total"] == rows.height
        assert [counts[expression[0]][s] for s in SPLITS] == [rows.filter(pl.col("split") == s).height for s in SPLITS]
    persons = {row.data["split"]: row.data["persons"] for row in metadata["persons_per_split"].records}
    assert sum(persons.values()) == manifest["person_id"].n_unique() == 8
    assert metadata["gallery"].count("data:image/png;base64,") == manifest["expression"].n_unique()
    card = (release_folder(world["resources"], metadata) / CARD).read_text()
    assert "version-of-c3" in card and "| happiness |" in card


def test_cli_export_writes_the_release_to_a_folder(world, tmp_path, capsys):
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("TIKTOKFER_HOME", str(world["tmp"] / "home"))
        patch.setenv("DAGSTER_HOME", str(world["tmp"] / "dagster"))
        assert cli.main(["export", "c1", "c2", "--out", str(tmp_path / "out")]) == 0
    printed = capsys.readouterr().out
    manifest = pl.read_parquet(tmp_path / "out" / MANIFEST)
    assert set(manifest["challenge"]) == {"c1", "c2"}
    assert sorted(p.relative_to(tmp_path / "out").as_posix() for p in (tmp_path / "out").rglob("*.jpg")) == \
        sorted(manifest["aligned_path"])
    assert (tmp_path / "out" / CARD).is_file() and str(tmp_path / "out") in printed and "happiness" in printed


def test_cli_export_of_an_unknown_challenge_is_a_one_line_error(world, tmp_path, capsys):
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("TIKTOKFER_HOME", str(world["tmp"] / "home"))
        patch.setenv("DAGSTER_HOME", str(world["tmp"] / "dagster"))
        assert cli.main(["export", "nope", "--out", str(tmp_path / "bad")]) == 2
    assert capsys.readouterr().err == "error: unknown challenges ['nope']; registered: ['c1', 'c2', 'c3', 'fresh']\n"
    assert not (tmp_path / "bad").exists()
