"""Glue / spark-submit entry: run the semantic models of one topic (write-audit-publish).

Glue job arguments: --topic, --run_id, --curated_snapshot_id, --lean_ops_conf,
--lean_ops_profile (the state machine passes all of them; getResolvedOptions makes each
required); --lean_ops_env (a job default set by `lean-ops deploy`) turns on the Snowflake
schema refresh when governance/<env>.yaml has a snowflake: section. Locally (argparse)
also --home. Prints one JSON line (per model: window, rows merged, data quality, published
snapshot; the Snowflake refresh) and exits non-zero when a suite failed (that table's main
unchanged, its audit branch kept) or the run failed.
"""

import sys

from lean_ops_spark.runtime.jobs import run_job
from lean_ops_spark.semantic.job import check_semantic_arguments, run_semantic_job

REQUIRED_ARGUMENTS = ("topic", "run_id", "curated_snapshot_id")
OPTIONAL_ARGUMENTS = ("lean_ops_env",)  # deploy sets it: Snowflake refresh after the commits

try:  # on Glue only
    from awsglue.utils import getResolvedOptions as glue_resolver  # type: ignore[import-not-found]
except ImportError:
    glue_resolver = None

if __name__ == "__main__":
    sys.exit(
        run_job(
            "semantic",
            run_semantic_job,
            sys.argv,
            required=REQUIRED_ARGUMENTS,
            optional=OPTIONAL_ARGUMENTS,
            glue_resolver=glue_resolver,
            check=check_semantic_arguments,
        )
    )
