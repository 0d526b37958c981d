"""The tiktokfer code location."""

from __future__ import annotations

from dagster import DagsterInstance, Definitions

from tiktokfer_assets.assets.faces import faces
from tiktokfer_assets.assets.frames import frames
from tiktokfer_assets.assets.individuals import face_embeddings, individuals
from tiktokfer_assets.assets.subvideos import subvideos
from tiktokfer_assets.assets.unique_faces import unique_faces
from tiktokfer_assets.assets.videos import videos
from tiktokfer_assets.environments import resources_for

# automation and table checks (issue 8): kept apart from the asset list
from tiktokfer_assets.automation import JOBS, SCHEDULES, SENSORS
from tiktokfer_assets.checks import TABLE_CHECKS

ASSETS = [videos, subvideos, frames, faces, face_embeddings, individuals, unique_faces]
ASSET_CHECKS: list = []


def build_definitions(resources: dict | None = None) -> Definitions:
    """The code location's definitions, on the given resources (default: ``TIKTOKFER_ENV``'s)."""
    return Definitions(
        assets=ASSETS,
        asset_checks=[*ASSET_CHECKS, *TABLE_CHECKS],
        jobs=JOBS,
        sensors=SENSORS,
        schedules=SCHEDULES,
        resources=resources if resources is not None else resources_for(),
    )


def materialize_challenge(definitions: Definitions, challenge: str, instance: DagsterInstance):
    """Materialise every asset of one challenge partition in this process (checks included)."""
    job = definitions.resolve_implicit_global_asset_job_def()
    quiet = {"loggers": {"console": {"config": {"log_level": "INFO"}}}}
    return job.execute_in_process(partition_key=challenge, instance=instance, run_config=quiet)


defs = build_definitions()
