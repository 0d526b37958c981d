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


FORKSERVER_PRELOAD = ["tiktokfer_assets.definitions", "torch"]
"""What the multiprocess executor's fork server imports once, so a step process starts with the code location and
torch loaded. bench/bench_executors.py on the demo (2 cores, a test suite running beside it): in-process 43 s, spawn
195 s, fork server 176 s. The rest of the gap is per step, not the import: each step re-opens its resources and
reads its inputs from the table store, and a check step costs 2-7 s against 0.1 s in-process."""


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
