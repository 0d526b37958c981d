"""The Postgres table store against the real server on 127.0.0.1:5432 (a fresh database per module)."""

from __future__ import annotations

import datetime as dt
import functools
import os
import shutil
import subprocess
import tempfile
import threading
import uuid
from pathlib import Path

import polars as pl
import psycopg
import pytest
from dagster import AllPartitionMapping, AssetIn, EnvVar, StaticPartitionsDefinition, asset, materialize

from support.ports import free_ports
from tiktokfer_assets import tables
from tiktokfer_assets.resources.io_managers import PolarsTableIOManager
from tiktokfer_assets.resources.postgres_table_store import PostgresTableStore
from tiktokfer_assets.resources.table_store import TableStoreError, with_partition
from tiktokfer_assets.tables import conform

pytestmark = pytest.mark.postgres


@pytest.fixture
def store(database) -> PostgresTableStore:
    return PostgresTableStore(dbname=database, db_schema=f"s_{uuid.uuid4().hex[:8]}")


def sql(store: PostgresTableStore, query: str, params=()) -> list[tuple]:
    with psycopg.connect(host="127.0.0.1", port=5432, user="postgres", dbname=store.dbname) as conn:
        return conn.execute(query, params).fetchall()


def frame(ids, value=1.0):
    return pl.DataFrame({"id": ids, "value": [value] * len(ids)})


def run_writers(writer, count: int) -> list[Exception]:
    """Run ``writer(n)`` for n < count on threads at once; the exceptions they raised."""
    errors = []

    def collected(n: int):
        try:
            writer(n)
        except Exception as exc:  # collected: a thread's exception would otherwise vanish
            errors.append(exc)

    threads = [threading.Thread(target=collected, args=(n,)) for n in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return errors


def test_replace_touches_only_its_partition(store):
    store.replace_partition("t", "a", frame(["1", "2"]))
    store.replace_partition("t", "b", frame(["3"]))
    store.replace_partition("t", "a", frame(["4"], 2.0))
    assert store.read("t", ["a"]).to_dicts() == [{"challenge": "a", "id": "4", "value": 2.0}]
    assert store.read("t", ["b"])["id"].to_list() == ["3"]
    assert store.read("t")["id"].to_list() == ["4", "3"]
    assert store.count("t", "a") == 1 and store.count("t", "zzz") == 0 and store.count("nothing", "a") == 0
    store.delete_partition("t", "b")
    assert store.read("t")["challenge"].to_list() == ["a"]


def test_rows_come_back_in_written_order_with_declared_types(store):
    now = dt.datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=dt.timezone.utc)
    rows = conform("video_failures", [
        {"video_id": f"v{i:03d}", "reason": "r", "failed_at": now + dt.timedelta(seconds=i), "attempts": i}
        for i in range(300, 0, -1)  # not sorted by any column
    ])
    store.replace_partition("video_failures", "a", rows)
    back = store.read("video_failures", ["a"])
    assert back.equals(with_partition(rows, "a"))
    assert back.schema == with_partition(rows, "a").schema  # Int32, Datetime(us, UTC), ...


def test_arrays_and_undeclared_columns_round_trip(store):
    df = pl.DataFrame({
        "face_id": ["f1", "f2"],
        "box": [[1.5, 2.5, 3.5, 4.5], [0.0, 0.0, 1.0, 1.0]],
        "landmarks": pl.Series([[1, 2], [3, 4]], dtype=pl.List(pl.Int32)),
        "score": pl.Series([0.9, 0.8], dtype=pl.Float32),
        "seen": [dt.date(2026, 1, 1), None],
        "ok": [True, None],
    })
    store.replace_partition("faces_t", "a", df)
    assert store.read("faces_t", ["a"]).drop("challenge").equals(df)


def test_failed_replace_keeps_the_old_rows_and_the_old_schema(store):
    store.replace_partition("t", "a", frame(["1", "2"]))
    version = store.schema_version()
    bad = pl.DataFrame({"id": ["x"], "value": ["not a number"], "extra": ["new column"]})
    with pytest.raises(TableStoreError, match="replacing partition 'a' of table 't' failed: .*double precision"):
        store.replace_partition("t", "a", bad)
    assert store.read("t", ["a"])["id"].to_list() == ["1", "2"]
    assert "extra" not in store.read("t").columns  # the ALTER TABLE rolled back with the rest
    assert store.schema_version() == version


def test_migrations_add_columns_and_are_recorded(store, monkeypatch):
    version = store.migrate()
    assert version > 0 and store.migrate() == version  # idempotent
    # a column an incoming frame brings
    store.replace_partition("t", "a", frame(["1"]))
    store.replace_partition("t", "b", frame(["2"]).with_columns(extra=pl.lit("x")))
    assert store.read("t")["extra"].to_list() == [None, "x"]
    # a column added to the declared schema
    monkeypatch.setitem(tables.SCHEMAS, "videos", {**tables.SCHEMAS["videos"], "bitrate_kbps": pl.Int32})
    after = store.migrate()
    assert store.read("videos").schema["bitrate_kbps"] == pl.Int32
    changes = sql(
        store, f'SELECT version, table_name, change FROM "{store.db_schema}".tiktokfer_schema_version ORDER BY version'
    )
    assert [v for v, _, _ in changes] == list(range(1, after + 1))
    assert changes[-1][1:] == ("videos", f'ALTER TABLE "{store.db_schema}"."videos" ADD COLUMN "bitrate_kbps" integer')
    assert any(t == "t" and 'ADD COLUMN "extra" text' in change for _, t, change in changes)


def test_tables_get_indexes_on_the_partition_and_join_keys(store):
    store.migrate()
    store.replace_partition(
        "faces_t", "a", pl.DataFrame({"face_id": ["f"], "frame_id": ["fr"], "video_id": ["v"], "x": [1]})
    )
    store.replace_partition("faces_t", "a", pl.DataFrame({"face_id": ["f"], "track_id": [3]}))  # a key arriving later
    indexes = dict(sql(store, "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = %s", [store.db_schema]))
    assert indexes["videos_video_id_idx"].endswith("(challenge, video_id)")
    assert indexes["videos__row_idx"].endswith("(challenge, _row)")
    for key in ("face_id", "frame_id", "video_id", "track_id"):
        assert indexes[f"faces_t_{key}_idx"].endswith(f"(challenge, {key})")
    assert not any("_x_idx" in name for name in indexes)


def test_missing_table_reads_as_empty_with_schema(store):
    rows = store.read("videos", ["a"])
    assert rows.is_empty() and rows.columns[:2] == ["challenge", "video_id"]
    assert store.read("nothing").columns == ["challenge"]


def test_concurrent_writers_keep_to_their_partitions(store):
    """Eight writers replace their partitions over and over, two of them adding the same new column at once."""

    def writer(n: int):
        for round_ in range(5):
            df = frame([f"{n}-{round_}-{i}" for i in range(50 + n)], float(n))
            if n % 4 == 0 and round_ >= 2:
                df = df.with_columns(late=pl.lit(n))
            store.replace_partition("t", f"p{n}", df)

    assert run_writers(writer, 8) == []
    rows = store.read("t")
    for n in range(8):
        mine = rows.filter(pl.col("challenge") == f"p{n}")
        assert mine["id"].to_list() == [f"{n}-4-{i}" for i in range(50 + n)]
        assert mine["value"].unique().to_list() == [float(n)]
    assert rows.filter(pl.col("late").is_not_null())["challenge"].unique().sort().to_list() == ["p0", "p4"]


def test_connection_refused_names_postgres_and_the_address(database):
    (port,) = free_ports(1)
    store = PostgresTableStore(port=port, dbname=database, password="hunter2-secret")
    with pytest.raises(TableStoreError) as error:
        store.read("videos")
    message = str(error.value)
    assert f"cannot connect to Postgres at 127.0.0.1:{port} (database '{database}', user 'postgres')" in message
    assert "refused" in message.lower() and "hunter2-secret" not in message
    assert "hunter2-secret" not in store.location()


def test_settings_from_env_vars_resolve_outside_a_run(database, monkeypatch):
    monkeypatch.setenv("T_PG_DB", database)
    monkeypatch.setenv("T_PG_PORT", "5432")
    store = PostgresTableStore(dbname=EnvVar("T_PG_DB"), port=EnvVar.int("T_PG_PORT"), db_schema="envtest")
    store.replace_partition("t", "a", frame(["1"]))
    assert store.read("t")["id"].to_list() == ["1"]
    assert store.location() == f"Postgres postgres@127.0.0.1:5432/{database} (schema envtest)"


def test_io_manager_stores_partitions_and_loads_them_together(store):
    parts = StaticPartitionsDefinition(["a", "b"])

    @asset(partitions_def=parts, io_manager_key="table_io_manager")
    def scores(context) -> pl.DataFrame:
        score = [1.0, 2.0] if context.partition_key == "a" else [3.0, 4.0]
        return pl.DataFrame({"video_id": ["v1", "v2"], "score": score})

    @asset(io_manager_key="table_io_manager", ins={"scores": AssetIn(partition_mapping=AllPartitionMapping())},
           metadata={"table": "score_totals"}, partitions_def=parts)
    def totals(context, scores: pl.DataFrame) -> pl.DataFrame:
        return scores.group_by(source="challenge").agg(pl.col("score").sum()).sort("source")

    resources = {"table_io_manager": PolarsTableIOManager(store=store)}
    for key in ("a", "b"):
        assert materialize([scores], partition_key=key, resources=resources).success
    assert materialize([scores, totals], selection=[totals], partition_key="a", resources=resources).success
    assert store.read("score_totals", ["a"]).select("source", "score").rows() == [("a", 3.0), ("b", 7.0)]
    assert store.schema_version() > 0  # the run's start migrated the declared tables
    assert sql(store, f'SELECT count(*) FROM "{store.db_schema}".videos') == [(0,)]


# -- faults: same-partition writers, a session killed mid-COPY, a server that asks for a password ------------


def test_two_writers_of_one_partition_leave_one_copy(store):
    """Both replace partition p at the same moment, three times: p holds one writer's rows, never both."""
    barrier = threading.Barrier(2)

    def writer(n: int):
        for _round in range(3):
            barrier.wait()
            store.replace_partition("t", "p", frame([f"{n}-{i}" for i in range(20_000)], float(n)))

    assert run_writers(writer, 2) == []
    rows = store.read("t", ["p"])
    assert rows.height == 20_000 and rows["value"].n_unique() == 1


def test_a_session_killed_mid_copy_keeps_the_old_rows_and_a_rerun_completes(store):
    store.replace_partition("t", "a", frame(["old-1", "old-2"]))
    killed = []

    def kill_the_copy(done: threading.Event):
        while not done.is_set() and not killed:
            killed.extend(sql(store, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s "
                                     "AND application_name = 'tiktokfer' AND query LIKE 'COPY%%'", [store.dbname]))

    big = frame([f"new-{i}" for i in range(300_000)], 2.0)
    done = threading.Event()
    watcher = threading.Thread(target=kill_the_copy, args=(done,))
    watcher.start()
    try:
        with pytest.raises(TableStoreError, match="replacing partition 'a' of table 't'"):
            store.replace_partition("t", "a", big)
    finally:
        done.set()
        watcher.join()
    assert killed == [(True,)]
    assert store.read("t", ["a"])["id"].to_list() == ["old-1", "old-2"]
    store.replace_partition("t", "a", big)
    assert store.count("t", "a") == 300_000


@pytest.fixture(scope="module")
def scram_postgres():
    """A private throw-away Postgres cluster on a free loopback port that asks for a scram-sha-256 password."""
    initdb = next(iter(sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"))), None) or shutil.which("initdb")
    if initdb is None:
        pytest.skip("initdb is not installed")
    bindir, password, (port,) = Path(initdb).parent, f"pw-{uuid.uuid4().hex}", free_ports(1)
    root = Path(tempfile.mkdtemp(prefix="tiktokfer-pg-"))
    as_owner = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    if as_owner:
        shutil.chown(root, "postgres")
    (root / "pw").write_text(password)
    run = functools.partial(subprocess.run, check=True, capture_output=True)
    try:
        run([*as_owner, bindir / "initdb", "-D", root / "data", "-U", "postgres", "--auth=scram-sha-256",
             f"--pwfile={root / 'pw'}"])
        run([*as_owner, bindir / "pg_ctl", "-D", root / "data", "-w", "-l", root / "log", "start", "-o",
             f"-p {port} -c listen_addresses=127.0.0.1 -k {root}"])
        yield port, password
    finally:
        stop = [*as_owner, bindir / "pg_ctl", "-D", root / "data", "-m", "immediate", "stop"]
        subprocess.run(stop, capture_output=True)
        shutil.rmtree(root)


def test_a_wrong_password_is_refused_by_name_and_never_shown(scram_postgres, capfd):
    port, password = scram_postgres
    wrong = f"wrong-{uuid.uuid4().hex}"

    @asset(io_manager_key="table_io_manager", partitions_def=StaticPartitionsDefinition(["a"]))
    def scores() -> pl.DataFrame:
        return pl.DataFrame({"video_id": ["v1"], "score": [1.0]})

    def run(store: PostgresTableStore, **kwargs):
        resources = {"table_io_manager": PolarsTableIOManager(store=store)}
        return materialize([scores], partition_key="a", resources=resources, **kwargs)

    refused = PostgresTableStore(port=port, dbname="postgres", password=wrong)
    result = run(refused, raise_on_error=False)
    assert not result.success
    events = "\n".join(str(event) for event in result.all_events)
    assert "password authentication failed" in events and f"127.0.0.1:{port}" in events
    good = PostgresTableStore(port=port, dbname="postgres", password=password)
    assert run(good).success
    assert good.read("scores")["video_id"].to_list() == ["v1"]
    output = capfd.readouterr()
    for secret in (wrong, password):
        assert secret not in events + output.out + output.err + good.location() + refused.location()
