"""Turn row-level invariants into partitioned Dagster asset checks, one line per invariant.

:func:`table_check` declares a check on one asset's table: a name and a function
``PartitionTables -> offending rows`` (see :mod:`tiktokfer_assets.checks.invariants`
for the building blocks). :func:`checks_per_table` turns the declarations into one
op per asset (with the multiprocess executor every op is a process that imports
torch: one op per check would multiply a run's start-up cost). Each check reads the
challenge partition's rows through the table store (its definition and object keys
through the partition's :class:`~tiktokfer_assets.scope.ChallengeScope`), passes when no row offends,
and otherwise reports how many rows do and shows the first of them.

A **blocking** check (the default) fails with severity ERROR, so downstream assets
in the same run do not materialise on wrong rows; a non-blocking one warns.

Example, for an asset ``frames`` whose rows point at videos::

    table_check("frames", "video_id_in_videos", "every frame belongs to a stored video",
                lambda t: unresolved_references(t.table("frames"), t.table("videos"), "video_id"))

An asset that checks itself (``check_specs``) can yield :func:`check_result` instead.
"""

import logging
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field

import polars as pl
from dagster import (
    AssetCheckExecutionContext,
    AssetCheckKey,
    AssetCheckResult,
    AssetChecksDefinition,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetKey,
    MetadataValue,
    PartitionsDefinition,
    PreviewWarning,
    multi_asset_check,
)

from tiktokfer_assets.partitions import challenge_partitions
from tiktokfer_assets.resources.io_managers import markdown_preview
from tiktokfer_assets.resources.object_store import ObjectStore
from tiktokfer_assets.scope import ChallengeScope, challenge_scope

SAMPLE_ROWS = 10


@dataclass
class PartitionTables:
    """What an invariant sees: one partition of any table (each read once), its scope (definition and object
    keys), its objects.

    The partition is a challenge's name, or a feed's for the trending monitor's tables (whose invariants never
    ask for a definition: the scope reads it only when asked).
    """

    scope: ChallengeScope
    object_store: ObjectStore
    _tables: dict[str, pl.DataFrame] = field(default_factory=dict, repr=False)

    @property
    def challenge(self) -> str:
        return self.scope.name

    def table(self, name: str) -> pl.DataFrame:
        if name not in self._tables:
            self._tables[name] = self.scope.table_store.read(name, [self.challenge])
        return self._tables[name]

    def object_keys(self, prefix: str) -> pl.DataFrame:
        """The stored object keys under ``prefix`` (one listing), as a one-column frame ``object_key``."""
        return pl.DataFrame({"object_key": self.object_store.list_keys(prefix)}, schema={"object_key": pl.String})


@dataclass(frozen=True)
class TableCheck:
    """A named row-level rule of ``asset``'s table: ``violations`` returns the rows that break it."""

    asset: str
    name: str
    description: str
    violations: Callable[[PartitionTables], pl.DataFrame]
    blocking: bool = True
    partitions_def: PartitionsDefinition = challenge_partitions  # the asset's

    @property
    def key(self) -> AssetCheckKey:
        return AssetCheckKey(AssetKey(self.asset), self.name)

    def spec(self) -> AssetCheckSpec:
        # Partitioned checks are a Dagster preview feature used on purpose (a check per partition, as the asset):
        # its PreviewWarning would print once per check on every import of the code location.
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", category=PreviewWarning)
            return AssetCheckSpec(
                self.name, asset=self.asset, description=self.description, blocking=self.blocking,
                partitions_def=self.partitions_def,
            )


def table_check(
    asset: str,
    name: str,
    description: str,
    violations: Callable[[PartitionTables], pl.DataFrame],
    *,
    blocking: bool = True,
    partitions_def: PartitionsDefinition = challenge_partitions,
) -> TableCheck:
    """Declare the check ``name`` of ``asset`` (partitioned as ``partitions_def``): it fails on the rows
    ``violations`` returns."""
    return TableCheck(asset, name, description, violations, blocking, partitions_def)


def check_result(invariant: TableCheck, tables: PartitionTables, log: logging.Logger) -> AssetCheckResult:
    """Evaluate ``invariant`` on the partition: passed, severity, and the offending rows as metadata."""
    bad = invariant.violations(tables)
    checked = tables.table(invariant.asset).height
    metadata = {"rows_checked": checked, "offending_rows": bad.height}
    if bad.height:
        metadata["sample"] = MetadataValue.md(markdown_preview(bad, rows=SAMPLE_ROWS))
        (log.error if invariant.blocking else log.warning)(
            f"{invariant.asset}/{invariant.name} on {tables.challenge!r}: {bad.height} of {checked} rows offend: "
            f"{invariant.description}"
        )
    return AssetCheckResult(
        asset_key=invariant.asset,
        check_name=invariant.name,
        passed=bad.is_empty(),
        severity=AssetCheckSeverity.ERROR if invariant.blocking else AssetCheckSeverity.WARN,
        metadata=metadata,
        description=invariant.description,
    )


def checks_per_table(checks: Sequence[TableCheck]) -> list[AssetChecksDefinition]:
    """One op per asset (``<asset>_checks``) running that asset's ``checks`` on the run's partition."""
    by_asset: dict[str, list[TableCheck]] = {}
    for check in checks:
        by_asset.setdefault(check.asset, []).append(check)
    return [_asset_checks(asset, group) for asset, group in by_asset.items()]


def _asset_checks(asset: str, checks: Sequence[TableCheck]) -> AssetChecksDefinition:
    @multi_asset_check(
        name=f"{asset}_checks",
        specs=[check.spec() for check in checks],
        can_subset=True,
        required_resource_keys={"table_store", "object_store"},
    )
    def _checks(context: AssetCheckExecutionContext) -> Iterator[AssetCheckResult]:
        scope = challenge_scope(context, context.resources.table_store)
        tables = PartitionTables(scope, context.resources.object_store)
        for check in checks:
            if check.key in context.selected_asset_check_keys:
                yield check_result(check, tables, context.log)

    return _checks
