"""The environment's resources and executor (``TIKTOKFER_ENV``, ``TIKTOKFER_EXECUTOR``): the domain every other
domain runs on."""

import os

import yaml
from dagster import Definitions, definitions, in_process_executor, multiprocess_executor

from tiktokfer_assets.environments import current_environment, resources_for
from tiktokfer_assets.paths import PROJECT_ROOT


def executor_name(name: str | None = None) -> str:
    """``name``, else ``TIKTOKFER_EXECUTOR``, else the environment's default (see :func:`executor_for`)."""
    return name or os.environ.get("TIKTOKFER_EXECUTOR") or ("in_process" if current_environment() == "local"
                                                            else "multiprocess")


FORKSERVER_PRELOAD = ["tiktokfer_assets.forkserver"]
"""What the multiprocess executor's fork server imports once (:mod:`tiktokfer_assets.forkserver`: the code location,
torch, torchvision and the other libraries of more than one step, Dagster's storage), so a step process starts with
them loaded. Per-step seconds from the run's event log (STEP_WORKER_STARTING to STEP_SUCCESS; 2 cores, loaded: 5-7
on the load average): with the code location and torch preloaded a check step took 13-30 s, of which a profile
put 20 s in imports; with this module 1.6-3.8 s (0.3-1.1 s in-process), and ``unique_faces`` 15 s instead of 44 s.
What is left per step is Dagster's own: forking, opening the instance (Alembic's revision check of each SQLite
database) and writing the step's events. The server itself starts in ~38 s (loaded), before the first step."""


def start_method(name: str) -> dict:
    """The multiprocess executor's ``start_method``: ``forkserver`` (steps forked from a server that imported
    :data:`FORKSERVER_PRELOAD` once) or ``spawn`` (each step a fresh interpreter that imports everything)."""
    if name == "forkserver":
        return {"forkserver": {"preload_modules": FORKSERVER_PRELOAD}}
    if name == "spawn":
        return {"spawn": {}}
    raise ValueError(f"TIKTOKFER_START_METHOD={name!r}: expected 'forkserver' or 'spawn'")


def executor_for(name: str | None = None):
    """The step executor chosen by ``TIKTOKFER_EXECUTOR``.

    ``in_process`` (the default of the local environment: one process per run, so torch and the
    models load once and the DuckDB file has one writer), ``multiprocess`` (the default in
    production: a process per step, ``max_concurrent`` from ``TIKTOKFER_MAX_CONCURRENT``, forked from a server that
    imported the code location and torch once unless ``TIKTOKFER_START_METHOD=spawn``) or ``k8s``
    (dagster-k8s's k8s_job_executor, every step in its own pod, configured by deploy/k8s/executor.yaml).
    """
    name = executor_name(name)
    if name == "in_process":
        return in_process_executor
    if name == "multiprocess":
        return multiprocess_executor.configured({
            "max_concurrent": int(os.environ.get("TIKTOKFER_MAX_CONCURRENT", "0")),
            "start_method": start_method(os.environ.get("TIKTOKFER_START_METHOD", "forkserver")),
        })
    if name == "k8s":
        from dagster_k8s import k8s_job_executor

        return k8s_job_executor.configured(
            yaml.safe_load((PROJECT_ROOT / "deploy" / "k8s" / "executor.yaml").read_text())
        )
    raise ValueError(f"TIKTOKFER_EXECUTOR={name!r}: expected 'in_process', 'multiprocess' or 'k8s'")


def environment_definitions(resources: dict | None = None) -> Definitions:
    """The given resources (default: ``TIKTOKFER_ENV``'s) and :func:`executor_for`'s executor."""
    return Definitions(resources=resources if resources is not None else resources_for(), executor=executor_for())


@definitions
def defs() -> Definitions:
    return environment_definitions()
