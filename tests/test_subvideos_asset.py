"""subvideos on the generated challenge: accuracy against the ground truth, per music level."""

from __future__ import annotations

import statistics

import polars as pl
import pytest
from dagster import materialize

from tiktokfer_assets.assets.subvideos import subvideos
from tiktokfer_assets.assets.videos import videos
from tiktokfer_assets.challenges import load_challenge
from tiktokfer_assets.registry import register_challenge

pytestmark = [pytest.mark.media, pytest.mark.slow]


@pytest.fixture
def matched(generated, resources, instance, registered):
    result = materialize([videos, subvideos], partition_key="demo", resources=resources, instance=instance)
    assert result.success
    return result, resources["table_store"].read("subvideos", ["demo"])


def test_accuracy_at_0_and_10_db(generated, matched):
    _, rows = matched
    by_key = {(r["video_id"], r["label"]): r for r in rows.iter_rows(named=True)}
    for level in (0.0, 10.0):
        errors, present, found_present, false_found = [], 0, 0, 0
        for video in generated.truth["videos"]:
            if video["music_to_prompt_db"] != level or video["corrupt"]:
                continue
            for truth in video["prompts"]:
                row = by_key[(video["video_id"], truth["label"])]
                if truth["present"]:
                    present += 1
                    if row["found"]:
                        found_present += 1
                        errors.append(abs(row["start_s"] - truth["start_s"]))
                elif row["found"]:
                    false_found += 1
        assert present >= 11, level  # enough present prompts for the rates to mean something (6 prompts)
        assert found_present / present >= 0.95, (level, found_present, present)
        assert false_found == 0, level
        assert statistics.median(errors) <= 0.020, (level, statistics.median(errors))


def test_absent_audio_and_truncation_are_reported_not_guessed(generated, matched):
    _, rows = matched
    no_audio = rows.filter(pl.col("video_id") == "v07")
    assert no_audio.height == len(generated.truth["prompts"])
    assert not no_audio["found"].any() and set(no_audio["reason"]) == {"no audio"}
    stops_early = rows.filter(pl.col("video_id") == "v03").sort("prompt_index")
    present = [p["present"] for p in generated.video("v03")["prompts"]]
    assert stops_early["found"].to_list() == present and present[0] and not present[-1]
    assert set(stops_early.filter(~pl.col("found"))["reason"]) == {"outside video"}
    assert "v09" not in rows["video_id"].to_list()  # the corrupt file never became a video


def test_baseline_rows_and_label_spans(generated, matched):
    _, rows = matched
    baseline = rows.filter(pl.col("video_id") == "baseline").sort("prompt_index")
    assert baseline["start_s"].to_list() == [p["start_s"] for p in generated.truth["prompts"]]
    found = rows.filter(pl.col("found"))
    assert (found["label_start_s"] == found["start_s"]).all() and (found["label_end_s"] == found["end_s"]).all()
    assert set(found["rate"]) == {1.0} and rows.filter(~pl.col("found"))["rate"].is_null().all()  # no video is re-timed


def test_reaction_window_labels_the_span_after_each_prompt(generated, tmp_path, resources, instance):
    text = generated.challenge_yaml.read_text() + "reaction_window: {start_s: 1.0, end_s: 2.5}\n"
    yaml_path = generated.root / "reaction.yaml"
    yaml_path.write_text(text.replace("name: demo", "name: reaction"))
    challenge = load_challenge(yaml_path)
    register_challenge(challenge, resources["table_store"], instance)
    assert materialize([videos, subvideos], partition_key="reaction", resources=resources, instance=instance).success
    rows = resources["table_store"].read("subvideos", ["reaction"])
    durations = dict(resources["table_store"].read("videos", ["reaction"]).select("video_id", "duration_s").iter_rows())
    for row in rows.filter(pl.col("found")).iter_rows(named=True):
        if row["end_s"] + 1.0 >= durations[row["video_id"]]:
            assert row["label_start_s"] is None
            continue
        assert row["label_start_s"] == pytest.approx(row["end_s"] + 1.0)
        assert row["label_end_s"] == pytest.approx(min(row["end_s"] + 2.5, durations[row["video_id"]]))
