"""Glue / spark-submit entry: health-driven Iceberg maintenance.

Glue job arguments: --lean_ops_conf, --lean_ops_profile (always; deploy sets them);
--lean_ops_tables, --lean_ops_ops (comma lists or "all"), --lean_ops_dry_run (true/false),
--lean_ops_frequency (auto: weekly on Sundays UTC, else daily; or daily/weekly/any), each
optional. Locally also --home. Prints one JSON line (the report: per table health before
and after, operations with their outcome) and exits 0 (ok, conflicts included: they are
retried next run) or 1 (an operation failed).
"""

import sys

from lean_ops_spark.maintenance.job import (
    OPTIONAL_ARGUMENTS,
    check_maintenance_arguments,
    run_maintenance_job,
)
from lean_ops_spark.runtime.jobs import run_job

try:  # on Glue only
    from awsglue.utils import getResolvedOptions as glue_resolver  # type: ignore[import-not-found]
except ImportError:
    glue_resolver = None

if __name__ == "__main__":
    sys.exit(
        run_job(
            "maintenance",
            run_maintenance_job,
            sys.argv,
            required=(),
            optional=OPTIONAL_ARGUMENTS,
            glue_resolver=glue_resolver,
            check=check_maintenance_arguments,
        )
    )
