"""Table store: per-challenge partitions of polars tables, replaced atomically.

The DuckDB store is the local default; the Postgres store (production) implements
the same interface. Assets reach tables through :mod:`tiktokfer_assets.resources.io_managers`;
the store is also a resource for the few places that read or write outside an
asset's own output (challenge registry, what a re-run already stored).
"""

from __future__ import annotations

import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from contextlib import contextmanager
from pathlib import Path

import duckdb
import polars as pl
from dagster import ConfigurableResource

from tiktokfer_assets.tables import PARTITION_COLUMN, SCHEMAS, empty


class TableStoreError(RuntimeError):
    """The table store could not be reached or refused an operation."""


class TableStore(ConfigurableResource, ABC):
    @abstractmethod
    def replace_partition(self, table: str, challenge: str, df: pl.DataFrame) -> None:
        """Delete the challenge's rows of ``table`` and insert ``df`` in one transaction."""

    @abstractmethod
    def read(self, table: str, challenges: Sequence[str] | None = None) -> pl.DataFrame:
        """Rows of ``table`` for ``challenges`` (all when None), with the ``challenge`` column."""

    @abstractmethod
    def update_partition(
        self, table: str, challenge: str, change: Callable[[pl.DataFrame], pl.DataFrame]
    ) -> pl.DataFrame:
        """Replace the challenge's rows of ``table`` with ``change(rows)`` atomically: no other writer of the
        partition reads or writes between the read and the write. Returns the rows read (a counter's use)."""

    @abstractmethod
    def delete_partition(self, table: str, challenge: str) -> None: ...

    @abstractmethod
    def location(self) -> str:
        """Where the tables are, for people (never including a password)."""

    def count(self, table: str, challenge: str) -> int:
        return self.read(table, [challenge]).height


def with_partition(df: pl.DataFrame, challenge: str) -> pl.DataFrame:
    """``df`` with the partition column set to ``challenge`` and first."""
    df = df.drop(PARTITION_COLUMN, strict=False)
    return df.select(pl.lit(challenge, dtype=pl.String).alias(PARTITION_COLUMN), pl.all())


def normalise_read(table: str, df: pl.DataFrame) -> pl.DataFrame:
    """Rows read back from a database with the table's declared types (time zones as UTC)."""
    schema = SCHEMAS.get(table, {})
    casts = []
    for name in df.columns:
        dtype = df.schema[name]
        if isinstance(dtype, pl.Datetime) and dtype.time_zone is not None:
            casts.append(pl.col(name).dt.convert_time_zone("UTC"))
        elif name in schema and dtype != schema[name]:
            casts.append(pl.col(name).cast(schema[name]))
    return df.with_columns(casts) if casts else df


def empty_with_partition(table: str) -> pl.DataFrame:
    if table in SCHEMAS:
        return with_partition(empty(table), "").clear()
    return pl.DataFrame(schema={PARTITION_COLUMN: pl.String})


_UPDATES = threading.Lock()  # DuckDBTableStore.update_partition: one at a time in this process


def _quote(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'


class DuckDBTableStore(TableStore):
    """Tables in one embedded DuckDB file.

    The file is created by the first write; until then every table reads as empty.
    DuckDB allows one writing process at a time; concurrent steps (multiprocess
    executor, parallel runs) wait for the file lock with bounded backoff instead of
    failing at once. Within a process, :meth:`update_partition` calls take turns (one lock):
    DuckDB would refuse the second of two conflicting transactions rather than wait.
    """

    path: str
    lock_timeout_s: float = 120.0

    @contextmanager
    def _connect(self):
        Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        deadline = time.monotonic() + self.lock_timeout_s
        delay = 0.05
        while True:
            try:
                conn = duckdb.connect(self.path)
                break
            except duckdb.IOException as exc:
                if "lock" not in str(exc).lower() or time.monotonic() > deadline:
                    raise TableStoreError(f"cannot open DuckDB table store {self.path}: {exc}") from exc
                time.sleep(delay)
                delay = min(delay * 2, 2.0)
        try:
            yield conn
        finally:
            conn.close()

    @staticmethod
    def _exists(conn, table: str) -> bool:
        return bool(conn.execute(
            "SELECT count(*) FROM information_schema.tables WHERE table_name = ?", [table]
        ).fetchone()[0])

    @contextmanager
    def _transaction(self):
        with self._connect() as conn:
            conn.execute("BEGIN TRANSACTION")
            try:
                yield conn
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise

    def _replace(self, conn, table: str, challenge: str, df: pl.DataFrame) -> None:
        conn.register("incoming", with_partition(df, challenge).to_arrow())
        if not self._exists(conn, table):
            conn.execute(f"CREATE TABLE {_quote(table)} AS SELECT * FROM incoming LIMIT 0")
        else:
            have = {row[0] for row in conn.execute(f"DESCRIBE {_quote(table)}").fetchall()}
            for name, dtype, *_ in conn.execute("DESCRIBE incoming").fetchall():
                if name not in have:
                    conn.execute(f"ALTER TABLE {_quote(table)} ADD COLUMN {_quote(name)} {dtype}")
        conn.execute(f"DELETE FROM {_quote(table)} WHERE {PARTITION_COLUMN} = ?", [challenge])
        conn.execute(f"INSERT INTO {_quote(table)} BY NAME SELECT * FROM incoming")
        conn.unregister("incoming")

    def _read(self, conn, table: str, challenges: Sequence[str] | None) -> pl.DataFrame:
        if not self._exists(conn, table) or (challenges is not None and not challenges):
            return empty_with_partition(table)
        query = f"SELECT * FROM {_quote(table)}"
        params: list = []
        if challenges is not None:
            query += f" WHERE {PARTITION_COLUMN} IN ({', '.join('?' for _ in challenges)})"
            params = list(challenges)
        return normalise_read(table, conn.execute(query, params).pl())

    def replace_partition(self, table: str, challenge: str, df: pl.DataFrame) -> None:
        with self._transaction() as conn:
            self._replace(conn, table, challenge, df)

    def update_partition(
        self, table: str, challenge: str, change: Callable[[pl.DataFrame], pl.DataFrame]
    ) -> pl.DataFrame:
        with _UPDATES, self._transaction() as conn:
            rows = self._read(conn, table, [challenge])
            self._replace(conn, table, challenge, change(rows))
        return rows

    def read(self, table: str, challenges: Sequence[str] | None = None) -> pl.DataFrame:
        if not Path(self.path).exists():  # a fresh home: reading (e.g. `tiktokfer status`) creates no file
            return empty_with_partition(table)
        with self._connect() as conn:
            return self._read(conn, table, challenges)

    def location(self) -> str:
        return f"DuckDB file {Path(self.path).resolve()}"

    def delete_partition(self, table: str, challenge: str) -> None:
        with self._connect() as conn:
            if self._exists(conn, table):
                conn.execute(f"DELETE FROM {_quote(table)} WHERE {PARTITION_COLUMN} = ?", [challenge])
