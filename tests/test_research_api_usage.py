"""The Research API's request count goes up atomically: writers counting at once lose none of each other's requests.

Each writer has its own store object (as a separate process would); before the fix (read the count,
then replace it) concurrent writers read the same count and requests went uncounted.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tiktokfer_assets.resources.postgres_table_store import PostgresTableStore
from tiktokfer_assets.resources.research_api_usage import TableStoreLedger
from tiktokfer_assets.resources.table_store import DuckDBTableStore

DAY = dt.date(2026, 3, 1)
WRITERS, SPENDS, LIMIT = 4, 15, 50  # 60 attempts against a limit of 50


def spend_all(store) -> list[int]:
    """``SPENDS`` requests counted one after another; the count before each."""
    ledger = TableStoreLedger(store)
    return [ledger.spend(DAY, LIMIT) for _ in range(SPENDS)]


def check_counts(before: list[list[int]], used: int) -> None:
    counted = sorted(n for counts in before for n in counts if n < LIMIT)
    assert counted == list(range(LIMIT))  # every request below the limit saw its own count: none lost
    assert sum(n == LIMIT for counts in before for n in counts) == WRITERS * SPENDS - LIMIT  # refused at the limit
    assert used == LIMIT


def test_duckdb_processes_counting_at_once_lose_no_request(tmp_path):
    path = str(tmp_path / "tables.duckdb")
    code = ("import json, sys; from test_research_api_usage import spend_all; "
            "from tiktokfer_assets.resources.table_store import DuckDBTableStore; "
            "print(json.dumps(spend_all(DuckDBTableStore(path=sys.argv[1]))))")
    writers = [subprocess.Popen([sys.executable, "-c", code, path], stdout=subprocess.PIPE, text=True,
                                env={**os.environ, "PYTHONPATH": str(Path(__file__).parent)}) for _ in range(WRITERS)]
    before = [json.loads(writer.communicate()[0]) for writer in writers]
    assert [writer.returncode for writer in writers] == [0] * WRITERS
    check_counts(before, TableStoreLedger(DuckDBTableStore(path=path)).used(DAY))


@pytest.mark.postgres
def test_postgres_writers_counting_at_once_lose_no_request_and_each_day_keeps_its_count(database):
    def store() -> PostgresTableStore:
        return PostgresTableStore(dbname=database, db_schema="research_usage")

    with ThreadPoolExecutor(WRITERS) as pool:
        before = list(pool.map(spend_all, [store() for _ in range(WRITERS)]))
    check_counts(before, TableStoreLedger(store()).used(DAY))
    assert TableStoreLedger(store()).spend(DAY + dt.timedelta(days=1), LIMIT) == 0
    assert [TableStoreLedger(store()).used(DAY + dt.timedelta(days=n)) for n in (-1, 1)] == [0, 1]
