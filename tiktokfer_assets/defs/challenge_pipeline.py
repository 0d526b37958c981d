"""The challenge pipeline: from a challenge's videos to its unique faces, one challenge partition per run."""

from dagster import Definitions, definitions

from tiktokfer_assets.assets.contents import contents
from tiktokfer_assets.assets.faces import faces
from tiktokfer_assets.assets.frames import frames
from tiktokfer_assets.assets.individuals import face_embeddings, individuals
from tiktokfer_assets.assets.subvideos import subvideos
from tiktokfer_assets.assets.unique_faces import unique_faces
from tiktokfer_assets.assets.videos import videos
from tiktokfer_assets.automation.challenge_sensor import challenge_sensor
from tiktokfer_assets.automation.jobs import CHALLENGE_JOBS
from tiktokfer_assets.automation.new_video_sensor import new_video_sensor
from tiktokfer_assets.checks import TABLE_CHECKS

ASSETS = [videos, subvideos, frames, contents, faces, face_embeddings, individuals, unique_faces]
"""The assets partitioned by challenge."""


@definitions
def defs() -> Definitions:
    return Definitions(
        assets=ASSETS, asset_checks=TABLE_CHECKS, jobs=CHALLENGE_JOBS, sensors=[challenge_sensor, new_video_sensor]
    )
