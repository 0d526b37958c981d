"""The one partitioning of every core asset: a challenge."""

from dagster import DynamicPartitionsDefinition

challenge_partitions = DynamicPartitionsDefinition(name="challenge")
