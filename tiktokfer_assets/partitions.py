"""The partitionings: every core asset by challenge, the trending monitor's assets by feed."""

from dagster import DynamicPartitionsDefinition

challenge_partitions = DynamicPartitionsDefinition(name="challenge")
feed_partitions = DynamicPartitionsDefinition(name="feed")
"""The trending monitor's feeds: a feed's key is added by the sensor that requests its first run."""
