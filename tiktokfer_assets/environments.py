"""Resources per environment, chosen by ``TIKTOKFER_ENV`` (``local`` by default, or ``production``).

Production reads its settings from the environment (see :func:`production_resources`);
connection settings and credentials are Dagster ``EnvVar``s, resolved when a run
starts and never written into run config or logs.
"""

from __future__ import annotations

import os
from pathlib import Path

from dagster import EnvVar

from tiktokfer_assets.paths import home_dir
from tiktokfer_assets.resources.gpu import GpuResource
from tiktokfer_assets.resources.io_managers import PolarsTableIOManager
from tiktokfer_assets.resources.object_store import LocalObjectStore
from tiktokfer_assets.resources.parquet_io_manager import ParquetIOManager
from tiktokfer_assets.resources.table_store import DuckDBTableStore
from tiktokfer_assets.resources.video_source import ResearchApiConfig, VideoSourceResource
from tiktokfer_assets.sources.research_api import API_URL, CREDENTIAL_VARIABLES, DAILY_REQUEST_LIMIT

ENVIRONMENTS = ("local", "production")


class EnvironmentSettingsError(ValueError):
    """An environment variable that chooses or configures the environment is missing or wrong."""


def current_environment() -> str:
    env = os.environ.get("TIKTOKFER_ENV", "local")
    if env not in ENVIRONMENTS:
        raise EnvironmentSettingsError(f"TIKTOKFER_ENV={env!r}: expected one of {ENVIRONMENTS}")
    return env


def local_resources(home: Path | None = None) -> dict:
    """Embedded default: files under ``home`` (TIKTOKFER_HOME), tables in one DuckDB file."""
    home = home or home_dir()
    table_store = DuckDBTableStore(path=str(home / "tables.duckdb"))
    return {
        "object_store": LocalObjectStore(root=str(home / "objects")),
        "table_store": table_store,
        "table_io_manager": PolarsTableIOManager(store=table_store),
        "parquet_io_manager": ParquetIOManager(base_path=str(home / "parquet")),
        "gpu": GpuResource(),
        "video_sources": video_sources(table_store),
    }


def _env(name: str, default=None, *, integer: bool = False):
    """``EnvVar(name)`` when the variable is set (Dagster resolves it at run time), else ``default``."""
    if name not in os.environ:
        return default
    return EnvVar.int(name) if integer else EnvVar(name)


def video_sources(table_store) -> VideoSourceResource:
    """The video sources, counting Research API requests in ``table_store``.

    ``TIKTOKFER_RESEARCH_CLIENT_KEY`` and ``TIKTOKFER_RESEARCH_CLIENT_SECRET`` (the research
    client's credentials; unset: research_api sources refuse to list),
    ``TIKTOKFER_RESEARCH_API_URL`` (TikTok's) and ``TIKTOKFER_RESEARCH_DAILY_LIMIT`` (1000).
    """
    key, secret = CREDENTIAL_VARIABLES
    research_api = ResearchApiConfig(
        client_key=_env(key), client_secret=_env(secret), base_url=_env("TIKTOKFER_RESEARCH_API_URL", API_URL),
        daily_request_limit=_env("TIKTOKFER_RESEARCH_DAILY_LIMIT", DAILY_REQUEST_LIMIT, integer=True),
    )
    return VideoSourceResource(table_store=table_store, research_api=research_api)


def production_resources() -> dict:
    """S3 objects (any S3-compatible endpoint), Postgres tables, Parquet arrays on S3.

    Environment variables (only the bucket is required):

    - ``TIKTOKFER_S3_BUCKET``, ``TIKTOKFER_S3_PREFIX`` (default none): where objects go;
      Parquet files go under ``<prefix>/parquet/``;
    - ``TIKTOKFER_S3_ENDPOINT`` (unset: AWS), ``TIKTOKFER_S3_REGION``,
      ``TIKTOKFER_S3_MAX_ATTEMPTS`` (5: tries per S3 request, with backoff);
    - ``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY`` (unset: boto3's default chain,
      e.g. an instance or pod role);
    - ``TIKTOKFER_PG_HOST`` (127.0.0.1), ``TIKTOKFER_PG_PORT`` (5432), ``TIKTOKFER_PG_USER``
      (postgres), ``TIKTOKFER_PG_PASSWORD`` (none), ``TIKTOKFER_PG_DB`` (tiktokfer),
      ``TIKTOKFER_PG_SCHEMA`` (tiktokfer).
    """
    # boto3 and dagster_aws take seconds to import: local runs never load them
    from dagster_aws.s3 import S3Resource

    from tiktokfer_assets.resources.postgres_table_store import PostgresTableStore
    from tiktokfer_assets.resources.s3_object_store import S3ObjectStore

    bucket = os.environ.get("TIKTOKFER_S3_BUCKET")
    if not bucket:
        raise EnvironmentSettingsError("TIKTOKFER_ENV=production needs TIKTOKFER_S3_BUCKET (the S3 bucket for media "
                                       "and Parquet files); see the README's Production section for every setting")
    prefix = os.environ.get("TIKTOKFER_S3_PREFIX", "").strip("/")
    credentials = {
        "endpoint_url": _env("TIKTOKFER_S3_ENDPOINT"),
        "region_name": _env("TIKTOKFER_S3_REGION"),
        "aws_access_key_id": _env("AWS_ACCESS_KEY_ID"),
        "aws_secret_access_key": _env("AWS_SECRET_ACCESS_KEY"),
    }
    table_store = PostgresTableStore(
        host=_env("TIKTOKFER_PG_HOST", "127.0.0.1"),
        port=_env("TIKTOKFER_PG_PORT", 5432, integer=True),
        user=_env("TIKTOKFER_PG_USER", "postgres"),
        password=_env("TIKTOKFER_PG_PASSWORD"),
        dbname=_env("TIKTOKFER_PG_DB", "tiktokfer"),
        db_schema=_env("TIKTOKFER_PG_SCHEMA", "tiktokfer"),
    )
    return {
        "object_store": S3ObjectStore(
            s3=S3Resource(**credentials, max_attempts=_env("TIKTOKFER_S3_MAX_ATTEMPTS", 5, integer=True)),
            bucket=bucket, prefix=prefix,
        ),
        "table_store": table_store,
        "table_io_manager": PolarsTableIOManager(store=table_store),
        "parquet_io_manager": ParquetIOManager(
            base_path=f"s3://{bucket}/{prefix + '/' if prefix else ''}parquet", **credentials
        ),
        "gpu": GpuResource(),
        "video_sources": video_sources(table_store),
    }


def resources_for(env: str | None = None) -> dict:
    env = env or current_environment()
    if env == "local":
        return local_resources()
    return production_resources()
