"""The Research API's daily request count, kept in the table store so every run and sensor tick shares it."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import polars as pl

from tiktokfer_assets.resources.table_store import TableStore
from tiktokfer_assets.tables import conform

USAGE_TABLE = "research_api_usage"


@dataclass(frozen=True)
class TableStoreLedger:
    """A :class:`~tiktokfer_assets.sources.research_api.RequestLedger` in ``research_api_usage``: one row per UTC day.

    Each request is counted before it is sent, so a run that dies mid-listing has still
    spent what it asked for. The count goes up in one read-and-replace the table store
    makes atomic (:meth:`TableStore.update_partition`: a partition lock on Postgres, one
    transaction on DuckDB), so processes counting at once never lose each other's requests.
    """

    store: TableStore

    def used(self, day: dt.date) -> int:
        return _count(self.store.read(USAGE_TABLE, [day.isoformat()]))

    def spend(self, day: dt.date, limit: int) -> int:
        def add_one(rows: pl.DataFrame) -> pl.DataFrame:
            used = _count(rows)
            if used >= limit:
                return rows
            return conform(USAGE_TABLE, [{"requests": used + 1, "updated_at": dt.datetime.now(dt.timezone.utc)}])

        return _count(self.store.update_partition(USAGE_TABLE, day.isoformat(), add_one))


def _count(rows: pl.DataFrame) -> int:
    return int(rows["requests"].sum()) if rows.height else 0
