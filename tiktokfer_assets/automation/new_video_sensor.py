"""The new-video sensor: re-materialise a challenge when its source lists videos not stored yet.

Each tick visits at most ``challenges_per_tick`` registered challenges, round-robin
(the cursor remembers where the last tick stopped), and asks each one's video source
for its first ``min(max_videos, listing_limit)`` videos: a bounded listing, so a
source with thousands of videos cannot make a tick time out. Ids that are neither
in ``videos`` nor in ``video_failures`` are new; a run of the all-assets job is
requested for the partition, keyed by the set of new ids so the same set never
triggers twice (the cursor keeps that set's fingerprint per challenge). A challenge
with a run queued, in progress or being cancelled is left for a later tick. A source that cannot be
listed is logged and retried on the next visit without holding up the others.
The result also asks for the ``challenge`` partition of every requested run, so a
definition stored without its partition (the challenge sensor's request not applied
yet, a fresh instance) still runs; the daemon skips partitions that exist.

A Research API source is listed incrementally: the cursor keeps, per challenge
version, the UTC day of its last successful listing, and later ticks ask only for
videos created since that day (the day itself included, for videos posted after
the tick), so a tick costs a request or two of the daily quota instead of the whole
date range. A new definition version starts from its own ``start_date`` again.
"""

import datetime as dt
import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, field

import polars as pl
from dagster import (
    DefaultSensorStatus,
    RunRequest,
    SensorDefinition,
    SensorEvaluationContext,
    SensorResult,
    sensor,
)

from tiktokfer_assets.automation.jobs import challenge_all_assets_job, challenge_runs
from tiktokfer_assets.challenges import challenge_from_json
from tiktokfer_assets.partitions import unfinished_run
from tiktokfer_assets.registry import stored_challenges
from tiktokfer_assets.resources.table_store import TableStore
from tiktokfer_assets.resources.video_source import VideoSourceResource
from tiktokfer_assets.sources.base import FetchError, VideoSource
from tiktokfer_assets.sources.research_api import ResearchApiSource


def round_robin(names: Sequence[str], last: str | None, count: int) -> list[str]:
    """Up to ``count`` of the sorted ``names``, starting after ``last`` and wrapping around."""
    names = sorted(names)
    if not names:
        return []
    start = next((i for i, name in enumerate(names) if last is not None and name > last), 0)
    return (names[start:] + names[:start])[:count]


def new_video_ids(listed: Sequence[str], known: set[str]) -> list[str]:
    """Listed ids not in ``known``, in listing order, without repeats."""
    return [vid for vid in dict.fromkeys(listed) if vid not in known]


def fingerprint(ids: Sequence[str]) -> str:
    return hashlib.sha256("\n".join(sorted(ids)).encode()).hexdigest()[:16]


@dataclass
class NewVideoCursor:
    """``last``: the challenge the previous tick stopped at; ``requested``: per challenge, the new-id set last
    requested; ``listed``: per challenge, ``{"version", "day"}`` of its last incremental (Research API) listing."""

    last: str | None = None
    requested: dict[str, str] = field(default_factory=dict)
    listed: dict[str, dict[str, str]] = field(default_factory=dict)

    @classmethod
    def parse(cls, text: str | None) -> "NewVideoCursor":
        return cls(**json.loads(text)) if text else cls()

    def to_json(self) -> str:
        return json.dumps({"last": self.last, "requested": self.requested, "listed": self.listed}, sort_keys=True)

    def window(self, name: str, version: str, source: VideoSource) -> VideoSource:
        """``source`` narrowed to the days since this version's last listing, when it is a Research API source."""
        listed = self.listed.get(name)
        if isinstance(source, ResearchApiSource) and listed and listed["version"] == version:
            return source.from_day(dt.date.fromisoformat(listed["day"]))
        return source


def known_video_ids(table_store: TableStore, challenge: str) -> set[str]:
    """Ids already stored or already refused (a failed video is not retried by the sensor)."""
    ids = set()
    for table in ("videos", "video_failures"):
        rows = table_store.read(table, [challenge])
        if "video_id" in rows.columns:
            ids.update(rows["video_id"].to_list())
    return ids


def build_new_video_sensor(
    name: str = "new_video_sensor",
    *,
    challenges_per_tick: int = 4,
    listing_limit: int = 200,
    minimum_interval_seconds: int = 600,
    default_status: DefaultSensorStatus = DefaultSensorStatus.STOPPED,
) -> SensorDefinition:
    """The sensor (see the module doc) with its per-tick bounds."""

    @sensor(
        name=name,
        job=challenge_all_assets_job,
        minimum_interval_seconds=minimum_interval_seconds,
        default_status=default_status,
        description=(
            f"Requests a challenge's run when its source lists videos not stored yet "
            f"({challenges_per_tick} challenges per tick, first {listing_limit} videos of each)."
        ),
    )
    def _sensor(
        context: SensorEvaluationContext, table_store: TableStore, video_sources: VideoSourceResource
    ) -> SensorResult:
        cursor = NewVideoCursor.parse(context.cursor)
        registered = stored_challenges(table_store)
        names = registered["challenge"].to_list()
        cursor.requested = {c: fp for c, fp in cursor.requested.items() if c in names}
        cursor.listed = {c: listed for c, listed in cursor.listed.items() if c in names}
        run_requests = []
        for name in round_robin(names, cursor.last, challenges_per_tick):
            cursor.last = name
            active = unfinished_run(context.instance, name)
            if active:
                context.log.info(f"{name}: run {active.dagster_run.run_id} is active; checking later")
                continue
            challenge = challenge_from_json(registered.filter(pl.col("challenge") == name)["definition_json"][0])
            today = dt.datetime.now(dt.timezone.utc).date()
            try:
                source = cursor.window(name, challenge.version, video_sources.for_challenge(challenge))
                refs = source.list_videos(min(challenge.max_videos, listing_limit))
            except FetchError as exc:
                context.log.warning(f"{name}: could not list its videos, retrying next visit: {exc}")
                continue
            if isinstance(source, ResearchApiSource):
                cursor.listed[name] = {"version": challenge.version, "day": today.isoformat()}
            new = new_video_ids([ref.video_id for ref in refs], known_video_ids(table_store, name))
            if not new:
                cursor.requested.pop(name, None)
                continue
            key = fingerprint(new)
            if cursor.requested.get(name) == key:
                continue  # this set was requested already; its run did not store them (see video_failures)
            cursor.requested[name] = key
            context.log.info(f"{name}: {len(new)} new videos ({', '.join(new[:5])}{', ...' if len(new) > 5 else ''})")
            run_requests.append(RunRequest(
                run_key=f"{name}:videos:{key}",
                partition_key=name,
                tags={"tiktokfer/new_videos": str(len(new))},
            ))
        return challenge_runs(run_requests, cursor.to_json())

    return _sensor


new_video_sensor = build_new_video_sensor()
