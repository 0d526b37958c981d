"""The code location loads, validates with the Dagster CLI, and partitions by challenge."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from dagster import DynamicPartitionsDefinition

from tiktokfer_assets.automation.jobs import DATASET_GROUP
from tiktokfer_assets.definitions import defs
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


def test_every_asset_is_partitioned_by_challenge():
    """All but the dataset group (and dependencies defined elsewhere), which spans every challenge."""
    graph = defs.resolve_asset_graph()
    keys = [k for k in graph.get_all_asset_keys() if graph.get(k).is_materializable]
    assert keys
    for key in keys:
        if graph.get(key).group_name == DATASET_GROUP:
            continue
        partitions = graph.get(key).partitions_def
        assert isinstance(partitions, DynamicPartitionsDefinition) and partitions.name == "challenge", key
