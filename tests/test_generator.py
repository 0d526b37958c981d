"""The generated challenge is what its ground truth says it is."""

from __future__ import annotations

import pytest

from tiktokfer_assets.challenges import load_challenge
from tiktokfer_assets.media.probe import ProbeError, probe
from tiktokfer_assets.testkit.truth import expression_on_screen

pytestmark = [pytest.mark.media, pytest.mark.slow]


def test_definition_matches_truth(generated):
    challenge = load_challenge(generated.challenge_yaml)
    assert [(p.label, p.start_s, p.end_s) for p in challenge.prompts] == [
        (p["label"], p["start_s"], p["end_s"]) for p in generated.truth["prompts"]
    ]
    challenge.check_baseline_duration(probe(generated.root / "baseline.mp4").duration_s)


def test_videos_are_what_the_truth_says(generated):
    people = {}
    for video in generated.truth["videos"]:
        path = generated.root / video["file"]
        if video["corrupt"]:
            with pytest.raises(ProbeError):
                probe(path)
            continue
        info = probe(path)
        assert abs(info.duration_s - video["duration_s"]) < 0.1
        assert info.has_audio == video["has_audio"]
        expected = (720, 640) if len(video["people"]) == 2 else (640, 360) if video["sideways"] else (360, 640)
        assert (info.width, info.height) == expected
        for person in video["people"]:
            people.setdefault(person["person"], []).append(video["video_id"])
            for region in person["regions"]:
                x1, y1, x2, y2 = region["box"]
                assert 0 <= x1 < x2 <= info.width + 1 and 0 <= y1 < y2 <= info.height + 1
    performers = set(people) - {generated.truth["baseline"]["person"]}
    assert all(len(people[p]) >= 2 for p in performers)


def test_prompt_presence(generated):
    by_id = {v["video_id"]: v for v in generated.truth["videos"]}
    assert not any(p["present"] for p in by_id["v07"]["prompts"])  # no audio track
    assert not any(p["present"] for p in by_id["v09"]["prompts"])  # corrupt
    stops_early = [p["present"] for p in by_id["v03"]["prompts"]]
    assert stops_early[0] and not stops_early[-1]
    assert all(p["present"] for p in by_id["v01"]["prompts"])
    v02 = by_id["v02"]  # starts 0.8 s into the sound
    assert v02["prompts"][0]["start_s"] == pytest.approx(generated.truth["prompts"][0]["start_s"] - 0.8)


def test_on_screen_truth_shows_each_prompt_class_during_its_window(generated):
    truth = generated.truth
    classes = {c for c in truth["expressions"].values() if c}
    assert classes == {"anger", "disgust", "happiness", "sadness", "surprise"}
    assert set(truth["performers"]["photos"]) == {p["person"] for v in truth["videos"] for p in v["people"]}
    shown = set()
    for video in [truth["baseline"], *truth["videos"]]:
        for entry in video["on_screen"]:
            assert entry["photo"].split("/")[0] == entry["expression"]  # the photo's folder is its class
            assert truth["performers"]["photos"][entry["person"]][entry["expression"]] == entry["photo"]
            shown.add(entry["expression"])
    assert shown == classes | {"neutral"}
    v01 = generated.video("v01")
    for prompt in v01["prompts"]:
        middle = (prompt["start_s"] + prompt["end_s"]) / 2
        expected = truth["expressions"][prompt["label"]] or "neutral"
        assert expression_on_screen(truth, "v01", middle) in (expected, None)  # None: no photo of that class


def test_expression_on_screen_picks_the_side_of_a_duet():
    truth = {"videos": [{"video_id": "d", "on_screen": [
        {"start_s": 0.0, "end_s": 2.0, "person": "a", "expression": "neutral", "photo": "p",
         "region": [0, 0, 360, 640]},
        {"start_s": 1.0, "end_s": 2.0, "person": "b", "expression": "anger", "photo": "q",
         "region": [360, 0, 720, 640]},
    ]}], "baseline": {"on_screen": []}}
    assert expression_on_screen(truth, "d", 1.5, x=500) == "anger"
    assert expression_on_screen(truth, "d", 1.5, x=100) == "neutral"
    assert expression_on_screen(truth, "d", 1.5, x=800) == "anger"  # nearest region
    assert expression_on_screen(truth, "d", 0.5, x=500) == "neutral"  # only one on screen
    assert expression_on_screen(truth, "d", 2.5) is None
    assert expression_on_screen(truth, "baseline", 0.0) is None
    with pytest.raises(KeyError, match="no video 'x'"):
        expression_on_screen(truth, "x", 0.0)
