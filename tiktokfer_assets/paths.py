"""Where the project keeps its files on this machine.

Every location can be moved with an environment variable so that tests, CI and the
demo can point the same code at temporary or shared folders.
"""

from __future__ import annotations

import os
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def _dir(env_var: str, default: Path) -> Path:
    value = os.environ.get(env_var)
    return Path(value).expanduser().resolve() if value else default


def weights_dir() -> Path:
    """Model checkpoints fetched by `tiktokfer fetch` (``TIKTOKFER_WEIGHTS_DIR``)."""
    return _dir("TIKTOKFER_WEIGHTS_DIR", PROJECT_ROOT / "weights")


def data_dir() -> Path:
    """Fetched media and generated challenges (``TIKTOKFER_DATA_DIR``)."""
    return _dir("TIKTOKFER_DATA_DIR", PROJECT_ROOT / "data")


def media_dir() -> Path:
    """Real test photos and video fetched from the manifest."""
    return data_dir() / "media"


def home_dir() -> Path:
    """Local storage of the default environment: objects, DuckDB tables, Dagster home (``TIKTOKFER_HOME``)."""
    return _dir("TIKTOKFER_HOME", PROJECT_ROOT / ".tiktokfer")
