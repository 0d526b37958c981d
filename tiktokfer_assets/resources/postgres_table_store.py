"""The table store on Postgres (production), with psycopg 3.

- Writes replace one challenge's rows in ONE transaction: ``DELETE`` the partition's
  rows, then bulk-insert the new ones with ``COPY``. Readers see the old rows or the
  new ones, never a mix; a failed write (a session killed mid-``COPY`` included) leaves
  the old rows. Writers of one (table, partition) are serialised by a transaction-level
  advisory lock, so two runs of one partition never leave both their rows.
- The project owns the schema: tables live in their own Postgres schema
  (``db_schema``, default ``tiktokfer``, apart from Dagster's own tables), are created
  from :data:`tiktokfer_assets.tables.SCHEMAS` when a run starts, and gain a column
  with ``ALTER TABLE`` as soon as ``SCHEMAS`` or an incoming frame has one the table
  lacks. Every change is recorded in ``tiktokfer_schema_version`` (one row per DDL
  statement; the schema version is the highest row). Changes are serialised with an
  advisory lock, so concurrent writers never race on DDL.
- Indexes: ``(challenge, _row)`` on every table (partition reads, in written order)
  and ``(challenge, key)`` for each join key a table has (video_id, frame_id,
  face_id, track_id).
- Rows come back in the order they were written (a hidden ``_row`` column), as polars
  frames with the table's declared types (:func:`normalise_read`).
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Mapping, Sequence
from contextlib import contextmanager

import polars as pl
import psycopg
from dagster import InitResourceContext
from psycopg import sql

from tiktokfer_assets.resources.fields import config_value
from tiktokfer_assets.resources.table_store import (
    TableStore,
    TableStoreError,
    empty_with_partition,
    normalise_read,
    with_partition,
)
from tiktokfer_assets.tables import PARTITION_COLUMN, SCHEMAS

VERSION_TABLE = "tiktokfer_schema_version"
ORDER_COLUMN = "_row"
JOIN_KEYS = ("video_id", "frame_id", "face_id", "track_id")

_SCALARS_TO_PG: dict[type[pl.DataType], str] = {
    pl.String: "text", pl.Categorical: "text", pl.Enum: "text", pl.Null: "text",
    pl.Boolean: "boolean",
    pl.Int8: "smallint", pl.Int16: "smallint", pl.UInt8: "smallint",
    pl.Int32: "integer", pl.UInt16: "integer",
    pl.Int64: "bigint", pl.UInt32: "bigint", pl.UInt64: "numeric(20, 0)",
    pl.Float32: "real", pl.Float64: "double precision", pl.Decimal: "numeric",
    pl.Date: "date", pl.Time: "time", pl.Duration: "interval", pl.Binary: "bytea",
}
_PG_TO_POLARS: dict[str, pl.DataType] = {
    "text": pl.String, "varchar": pl.String, "bpchar": pl.String, "json": pl.String, "jsonb": pl.String,
    "bool": pl.Boolean, "int2": pl.Int16, "int4": pl.Int32, "int8": pl.Int64,
    "float4": pl.Float32, "float8": pl.Float64, "numeric": pl.Float64,
    "date": pl.Date, "time": pl.Time, "interval": pl.Duration("us"), "bytea": pl.Binary,
    "timestamp": pl.Datetime("us"), "timestamptz": pl.Datetime("us", "UTC"),
}


def pg_type(dtype: pl.DataType, column: str = "") -> str:
    """The Postgres type a polars column is stored as (lists and arrays of scalars become Postgres arrays)."""
    if isinstance(dtype, pl.Datetime):
        return "timestamptz" if dtype.time_zone else "timestamp"
    if isinstance(dtype, (pl.List, pl.Array)):
        inner = dtype.inner
        if isinstance(inner, (pl.List, pl.Array, pl.Struct)):
            raise TableStoreError(f"column {column!r}: nested type {dtype} cannot be stored in a Postgres table; "
                                  "store arrays of arrays through the Parquet IO manager")
        return pg_type(inner, column) + "[]"
    base = dtype.base_type()
    if base not in _SCALARS_TO_PG:
        raise TableStoreError(f"column {column!r}: polars type {dtype} has no Postgres column type here")
    return _SCALARS_TO_PG[base]


def polars_type(udt_name: str) -> pl.DataType:
    """The polars type of a Postgres column (``udt_name`` as in information_schema; ``_x`` is an array of x)."""
    if udt_name.startswith("_"):
        return pl.List(polars_type(udt_name[1:]))
    return _PG_TO_POLARS.get(udt_name, pl.String)


def _lock_key(name: str) -> int:
    """A stable 63-bit advisory-lock key for ``name``."""
    return zlib.crc32(f"tiktokfer:{name}".encode()) | (0x7A1C << 32)


def _index_name(table: str, column: str) -> str:
    name = f"{table}_{column}_idx"
    return name if len(name) <= 63 else f"{name[:50]}_{zlib.crc32(name.encode()):08x}"


class PostgresTableStore(TableStore):
    """Tables in a Postgres database; every connection setting may be an ``EnvVar``.

    ``password`` is only ever handed to libpq; messages and :meth:`location` never
    include it.
    """

    host: str = "127.0.0.1"
    port: int = 5432
    user: str = "postgres"
    password: str | None = None
    dbname: str = "tiktokfer"
    db_schema: str = "tiktokfer"
    connect_timeout_s: int = 10

    # -- connections ----------------------------------------------------------------------

    def _settings(self) -> dict:
        return {
            "host": config_value(self.host), "port": int(config_value(self.port)),
            "user": config_value(self.user), "dbname": config_value(self.dbname),
        }

    def _where(self) -> str:
        s = self._settings()
        return f"Postgres at {s['host']}:{s['port']} (database {s['dbname']!r}, user {s['user']!r})"

    @contextmanager
    def _connect(self):
        try:
            conn = psycopg.connect(
                **self._settings(),
                password=config_value(self.password) or None,
                connect_timeout=self.connect_timeout_s,
                application_name="tiktokfer",
                options="-c timezone=UTC",
            )
        except psycopg.OperationalError as exc:
            raise TableStoreError(f"cannot connect to {self._where()}: {str(exc).strip()}") from exc
        try:
            yield conn
        finally:
            conn.close()

    @contextmanager
    def _transaction(self, what: str):
        """A cursor in one transaction; a database error becomes a TableStoreError saying what failed."""
        with self._connect() as conn:
            try:
                with conn.transaction(), conn.cursor() as cur:
                    yield cur
            except psycopg.Error as exc:
                raise TableStoreError(f"{self._where()}: {what} failed: {str(exc).strip()}") from exc

    def _ident(self, table: str) -> sql.Composed:
        return sql.Identifier(config_value(self.db_schema), table)

    # -- schema management ----------------------------------------------------------------

    def setup_for_execution(self, context: InitResourceContext) -> None:
        version = self.migrate()
        if context.log is not None:
            context.log.info(f"table store: {self.location()}, schema version {version}")

    def migrate(self) -> int:
        """Create the schema, the version table and every table of ``SCHEMAS`` with its columns and indexes.

        Idempotent; returns the schema version (how many changes were ever applied).
        """
        with self._transaction("schema migration") as cur:
            self._lock(cur)
            for table, columns in SCHEMAS.items():
                self._apply(cur, table, {PARTITION_COLUMN: pl.String, **columns})
            return self._version(cur)

    def schema_version(self) -> int:
        with self._transaction("reading the schema version") as cur:
            return self._version(cur) if self._columns(cur, VERSION_TABLE) else 0

    def _lock(self, cur) -> None:
        """Serialise schema changes (this transaction's DDL) with every other tiktokfer writer of this schema."""
        schema = config_value(self.db_schema)
        cur.execute("SELECT pg_advisory_xact_lock(%s)", [_lock_key(schema)])
        cur.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(schema)))
        cur.execute(sql.SQL(
            "CREATE TABLE IF NOT EXISTS {} (version integer PRIMARY KEY, table_name text NOT NULL, "
            "change text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())"
        ).format(self._ident(VERSION_TABLE)))

    def _lock_partition(self, cur, table: str, challenge: str) -> None:
        """Serialise the writers of one (table, partition) until this transaction ends.

        Under READ COMMITTED two concurrent DELETE + COPY of one partition would each delete
        the rows committed before them and both insert: twice the rows. The second writer
        now waits here, and its DELETE sees (and removes) the first one's rows.
        """
        key = _lock_key(f"{config_value(self.db_schema)}.{table}/{challenge}")
        cur.execute("SELECT pg_advisory_xact_lock(%s)", [key])

    def _version(self, cur) -> int:
        cur.execute(sql.SQL("SELECT coalesce(max(version), 0) FROM {}").format(self._ident(VERSION_TABLE)))
        return cur.fetchone()[0]

    def _columns(self, cur, table: str) -> dict[str, str]:
        """The table's columns (name -> udt_name) in order; empty when the table does not exist."""
        cur.execute(
            "SELECT column_name, udt_name FROM information_schema.columns "
            "WHERE table_schema = %s AND table_name = %s ORDER BY ordinal_position",
            [config_value(self.db_schema), table],
        )
        return dict(cur.fetchall())

    def _changes(self, have: Mapping[str, str], table: str, columns: Mapping[str, pl.DataType]) -> list[sql.Composed]:
        """The DDL that brings ``table`` (with columns ``have``) to ``columns``, indexes included."""
        ident = self._ident(table)
        if not have:
            defs = [sql.SQL("{} {} NOT NULL").format(sql.Identifier(PARTITION_COLUMN), sql.SQL("text")),
                    sql.SQL("{} bigint NOT NULL").format(sql.Identifier(ORDER_COLUMN))]
            defs += [sql.SQL("{} {}").format(sql.Identifier(name), sql.SQL(pg_type(dtype, name)))
                     for name, dtype in columns.items() if name != PARTITION_COLUMN]
            statements = [sql.SQL("CREATE TABLE {} ({})").format(ident, sql.SQL(", ").join(defs))]
            statements.append(self._index(table, ORDER_COLUMN))
            new = list(columns)
        else:
            new = [name for name in columns if name not in have]
            statements = [sql.SQL("ALTER TABLE {} ADD COLUMN {} {}").format(
                ident, sql.Identifier(name), sql.SQL(pg_type(columns[name], name))) for name in new]
        statements += [self._index(table, key) for key in JOIN_KEYS if key in new]
        return statements

    def _index(self, table: str, column: str) -> sql.Composed:
        return sql.SQL("CREATE INDEX IF NOT EXISTS {} ON {} ({}, {})").format(
            sql.Identifier(_index_name(table, column)), self._ident(table),
            sql.Identifier(PARTITION_COLUMN), sql.Identifier(column))

    def _apply(self, cur, table: str, columns: Mapping[str, pl.DataType]) -> None:
        """Apply and record the changes ``table`` needs (the caller holds the schema lock)."""
        statements = self._changes(self._columns(cur, table), table, columns)
        version = self._version(cur)
        for statement in statements:
            cur.execute(statement)
            version += 1
            cur.execute(sql.SQL("INSERT INTO {} (version, table_name, change) VALUES (%s, %s, %s)").format(
                self._ident(VERSION_TABLE)), [version, table, statement.as_string(cur)])

    def _ensure(self, cur, table: str, columns: Mapping[str, pl.DataType]) -> None:
        """Make sure ``table`` has ``columns``; takes the schema lock only when something must change."""
        wanted = {PARTITION_COLUMN: pl.String, **SCHEMAS.get(table, {}), **columns}
        if self._changes(self._columns(cur, table), table, wanted):
            self._lock(cur)
            self._apply(cur, table, wanted)  # re-reads the columns under the lock

    # -- the TableStore interface -----------------------------------------------------------

    def replace_partition(self, table: str, challenge: str, df: pl.DataFrame) -> None:
        with self._transaction(f"replacing partition {challenge!r} of table {table!r}") as cur:
            self._lock_partition(cur, table, challenge)
            self._replace(cur, table, challenge, df)

    def _replace(self, cur, table: str, challenge: str, df: pl.DataFrame) -> None:
        """DELETE the partition's rows and COPY ``df`` in (the caller holds the partition lock)."""
        incoming = with_partition(df, challenge)
        columns = dict(incoming.schema)
        self._ensure(cur, table, columns)
        ident = self._ident(table)
        where = sql.Identifier(PARTITION_COLUMN)
        cur.execute(sql.SQL("DELETE FROM {} WHERE {} = %s").format(ident, where), [challenge])
        names = sql.SQL(", ").join(sql.Identifier(name) for name in [ORDER_COLUMN, *columns])
        with cur.copy(sql.SQL("COPY {} ({}) FROM STDIN").format(ident, names)) as copy:
            for position, row in enumerate(incoming.iter_rows()):
                copy.write_row((position, *row))

    def update_partition(
        self, table: str, challenge: str, change: Callable[[pl.DataFrame], pl.DataFrame]
    ) -> pl.DataFrame:
        with self._transaction(f"updating partition {challenge!r} of table {table!r}") as cur:
            self._lock_partition(cur, table, challenge)  # held from the read to the commit of the write
            rows = self._read(cur, table, [challenge])
            self._replace(cur, table, challenge, change(rows))
        return rows

    def read(self, table: str, challenges: Sequence[str] | None = None) -> pl.DataFrame:
        with self._transaction(f"reading table {table!r}") as cur:
            return self._read(cur, table, challenges)

    def _read(self, cur, table: str, challenges: Sequence[str] | None) -> pl.DataFrame:
        have = self._columns(cur, table)
        if not have:
            return empty_with_partition(table)
        names = [name for name in have if name != ORDER_COLUMN]
        query = sql.SQL("SELECT {} FROM {}").format(sql.SQL(", ").join(map(sql.Identifier, names)), self._ident(table))
        params: list = []
        if challenges is not None:
            query += sql.SQL(" WHERE {} = ANY(%s)").format(sql.Identifier(PARTITION_COLUMN))
            params.append(list(challenges))
        query += sql.SQL(" ORDER BY {}, {}").format(sql.Identifier(PARTITION_COLUMN), sql.Identifier(ORDER_COLUMN))
        cur.execute(query, params)
        schema = {name: polars_type(have[name]) for name in names}
        return normalise_read(table, pl.DataFrame(cur.fetchall(), schema=schema, orient="row"))

    def count(self, table: str, challenge: str) -> int:
        with self._transaction(f"counting rows of table {table!r}") as cur:
            if not self._columns(cur, table):
                return 0
            cur.execute(sql.SQL("SELECT count(*) FROM {} WHERE {} = %s").format(
                self._ident(table), sql.Identifier(PARTITION_COLUMN)), [challenge])
            return cur.fetchone()[0]

    def delete_partition(self, table: str, challenge: str) -> None:
        with self._transaction(f"deleting partition {challenge!r} of table {table!r}") as cur:
            self._lock_partition(cur, table, challenge)
            if self._columns(cur, table):
                cur.execute(sql.SQL("DELETE FROM {} WHERE {} = %s").format(
                    self._ident(table), sql.Identifier(PARTITION_COLUMN)), [challenge])

    def location(self) -> str:
        s = self._settings()
        return f"Postgres {s['user']}@{s['host']}:{s['port']}/{s['dbname']} (schema {config_value(self.db_schema)})"


@contextmanager
def _maintenance(host: str, port: int, user: str, password: str | None, maintenance_db: str):
    try:
        conn = psycopg.connect(host=host, port=port, user=user, password=password or None, dbname=maintenance_db,
                               autocommit=True, connect_timeout=10)
    except psycopg.OperationalError as exc:
        raise TableStoreError(f"cannot connect to Postgres at {host}:{port} (database {maintenance_db!r}, "
                              f"user {user!r}): {str(exc).strip()}") from exc
    try:
        yield conn
    finally:
        conn.close()


def create_database(name: str, *, host: str = "127.0.0.1", port: int = 5432, user: str = "postgres",
                    password: str | None = None, maintenance_db: str = "postgres") -> bool:
    """Create the database ``name`` unless it exists; True when it was created (for set-up scripts and tests)."""
    with _maintenance(host, port, user, password, maintenance_db) as conn:
        if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
            return False
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        return True


def drop_database(name: str, *, host: str = "127.0.0.1", port: int = 5432, user: str = "postgres",
                  password: str | None = None, maintenance_db: str = "postgres") -> None:
    """Drop the database ``name`` if it exists, closing its open connections (Postgres 13+)."""
    with _maintenance(host, port, user, password, maintenance_db) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
