"""IO managers: polars tables per challenge partition, stored through a :class:`TableStore`."""

from __future__ import annotations

from collections.abc import Mapping

import polars as pl
from dagster import (
    AssetKey,
    ConfigurableIOManager,
    InputContext,
    MetadataValue,
    OutputContext,
    TableColumn,
    TableRecord,
    TableSchema,
)

from tiktokfer_assets.resources.table_store import TableStore
from tiktokfer_assets.tables import PARTITION_COLUMN, SCHEMAS


def stored_table(asset_key: AssetKey, metadata: Mapping | None) -> str:
    """The table an asset is stored in: its ``table`` metadata, else the asset's name."""
    return (metadata or {}).get("table") or asset_key.path[-1]


def table_name(context: OutputContext) -> str:
    """The table an output is stored in (see :func:`stored_table`)."""
    return stored_table(context.asset_key, context.definition_metadata)


def column_schema(table: str | None, df: pl.DataFrame) -> TableSchema:
    """The columns a stored table declares: ``tables.SCHEMAS`` (else the frame's own), the partition column first."""
    columns = SCHEMAS.get(table) or {name: dtype for name, dtype in df.schema.items() if name != PARTITION_COLUMN}
    return TableSchema(columns=[
        TableColumn(PARTITION_COLUMN, str(pl.String), description="partition key"),
        *(TableColumn(name, str(dtype)) for name, dtype in columns.items()),
    ])


def markdown_preview(df: pl.DataFrame, rows: int = 10, max_chars: int = 60) -> str:
    """A small markdown table of the first rows, for the Dagster UI."""
    if df.width == 0:
        return "(no columns)"
    head = df.head(rows)

    def cell(value) -> str:
        text = "" if value is None else str(value)
        text = text.replace("|", "\\|").replace("\n", " ")
        return text if len(text) <= max_chars else text[: max_chars - 1] + "…"

    lines = ["| " + " | ".join(head.columns) + " |", "|" + "---|" * head.width]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in head.iter_rows()]
    return "\n".join(lines)


def column_kind(dtype: pl.DataType) -> str:
    """The Dagster table column type of a polars dtype: ``int``, ``float``, ``bool`` or ``string``."""
    if dtype.is_integer():
        return "int"
    if dtype.is_float():
        return "float"
    return "bool" if dtype == pl.Boolean else "string"


def table_metadata(df: pl.DataFrame, rows: int | None = None) -> MetadataValue:
    """``MetadataValue.table`` of the frame (its first ``rows``; all when ``None``), typed by its dtypes."""
    head = df if rows is None else df.head(rows)
    schema = TableSchema(columns=[TableColumn(name, column_kind(dtype)) for name, dtype in head.schema.items()])
    return MetadataValue.table([TableRecord(row) for row in head.to_dicts()], schema=schema)


class PolarsTableIOManager(ConfigurableIOManager):
    """Stores an asset's polars DataFrame as the rows of its challenge partition.

    Writes replace the partition's rows in one transaction (delete + insert), so a
    re-run never duplicates rows. Loads return the rows of every upstream partition
    the downstream step asked for, with the ``challenge`` column.
    """

    store: TableStore

    def handle_output(self, context: OutputContext, obj: pl.DataFrame) -> None:
        if not isinstance(obj, pl.DataFrame):
            raise TypeError(
                f"{context.asset_key.to_user_string()} must return a polars DataFrame, got {type(obj).__name__}"
            )
        if not context.has_asset_partitions:
            raise ValueError(f"{context.asset_key.to_user_string()}: tables are stored per challenge partition")
        table = table_name(context)
        for challenge in context.asset_partition_keys:
            several = PARTITION_COLUMN in obj.columns and len(context.asset_partition_keys) > 1
            rows = obj.filter(pl.col(PARTITION_COLUMN) == challenge) if several else obj
            self.store.replace_partition(table, challenge, rows)
        context.add_output_metadata({
            "table": table,
            "dagster/row_count": obj.height,
            "dagster/column_schema": MetadataValue.table_schema(column_schema(table, obj)),
            "preview": MetadataValue.md(markdown_preview(obj)),
        })

    def load_input(self, context: InputContext) -> pl.DataFrame:
        upstream = context.upstream_output
        table = table_name(upstream)
        challenges = list(context.asset_partition_keys) if context.has_asset_partitions else None
        return self.store.read(table, challenges)
