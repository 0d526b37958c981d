"""Turn a row-level invariant into a partitioned Dagster asset check, in one line.

An invariant is a function ``PartitionTables -> offending rows`` (see
:mod:`tiktokfer_assets.checks.invariants` for the building blocks). The check reads
the challenge partition's rows through the table store, passes when no row
offends, and otherwise reports how many rows do and shows the first of them.

A **blocking** check (the default) fails with severity ERROR, so downstream assets
in the same run do not materialise on wrong rows; a non-blocking one warns.

Example, for an asset ``frames`` whose rows point at videos::

    table_check("frames", "video_id_in_videos", "every frame belongs to a stored video",
                lambda t: unresolved_references(t.table("frames"), t.table("videos"), "video_id"))
"""

from collections.abc import Callable
from dataclasses import dataclass, field

import polars as pl
from dagster import (
    AssetCheckExecutionContext,
    AssetCheckResult,
    AssetCheckSeverity,
    AssetChecksDefinition,
    MetadataValue,
    asset_check,
)

from tiktokfer_assets.challenges import ChallengeDefinition
from tiktokfer_assets.partitions import challenge_partitions
from tiktokfer_assets.registry import get_challenge
from tiktokfer_assets.resources.io_managers import markdown_preview
from tiktokfer_assets.resources.object_store import ObjectStore
from tiktokfer_assets.resources.table_store import TableStore

SAMPLE_ROWS = 10


@dataclass
class PartitionTables:
    """What an invariant sees: one challenge partition of any table (each read once), its definition, its objects."""

    challenge: str
    table_store: TableStore
    object_store: ObjectStore
    _tables: dict[str, pl.DataFrame] = field(default_factory=dict, repr=False)

    def table(self, name: str) -> pl.DataFrame:
        if name not in self._tables:
            self._tables[name] = self.table_store.read(name, [self.challenge])
        return self._tables[name]

    def definition(self) -> ChallengeDefinition:
        return get_challenge(self.table_store, self.challenge)

    def object_keys(self, prefix: str) -> pl.DataFrame:
        """The stored object keys under ``prefix`` (one listing), as a one-column frame ``object_key``."""
        return pl.DataFrame({"object_key": self.object_store.list_keys(prefix)}, schema={"object_key": pl.String})


Invariant = Callable[[PartitionTables], pl.DataFrame]


def table_check(
    asset: str,
    name: str,
    description: str,
    violations: Invariant,
    *,
    blocking: bool = True,
) -> AssetChecksDefinition:
    """An asset check on ``asset``'s challenge partition that fails when ``violations`` returns rows."""

    @asset_check(
        asset=asset,
        name=name,
        description=description,
        blocking=blocking,
        partitions_def=challenge_partitions,
        required_resource_keys={"table_store", "object_store"},
    )
    def _check(context: AssetCheckExecutionContext) -> AssetCheckResult:
        tables = PartitionTables(context.partition_key, context.resources.table_store, context.resources.object_store)
        bad = violations(tables)
        checked = tables.table(asset).height
        metadata = {"rows_checked": checked, "offending_rows": bad.height}
        if bad.height:
            metadata["sample"] = MetadataValue.md(markdown_preview(bad, rows=SAMPLE_ROWS))
            log = context.log.error if blocking else context.log.warning
            log(f"{asset}/{name} on {context.partition_key!r}: {bad.height} of {checked} rows offend: {description}")
        return AssetCheckResult(
            passed=bad.is_empty(),
            severity=AssetCheckSeverity.ERROR if blocking else AssetCheckSeverity.WARN,
            metadata=metadata,
            description=description,
        )

    return _check
