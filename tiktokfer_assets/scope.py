"""One challenge partition as the assets and checks see it: its definition and the object keys of its media.

Every partitioned asset and every table check builds a :class:`ChallengeScope` from
its partition key with :func:`challenge_scope` and asks it for the definition and for
object keys, so no asset reads the registry or spells a key itself. Keys are
``<kind>/<challenge>/...``: ``videos/<c>/<video_id>/video.mp4``, ``frames/<c>/<frame_id>.jpg``,
``faces/<c>/<frame_id>_<rank>.jpg`` (upright context crop), ``aligned/<c>/<frame_id>_<rank>.jpg``
(ArcFace-aligned crop), ``reports/<c>/<file>``, ``contents/<c>/contents.jsonl`` (the content records);
:meth:`ChallengeScope.prefix` is the folder a kind's stale objects are deleted from.

Why a plain object built by a helper rather than a resource: the partition key is
known only inside a step (``context.partition_key``), while a resource is configured
once per run, so a resource method would still need the key passed in. The helper
takes the step's context and the ``table_store`` resource the step already declares;
the definition is read from the registry on first use only, and once per step (the
trending monitor's feed partitions, whose checks only need tables, never read one).
Importing this module loads no Dagster.
"""

from __future__ import annotations

from functools import cached_property
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from dagster import AssetCheckExecutionContext, AssetExecutionContext

    from tiktokfer_assets.challenges import ChallengeDefinition
    from tiktokfer_assets.resources.table_store import TableStore

VIDEOS, FRAMES, FACES, ALIGNED, REPORTS, CONTENTS = "videos", "frames", "faces", "aligned", "reports", "contents"
"""The kinds of media objects, each the first part of its keys."""


class ChallengeScope:
    """The challenge ``name`` (a partition key): its registered definition and its object keys.

    ``table_store`` is where the definition (and the partition's tables) are read from.
    """

    def __init__(self, name: str, table_store: TableStore):
        self.name = name
        self.table_store = table_store

    def __repr__(self) -> str:
        return f"ChallengeScope({self.name!r})"

    @cached_property
    def definition(self) -> ChallengeDefinition:
        """The registered definition (read once), or a clear error telling how to register it."""
        from tiktokfer_assets.registry import get_challenge

        return get_challenge(self.table_store, self.name)

    def prefix(self, kind: str) -> str:
        """The folder of every object of ``kind`` (one of the kinds above) of this challenge."""
        return f"{kind}/{self.name}/"

    def video_key(self, video_id: str, suffix: str = ".mp4") -> str:
        return f"{self.prefix(VIDEOS)}{video_id}/video{suffix}"

    def frame_key(self, frame_id: str) -> str:
        return f"{self.prefix(FRAMES)}{frame_id}.jpg"

    def face_key(self, frame_id: str, rank: int) -> str:
        """The upright context crop of the ``rank``-th face of a frame."""
        return f"{self.prefix(FACES)}{frame_id}_{rank}.jpg"

    def aligned_key(self, frame_id: str, rank: int) -> str:
        """The 112x112 ArcFace-aligned crop of the ``rank``-th face of a frame."""
        return f"{self.prefix(ALIGNED)}{frame_id}_{rank}.jpg"

    def report_key(self, filename: str) -> str:
        return f"{self.prefix(REPORTS)}{filename}"

    def contents_key(self) -> str:
        """The partition's content records, JSON Lines (:mod:`tiktokfer_assets.contents`)."""
        return f"{self.prefix(CONTENTS)}contents.jsonl"


def challenge_scope(
    context: AssetExecutionContext | AssetCheckExecutionContext, table_store: TableStore
) -> ChallengeScope:
    """The scope of the challenge partition the step runs for."""
    return ChallengeScope(context.partition_key, table_store)
