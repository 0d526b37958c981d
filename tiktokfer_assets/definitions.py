"""The tiktokfer code location."""

from __future__ import annotations

from collections.abc import Callable

from dagster import AssetKey, DagsterInstance, Definitions, definitions, execute_job
from dagster._core.definitions.reconstruct import ReconstructableRepository

from tiktokfer_assets.automation.jobs import ALL_ASSETS_JOB, DATASET_JOB
from tiktokfer_assets.defs import challenge_pipeline, dataset_release, trending_monitor
from tiktokfer_assets.defs.environment import environment_definitions, executor_name
from tiktokfer_assets.partitions import PARTITION_TAG
from tiktokfer_assets.paths import PROJECT_ROOT

ASSETS = challenge_pipeline.ASSETS
DATASET_ASSETS = dataset_release.DATASET_ASSETS
DOMAINS = [challenge_pipeline, dataset_release, trending_monitor]
"""The domains of :mod:`tiktokfer_assets.defs`, each with a ``defs`` function returning its ``Definitions``
(the fourth, :mod:`~tiktokfer_assets.defs.environment`, holds the resources and executor)."""
QUIET = {"loggers": {"console": {"config": {"log_level": "INFO"}}}}


def build_definitions(resources: dict | None = None) -> Definitions:
    """Every domain's definitions merged, on the given resources (default: ``TIKTOKFER_ENV``'s) and the
    environment's executor (:func:`~tiktokfer_assets.defs.environment.executor_for`)."""
    return Definitions.merge(*(domain.defs() for domain in DOMAINS), environment_definitions(resources))


@definitions
def defs() -> Definitions:
    """The code location (workspace.yaml, ``dagster -m``, ``dg``): built when Dagster loads it, not on import, on
    this environment's resources and executor (each step of a multiprocess run rebuilds it)."""
    return build_definitions()


def reconstructable_repository() -> ReconstructableRepository:
    """The lazy :func:`defs` as the multiprocess executor's step processes load it."""
    return ReconstructableRepository.for_module(__name__, "defs", str(PROJECT_ROOT))


def loaded(definitions: Definitions | Callable[[], Definitions]) -> Definitions:
    """``definitions`` itself, or what the lazy :func:`defs` builds."""
    return definitions if isinstance(definitions, Definitions) else definitions()


def materialize_challenge(
    definitions: Definitions | Callable[[], Definitions], challenge: str, instance: DagsterInstance
):
    """Materialise every asset of one challenge partition (checks included) with ``TIKTOKFER_EXECUTOR``'s executor.

    ``in_process`` runs in this process on ``definitions``; the other executors start
    their steps elsewhere, which rebuild the code location (:func:`defs`), so
    ``definitions`` must be this module's :func:`defs` and ``instance`` persistent.
    A failed run raises.
    """
    name = executor_name()
    if name == "in_process":
        job = loaded(definitions).resolve_job_def(ALL_ASSETS_JOB)
        return job.execute_in_process(partition_key=challenge, instance=instance, run_config=QUIET)
    if definitions is not defs:
        raise ValueError(f"TIKTOKFER_EXECUTOR={name!r} re-imports the code location in each step: "
                         "pass tiktokfer_assets.definitions.defs")
    job = reconstructable_repository().get_reconstructable_job(ALL_ASSETS_JOB)
    result = execute_job(job, instance=instance, run_config=QUIET, tags={PARTITION_TAG: challenge})
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

