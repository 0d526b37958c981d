"""The tiktokfer code location."""

from __future__ import annotations

import os

import yaml
from dagster import AssetKey, DagsterInstance, Definitions, execute_job, in_process_executor, multiprocess_executor
from dagster._core.definitions.reconstruct import ReconstructableRepository

from tiktokfer_assets.assets.contents import contents
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

ASSETS = [videos, subvideos, frames, contents, faces, face_embeddings, individuals, unique_faces]
"""The assets partitioned by challenge."""
DATASET_ASSETS = [dataset_export, expression_model]
"""Unpartitioned assets over many challenges: the export and its model (group ``dataset``, job ``dataset_release``)."""
QUIET = {"loggers": {"console": {"config": {"log_level": "INFO"}}}}


def executor_name(name: str | None = None) -> str:
    """``name``, else ``TIKTOKFER_EXECUTOR``, else the environment's default (see :func:`executor_for`)."""
    return name or os.environ.get("TIKTOKFER_EXECUTOR") or ("in_process" if current_environment() == "local"
                                                            else "multiprocess")


def executor_for(name: str | None = None):
    """The step executor chosen by ``TIKTOKFER_EXECUTOR``.

    ``in_process`` (the default of the local environment: one process per run, so torch and the
    models load once and the DuckDB file has one writer), ``multiprocess`` (the default in
    production: a process per step, ``max_concurrent`` from ``TIKTOKFER_MAX_CONCURRENT``) or ``k8s``
    (dagster-k8s's k8s_job_executor, every step in its own pod, configured by deploy/k8s/executor.yaml).
    """
    name = executor_name(name)
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


def environment_definitions() -> Definitions:
    """:func:`build_definitions` on this environment's resources and executor, built afresh (for reconstruction)."""
    return build_definitions()


def materialize_challenge(definitions: Definitions, challenge: str, instance: DagsterInstance):
    """Materialise every asset of one challenge partition (checks included) with ``TIKTOKFER_EXECUTOR``'s executor.

    ``in_process`` runs in this process on ``definitions``; the other executors start
    their steps elsewhere, which rebuild the code location
    (:func:`environment_definitions`), so ``definitions`` must be this module's
    :data:`defs` and ``instance`` persistent.
    A failed run raises.
    """
    name = executor_name()
    if name == "in_process":
        job = definitions.resolve_job_def(ALL_ASSETS_JOB)
        return job.execute_in_process(partition_key=challenge, instance=instance, run_config=QUIET)
    if definitions is not defs:
        raise ValueError(f"TIKTOKFER_EXECUTOR={name!r} re-imports the code location in each step: "
                         "pass tiktokfer_assets.definitions.defs")
    repository = ReconstructableRepository.for_module(__name__, "environment_definitions", str(PROJECT_ROOT))
    job = repository.get_reconstructable_job(ALL_ASSETS_JOB)
    result = execute_job(job, instance=instance, run_config=QUIET, tags={"dagster/partition": challenge})
    if not result.success:
        failed = [event.step_key for event in result.all_events if event.is_step_failure]
        raise RuntimeError(f"run {result.run_id} of {challenge!r} failed ({name} executor); failed steps: {failed}")
    return result


def materialize_dataset(definitions: Definitions, instance: DagsterInstance, challenges: list[str] | None = None):
    """Materialise the dataset export (of ``challenges``, default all registered) in this process, without its model."""
    config = {"ops": {"dataset_export": {"config": {"challenges": list(challenges or [])}}}}
    job = definitions.resolve_job_def(DATASET_JOB)
    return job.execute_in_process(
        instance=instance, run_config={**QUIET, **config}, asset_selection=[AssetKey("dataset_export")]
    )


defs = build_definitions()
