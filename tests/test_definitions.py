"""The code location loads lazily, validates with the Dagster CLI, is the defs folder's domains, and partitions by
challenge (the dataset's assets: none; the trending monitor's: by feed)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from dagster import AssetKey, Definitions, load_from_defs_folder

from tiktokfer_assets.assets.dataset_export import DATASET_GROUP
from tiktokfer_assets.automation.jobs import (
    ALL_ASSETS_JOB,
    DATASET_JOB,
    INGEST_JOB,
    MONITOR_GROUP,
    REPROCESS_FROM_FACES_JOB,
)
from tiktokfer_assets.automation.trending import MONITOR_JOB
from tiktokfer_assets.definitions import build_definitions, defs
from tiktokfer_assets.paths import PROJECT_ROOT

DAGSTER = Path(sys.executable).parent / "dagster"
PARTITIONS_BY_GROUP = {DATASET_GROUP: None, MONITOR_GROUP: "feed"}  # every other group: "challenge"


@pytest.fixture(scope="module")
def location() -> Definitions:
    return defs()


def contents(definitions: Definitions) -> dict:
    graph = definitions.resolve_asset_graph()
    return {
        "assets": sorted(key.to_user_string() for key in graph.get_all_asset_keys()),
        "checks": sorted(key.to_user_string() for key in graph.asset_check_keys),
        "jobs": sorted(job.name for job in definitions.resolve_all_job_defs()),
        "sensors": sorted(sensor.name for sensor in definitions.sensors),
        "resources": sorted(definitions.resources),
    }


def test_dagster_definitions_validate(tmp_path):
    env = {**os.environ, "DAGSTER_HOME": str(tmp_path), "TIKTOKFER_HOME": str(tmp_path / "home")}
    (tmp_path / "dagster.yaml").touch()
    done = subprocess.run(
        [str(DAGSTER), "definitions", "validate", "-w", "workspace.yaml"],
        cwd=PROJECT_ROOT, env=env, capture_output=True, text=True,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Validation successful" in done.stdout + done.stderr


def test_assets_are_partitioned_by_challenge_but_the_dataset_and_the_monitor(location):
    graph = location.resolve_asset_graph()
    keys = [k for k in graph.get_all_asset_keys() if graph.get(k).is_materializable]
    groups = {graph.get(k).group_name for k in keys}
    assert {DATASET_GROUP, MONITOR_GROUP, "ingest"} <= groups
    for key in keys:
        partitions = graph.get(key).partitions_def
        expected = PARTITIONS_BY_GROUP.get(graph.get(key).group_name, "challenge")
        assert (partitions.name if partitions else None) == expected, key


def test_each_job_keeps_to_its_partitions(location):
    graph = location.resolve_asset_graph()

    def group(name: str) -> set[AssetKey]:
        return {key for key in graph.get_all_asset_keys() if graph.get(key).group_name == name}

    dataset, monitor = group(DATASET_GROUP), group(MONITOR_GROUP)
    assert {AssetKey("dataset_export"), AssetKey("expression_model")} <= dataset
    assert monitor == {AssetKey("monitored_videos"), AssetKey("alerts")}
    assert set(location.resolve_job_def(DATASET_JOB).asset_layer.executable_asset_keys) == dataset
    assert set(location.resolve_job_def(MONITOR_JOB).asset_layer.executable_asset_keys) == monitor
    for job in (ALL_ASSETS_JOB, REPROCESS_FROM_FACES_JOB, INGEST_JOB):
        keys = set(location.resolve_job_def(job).asset_layer.executable_asset_keys)
        assert keys and not keys & (dataset | monitor), job


def test_the_defs_folder_is_the_code_location(location):
    """`dg` loads the domains of tiktokfer_assets/defs/ (pyproject's [tool.dg]); the code location merges the same."""
    assert contents(load_from_defs_folder(path_within_project=PROJECT_ROOT)) == contents(location)
    assert {"alerts", "monitored_videos"} <= set(contents(location)["assets"])
    assert "alerts:video_id_in_monitored_videos" in contents(location)["checks"]


def test_importing_the_code_location_builds_nothing_and_loads_no_torch_hdbscan_or_aws():
    """Start-up: the heavy libraries load in the steps that use them, not when the code location is imported; the
    definitions (and the environment's resources) are built when loaded, so a production setting missing is an error
    then, not on import."""
    heavy = ["torch", "torchvision", "hdbscan", "sklearn", "dagster_aws", "boto3", "open_clip"]
    code = (f"import sys, tiktokfer_assets.definitions as d; print([m for m in {heavy!r} if m in sys.modules]); "
            "sys.stdout.flush(); d.defs()")
    env = {key: value for key, value in os.environ.items() if key != "TIKTOKFER_S3_BUCKET"}
    done = subprocess.run([sys.executable, "-c", code], cwd=PROJECT_ROOT, capture_output=True, text=True,
                          env={**env, "TIKTOKFER_ENV": "production"})
    assert done.stdout.strip() == "[]", done.stderr
    assert done.returncode == 1 and "TIKTOKFER_ENV=production needs TIKTOKFER_S3_BUCKET" in done.stderr


def test_materialize_challenge_honours_tiktokfer_executor(tmp_path, monkeypatch):
    """With TIKTOKFER_EXECUTOR=multiprocess the run's steps run in subprocesses (an unregistered challenge fails
    in its first step, quickly), and a failed run raises."""
    from dagster import DagsterEventType, DagsterInstance

    from tiktokfer_assets.definitions import materialize_challenge

    monkeypatch.setenv("TIKTOKFER_EXECUTOR", "multiprocess")
    monkeypatch.setenv("TIKTOKFER_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dagster"))
    (tmp_path / "dagster").mkdir()
    (tmp_path / "dagster" / "dagster.yaml").touch()
    with DagsterInstance.get() as instance:
        failed = "'nowhere' failed \\(multiprocess executor\\); failed steps: \\['videos'\\]"
        with pytest.raises(RuntimeError, match=failed):
            materialize_challenge(defs, "nowhere", instance)
        (run,) = instance.get_runs()
        (failure,) = instance.all_logs(run.run_id, of_type=DagsterEventType.STEP_FAILURE)
        assert failure.step_key == "videos" and failure.dagster_event.pid != os.getpid()  # ran in a subprocess
        with pytest.raises(ValueError, match="pass tiktokfer_assets.definitions.defs"):
            materialize_challenge(build_definitions(), "nowhere", instance)


def test_the_fork_server_rehearses_a_step_start_and_survives_its_failure(tmp_path, capsys):
    """The fork server's preload loads the repository and opens the instance as a step does (so steps import nothing
    more); a broken instance is printed, not raised: the fork server would die of anything but an ImportError."""
    from tiktokfer_assets import forkserver

    (tmp_path / "dagster.yaml").write_text("storage: {no_such_storage: {}}\n")
    forkserver.rehearse_step_start(str(tmp_path))
    assert "the rehearsal of a step's start failed" in capsys.readouterr().err
    (tmp_path / "dagster.yaml").write_text("")
    forkserver.rehearse_step_start(str(tmp_path))
    assert capsys.readouterr().err == ""
