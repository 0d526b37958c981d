"""The dataset release: the export over many challenges and the expression model trained on it (unpartitioned)."""

from dagster import Definitions, definitions

from tiktokfer_assets.assets.dataset_export import dataset_export
from tiktokfer_assets.assets.expression_model import expression_model
from tiktokfer_assets.automation.jobs import dataset_release_job

DATASET_ASSETS = [dataset_export, expression_model]
"""Group ``dataset``, job ``dataset_release``."""


@definitions
def defs() -> Definitions:
    return Definitions(assets=DATASET_ASSETS, jobs=[dataset_release_job])
