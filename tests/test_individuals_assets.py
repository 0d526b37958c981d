"""individuals and unique_faces on the generated challenge: known people, duets, corrections, dedup."""

from __future__ import annotations

import json

import polars as pl
import pytest
from dagster import AssetKey, RunConfig, materialize

from tiktokfer_assets.assets.individuals import IndividualsConfig
from tiktokfer_assets.definitions import ASSETS
from tiktokfer_assets.identity.clustering import pairwise_f1

pytestmark = [pytest.mark.media, pytest.mark.slow]


@pytest.fixture(scope="module")
def final(pipeline):
    resources, _, _ = pipeline
    return resources["table_store"].read("faces_with_final_ind", ["demo"])


def true_person(generated, face: dict) -> str:
    """Who a face is, from the generator's ground truth (duets: left half is the first person)."""
    if face["video_id"] == "baseline":
        return generated.truth["baseline"]["person"]
    people = generated.video(face["video_id"])["people"]
    if len(people) == 1:
        return people[0]["person"]
    return people[0 if (face["x1"] + face["x2"]) / 2 < 360 else 1]["person"]


def test_individuals_match_the_people(generated, final):
    truth = {f["face_id"]: true_person(generated, f) for f in final.iter_rows(named=True)}
    predicted = dict(final.select("face_id", "individual_id").iter_rows())
    assert pairwise_f1(predicted, truth) >= 0.9
    # no track mixes two people
    for (track,), group in final.group_by(["track_id"]):
        assert len({truth[f] for f in group["face_id"]}) == 1, track
    people = {p for p in truth.values()}
    assert final["individual_id"].n_unique() == len(people)


def test_duet_is_two_tracks_and_the_creator_is_flagged(generated, final):
    duet = final.filter(pl.col("video_id") == "v06")
    assert duet["track_id"].n_unique() >= 2
    left = duet.filter((pl.col("x1") + pl.col("x2")) / 2 < 360)
    right = duet.filter((pl.col("x1") + pl.col("x2")) / 2 >= 360)
    assert left["is_baseline_creator"].all() and not right["is_baseline_creator"].any()
    assert set(left["track_id"]).isdisjoint(right["track_id"])
    creator = final.filter(pl.col("video_id") == "baseline")["individual_id"].unique().to_list()
    assert left["individual_id"].unique().to_list() == creator
    assert final.filter(pl.col("is_baseline_creator"))["video_id"].unique().sort().to_list() == ["baseline", "v06"]


def test_similarities_are_sparse_pairs_above_the_floor(pipeline, final):
    resources, _, _ = pipeline
    pairs = resources["table_store"].read("similarities", ["demo"])
    tracks = final["track_id"].n_unique()
    assert 0 < pairs.height < tracks * (tracks - 1) / 2
    assert (pairs["similarity"] >= 0.2).all() and (pairs["track_a"] < pairs["track_b"]).all()


def test_corrections_take_effect_and_stale_ones_are_reported(pipeline, final, tmp_path):
    resources, instance, _ = pipeline
    obama = final.filter(pl.col("video_id") == "v01")["track_id"][0]
    rose = final.filter(pl.col("video_id") == "v04")["track_id"][0]
    v08 = final.filter(pl.col("video_id") == "v08")["track_id"][0]
    corrections = tmp_path / "corrections.yaml"
    corrections.write_text(json.dumps({"version": 1, "challenges": {"demo": {
        "merge": [{"tracks": [obama, rose]}],
        "drop": [{"track": v08}],
        "split": [{"track": "v01/t0", "at_s": 5.0}],
        "keep_apart": [{"tracks": ["v01/t0", "v01/t0/s5000"]}, {"tracks": ["nope/t9", obama]}],
    }}}))
    config = RunConfig(ops={"individuals": IndividualsConfig(corrections_file=str(corrections))})
    result = materialize(
        ASSETS, partition_key="demo", resources=resources, instance=instance, run_config=config,
        selection=[AssetKey("individuals"), AssetKey("faces_with_intra_ind"), AssetKey("similarities")],
    )
    assert result.success
    corrected = resources["table_store"].read("faces_with_final_ind", ["demo"])
    individual = dict(corrected.select("track_id", "individual_id").unique().iter_rows())
    assert v08 not in individual  # dropped
    assert "v01/t0/s5000" in individual  # split
    assert individual["v01/t0"] != individual["v01/t0/s5000"]  # kept apart although the same person
    assert individual[rose] in (individual["v01/t0"], individual["v01/t0/s5000"])  # merged with obama's track
    metadata = result.asset_materializations_for_node("individuals")[-1].metadata
    stale = metadata["stale_corrections"].value
    assert len(stale) == 1 and "nope/t9" in stale[0]
    # put the real run's results back for the other tests of this module
    assert materialize(
        ASSETS, partition_key="demo", resources=resources, instance=instance,
        selection=[AssetKey("individuals"), AssetKey("faces_with_intra_ind"), AssetKey("similarities")],
    ).success


def test_unique_faces_keep_one_per_duplicate_group(pipeline, final):
    resources, _, _ = pipeline
    unique = resources["table_store"].read("unique_faces", ["demo"])
    assert 0 < unique.height < final.height
    removed = [face for dup in unique["duplicates"] for face in json.loads(dup)]
    assert len(removed) == final.height - unique.height
    assert set(removed).isdisjoint(unique["face_id"])
    assert set(unique["individual_id"]) == set(final["individual_id"])  # nobody lost
    group = {f: (i, e) for f, i, e in final.select("face_id", "individual_id", "expression").iter_rows()}
    scores = dict(final.select("face_id", pl.col("score").round(2)).iter_rows())
    for row in unique.iter_rows(named=True):
        duplicates = json.loads(row["duplicates"])
        assert all(group[d] == group[row["face_id"]] for d in duplicates)  # never across expressions
        assert all(scores[row["face_id"]] >= scores[d] for d in duplicates)


def test_individuals_gallery_shows_each_individual_with_its_tracks(pipeline, final):
    _, _, result = pipeline
    gallery = result.asset_materializations_for_node("individuals")[-1].metadata["gallery"].value
    for individual, tracks in final.group_by("individual_id").agg(pl.col("track_id").unique()).iter_rows():
        assert f"**{individual}**" in gallery and all(t in gallery for t in tracks)
    assert gallery.count("](data:image/png;base64,") == final["individual_id"].n_unique()
