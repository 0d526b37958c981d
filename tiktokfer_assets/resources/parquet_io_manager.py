"""Parquet IO manager for array outputs (embeddings): one Parquet file per asset and challenge partition.

The same class serves both environments, through universal-pathlib: ``base_path`` is
a local folder, or ``s3://bucket/prefix`` (s3fs; endpoint, region and credentials
from the fields, which production fills with ``EnvVar``). Files live at
``<base_path>/<asset key>/<challenge>.parquet`` and carry the ``challenge`` column,
so loading several partitions gives one frame, as the table IO manager does.
Arrays are polars ``List``/``Array`` columns, which Parquet stores natively.
"""

from __future__ import annotations

import io
import uuid

import polars as pl
from dagster import (
    ConfigurableIOManagerFactory,
    InitResourceContext,
    InputContext,
    MetadataValue,
    OutputContext,
    UPathIOManager,
)
from upath import UPath

from tiktokfer_assets.resources.io_managers import column_schema
from tiktokfer_assets.resources.object_store import ObjectStoreError
from tiktokfer_assets.resources.table_store import with_partition
from tiktokfer_assets.tables import PARTITION_COLUMN

LOCAL_PROTOCOLS = ("", "file", "local")


class PolarsParquetIOManager(UPathIOManager):
    """Writes an asset's polars DataFrame as ``<partition>.parquet`` under ``base_path`` and reads it back."""

    extension = ".parquet"

    def dump_to_path(self, context: OutputContext, obj: pl.DataFrame, path: UPath) -> None:
        if not isinstance(obj, pl.DataFrame):
            raise TypeError(
                f"{context.asset_key.to_user_string()} must return a polars DataFrame, got {type(obj).__name__}"
            )
        if context.has_asset_partitions:
            obj = with_partition(obj, context.asset_partition_key)
        buffer = io.BytesIO()
        obj.write_parquet(buffer)
        try:
            if path.protocol in LOCAL_PROTOCOLS:
                # readers never see a half-written file: write beside it, then rename over it
                partial = path.with_name(f".{path.name}.{uuid.uuid4().hex}.partial")
                partial.write_bytes(buffer.getvalue())
                partial.rename(path)
            else:  # an object store's PUT is atomic already
                path.write_bytes(buffer.getvalue())
        except OSError as exc:
            raise ObjectStoreError(f"Parquet IO manager: cannot write {path} ({_where(path)}): {exc}") from exc

    def load_from_path(self, context: InputContext, path: UPath) -> pl.DataFrame:
        try:
            with path.open("rb") as source:
                return pl.read_parquet(source)
        except FileNotFoundError as exc:  # still one: Dagster skips it for inputs with allow_missing_partitions
            raise FileNotFoundError(f"Parquet IO manager: no file {path} ({_where(path)})") from exc
        except OSError as exc:
            raise ObjectStoreError(f"Parquet IO manager: cannot read {path} ({_where(path)}): {exc}") from exc

    def load_input(self, context: InputContext) -> pl.DataFrame:
        """One frame for one partition or several (the partitions' rows one after another)."""
        loaded = super().load_input(context)
        if isinstance(loaded, dict):
            frames = [loaded[key] for key in sorted(loaded)]
            if not frames:
                return pl.DataFrame(schema={PARTITION_COLUMN: pl.String})
            return pl.concat(frames, how="diagonal_relaxed")
        return loaded

    def get_metadata(self, context: OutputContext, obj: pl.DataFrame) -> dict[str, MetadataValue]:
        return {
            "dagster/row_count": MetadataValue.int(obj.height),
            "dagster/column_schema": MetadataValue.table_schema(column_schema(None, obj)),
            "columns": MetadataValue.text(", ".join(obj.columns)),
        }


def _where(path: UPath) -> str:
    if path.protocol in LOCAL_PROTOCOLS:
        return "local filesystem"
    endpoint = (path.storage_options.get("client_kwargs") or {}).get("endpoint_url") or "AWS"
    return f"S3 at {endpoint}"


class ParquetIOManager(ConfigurableIOManagerFactory):
    """Parquet files under ``base_path``: a folder, or ``s3://bucket/prefix`` with the S3 fields below."""

    base_path: str
    endpoint_url: str | None = None
    region_name: str | None = None
    aws_access_key_id: str | None = None
    aws_secret_access_key: str | None = None

    def storage_options(self) -> dict:
        """fsspec options for ``base_path`` (only the S3 fields that are set; none for a folder)."""
        if not self.base_path.startswith(("s3://", "s3a://")):
            return {}
        client_kwargs = {
            k: v for k, v in {"endpoint_url": self.endpoint_url, "region_name": self.region_name}.items() if v
        }
        options = {"key": self.aws_access_key_id, "secret": self.aws_secret_access_key}
        return {
            **{k: v for k, v in options.items() if v},
            **({"client_kwargs": client_kwargs} if client_kwargs else {}),
        }

    def create_io_manager(self, context: InitResourceContext) -> PolarsParquetIOManager:
        return PolarsParquetIOManager(base_path=UPath(self.base_path, **self.storage_options()))
