"""The challenge and new-video sensors, evaluated with build_sensor_context on a real instance and table store.

The sensors return their partitions as requests (the daemon adds them): the tests assert on
the requests and that the instance was left as it was.
"""

from __future__ import annotations

import shutil
import uuid

import pytest
from dagster import (
    AddDynamicPartitionsRequest,
    DagsterInstance,
    DagsterRun,
    DagsterRunStatus,
    SensorResult,
    build_sensor_context,
    materialize,
)

from automation_support import small_challenge, write_definition
from tiktokfer_assets.assets.videos import videos
from tiktokfer_assets.automation.challenge_sensor import CHALLENGES_DIR_ENV, build_challenge_sensor
from tiktokfer_assets.automation.new_video_sensor import (
    NewVideoCursor,
    build_new_video_sensor,
    fingerprint,
    round_robin,
)
from tiktokfer_assets.challenges import load_challenge
from tiktokfer_assets.partitions import challenge_partitions
from tiktokfer_assets.registry import get_challenge, register_challenge, store_challenge, stored_challenges

pytestmark = [pytest.mark.media, pytest.mark.slow]


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    return small_challenge(tmp_path_factory.mktemp("sensors") / "small")


@pytest.fixture
def folder(tmp_path, monkeypatch):
    path = tmp_path / "challenges"
    path.mkdir()
    monkeypatch.setenv(CHALLENGES_DIR_ENV, str(path))
    return path


def tick(sensor, instance, resources, cursor=None):
    with build_sensor_context(instance=instance, cursor=cursor, resources=resources) as context:
        return sensor(context)


def console(capfd) -> str:
    """What was written to the console (where the sensor's logger writes too) since the last read."""
    out = capfd.readouterr()
    return out.out + out.err


def partitions(instance: DagsterInstance) -> list[str]:
    return sorted(instance.get_dynamic_partitions(challenge_partitions.name))


def requested_partitions(result: SensorResult) -> list[str]:
    """The challenge partitions the result asks the daemon to add."""
    requests = result.dynamic_partitions_requests
    assert all(isinstance(r, AddDynamicPartitionsRequest) and r.partitions_def_name == "challenge" for r in requests)
    return [key for request in requests for key in request.partition_keys]


def test_new_definition_is_registered_and_run_once_per_version(small, folder, instance, resources):
    sensor = build_challenge_sensor()
    store = resources["table_store"]
    write_definition(small, folder / "alpha.yaml", name="alpha")

    first = tick(sensor, instance, resources)
    challenge = get_challenge(store, "alpha")
    assert requested_partitions(first) == ["alpha"] and partitions(instance) == []
    assert [(r.partition_key, r.run_key) for r in first.run_requests] == [("alpha", f"alpha:{challenge.version}")]
    assert challenge.source.path == str(small.root / "videos")

    again = tick(sensor, instance, resources, first.cursor)
    assert again.run_requests == [] and requested_partitions(again) == []
    # a sensor that lost its cursor asks again with the same run key, which Dagster runs only once
    fresh = tick(sensor, instance, resources)
    assert [r.run_key for r in fresh.run_requests] == [f"alpha:{challenge.version}"]

    write_definition(small, folder / "alpha.yaml", name="alpha", max_videos=1)
    changed = tick(sensor, instance, resources, again.cursor)
    new_version = get_challenge(store, "alpha").version
    assert new_version != challenge.version
    assert [r.run_key for r in changed.run_requests] == [f"alpha:{new_version}"]
    assert requested_partitions(changed) == ["alpha"]  # the daemon skips a partition that exists
    assert stored_challenges(store).height == 1 and partitions(instance) == []


def test_broken_definitions_are_logged_and_skipped(small, folder, instance, resources, capfd):
    sensor = build_challenge_sensor()
    (folder / "a_syntax.yaml").write_text("name: [unclosed\n")
    write_definition(small, folder / "b_bad_name.yaml", name="Bad Name!")
    write_definition(
        small, folder / "c_no_baseline.yaml", name="nobaseline", baseline={"path": str(folder / "missing.mp4")}
    )
    write_definition(small, folder / "d_good.yaml", name="good")
    write_definition(small, folder / "e_same_name.yaml", name="good", max_videos=3)

    capfd.readouterr()
    result = tick(sensor, instance, resources)
    assert [r.partition_key for r in result.run_requests] == ["good"]
    assert requested_partitions(result) == ["good"] and partitions(instance) == []
    errors = console(capfd)
    assert "a_syntax.yaml" in errors and "not valid YAML" in errors
    assert "b_bad_name.yaml" in errors and "challenge name 'Bad Name!' is invalid" in errors
    assert "c_no_baseline.yaml" in errors and "baseline video" in errors and "does not exist" in errors
    assert "e_same_name.yaml" in errors and "already defined in d_good.yaml" in errors

    quiet = tick(sensor, instance, resources, result.cursor)
    assert quiet.run_requests == [] and " - ERROR - " not in console(capfd)  # reported once, until the file changes

    write_definition(small, folder / "b_bad_name.yaml", name="fixed")
    fixed = tick(sensor, instance, resources, quiet.cursor)
    assert [r.partition_key for r in fixed.run_requests] == ["fixed"]


def test_work_per_tick_is_bounded(small, folder, instance, resources):
    sensor = build_challenge_sensor(max_per_tick=2)
    for name in ("c1", "c2", "c3"):
        write_definition(small, folder / f"{name}.yaml", name=name)
    first = tick(sensor, instance, resources)
    second = tick(sensor, instance, resources, first.cursor)
    third = tick(sensor, instance, resources, second.cursor)
    assert [r.partition_key for r in first.run_requests] == requested_partitions(first) == ["c1", "c2"]
    assert [r.partition_key for r in second.run_requests] == requested_partitions(second) == ["c3"]
    assert third.run_requests == [] and requested_partitions(third) == []


def test_round_robin_wraps_after_the_last_visited():
    assert round_robin(["c", "a", "b"], None, 2) == ["a", "b"]
    assert round_robin(["a", "b", "c"], "b", 2) == ["c", "a"]
    assert round_robin(["a", "b", "c"], "c", 5) == ["a", "b", "c"]
    assert round_robin(["a", "c"], "b", 1) == ["c"]  # "b" was deleted since
    assert round_robin([], "a", 3) == []


@pytest.fixture
def ingested(small, tmp_path, instance, resources):
    """The small challenge, with a video folder of its own, registered and its videos asset materialised."""
    root = tmp_path / "small"
    shutil.copytree(small.root, root)
    challenge = load_challenge(write_definition(small, tmp_path / "small.yaml"))
    source = challenge.source.model_copy(update={"path": str(root / "videos")})
    challenge = challenge.model_copy(update={"source": source})
    register_challenge(challenge, resources["table_store"], instance)
    result = materialize([videos], partition_key=challenge.name, resources=resources, instance=instance)
    assert result.success
    return root


def test_new_videos_request_one_run_and_advance_the_cursor(ingested, instance, resources):
    sensor = build_new_video_sensor()
    nothing = tick(sensor, instance, resources)
    assert nothing.run_requests == []
    assert NewVideoCursor.parse(nothing.cursor).last == "small"

    shutil.copyfile(ingested / "videos" / "v01.mp4", ingested / "videos" / "v03.mp4")
    shutil.copyfile(ingested / "videos" / "v02.mp4", ingested / "videos" / "v04.mp4")
    found = tick(sensor, instance, resources, nothing.cursor)
    assert [(r.partition_key, r.run_key) for r in found.run_requests] == [
        ("small", f"small:videos:{fingerprint(['v03', 'v04'])}")
    ]
    assert found.run_requests[0].tags["tiktokfer/new_videos"] == "2" and requested_partitions(found) == ["small"]
    assert NewVideoCursor.parse(found.cursor).requested == {"small": fingerprint(["v03", "v04"])}

    # the same new videos (their run not finished or failed) are not requested twice
    assert tick(sensor, instance, resources, found.cursor).run_requests == []

    # once the run stored them, nothing is new; a later video is
    materialize([videos], partition_key="small", resources=resources, instance=instance)
    settled = tick(sensor, instance, resources, found.cursor)
    assert settled.run_requests == [] and NewVideoCursor.parse(settled.cursor).requested == {}
    shutil.copyfile(ingested / "videos" / "v01.mp4", ingested / "videos" / "v05.mp4")
    later = tick(sensor, instance, resources, settled.cursor)
    assert [r.run_key for r in later.run_requests] == [f"small:videos:{fingerprint(['v05'])}"]


def test_listing_is_bounded_per_challenge(ingested, instance, resources):
    shutil.copyfile(ingested / "videos" / "v01.mp4", ingested / "videos" / "v03.mp4")
    # the first two listed videos are stored; v03 lies past the bounded listing
    assert tick(build_new_video_sensor(listing_limit=2), instance, resources).run_requests == []
    assert len(tick(build_new_video_sensor(listing_limit=3), instance, resources).run_requests) == 1


def test_challenges_are_visited_round_robin(small, tmp_path, instance, resources):
    store = resources["table_store"]
    for name in ("r1", "r2", "r3"):  # definitions stored, their partitions not added yet
        store_challenge(load_challenge(write_definition(small, tmp_path / f"{name}.yaml", name=name)), store)
    sensor = build_new_video_sensor(challenges_per_tick=2)
    first = tick(sensor, instance, resources)
    second = tick(sensor, instance, resources, first.cursor)
    # never ingested: every listed video is new; each run comes with its partition
    assert [r.partition_key for r in first.run_requests] == requested_partitions(first) == ["r1", "r2"]
    assert [r.partition_key for r in second.run_requests] == ["r3"]  # r1's new set was requested already
    assert partitions(instance) == []
    assert NewVideoCursor.parse(second.cursor).last == "r1"


def test_unlistable_source_does_not_block_the_others(small, tmp_path, instance, resources, capfd):
    store = resources["table_store"]
    gone = tmp_path / "gone"
    shutil.copytree(small.root / "videos", gone)
    broken = load_challenge(write_definition(small, tmp_path / "a.yaml", name="a_gone"))
    broken = broken.model_copy(update={"source": broken.source.model_copy(update={"path": str(gone)})})
    store_challenge(broken, store)
    store_challenge(load_challenge(write_definition(small, tmp_path / "b.yaml", name="b_ok")), store)
    shutil.rmtree(gone)
    capfd.readouterr()
    result = tick(build_new_video_sensor(), instance, resources)
    assert [r.partition_key for r in result.run_requests] == ["b_ok"]
    assert "WARNING - a_gone: could not list its videos" in capfd.readouterr().err


def test_challenge_with_an_active_run_is_left_for_later(small, tmp_path, instance, resources):
    busy = load_challenge(write_definition(small, tmp_path / "busy.yaml", name="busy"))
    store_challenge(busy, resources["table_store"])
    run = instance.add_run(DagsterRun(job_name="challenge_all_assets", run_id=str(uuid.uuid4()),
                                      status=DagsterRunStatus.STARTED, tags={"dagster/partition": "busy"}))
    assert tick(build_new_video_sensor(), instance, resources).run_requests == []
    instance.report_run_failed(run)
    assert [r.partition_key for r in tick(build_new_video_sensor(), instance, resources).run_requests] == ["busy"]
