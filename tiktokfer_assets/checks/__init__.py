"""Asset checks: row-level invariants of every table, blocking where a downstream asset would be wrong.

``TABLE_CHECKS`` go into the code location's ``Definitions``. To check a new
table, write (or reuse) a pure invariant from :mod:`.invariants` and add one
:func:`table_check` line for it.
"""

from tiktokfer_assets.checks.factory import PartitionTables, table_check
from tiktokfer_assets.checks.pipeline import PIPELINE_CHECKS
from tiktokfer_assets.checks.videos import VIDEO_CHECKS

TABLE_CHECKS = [*VIDEO_CHECKS, *PIPELINE_CHECKS]

__all__ = ["TABLE_CHECKS", "PartitionTables", "table_check"]
