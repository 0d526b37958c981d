"""The labelled expression dataset on the generated demo: labels survive dedup, crops are upright and aligned."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from test_individuals_assets import true_person
from tiktokfer_assets.checks.factory import PartitionTables
from tiktokfer_assets.checks.pipeline import labels_lost_by_dedup
from tiktokfer_assets.models import RETINAFACE_WEIGHTS
from tiktokfer_assets.scope import ChallengeScope
from tiktokfer_assets.testkit.truth import expression_on_screen
from tiktokfer_assets.vision.align import roll_degrees
from tiktokfer_assets.vision.crops import decode_image
from tiktokfer_assets.vision.detector import FaceDetector
from tiktokfer_assets.weights import require_file

REDETECTED_ROLL_DEG = 15.0  # RetinaFace's landmark noise on 112 px crops: 14.2 on one grimace (v05 at 5 s)

pytestmark = [pytest.mark.media, pytest.mark.slow]


@pytest.fixture(scope="module")
def tables(pipeline):
    resources, _, _ = pipeline
    store = resources["table_store"]
    return {name: store.read(name, ["demo"]) for name in ("faces", "faces_with_final_ind", "unique_faces")}


def on_screen_of(generated, face: dict) -> str | None:
    return expression_on_screen(generated.truth, face["video_id"], face["timestamp_s"], (face["x1"] + face["x2"]) / 2)


def test_unique_faces_keep_every_performer_expression_on_screen(generated, tables):
    final, unique = tables["faces_with_final_ind"], tables["unique_faces"]
    person_of = {f["face_id"]: true_person(generated, f) for f in final.iter_rows(named=True)}
    kept = {(person_of[f["face_id"]], f["expression"]) for f in unique.iter_rows(named=True) if f["expression"]}
    vocabulary = generated.truth["expressions"]
    expressions = {c for c in vocabulary.values() if c}
    # every (person, expression) on screen during a labelled frame of a found prompt
    shown = {(person_of[f["face_id"]], on_screen_of(generated, f))
             for f in final.filter(pl.col("expression").is_not_null()).iter_rows(named=True)}
    wanted = {(p, e) for p, e in shown if e in expressions}
    assert len(wanted) >= 10 and wanted <= kept, sorted(wanted - kept)
    assert {e for _, e in kept} == expressions


def test_labelled_unique_faces_carry_the_expression_on_screen(generated, tables):
    boxes = tables["faces_with_final_ind"].select("face_id", "x1", "x2")
    labelled = tables["unique_faces"].join(boxes, on="face_id").filter(pl.col("expression").is_not_null())
    agree = [on_screen_of(generated, f) == f["expression"] for f in labelled.iter_rows(named=True)]
    assert len(agree) >= 20 and np.mean(agree) >= 0.95, np.mean(agree)


def test_instructions_have_no_expression_and_the_creator_is_flagged(generated, tables):
    final, unique = tables["faces_with_final_ind"], tables["unique_faces"]
    instructions = [label for label, expression in generated.truth["expressions"].items() if expression is None]
    assert instructions == ["ready"]
    ready = final.filter(pl.col("prompt_label").is_in(instructions))
    assert ready.height > 0 and ready["expression"].null_count() == ready.height
    assert unique.filter(pl.col("prompt_label").is_in(instructions))["expression"].null_count() == \
        unique.filter(pl.col("prompt_label").is_in(instructions)).height
    creator = unique.filter(pl.col("video_id") == "baseline")["individual_id"].unique()
    assert unique.filter(pl.col("individual_id").is_in(creator.implode()))["is_baseline_creator"].all()
    assert unique.filter(pl.col("is_baseline_creator"))["individual_id"].n_unique() == 1


def test_every_aligned_crop_of_the_sideways_video_is_upright(pipeline, generated, tables):
    """The faces' roll in the frame is the truth's (+90); the aligned crops' roll (the checked column) is below 10
    degrees, and so within RetinaFace's own noise is the roll of landmarks re-detected on the stored crops: 15
    degrees (measured: at most 8.5 but for one expressive face at 14.2 whose stored landmarks give 0.2;
    re-detected on the upright video's crops it reached 8; on the old sideways crops, 31 of 33 were above 45)."""
    resources, _, _ = pipeline
    sideways = [v["video_id"] for v in generated.truth["videos"] if v["sideways"]]
    faces = tables["faces"].filter(pl.col("video_id").is_in(sideways))
    # content turned 90 degrees clockwise: every face lies at +90 in the frame (never upside down: -90)
    assert faces.height >= 10 and (faces["roll_deg"] - 90).abs().max() < 15, faces["roll_deg"].to_list()
    weights = require_file(RETINAFACE_WEIGHTS)
    detector = FaceDetector(weights, "cpu", batch_size=4, score_threshold=0.5)
    crops = [decode_image(resources["object_store"].get_bytes(k)) for k in faces["aligned_key"]]
    assert {c.shape for c in crops} == {(112, 112, 3)}
    rolls = [roll_degrees(found[0].landmarks) for found in detector.detect(crops) if found]
    assert (faces["aligned_roll_deg"].abs() < 10).all()
    assert len(rolls) >= 0.9 * len(crops) and max(abs(r) for r in rolls) < REDETECTED_ROLL_DEG, rolls
    contexts = [decode_image(resources["object_store"].get_bytes(k)) for k in faces["object_key"]]
    upright = [roll_degrees(found[0].landmarks) for found in detector.detect(contexts) if found]
    assert len(upright) >= 0.9 * len(contexts) and max(abs(r) for r in upright) < REDETECTED_ROLL_DEG, upright


def test_the_label_check_fails_on_a_table_that_lost_a_label(pipeline, tables):
    resources, _, _ = pipeline
    checked = PartitionTables(ChallengeScope("demo", resources["table_store"]), resources["object_store"])
    assert labels_lost_by_dedup(checked).is_empty()
    unique = tables["unique_faces"]
    lost = unique.filter(pl.col("expression").is_not_null()).row(0, named=True)
    other_expression = (pl.col("expression") != lost["expression"]).fill_null(True)
    kept = (pl.col("individual_id") != lost["individual_id"]) | other_expression
    checked._tables = {"faces_with_final_ind": tables["faces_with_final_ind"], "unique_faces": unique.filter(kept)}
    bad = labels_lost_by_dedup(checked)
    assert bad.rows() == [(lost["individual_id"], lost["expression"])]
