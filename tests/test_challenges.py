"""Challenge validation: each kind of bad input gets its own clear error; good ones round-trip."""

from __future__ import annotations

import pytest

from tiktokfer_assets.challenges import ChallengeError, dump_challenge, load_challenge, parse_challenge
from tiktokfer_assets.paths import PROJECT_ROOT
from tiktokfer_assets.registry import get_challenge, register_challenge, stored_challenges


def definition(**changes) -> dict:
    base = {
        "name": "emoji_test",
        "source": {"kind": "local_folder", "path": "/tmp/videos"},
        "baseline": {"path": "/tmp/baseline.mp4"},
        "prompts": [
            {"label": "kiss", "start_s": 1.0, "end_s": 2.0},
            {"label": "angry", "start_s": 2.5, "end_s": 3.0},
        ],
    }
    base.update(changes)
    return base


def error_of(**changes) -> str:
    with pytest.raises(ChallengeError) as info:
        parse_challenge(definition(**changes))
    return str(info.value)


def test_valid_definition_parses_with_defaults():
    challenge = parse_challenge(definition())
    assert challenge.max_video_seconds == 60.0 and challenge.max_videos == 50
    assert [p.label for p in challenge.prompts] == ["kiss", "angry"]


@pytest.mark.parametrize("name", ["Emoji", "emoji challenge", "émoji", "a" * 65, "", "../etc", "a.b"])
def test_bad_names_are_refused(name):
    message = error_of(name=name)
    assert "name" in message and "lower-case letters" in message


@pytest.mark.parametrize("name", ["a", "emoji_challenge", "face-challenge-2", "x" * 64])
def test_good_names_pass(name):
    assert parse_challenge(definition(name=name)).name == name


def test_overlapping_prompts():
    message = error_of(prompts=[{"label": "a", "start_s": 1, "end_s": 3}, {"label": "b", "start_s": 2, "end_s": 4}])
    assert "'a'" in message and "'b'" in message and "overlap" in message


def test_unordered_prompts():
    message = error_of(prompts=[{"label": "a", "start_s": 5, "end_s": 6}, {"label": "b", "start_s": 1, "end_s": 2}])
    assert "baseline's order" in message


def test_empty_and_backwards_spans():
    assert "end_s" in error_of(prompts=[{"label": "a", "start_s": 2, "end_s": 2}])
    assert "a challenge needs at least one prompt" in error_of(prompts=[])
    assert "greater than or equal to 0" in error_of(prompts=[{"label": "a", "start_s": -1, "end_s": 2}])


def test_duplicate_labels():
    message = error_of(prompts=[{"label": "a", "start_s": 1, "end_s": 2}, {"label": "a", "start_s": 3, "end_s": 4}])
    assert "unique" in message and "'a'" in message


def test_prompts_past_the_baseline_end():
    challenge = parse_challenge(definition())
    challenge.check_baseline_duration(3.0)
    with pytest.raises(ChallengeError, match=r"\['angry'\] end after the baseline's end \(2.800s\)"):
        challenge.check_baseline_duration(2.8)


def test_unknown_source_kind_and_unknown_fields():
    assert "source" in error_of(source={"kind": "ftp", "path": "x"})
    assert "Extra inputs are not permitted" in error_of(colour="red")


def test_baseline_needs_exactly_one_location():
    assert "exactly one of 'path' or 'url'" in error_of(baseline={})
    assert "exactly one of 'path' or 'url'" in error_of(baseline={"path": "a.mp4", "url": "https://x"})


def test_old_expression_labels_must_be_prompt_labels():
    assert "['smile'] are not prompt labels" in error_of(expression_labels=["kiss", "smile"])


def test_old_expression_labels_load_as_a_mapping():
    challenge = parse_challenge(definition(expression_labels=["angry"]))
    assert challenge.expressions == {"kiss": None, "angry": "angry"}
    assert challenge.expression_of("angry") == "angry" and challenge.expression_of("kiss") is None
    assert "not both" in error_of(expression_labels=["angry"], expressions={"kiss": None, "angry": "anger"})


def test_expressions_map_every_prompt_label():
    challenge = parse_challenge(definition(expressions={"kiss": None, "angry": "anger"}))
    assert [challenge.expression_of(label) for label in ("kiss", "angry", None)] == [None, "anger", None]
    assert challenge.expression_classes == ["anger"]
    assert "no entry for prompts ['angry']" in error_of(expressions={"kiss": None})
    assert "['smile'], which are not prompt labels" in error_of(expressions={"kiss": None, "angry": "a", "smile": "s"})
    assert "use null for an instruction" in error_of(expressions={"kiss": " ", "angry": "anger"})
    with pytest.raises(ChallengeError, match="no prompt 'smile'"):
        challenge.expression_of("smile")


def test_without_a_vocabulary_every_prompt_is_its_own_class():
    assert parse_challenge(definition()).expression_classes == ["angry", "kiss"]


def test_shipped_challenges_carry_the_research_vocabulary():
    emoji = load_challenge(PROJECT_ROOT / "challenges" / "emoji_challenge.yaml")
    face = load_challenge(PROJECT_ROOT / "challenges" / "face_challenge.yaml")
    assert emoji.expression_of("here_we_go") is None and emoji.expression_of("cry") == "Cry"
    assert face.expression_of("ready") is None
    smiling = {face.expression_of(label) for label in ("slightly_smiling_face", "grinning_face_with_normal_eyes")}
    assert smiling == {"Smiling"}
    assert face.expression_of("nauseated_face") == "Nauseated-face"


def test_yaml_errors_name_the_file(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: [unclosed")
    with pytest.raises(ChallengeError, match="bad.yaml is not valid YAML"):
        load_challenge(bad)
    with pytest.raises(ChallengeError, match="cannot read challenge file"):
        load_challenge(tmp_path / "missing.yaml")
    bad.write_text("- just a list")
    with pytest.raises(ChallengeError, match="expected a mapping"):
        load_challenge(bad)


def test_relative_paths_resolve_against_the_file(tmp_path):
    file = tmp_path / "sub" / "c.yaml"
    file.parent.mkdir()
    parsed = parse_challenge(definition(source={"kind": "local_folder", "path": "vids"}, baseline={"path": "b.mp4"}))
    file.write_text(dump_challenge(parsed))
    challenge = load_challenge(file)
    assert challenge.source.path == str(tmp_path / "sub" / "vids")
    assert challenge.baseline.path == str(tmp_path / "sub" / "b.mp4")


@pytest.mark.parametrize("name", ["emoji_challenge", "face_challenge"])
def test_shipped_research_challenges_are_valid(name):
    challenge = load_challenge(PROJECT_ROOT / "challenges" / f"{name}.yaml")
    assert challenge.name == name
    assert challenge.source.kind in ("yt_dlp", "url_list", "research_api")
    assert len(challenge.prompts) == {"emoji_challenge": 11, "face_challenge": 13}[name]
    if name == "face_challenge":
        assert challenge.reaction_window is not None
        assert (challenge.reaction_window.start_s, challenge.reaction_window.end_s) == (1.0, 2.5)


def test_registry_round_trip_and_versions(resources, instance):
    store = resources["table_store"]
    challenge = parse_challenge(definition())
    assert register_challenge(challenge, store, instance) is True
    assert register_challenge(challenge, store, instance) is False  # same version: nothing to do
    assert instance.get_dynamic_partitions("challenge") == ["emoji_test"]
    assert get_challenge(store, "emoji_test") == challenge
    changed = parse_challenge(definition(max_videos=7))
    assert changed.version != challenge.version
    assert register_challenge(changed, store, instance) is True
    assert stored_challenges(store).height == 1
    assert get_challenge(store, "emoji_test").max_videos == 7
    with pytest.raises(ChallengeError, match="not registered"):
        get_challenge(store, "other")
