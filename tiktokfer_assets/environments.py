"""Resources per environment, chosen by ``TIKTOKFER_ENV`` (``local`` by default, or ``production``)."""

from __future__ import annotations

import os
from pathlib import Path

from tiktokfer_assets.paths import home_dir
from tiktokfer_assets.resources.gpu import GpuResource
from tiktokfer_assets.resources.io_managers import PolarsTableIOManager
from tiktokfer_assets.resources.object_store import LocalObjectStore
from tiktokfer_assets.resources.table_store import DuckDBTableStore
from tiktokfer_assets.resources.video_source import VideoSourceResource

ENVIRONMENTS = ("local", "production")


def current_environment() -> str:
    env = os.environ.get("TIKTOKFER_ENV", "local")
    if env not in ENVIRONMENTS:
        raise ValueError(f"TIKTOKFER_ENV={env!r}: expected one of {ENVIRONMENTS}")
    return env


def local_resources(home: Path | None = None) -> dict:
    """Embedded default: files under ``home`` (TIKTOKFER_HOME), tables in one DuckDB file."""
    home = home or home_dir()
    table_store = DuckDBTableStore(path=str(home / "tables.duckdb"))
    return {
        "object_store": LocalObjectStore(root=str(home / "objects")),
        "table_store": table_store,
        "table_io_manager": PolarsTableIOManager(store=table_store),
        "gpu": GpuResource(),
        "video_sources": VideoSourceResource(),
    }


def resources_for(env: str | None = None) -> dict:
    env = env or current_environment()
    if env == "local":
        return local_resources()
    raise NotImplementedError("production resources (S3 + Postgres) are added by the production-storage work")
