"""The challenge registry: definitions persisted in the table store, keys in the dynamic partition."""

from __future__ import annotations

import datetime as dt

import polars as pl
from dagster import DagsterInstance

from tiktokfer_assets.challenges import ChallengeDefinition, ChallengeError, challenge_from_json
from tiktokfer_assets.partitions import challenge_partitions
from tiktokfer_assets.resources.table_store import TableStore
from tiktokfer_assets.tables import conform

TABLE = "challenges"


def store_challenge(challenge: ChallengeDefinition, store: TableStore) -> bool:
    """Persist the definition in the table store. Returns True when it was new or changed."""
    stored = stored_challenges(store)
    previous = stored.filter(pl.col("challenge") == challenge.name)
    changed = previous.is_empty() or previous["version"][0] != challenge.version
    if changed:
        row = conform(TABLE, [{
            "definition_json": challenge.to_json(),
            "version": challenge.version,
            "registered_at": dt.datetime.now(dt.timezone.utc),
        }])
        store.replace_partition(TABLE, challenge.name, row)
    return changed


def register_challenge(challenge: ChallengeDefinition, store: TableStore, instance: DagsterInstance) -> bool:
    """Persist the definition and add its partition key. Returns True when it was new or changed.

    Sensors return the partition key as a request instead (:func:`store_challenge` and
    ``challenge_partitions.build_add_request``).
    """
    changed = store_challenge(challenge, store)
    if not instance.has_dynamic_partition(challenge_partitions.name, challenge.name):
        instance.add_dynamic_partitions(challenge_partitions.name, [challenge.name])
    return changed


def stored_challenges(store: TableStore) -> pl.DataFrame:
    return store.read(TABLE)


def get_challenge(store: TableStore, name: str) -> ChallengeDefinition:
    """The registered definition of ``name``, or a clear error telling how to register it."""
    rows = store.read(TABLE, [name])
    if rows.is_empty():
        raise ChallengeError(
            f"challenge {name!r} is not registered in the table store; "
            f"register it with `tiktokfer challenge add <file.yaml>`"
        )
    return challenge_from_json(rows["definition_json"][0])
