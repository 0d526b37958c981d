"""The code location loads, validates with the Dagster CLI, and partitions by challenge."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from dagster import AssetKey, DynamicPartitionsDefinition

from tiktokfer_assets.assets.dataset_export import DATASET_GROUP
from tiktokfer_assets.automation.jobs import ALL_ASSETS_JOB, DATASET_JOB, INGEST_JOB, REPROCESS_FROM_FACES_JOB
from tiktokfer_assets.definitions import build_definitions, defs
from tiktokfer_assets.paths import PROJECT_ROOT

DAGSTER = Path(sys.executable).parent / "dagster"


def test_dagster_definitions_validate(tmp_path):
    env = {**os.environ, "DAGSTER_HOME": str(tmp_path), "TIKTOKFER_HOME": str(tmp_path / "home")}
    (tmp_path / "dagster.yaml").touch()
    done = subprocess.run(
        [str(DAGSTER), "definitions", "validate", "-w", "workspace.yaml"],
        cwd=PROJECT_ROOT, env=env, capture_output=True, text=True,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Validation successful" in done.stdout + done.stderr


def test_every_asset_but_the_datasets_is_partitioned_by_challenge():
    graph = defs.resolve_asset_graph()
    keys = [k for k in graph.get_all_asset_keys() if graph.get(k).is_materializable]
    assert keys
    for key in keys:
        partitions = graph.get(key).partitions_def
        if graph.get(key).group_name == DATASET_GROUP:
            assert partitions is None, key
        else:
            assert isinstance(partitions, DynamicPartitionsDefinition) and partitions.name == "challenge", key


def test_the_dataset_group_has_its_own_job_and_stays_out_of_the_challenge_jobs():
    dataset = {key for key in defs.resolve_asset_graph().get_all_asset_keys()
               if defs.resolve_asset_graph().get(key).group_name == DATASET_GROUP}
    assert {AssetKey("dataset_export"), AssetKey("expression_model")} <= dataset
    assert set(defs.resolve_job_def(DATASET_JOB).asset_layer.executable_asset_keys) == dataset
    for job in (ALL_ASSETS_JOB, REPROCESS_FROM_FACES_JOB, INGEST_JOB):
        keys = set(defs.resolve_job_def(job).asset_layer.executable_asset_keys)
        assert keys and not keys & dataset, job


def test_importing_the_code_location_loads_no_torch_hdbscan_or_aws():
    """Start-up: the heavy libraries load in the steps that use them, not when the code location is imported."""
    heavy = ["torch", "torchvision", "hdbscan", "sklearn", "dagster_aws", "boto3", "open_clip"]
    code = f"import sys, tiktokfer_assets.definitions; print([m for m in {heavy!r} if m in sys.modules])"
    done = subprocess.run([sys.executable, "-c", code], cwd=PROJECT_ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


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
