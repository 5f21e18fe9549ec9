"""Write-audit-publish on Iceberg branches for the semantic tables.

write:   with ``write.wap.enabled=true`` on the table and ``spark.wap.branch=<b>`` set for
         the session, the run's MERGE (data + checkpoint in the summary) commits to branch
         ``b``, which Iceberg creates from main on the first write;
audit:   the branch is read (``branch`` read option) and validated with the table's suite;
publish: ``CALL <catalog>.system.fast_forward('<db.table>', 'main', '<b>')`` moves main to
         the audited snapshot, so the checkpoint reaches main only with audited data.

Readers of main (Snowflake through the Glue catalog) never see unaudited rows. A failed
audit leaves main untouched and the branch in place for inspection (``lean-ops dq
--table semantic.<t> --branch <b>``); the next run of the table drops it and rebuilds it
from main, so the branch name can be fixed per table and a re-run after a crash anywhere
in write-audit-publish is deterministic.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from lean_ops_spark.catalog.metadata import load_metadata_document
from lean_ops_spark.catalog.naming import TableRef
from lean_ops_spark.errors import CheckpointError
from lean_ops_spark.session import session_conf

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

__all__ = [
    "AUDIT_BRANCH",
    "WAP_BRANCH_CONF",
    "branches",
    "drop_branch",
    "fast_forward",
    "read_branch",
    "snapshot_summary",
    "wap_branch",
]

#: The audit branch of every semantic table (one writer per table; reset by each run).
AUDIT_BRANCH = "lean_ops_audit"
WAP_BRANCH_CONF = "spark.wap.branch"


@contextmanager
def wap_branch(spark: SparkSession, branch: str) -> Iterator[None]:
    """Send Iceberg writes of WAP-enabled tables to ``branch`` inside the block.

    The session is shared (tests, the local pipeline), so the previous value is always
    restored, also when the write fails.
    """
    with session_conf(spark, WAP_BRANCH_CONF, branch):
        yield


def branches(spark: SparkSession, table: TableRef) -> dict[str, int]:
    """``{branch name: head snapshot id}`` of ``table`` (main included once it has a snapshot)."""
    refs = load_metadata_document(spark, table).get("refs") or {}
    return {str(name): int(ref["snapshot-id"]) for name, ref in refs.items() if ref.get("type") == "branch"}


def snapshot_summary(spark: SparkSession, table: TableRef, snapshot_id: int) -> dict[str, str]:
    """The summary of one snapshot of ``table`` (empty when it does not exist)."""
    for snapshot in load_metadata_document(spark, table).get("snapshots") or ():
        if int(snapshot["snapshot-id"]) == snapshot_id:
            return {str(k): str(v) for k, v in (snapshot.get("summary") or {}).items()}
    return {}


def drop_branch(spark: SparkSession, table: TableRef, branch: str) -> bool:
    """Drop ``branch`` if it exists (a leftover of a failed or interrupted run). Returns True if dropped."""
    if branch not in branches(spark, table):
        return False
    spark.sql(f"ALTER TABLE {table.sql} DROP BRANCH IF EXISTS {branch}")
    return True


def read_branch(spark: SparkSession, table: TableRef, branch: str) -> DataFrame:
    """The table as of ``branch``'s head (read with the WAP conf unset)."""
    return spark.read.format("iceberg").option("branch", branch).load(table.sql)


def fast_forward(spark: SparkSession, table: TableRef, branch: str) -> int:
    """Publish: move main to ``branch``'s head. Returns the new main snapshot id.

    Raises:
        CheckpointError: main moved since the branch was made (another writer); nothing
            was published and a re-run rebuilds the branch from the new main.
    """
    try:
        row = spark.sql(
            f"CALL {table.catalog}.system.fast_forward('{table.identifier}', 'main', '{branch}')"
        ).first()
    except Exception as exc:
        if "not an ancestor" in str(exc):
            raise CheckpointError(
                f"{table.sql}: main moved while branch {branch} was audited (another writer?); "
                "nothing was published, re-run to rebuild the branch from main"
            ) from exc
        raise
    assert row is not None
    return int(row["updated_ref"])
