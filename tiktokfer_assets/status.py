"""What is stored and what ran, per challenge partition: read from the table store and the Dagster instance.

Read-only: it runs nothing, writes no row and adds no partition. The state of an asset
partition is ``materialised`` (its latest planned materialisation happened), ``failed``
(the latest run that planned it failed, or was cancelled, at its step or before any step
failed), ``skipped`` (that run failed at another step, upstream), ``running`` (that run
is queued or in progress) or ``missing`` (never materialised).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cache

import polars as pl
from dagster import (
    AssetKey,
    AssetRecordsFilter,
    DagsterEventType,
    DagsterInstance,
    DagsterRunStatus,
    Definitions,
    RunRecord,
    RunsFilter,
)
from tabulate import tabulate

from tiktokfer_assets.partitions import PARTITION_TAG, UNFINISHED_RUN, challenge_partitions
from tiktokfer_assets.registry import stored_challenges
from tiktokfer_assets.resources.io_managers import PolarsTableIOManager, stored_table
from tiktokfer_assets.resources.table_store import TableStore
from tiktokfer_assets.summary import prompts_found

FAILED_RUN = (DagsterRunStatus.FAILURE, DagsterRunStatus.CANCELED)


def _not_ingested(store: TableStore, challenge: str) -> str:
    failed = store.count("video_failures", challenge)
    return f"videos not ingested: {failed}" if failed else ""


def _prompts_not_found(store: TableStore, challenge: str) -> str:
    found, not_found = prompts_found(store, challenge)
    return f"prompts not found: {not_found} of {found + not_found}" if not_found else ""


def _frames_not_decoded(store: TableStore, challenge: str) -> str:
    frames = store.read("frames", [challenge])
    broken = frames.filter(pl.col("decode_error").is_not_null())["video_id"].n_unique() if frames.height else 0
    return f"videos whose decoding broke off: {broken}" if broken else ""


FAILURES: dict[str, Callable[[TableStore, str], str]] = {
    "video_failures": _not_ingested,
    "subvideos": _prompts_not_found,
    "frames": _frames_not_decoded,
}
"""Per asset, what its stored rows say failed (empty when nothing did)."""


@dataclass(frozen=True)
class PartitionedAsset:
    key: AssetKey
    step: str  # the step that materialises it
    table: str | None  # where its rows are; None for an asset stored elsewhere (e.g. Parquet arrays)


@dataclass(frozen=True)
class AssetStatus:
    asset: str
    state: str  # materialised | failed | skipped | running | missing
    rows: int | None  # in the table store
    failures: str
    checks: str  # the asset checks evaluated in the run of its last materialisation
    materialised_at: float | None
    run_id: str | None


def partitioned_assets(defs: Definitions) -> list[PartitionedAsset]:
    """The challenge-partitioned assets of ``defs`` in dependency order."""
    graph = defs.resolve_asset_graph()
    table_managers = {key for key, resource in (defs.resources or {}).items()
                      if isinstance(resource, PolarsTableIOManager)}
    assets = []
    for key in graph.toposorted_asset_keys:
        node = graph.get(key)
        if node.partitions_def == challenge_partitions:
            table = stored_table(key, node.metadata) if node.io_manager_key in table_managers else None
            assets.append(PartitionedAsset(key, node.assets_def.node_def.name, table))
    return assets


def one_line(text: str) -> str:
    """``text`` with its line breaks and runs of spaces folded into single spaces."""
    return " ".join(text.split())


def failed_steps(instance: DagsterInstance, run_id: str) -> dict[str, str]:
    """The failed steps of a run, each with its error in one line (``Class: message``)."""
    steps = {}
    for entry in instance.all_logs(run_id, of_type=DagsterEventType.STEP_FAILURE):
        error = entry.dagster_event.event_specific_data.error
        cause = error.cause or error  # a step's own exception, under Dagster's wrapper
        qualified, _, message = one_line(cause.message).partition(": ")  # "module.Class: text"
        steps[entry.step_key] = f"{cause.cls_name}: {message or qualified}"
    return steps


def run_failure(instance: DagsterInstance, run_id: str) -> str:
    """Why a run failed, in one line: its failed steps, else its own failure message."""
    steps = failed_steps(instance, run_id)
    if steps:
        return "; ".join(f"step {step} failed: {error}" for step, error in steps.items())
    runs = instance.all_logs(run_id, of_type=DagsterEventType.RUN_FAILURE)
    return "; ".join(one_line(entry.dagster_event.message or "") for entry in runs) or "failed"


def _checks_of_run(instance: DagsterInstance, run_id: str, challenge: str) -> dict[AssetKey, list]:
    """The asset check evaluations of one run on ``challenge``, per asset."""
    evaluations: dict[AssetKey, list] = {}
    for entry in instance.all_logs(run_id, of_type=DagsterEventType.ASSET_CHECK_EVALUATION):
        evaluation = entry.dagster_event.event_specific_data
        if evaluation.partition in (None, challenge):
            evaluations.setdefault(evaluation.asset_key, []).append(evaluation)
    return evaluations


def _checks_text(evaluations: Sequence) -> str:
    if not evaluations:
        return ""
    failed = sorted(e.check_name for e in evaluations if not e.passed)
    passed = f"{len(evaluations) - len(failed)} passed"
    return f"{passed}, {len(failed)} failed ({', '.join(failed)})" if failed else passed


def asset_statuses(challenge: str, defs: Definitions, store: TableStore | None,
                   instance: DagsterInstance) -> list[AssetStatus]:
    """The status of every challenge-partitioned asset of ``defs`` on ``challenge``.

    ``store`` None: the states alone, without reading a table (rows None, failures empty)."""
    checks = cache(lambda run_id: _checks_of_run(instance, run_id, challenge))
    steps = cache(lambda run_id: failed_steps(instance, run_id))
    statuses = []
    for asset in partitioned_assets(defs):
        name = asset.key.to_user_string()
        records = instance.fetch_materializations(AssetRecordsFilter(asset.key, [challenge]), limit=1).records
        last = records[0] if records else None
        state = "materialised" if last else "missing"
        planned = instance.get_latest_planned_materialization_info(asset.key, challenge)
        if planned and (last is None or planned.storage_id > last.storage_id):
            run = instance.get_run_by_id(planned.run_id)
            if run and run.status in FAILED_RUN:
                failed = steps(run.run_id)
                state = "failed" if asset.step in failed or not failed else "skipped"
            elif run and run.status in UNFINISHED_RUN:
                state = "running"
        statuses.append(AssetStatus(
            asset=name,
            state=state,
            rows=store.count(asset.table, challenge) if store and asset.table else None,
            failures=FAILURES[name](store, challenge) if store and name in FAILURES else "",
            checks=_checks_text(checks(last.run_id).get(asset.key, [])) if last else "",
            materialised_at=last.timestamp if last else None,
            run_id=last.run_id if last else None,
        ))
    return statuses


def challenge_state(statuses: Sequence[AssetStatus]) -> str:
    """One word for a challenge: failed, running, materialised (every asset), partial or registered (none)."""
    states = {status.state for status in statuses}
    if states & {"failed", "skipped"}:
        return "failed"
    if "running" in states:
        return "running"
    if states == {"materialised"}:
        return "materialised"
    return "partial" if "materialised" in states else "registered"


def _time(timestamp: float | None) -> str:
    if timestamp is None:
        return ""
    return dt.datetime.fromtimestamp(timestamp, dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


def _short(run_id: str | None) -> str:
    return run_id[:8] if run_id else ""


def _latest_run(instance: DagsterInstance, challenge: str, statuses=None) -> RunRecord | None:
    records = instance.get_run_records(RunsFilter(tags={PARTITION_TAG: challenge}, statuses=statuses), limit=1)
    return records[0] if records else None


def _run_line(record: RunRecord | None) -> str:
    if record is None:
        return "none"
    run = record.dagster_run
    return f"{_short(run.run_id)} {run.status.value.lower()} {_time(record.create_timestamp.timestamp())}"


def last_run(instance: DagsterInstance, challenge: str) -> str:
    return _run_line(_latest_run(instance, challenge))


def last_failed_run(instance: DagsterInstance, challenge: str, *, why: bool = True) -> str:
    """The latest failed or cancelled run of ``challenge``: id, time and why (else its failed steps' names)."""
    record = _latest_run(instance, challenge, list(FAILED_RUN))
    if record is None:
        return "none"
    run_id = record.dagster_run.run_id
    reason = run_failure(instance, run_id) if why else ", ".join(failed_steps(instance, run_id)) or "run"
    return f"{_run_line(record)}: {reason}"


def _is_partition(instance: DagsterInstance, challenge: str) -> bool:
    return instance.has_dynamic_partition(challenge_partitions.name, challenge)


NOT_A_PARTITION = "not a partition of this Dagster instance (DAGSTER_HOME); `tiktokfer challenge add` adds it"


def challenge_status(challenge: str, defs: Definitions, store: TableStore, instance: DagsterInstance) -> str:
    """The status table of one challenge's assets, then its last run and last failed run."""
    statuses = asset_statuses(challenge, defs, store, instance)
    rows = [(s.asset, s.state, "" if s.rows is None else s.rows, s.failures, s.checks, _time(s.materialised_at),
             _short(s.run_id)) for s in statuses]
    header = ("asset", "state", "rows", "failures", "checks", "last materialised", "run")
    lines = [f"Challenge {challenge!r}: {challenge_state(statuses)}"]
    if not _is_partition(instance, challenge):
        lines.append(f"  {NOT_A_PARTITION}")
    lines += [tabulate(rows, header, disable_numparse=True, colalign=("left", "left", "right")), "",
              f"Last run: {last_run(instance, challenge)}",
              f"Last failed run: {last_failed_run(instance, challenge)}"]
    return "\n".join(lines)


def registered_states(defs: Definitions, store: TableStore, instance: DagsterInstance) -> pl.DataFrame:
    """Every registered challenge with its version, registration time and state (one row each, by name)."""
    registered = stored_challenges(store).sort("challenge")
    states, materialised = [], []
    for challenge in registered["challenge"]:
        statuses = asset_statuses(challenge, defs, None, instance)
        states.append(challenge_state(statuses) if _is_partition(instance, challenge) else "no partition")
        materialised.append(f"{sum(s.state == 'materialised' for s in statuses)}/{len(statuses)}")
    return registered.select("challenge", "version", "registered_at").with_columns(
        state=pl.Series(states, dtype=pl.String), assets=pl.Series(materialised, dtype=pl.String))


def challenges_overview(defs: Definitions, store: TableStore, instance: DagsterInstance) -> str:
    """One line per registered challenge: state, assets materialised, last run, last failed run."""
    rows = [(row["challenge"], row["state"], row["assets"], last_run(instance, row["challenge"]),
             last_failed_run(instance, row["challenge"], why=False))
            for row in registered_states(defs, store, instance).iter_rows(named=True)]
    header = ("challenge", "state", "assets materialised", "last run", "last failed run")
    return tabulate(rows, header, disable_numparse=True)


def challenge_list(defs: Definitions, store: TableStore, instance: DagsterInstance) -> str:
    """The registered challenges with their version, registration time and state."""
    rows = [(row["challenge"], row["version"], _time(row["registered_at"].timestamp()), row["state"])
            for row in registered_states(defs, store, instance).iter_rows(named=True)]
    return tabulate(rows, ("challenge", "version", "registered", "state"), disable_numparse=True)
