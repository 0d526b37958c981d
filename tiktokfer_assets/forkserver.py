"""What the multiprocess executor's fork server imports once
(:data:`~tiktokfer_assets.defs.environment.FORKSERVER_PRELOAD`), so that a step process forked from it imports
almost nothing.

Importing this module imports the code location and the libraries more than one step imports (torch and torchvision,
SciPy, PIL, pyarrow, pandas), then rehearses what every step process does first: load the code location's repository
and open the instance (Dagster's storage, SQLAlchemy, Alembic...). Not part of the code location (it loads torch):
only the fork server imports it.

Why these: the modules each step process imported (``sys.modules`` before and after the step, 2 cores, no bytecode
cache as PYTHONDONTWRITEBYTECODE is set here): ~800 in every step before (Dagster's storage, SQLAlchemy, Alembic,
pandas: 20 of a check step's 24 s in a profile), and torchvision (1,093 modules, 10.8 s) in both ``faces`` and
``unique_faces``; 4 in a check step with this module. The per-step seconds are at
:data:`~tiktokfer_assets.defs.environment.FORKSERVER_PRELOAD`.
"""

import os
import sys

import pandas  # noqa: F401  duckdb imports it on the first query with parameters: every table store read
import PIL.Image  # noqa: F401
import pyarrow  # noqa: F401
import scipy.ndimage  # noqa: F401  unique_faces (sharpness)
import scipy.optimize  # noqa: F401  individuals (tracking)
import scipy.sparse.csgraph  # noqa: F401  unique_faces (near-duplicate groups)
import torch  # noqa: F401
import torchvision  # noqa: F401  faces (batched_nms) and unique_faces (imagededup): 1,093 modules
from dagster import DagsterInstance
from dagster._core.instance.ref import InstanceRef

from tiktokfer_assets.definitions import reconstructable_repository


def rehearse_step_start(dagster_home: str | None) -> None:
    """Load the code location's repository and open (and close) the instance in ``dagster_home``, as each step
    process does first, for the modules that imports. Nothing stays open to be forked.

    An error is printed, not raised: the fork server would die of it (it survives only an ImportError), and each
    step reports the same error in its own process.
    """
    try:
        reconstructable_repository().get_definition()
        if dagster_home:
            with DagsterInstance.from_ref(InstanceRef.from_dir(dagster_home)):
                pass
    except Exception as exc:  # noqa: BLE001  see the docstring
        print(f"tiktokfer fork server: the rehearsal of a step's start failed ({exc!r}); steps will report it",
              file=sys.stderr)


rehearse_step_start(os.environ.get("DAGSTER_HOME"))
