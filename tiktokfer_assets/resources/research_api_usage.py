"""The Research API's daily request count, kept in the table store so every run and sensor tick shares it."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from tiktokfer_assets.resources.table_store import TableStore
from tiktokfer_assets.tables import conform

USAGE_TABLE = "research_api_usage"


@dataclass(frozen=True)
class TableStoreLedger:
    """A :class:`~tiktokfer_assets.sources.research_api.RequestLedger` in ``research_api_usage``: one row per UTC day.

    Each count is written before its request is sent, so a run that dies mid-listing
    has still spent what it asked for. Two processes counting at the same moment may
    each miss the other's last request (read, then replace); the API's own 429 is the
    backstop for that.
    """

    store: TableStore

    def used(self, day: dt.date) -> int:
        rows = self.store.read(USAGE_TABLE, [day.isoformat()])
        return int(rows["requests"].sum()) if rows.height else 0

    def record(self, day: dt.date, requests: int) -> None:
        row = {"requests": requests, "updated_at": dt.datetime.now(dt.timezone.utc)}
        self.store.replace_partition(USAGE_TABLE, day.isoformat(), conform(USAGE_TABLE, [row]))
