"""Glue / spark-submit entry: curate the next raw batch of one topic (or, with --replay true,
replay its pending RETRY quarantine rows).

Glue job arguments: --topic, --lean_ops_conf, --lean_ops_profile (always);
--run_id, --max_snapshots, --max_records (optional); --replay true [--max_attempts N] for a
replay. Locally also --home.
Prints one JSON line (the run's ledger and snapshot ids, or the replay's counts) and exits
non-zero on failure.
"""

import sys

from lean_ops_spark.curation.job import (
    OPTIONAL_ARGUMENTS,
    REQUIRED_ARGUMENTS,
    check_curation_arguments,
    run_curation_job,
)
from lean_ops_spark.runtime.jobs import run_job

try:  # on Glue only
    from awsglue.utils import getResolvedOptions as glue_resolver  # type: ignore[import-not-found]
except ImportError:
    glue_resolver = None

if __name__ == "__main__":
    sys.exit(
        run_job(
            "curation",
            run_curation_job,
            sys.argv,
            required=REQUIRED_ARGUMENTS,
            optional=OPTIONAL_ARGUMENTS,
            glue_resolver=glue_resolver,
            check=check_curation_arguments,
        )
    )
