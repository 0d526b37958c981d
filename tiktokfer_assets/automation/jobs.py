"""Asset jobs users launch per challenge (from the UI's Launchpad, a backfill or a sensor), and the dataset's job.

The first two select by graph position, not by a fixed list, so every asset wired
into the code location later is picked up: ``challenge_all_assets`` is the whole
graph but the groups below, ``reprocess_from_faces`` is ``faces`` (with the other
outputs of its multi-asset) and everything downstream of it. ``ingest_videos`` is
the ``videos`` multi-asset alone.

GPU assets run one challenge per run: a backfill over many challenges launches
one run per challenge (Dagster's default backfill policy), which keeps each run's
GPU memory and failure blast radius to one challenge.

The assets not partitioned by challenge stay out of the challenge jobs: the
unpartitioned ``dataset`` group (the export over many challenges; ``dataset_release``
runs it) and the ``monitor`` group (partitioned by feed; the trending monitor's job).
"""

from dagster import AssetSelection, RunRequest, SensorResult, define_asset_job

from tiktokfer_assets.assets.dataset_export import DATASET_GROUP
from tiktokfer_assets.partitions import challenge_partitions

ALL_ASSETS_JOB = "challenge_all_assets"
REPROCESS_FROM_FACES_JOB = "reprocess_from_faces"
INGEST_JOB = "ingest_videos"
DATASET_JOB = "dataset_release"
MONITOR_GROUP = "monitor"
DATASET = AssetSelection.groups(DATASET_GROUP)
NOT_PER_CHALLENGE = AssetSelection.groups(DATASET_GROUP, MONITOR_GROUP)

challenge_all_assets_job = define_asset_job(
    ALL_ASSETS_JOB,
    selection=AssetSelection.all() - NOT_PER_CHALLENGE,
    description="Every asset of one challenge partition, checks included: videos through unique_faces.",
)

reprocess_from_faces_job = define_asset_job(
    REPROCESS_FROM_FACES_JOB,
    # `key:faces+`: faces and all its descendants; a key selection by pattern, so it
    # resolves (to nothing) while faces is not defined yet
    selection=AssetSelection.from_string("key:faces+").required_multi_asset_neighbors() - NOT_PER_CHALLENGE,
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

dataset_release_job = define_asset_job(
    DATASET_JOB,
    selection=DATASET,
    description="A release of the labelled expression dataset over the registered challenges (config: a subset).",
)

CHALLENGE_JOBS = [challenge_all_assets_job, reprocess_from_faces_job, ingest_videos_job]


def challenge_runs(run_requests: list[RunRequest], cursor: str) -> SensorResult:
    """A sensor's result: ``run_requests`` (of challenge partitions), a request to add their partitions and ``cursor``.

    The daemon adds the partitions that do not exist yet before it launches the runs, so a
    sensor never writes to the instance itself.
    """
    keys = list(dict.fromkeys(request.partition_key for request in run_requests))
    additions = [challenge_partitions.build_add_request(keys)] if keys else []
    return SensorResult(run_requests=run_requests, cursor=cursor, dynamic_partitions_requests=additions)
