"""Asset jobs users launch per challenge (from the UI's Launchpad, a backfill or a sensor).

The first two select by graph position, not by a fixed list, so every asset wired
into the code location later is picked up: ``challenge_all_assets`` is the whole
graph, ``reprocess_from_faces`` is ``faces`` (with the other outputs of its
multi-asset) and everything downstream of it. ``ingest_videos`` is the ``videos``
multi-asset alone.

GPU assets run one challenge per run: a backfill over many challenges launches
one run per challenge (Dagster's default backfill policy), which keeps each run's
GPU memory and failure blast radius to one challenge.
"""

from dagster import AssetSelection, define_asset_job

ALL_ASSETS_JOB = "challenge_all_assets"
REPROCESS_FROM_FACES_JOB = "reprocess_from_faces"
INGEST_JOB = "ingest_videos"
DATASET_GROUP = "dataset"
"""Unpartitioned assets over all challenges (export, model): kept out of the per-challenge jobs."""

challenge_all_assets_job = define_asset_job(
    ALL_ASSETS_JOB,
    selection=AssetSelection.all() - AssetSelection.groups(DATASET_GROUP),
    description="Every asset of one challenge partition, checks included: videos through unique_faces.",
)

reprocess_from_faces_job = define_asset_job(
    REPROCESS_FROM_FACES_JOB,
    # `key:faces+`: faces and all its descendants; a key selection by pattern, so it
    # resolves (to nothing) while faces is not defined yet
    selection=AssetSelection.from_string("key:faces+").required_multi_asset_neighbors()
    - AssetSelection.groups(DATASET_GROUP),
    description=(
        "Re-run face detection and everything downstream (individuals, unique faces) for a challenge, "
        "reusing its stored videos, subvideos and frames; e.g. after changing the detector or the embedder."
    ),
)

ingest_videos_job = define_asset_job(
    INGEST_JOB,
    selection=AssetSelection.assets("videos").required_multi_asset_neighbors(),
    description=(
        "Only list, download and store a challenge's videos (no GPU): e.g. a backfill that fetches many "
        "challenges ahead of processing them."
    ),
)

ASSET_JOBS = [challenge_all_assets_job, reprocess_from_faces_job, ingest_videos_job]
