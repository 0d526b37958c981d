"""Object store for media (videos, frames, face crops), addressed by ``<kind>/<challenge>/<video_id>/...`` keys."""

from __future__ import annotations

import os
import shutil
import tempfile
from abc import ABC, abstractmethod
from pathlib import Path

from dagster import ConfigurableResource


class ObjectStoreError(RuntimeError):
    """The object store could not be reached or refused an operation."""


class ObjectStore(ConfigurableResource, ABC):
    """Where media bytes live. Tables carry the keys; bytes never pass through an IO manager."""

    @abstractmethod
    def put_file(self, key: str, path: str | Path) -> None: ...

    @abstractmethod
    def put_bytes(self, key: str, data: bytes) -> None: ...

    @abstractmethod
    def get_bytes(self, key: str) -> bytes: ...

    @abstractmethod
    def download(self, key: str, path: str | Path) -> Path: ...

    @abstractmethod
    def exists(self, key: str) -> bool: ...

    @abstractmethod
    def delete(self, key: str) -> None: ...

    @abstractmethod
    def list_keys(self, prefix: str) -> list[str]: ...

    @abstractmethod
    def uri(self, key: str) -> str:
        """Where a person or another tool finds the object (file path or s3:// URI)."""

    @abstractmethod
    def location(self) -> str:
        """Where the whole store is, for people (a folder or an s3:// prefix)."""

    def delete_prefix(self, prefix: str, keep: set[str] = frozenset()) -> int:
        """Delete every object under ``prefix`` except ``keep``; returns how many went."""
        gone = [key for key in self.list_keys(prefix) if key not in keep]
        for key in gone:
            self.delete(key)
        return len(gone)


def _check_key(key: str) -> str:
    if not key or key.startswith("/") or ".." in key.split("/"):
        raise ObjectStoreError(f"invalid object key {key!r}")
    return key


class LocalObjectStore(ObjectStore):
    """Objects as files under ``root``; writes are atomic (temporary file + rename)."""

    root: str

    def _path(self, key: str) -> Path:
        return Path(self.root) / _check_key(key)

    def _write(self, key: str, writer) -> None:
        dest = self._path(key)
        dest.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.")
        try:
            with os.fdopen(fd, "wb") as out:
                writer(out)
            os.replace(tmp, dest)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def put_file(self, key: str, path: str | Path) -> None:
        with open(path, "rb") as src:
            self._write(key, lambda out: shutil.copyfileobj(src, out, 1 << 20))

    def put_bytes(self, key: str, data: bytes) -> None:
        self._write(key, lambda out: out.write(data))

    def get_bytes(self, key: str) -> bytes:
        try:
            return self._path(key).read_bytes()
        except FileNotFoundError:
            raise ObjectStoreError(f"object {key!r} not found in {self.root}") from None

    def download(self, key: str, path: str | Path) -> Path:
        src = self._path(key)
        if not src.is_file():
            raise ObjectStoreError(f"object {key!r} not found in {self.root}")
        shutil.copyfile(src, path)
        return Path(path)

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()

    def delete(self, key: str) -> None:
        self._path(key).unlink(missing_ok=True)

    def list_keys(self, prefix: str) -> list[str]:
        base = Path(self.root)
        start = base / prefix.rstrip("/") if prefix else base
        if not start.exists():
            return []
        return sorted(
            p.relative_to(base).as_posix()
            for p in start.rglob("*")
            if p.is_file() and not p.name.startswith(".")
        )

    def uri(self, key: str) -> str:
        return str(self._path(key))

    def location(self) -> str:
        return str(Path(self.root).resolve())
