"""Content collections: a records file of the generator's videos (no baseline, no prompts) through the assets.

``videos``, ``frames`` and ``contents`` materialise; the audio and identity assets skip the
collection with their reason; ``contents.jsonl`` validates against schemas/content.schema.json
with one record per readable video (the truncated one is a failure row), and so does the output
of ``tiktokfer frames``.
"""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import polars as pl
import pytest
from dagster import AssetKey, instance_for_test

from tiktokfer_assets.assets.collection import FACES_NOT_ASKED, NO_PROMPTS, SKIPPED
from tiktokfer_assets.automation.jobs import ALL_ASSETS_JOB
from tiktokfer_assets.challenges import ChallengeError, load_challenge, parse_challenge
from tiktokfer_assets.definitions import build_definitions, materialize_challenge
from tiktokfer_assets.environments import local_resources
from tiktokfer_assets.media.frames import sample_times
from tiktokfer_assets.paths import PROJECT_ROOT
from tiktokfer_assets.registry import register_challenge
from tiktokfer_assets.scope import ChallengeScope
from tiktokfer_assets.sources.base import INVALID
from tiktokfer_assets.sources.records import read_records
from tiktokfer_assets.testkit.generator import VideoPlan, available_people, build_challenge

SCHEMA = json.loads((PROJECT_ROOT / "schemas" / "content.schema.json").read_text())
CAP_S = 4.0  # the collection's max_video_seconds: c02 (5 s) is cut to it
SKIPPING = {"subvideos": NO_PROMPTS, "faces": FACES_NOT_ASKED, "nofaces": FACES_NOT_ASKED,
            "face_embeddings": NO_PROMPTS, "faces_with_intra_ind": NO_PROMPTS, "similarities": NO_PROMPTS,
            "individuals": NO_PROMPTS, "unique_faces": NO_PROMPTS}


def write_lines(path: Path, lines: list[str]) -> Path:
    path.write_text("".join(line + "\n" for line in lines))
    return path


def test_records_carry_metadata_and_name_each_bad_line(tmp_path):
    (tmp_path / "clips").mkdir()
    records = write_lines(tmp_path / "contents.jsonl", [
        json.dumps({"content_id": "7301", "video_url": "https://www.tiktok.com/@a/video/7301", "score": 0.5}),
        json.dumps({"id": "a-1", "path": "clips/a.mp4", "tags": ["x"]}),
        "not json",
        json.dumps({"content_id": "7301", "video_url": "https://example.com/b.mp4"}),
        json.dumps({"content_id": "no video"}),
        json.dumps({"content_id": "7302"}),
        "",
        json.dumps(["a list"]),
    ])
    refs = read_records(records)
    assert [(r.video_id, r.url) for r in refs[:2]] == [
        ("7301", "https://www.tiktok.com/@a/video/7301"), ("a-1", str(tmp_path / "clips" / "a.mp4"))]
    assert refs[0].info["record"]["score"] == 0.5 and refs[1].info["record"]["tags"] == ["x"]
    assert [(r.video_id, r.info[INVALID]) for r in refs[2:]] == [
        ("line-3", "contents.jsonl line 3: not a JSON object"),
        ("line-4", "contents.jsonl line 4: id '7301' repeats line 1"),
        ("line-5", "contents.jsonl line 5: video id 'no video' is invalid: use 1-128 letters, digits, '_' or '-'"),
        ("line-6", "contents.jsonl line 6: content '7302' has no video (one of video_url, url, video_path, path)"),
        ("line-8", "contents.jsonl line 8: not a JSON object"),
    ]
    csv_refs = read_records(write_lines(tmp_path / "contents.csv", ["video_id,url,likes", "9,clips/a.mp4,3"]))
    assert [(r.video_id, r.url, r.info["record"]) for r in csv_refs] == [
        ("9", str(tmp_path / "clips" / "a.mp4"), {"video_id": "9", "url": "clips/a.mp4", "likes": "3"})]
    with pytest.raises(ValueError, match="JSON Lines"):
        read_records(write_lines(tmp_path / "contents.txt", ["x"]))


def test_a_collection_has_neither_baseline_nor_prompts():
    source = {"kind": "records", "path": "/x/contents.jsonl"}
    collection = parse_challenge({"name": "c", "source": source})
    assert collection.is_collection and collection.prompts == [] and collection.expression_classes == []
    prompts = [{"label": "go", "start_s": 0, "end_s": 1}]
    with pytest.raises(ChallengeError, match="prompts need a baseline video"):
        parse_challenge({"name": "c", "source": source, "prompts": prompts})
    with pytest.raises(ChallengeError, match="a challenge needs at least one prompt"):
        parse_challenge({"name": "c", "source": source, "baseline": {"path": "/x/b.mp4"}})


def test_the_dataset_export_leaves_collections_out(tmp_path, instance):
    from tiktokfer_assets.assets.dataset_export import selected_versions
    from tiktokfer_assets.dataset import DatasetError

    store = local_resources(tmp_path)["table_store"]
    prompts = [{"label": "go", "start_s": 0, "end_s": 1}]
    challenge = parse_challenge({"name": "dance", "source": {"kind": "local_folder", "path": "/v"},
                                 "baseline": {"path": "/b.mp4"}, "prompts": prompts})
    collection = parse_challenge({"name": "clips", "source": {"kind": "records", "path": "/r.jsonl"}})
    for definition in (challenge, collection):
        register_challenge(definition, store, instance)
    assert selected_versions(store, []) == {"dance": challenge.version}
    with pytest.raises(DatasetError, match=r"unknown challenges \['clips'\]"):
        selected_versions(store, ["clips"])


@pytest.fixture(scope="module")
def collection(tmp_path_factory) -> Path:
    """The generator's videos (two readable, one truncated) listed in a records file with metadata, and its YAML."""
    out = tmp_path_factory.mktemp("collection")
    person = available_people()[0]
    plans = [VideoPlan("c01", [person], duration_s=3.0), VideoPlan("c02", [person], duration_s=5.0),
             VideoPlan("c03", [person], duration_s=3.0, corrupt=True)]
    build_challenge(out / "generated", people=[person, available_people()[1], available_people()[2]], plans=plans,
                    prompts=[("ready", "go")], max_video_seconds=CAP_S)
    write_lines(out / "contents.jsonl", [
        json.dumps({"content_id": vid, "video_path": f"generated/videos/{vid}.mp4", "market": "FR", "rank": n})
        for n, vid in enumerate(["c01", "c02", "c03"])
    ])
    (out / "collection.yaml").write_text(
        "name: clips\nsource: {kind: records, path: contents.jsonl}\n" f"max_video_seconds: {CAP_S}\n")
    return out


def check_contents(lines: list[str], store_has) -> dict[str, dict]:
    """Every line validates against the schema and its frame keys are stored; the records by content id."""
    records = [json.loads(line) for line in lines]
    for record in records:
        jsonschema.validate(record, SCHEMA)
        assert all(store_has(frame["key"]) for frame in record["derived"]["frames"])
    return {record["content_id"]: record for record in records}


@pytest.mark.media
@pytest.mark.slow
def test_a_collection_materialises_videos_and_frames_and_the_rest_skips(collection, tmp_path):
    resources = local_resources(tmp_path / "home")
    store, objects = resources["table_store"], resources["object_store"]
    with instance_for_test() as instance:
        register_challenge(load_challenge(collection / "collection.yaml"), store, instance)
        result = materialize_challenge(build_definitions(resources), "clips", instance)
        assert result.success
        metadata = {event.asset_key.to_user_string(): event.step_materialization_data.materialization.metadata
                    for event in result.get_asset_materialization_events()}
        assert {asset: metadata[asset][SKIPPED].value for asset in SKIPPING} == SKIPPING
        assert not any(SKIPPED in metadata[asset] for asset in ("videos", "frames", "contents"))
        assert all(store.read(table, ["clips"]).is_empty() for table in
                   ("subvideos", "faces", "nofaces", "faces_with_intra_ind", "similarities",
                    "faces_with_final_ind", "unique_faces"))
        asked = build_definitions(resources).resolve_job_def(ALL_ASSETS_JOB).execute_in_process(
            partition_key="clips", instance=instance, asset_selection=[AssetKey("faces"), AssetKey("nofaces")],
            run_config={"ops": {"faces": {"config": {"content_collections": True}}}})
        assert asked.success

    videos = store.read("videos", ["clips"]).sort("video_id")
    assert videos["video_id"].to_list() == ["c01", "c02"] and set(videos["role"]) == {"performance"}
    assert videos["trimmed"].to_list() == [False, True]
    (failure,) = store.read("video_failures", ["clips"]).iter_rows(named=True)
    assert (failure["video_id"], failure["stage"]) == ("c03", "probe")
    frames = store.read("frames", ["clips"])
    for video in videos.iter_rows(named=True):
        got = frames.filter(pl.col("video_id") == video["video_id"]).sort("timestamp_s")["timestamp_s"].to_list()
        assert got == sample_times(video["duration_s"], 0.5, CAP_S)
    assert frames["timestamp_s"].max() < CAP_S and frames["prompt_label"].null_count() == frames.height
    # faces when the config asks: the generator's one performer is found in every frame
    faces = store.read("faces", ["clips"])
    assert set(faces["frame_id"]) == set(frames["frame_id"]) and store.read("nofaces", ["clips"]).is_empty()

    lines = objects.get_bytes(ChallengeScope("clips", store).contents_key()).decode().splitlines()
    records = check_contents(lines, objects.exists)
    assert sorted(records) == ["c01", "c02"]
    assert records["c02"]["metadata"] == {"market": "FR", "rank": 1}
    assert [f["timestamp_s"] for f in records["c02"]["derived"]["frames"]] == sample_times(
        videos["duration_s"][1], 0.5, CAP_S)
    assert records["c01"]["video_url"] == str(collection / "generated" / "videos" / "c01.mp4")


@pytest.mark.media
@pytest.mark.slow
def test_tiktokfer_frames_writes_the_records_to_a_folder(collection, tmp_path, capsys):
    from tiktokfer_assets.cli import main

    out = tmp_path / "out"
    assert main(["frames", str(collection / "contents.jsonl"), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "2 contents" in printed and "c03" in printed
    records = check_contents((out / "contents.jsonl").read_text().splitlines(), lambda key: True)
    assert sorted(records) == ["c01", "c02"]
    assert all(Path(frame["uri"]).is_file() for record in records.values() for frame in record["derived"]["frames"])
