"""The partitionings: every core asset by challenge, the trending monitor's assets by feed; a partition's runs."""

from dagster import DagsterInstance, DagsterRunStatus, DynamicPartitionsDefinition, RunRecord, RunsFilter

challenge_partitions = DynamicPartitionsDefinition(name="challenge")
feed_partitions = DynamicPartitionsDefinition(name="feed")
"""The trending monitor's feeds: a feed's key is added by the sensor that requests its first run."""

PARTITION_TAG = "dagster/partition"
"""Dagster's tag on a run of one partition (a job's, a backfill's or the UI's), whatever its partitioning."""
UNFINISHED_RUN = (DagsterRunStatus.QUEUED, DagsterRunStatus.NOT_STARTED, DagsterRunStatus.STARTING,
                  DagsterRunStatus.STARTED, DagsterRunStatus.CANCELING)
"""A run that is queued, launching, running or being cancelled: its steps may still write."""


def unfinished_run(instance: DagsterInstance, partition_key: str) -> RunRecord | None:
    """The latest unfinished run tagged with ``partition_key`` (a sensor requests no other run meanwhile)."""
    records = instance.get_run_records(RunsFilter(tags={PARTITION_TAG: partition_key}, statuses=list(UNFINISHED_RUN)),
                                       limit=1)
    return records[0] if records else None
