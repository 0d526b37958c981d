"""The DuckDB table store and the polars table IO manager: atomic per-partition replace."""

from __future__ import annotations

import datetime as dt

import polars as pl
import pytest
from dagster import asset, instance_for_test, materialize

from tiktokfer_assets.partitions import challenge_partitions
from tiktokfer_assets.resources.io_managers import PolarsTableIOManager
from tiktokfer_assets.resources.table_store import DuckDBTableStore
from tiktokfer_assets.tables import SCHEMAS, conform


@pytest.fixture
def store(tmp_path):
    return DuckDBTableStore(path=str(tmp_path / "t.duckdb"))


def frame(ids, value=1.0):
    return pl.DataFrame({"id": ids, "value": [value] * len(ids)})


def test_replace_touches_only_its_partition(store):
    store.replace_partition("t", "a", frame(["1", "2"]))
    store.replace_partition("t", "b", frame(["3"]))
    store.replace_partition("t", "a", frame(["4"], 2.0))
    assert store.read("t", ["a"]).to_dicts() == [{"challenge": "a", "id": "4", "value": 2.0}]
    assert store.read("t", ["b"])["id"].to_list() == ["3"]
    assert sorted(store.read("t")["id"].to_list()) == ["3", "4"]
    assert sorted(store.read("t", ["a", "b"])["id"].to_list()) == ["3", "4"]


def test_failed_replace_keeps_the_old_rows(store):
    store.replace_partition("t", "a", frame(["1", "2"]))
    bad = pl.DataFrame({"id": ["x"], "value": ["not a number"]})
    with pytest.raises(Exception):
        store.replace_partition("t", "a", bad)
    assert store.read("t", ["a"])["id"].to_list() == ["1", "2"]


def test_new_columns_are_added(store):
    store.replace_partition("t", "a", frame(["1"]))
    store.replace_partition("t", "b", frame(["2"]).with_columns(extra=pl.lit("x")))
    rows = store.read("t").sort("id")
    assert rows["extra"].to_list() == [None, "x"]


def test_missing_table_reads_as_empty_with_schema(store):
    rows = store.read("videos", ["a"])
    assert rows.is_empty() and "video_id" in rows.columns and rows.columns[0] == "challenge"
    assert store.read("nothing").columns == ["challenge"]


def test_reading_a_missing_file_creates_nothing(tmp_path):
    store = DuckDBTableStore(path=str(tmp_path / "home" / "t.duckdb"))
    assert store.read("videos", ["a"]).columns[0] == "challenge" and store.count("videos", "a") == 0
    assert list(tmp_path.iterdir()) == []  # neither the file nor its folder


def test_timestamps_round_trip_as_utc(store):
    now = dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.timezone.utc)
    rows = conform("video_failures", [{"video_id": "v", "reason": "r", "failed_at": now, "attempts": 2}])
    store.replace_partition("video_failures", "a", rows)
    back = store.read("video_failures", ["a"])
    assert back.schema["failed_at"] == pl.Datetime("us", "UTC")
    assert back["failed_at"][0] == now and back["attempts"].dtype == pl.Int32


def test_conform_rejects_unknown_columns():
    with pytest.raises(ValueError, match="has no columns \\['colour'\\]"):
        conform("video_failures", [{"video_id": "v", "colour": "red"}])


def test_table_outputs_declare_their_columns(tmp_path):
    """The table IO manager's dagster/column_schema: tables.SCHEMAS's columns, the partition column first."""
    @asset(partitions_def=challenge_partitions, io_manager_key="table_io_manager")
    def nofaces() -> pl.DataFrame:
        return conform("nofaces", [{"frame_id": "v/000000", "video_id": "v"}])

    store = DuckDBTableStore(path=str(tmp_path / "t.duckdb"))
    with instance_for_test() as instance:
        instance.add_dynamic_partitions("challenge", ["c"])
        result = materialize([nofaces], partition_key="c", instance=instance,
                             resources={"table_io_manager": PolarsTableIOManager(store=store)})
    schema = result.asset_materializations_for_node("nofaces")[0].metadata["dagster/column_schema"].schema
    assert [(c.name, c.type) for c in schema.columns] == [("challenge", "String")] + [
        (name, str(dtype)) for name, dtype in SCHEMAS["nofaces"].items()]
