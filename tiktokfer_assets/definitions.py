"""The tiktokfer code location."""

from __future__ import annotations

import os

import yaml
from dagster import DagsterInstance, Definitions, in_process_executor, multiprocess_executor

from tiktokfer_assets.assets.dataset_export import dataset_export
from tiktokfer_assets.assets.expression_model import expression_model
from tiktokfer_assets.assets.faces import faces
from tiktokfer_assets.assets.frames import frames
from tiktokfer_assets.assets.individuals import face_embeddings, individuals
from tiktokfer_assets.assets.subvideos import subvideos
from tiktokfer_assets.assets.unique_faces import unique_faces
from tiktokfer_assets.assets.videos import videos

# automation and table checks (issue 8): kept apart from the asset list
from tiktokfer_assets.automation import JOBS, SCHEDULES, SENSORS
from tiktokfer_assets.automation.jobs import ALL_ASSETS_JOB, DATASET_JOB
from tiktokfer_assets.checks import TABLE_CHECKS
from tiktokfer_assets.environments import current_environment, resources_for
from tiktokfer_assets.paths import PROJECT_ROOT

ASSETS = [videos, subvideos, frames, faces, face_embeddings, individuals, unique_faces]
"""The assets partitioned by challenge."""
DATASET_ASSETS = [dataset_export, expression_model]
"""Unpartitioned assets over many challenges: the export and its model (group ``dataset``, job ``dataset_release``)."""
QUIET = {"loggers": {"console": {"config": {"log_level": "INFO"}}}}


def executor_for(name: str | None = None):
    """The step executor chosen by ``TIKTOKFER_EXECUTOR``.

    ``in_process`` (the default of the local environment: one process per run, so torch and the
    models load once and the DuckDB file has one writer), ``multiprocess`` (the default in
    production: a process per step, ``max_concurrent`` from ``TIKTOKFER_MAX_CONCURRENT``) or ``k8s``
    (dagster-k8s's k8s_job_executor, every step in its own pod, configured by deploy/k8s/executor.yaml).
    """
    default = "in_process" if current_environment() == "local" else "multiprocess"
    name = name or os.environ.get("TIKTOKFER_EXECUTOR") or default
    if name == "in_process":
        return in_process_executor
    if name == "multiprocess":
        return multiprocess_executor.configured(
            {"max_concurrent": int(os.environ.get("TIKTOKFER_MAX_CONCURRENT", "0"))}
        )
    if name == "k8s":
        from dagster_k8s import k8s_job_executor

        return k8s_job_executor.configured(
            yaml.safe_load((PROJECT_ROOT / "deploy" / "k8s" / "executor.yaml").read_text())
        )
    raise ValueError(f"TIKTOKFER_EXECUTOR={name!r}: expected 'in_process', 'multiprocess' or 'k8s'")


def build_definitions(resources: dict | None = None) -> Definitions:
    """The code location's definitions, on the given resources (default: ``TIKTOKFER_ENV``'s)."""
    return Definitions(
        assets=ASSETS + DATASET_ASSETS,
        asset_checks=TABLE_CHECKS,
        jobs=JOBS,
        sensors=SENSORS,
        schedules=SCHEDULES,
        resources=resources if resources is not None else resources_for(),
        executor=executor_for(),
    )


def materialize_challenge(definitions: Definitions, challenge: str, instance: DagsterInstance):
    """Materialise every asset of one challenge partition in this process (checks included)."""
    job = definitions.resolve_job_def(ALL_ASSETS_JOB)
    return job.execute_in_process(partition_key=challenge, instance=instance, run_config=QUIET)


def materialize_dataset(definitions: Definitions, instance: DagsterInstance, challenges: list[str] | None = None):
    """Materialise the dataset export (of ``challenges``, default all registered) in this process."""
    config = {"ops": {"dataset_export": {"config": {"challenges": list(challenges or [])}}}}
    job = definitions.resolve_job_def(DATASET_JOB)
    return job.execute_in_process(instance=instance, run_config={**QUIET, **config})


defs = build_definitions()
