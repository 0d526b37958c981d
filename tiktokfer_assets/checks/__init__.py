"""Asset checks: row-level invariants of every table, blocking where a downstream asset would be wrong.

``TABLE_CHECKS`` go into the code location's ``Definitions``: one op per table. To
check a new table, write (or reuse) a pure invariant from :mod:`.invariants` and
add one :func:`table_check` line for it.
"""

from tiktokfer_assets.checks.factory import PartitionTables, check_result, checks_per_table, table_check
from tiktokfer_assets.checks.pipeline import PIPELINE_CHECKS
from tiktokfer_assets.checks.videos import VIDEO_CHECKS

TABLE_CHECKS = checks_per_table([*VIDEO_CHECKS, *PIPELINE_CHECKS])

__all__ = ["TABLE_CHECKS", "PartitionTables", "check_result", "checks_per_table", "table_check"]
