"""Shared fixtures: the generated challenge (built once per session), local resources, a Dagster instance.

The markers of pyproject.toml say what a test needs; two of them are checked here
before the test runs: ``media`` (the fetched weights and media, a clear failure with
the fix when missing) and ``gpu`` (skipped without a CUDA device). A test that uses a
fixture below without the markers that fixture needs stops the collection.
"""

from __future__ import annotations

import functools
import os
import uuid
from pathlib import Path

import pytest
import torch
from dagster import DagsterInstance, instance_for_test

from tiktokfer_assets.challenges import load_challenge
from tiktokfer_assets.definitions import build_definitions, materialize_challenge
from tiktokfer_assets.environments import local_resources
from tiktokfer_assets.registry import register_challenge
from tiktokfer_assets.resources.postgres_table_store import (
    create_database,
    drop_database,
)
from tiktokfer_assets.testkit.generator import GeneratedChallenge, build_challenge
from tiktokfer_assets.weights import WeightsError, read_manifest, require_file

ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"
# fixture -> the markers of every test that uses it (so that `make test-fast` never needs it)
FIXTURE_MARKERS = {
    "database": ("postgres",),
    "generated": ("media", "slow"),
    "registered": ("media", "slow"),
    "pipeline": ("media", "slow"),
}


@functools.cache
def _missing_media() -> str | None:
    """Why the weights and media of the manifest are not all fetched (None when they are)."""
    try:
        for entry in read_manifest():
            require_file(entry.path)
    except WeightsError as exc:
        return str(exc)
    return None


def pytest_runtest_setup(item):
    if item.get_closest_marker("media") and _missing_media():
        pytest.fail(_missing_media(), pytrace=False)
    if item.get_closest_marker("gpu") and not torch.cuda.is_available():
        pytest.skip("needs a CUDA device")


def pytest_collection_modifyitems(config, items):
    unmarked = []
    for item in items:
        for fixture, markers in FIXTURE_MARKERS.items():
            missing = [m for m in markers if fixture in item.fixturenames and not item.get_closest_marker(m)]
            if missing:
                unmarked.append(f"{item.nodeid}: uses `{fixture}`, mark it {', '.join(missing)}")
    if unmarked:
        raise pytest.UsageError("tests without the markers their fixtures need:\n" + "\n".join(unmarked))


@pytest.fixture(scope="session")
def generated(tmp_path_factory) -> GeneratedChallenge:
    """The default generated challenge (9 videos, every awkward case), built once per test session."""
    return build_challenge(tmp_path_factory.mktemp("generated") / "demo", name="demo", seed=0)


@pytest.fixture
def instance():
    with instance_for_test() as inst:
        yield inst


@pytest.fixture
def resources(tmp_path) -> dict:
    return local_resources(tmp_path / "home")


@pytest.fixture
def defs(resources):
    return build_definitions(resources)


@pytest.fixture
def registered(generated, resources, instance: DagsterInstance):
    """The generated challenge registered in this test's table store and instance."""
    challenge = load_challenge(generated.challenge_yaml)
    register_challenge(challenge, resources["table_store"], instance)
    return challenge


@pytest.fixture(scope="session")
def artifacts_dir() -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS


def pytest_configure(config):
    os.environ.setdefault("TIKTOKFER_ENV", "local")


@pytest.fixture(scope="session")
def pipeline(generated, tmp_path_factory):
    """Every asset of the code location materialised once for the generated challenge (read-only for tests).

    Returns the local resources, the Dagster instance and the execution result.
    """
    resources = local_resources(tmp_path_factory.mktemp("pipeline") / "home")
    with instance_for_test() as inst:
        register_challenge(load_challenge(generated.challenge_yaml), resources["table_store"], inst)
        result = materialize_challenge(build_definitions(resources), "demo", inst)
        assert result.success
        yield resources, inst, result


@pytest.fixture(scope="module")
def database():
    """A throw-away Postgres database on 127.0.0.1:5432 for one test module, dropped at its end."""
    name = f"tiktokfer_test_{uuid.uuid4().hex[:10]}"
    create_database(name)
    yield name
    drop_database(name)
