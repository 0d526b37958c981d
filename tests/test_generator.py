"""The generated challenge is what its ground truth says it is."""

from __future__ import annotations

import pytest

from tiktokfer_assets.challenges import load_challenge
from tiktokfer_assets.media.probe import ProbeError, probe

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
