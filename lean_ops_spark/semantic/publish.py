"""Write-audit-publish on Iceberg branches for the semantic tables.

write:   with ``write.wap.enabled=true`` on the table and ``spark.wap.branch=<b>`` set for
         the session, the run's MERGE (data + checkpoint in the summary) commits to branch
         ``b``, which Iceberg creates from main on the first write;
audit:   the branch is read (``branch`` read option) and validated with the table's suite;
publish: ``CALL <catalog>.system.fast_forward('<db.table>', 'main', '<b>')`` moves main to
         the audited snapshot, so the checkpoint reaches main only with audited data.

Readers of main (Snowflake through the Glue catalog) never see unaudited rows. Each run
has a branch of its own (``lean_ops_audit_<run id>``), and publishes only if its branch
still holds the snapshot it audited; a run of the same table that overlaps it writes
elsewhere, so it can fail a run (main moved, or its branch was dropped) but never get its
unaudited snapshot published. A failed audit leaves main untouched and the branch in place
for inspection (``lean-ops dq --table semantic.<t> --branch <b>``, the run's result names
it); the next run of the table drops every audit branch and builds its own from main, so a
re-run after a crash anywhere in write-audit-publish is deterministic. Maintenance of the
table (its own schedule, concurrent with the runs) only moves main through ``replace``
snapshots without a checkpoint (:func:`moved_by_maintenance`): a run whose main moved that
way writes its branch again from the new main rather than fail.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from lean_ops_spark.catalog.checkpoints import CURATED_CHECKPOINT_KEY, RUN_ID_KEY
from lean_ops_spark.catalog.metadata import SnapshotRecord, load_metadata_document
from lean_ops_spark.catalog.naming import TableRef, safe_name
from lean_ops_spark.errors import CheckpointError
from lean_ops_spark.session import session_conf

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

__all__ = [
    "AUDIT_BRANCH_PREFIX",
    "WAP_BRANCH_CONF",
    "MainMovedError",
    "audit_branch",
    "branches",
    "drop_audit_branches",
    "drop_branch",
    "fast_forward",
    "moved_by_maintenance",
    "read_branch",
    "wap_branch",
]

#: Each semantic run writes to an audit branch of its own, ``lean_ops_audit_<run id>``
#: (:func:`audit_branch`): two runs of one table that overlap (executions of a topic's
#: schedule) cannot publish each other's unaudited snapshots.
AUDIT_BRANCH_PREFIX = "lean_ops_audit_"
WAP_BRANCH_CONF = "spark.wap.branch"


class MainMovedError(CheckpointError):
    """main is no longer the snapshot the run's audit branch grew from, so the branch cannot
    be published; nothing was. ``by_maintenance``: main moved through maintenance commits
    only (:func:`moved_by_maintenance`), so the same run can build its branch again from the
    new main and publish the same rows."""

    def __init__(self, message: str, *, by_maintenance: bool = False) -> None:
        super().__init__(message)
        self.by_maintenance = by_maintenance


def moved_by_maintenance(records: Iterable[SnapshotRecord], base: int | None, head: int | None) -> bool:
    """Whether main went from ``base`` to ``head`` through maintenance commits only (pure).

    Every snapshot after ``base`` up to ``head`` must be a ``replace`` (compaction, manifest
    and position-delete rewrites: the same rows in other files) carrying neither a checkpoint
    nor a run id; then the checkpoint a run read at ``base`` is still main's, and so is the
    window it planned from it. Anything else (another run's publish, a snapshot that was
    expired, ``base`` not an ancestor of ``head``, no ``base``) is False.
    """
    if base is None or head is None or head == base:
        return False
    by_id = {r.snapshot_id: r for r in records}
    cursor: int | None = head
    while cursor is not None and cursor != base:
        record = by_id.get(cursor)
        if record is None or record.operation != "replace":
            return False
        if CURATED_CHECKPOINT_KEY in record.summary or RUN_ID_KEY in record.summary:
            return False
        cursor = record.parent_id
    return cursor == base


def audit_branch(run_id: str) -> str:
    """The audit branch of run ``run_id`` (an identifier: other characters become ``_``,
    with a short hash of the run id then, so two run ids never share a branch)."""
    return AUDIT_BRANCH_PREFIX + safe_name(run_id, r"[^A-Za-z0-9_]", separator="_", digits=8)


def drop_audit_branches(spark: SparkSession, table: TableRef) -> list[str]:
    """Drop every audit branch of ``table``: leftovers of runs that failed their audit or
    died, and the branch of a run that is still going (it then fails instead of publishing;
    main is the truth either way). Returns the names dropped."""
    dropped = [name for name in branches(spark, table) if name.startswith(AUDIT_BRANCH_PREFIX)]
    for name in dropped:
        _drop(spark, table, name)
    return dropped


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


def drop_branch(spark: SparkSession, table: TableRef, branch: str) -> bool:
    """Drop ``branch`` if it exists (a leftover of a failed or interrupted run). Returns True if dropped."""
    if branch not in branches(spark, table):
        return False
    _drop(spark, table, branch)
    return True


def _drop(spark: SparkSession, table: TableRef, branch: str) -> None:
    spark.sql(f"ALTER TABLE {table.sql} DROP BRANCH IF EXISTS {branch}")


def read_branch(spark: SparkSession, table: TableRef, branch: str) -> DataFrame:
    """The table as of ``branch``'s head (a run audits the snapshot it wrote instead:
    ``catalog.checkpoints.read_pinned``)."""
    return spark.read.format("iceberg").option("branch", branch).load(table.sql)


def fast_forward(spark: SparkSession, table: TableRef, branch: str, audited: int | None = None) -> int:
    """Publish: move main to ``branch``'s head, which must be the ``audited`` snapshot when
    given. Returns the new main snapshot id.

    Raises:
        MainMovedError: main moved since the branch was made (another run of the table
            published, or a maintenance commit); nothing was published.
        CheckpointError: the branch is gone or holds another snapshot (another run of the
            table); nothing was published and a re-run builds its branch from the new main.
    """
    nothing = "nothing was published, re-run to build the branch from main again"
    if audited is not None and branches(spark, table).get(branch) != audited:
        raise CheckpointError(
            f"{table.sql}: branch {branch} no longer holds the audited snapshot {audited} (another run of "
            f"this table dropped it); {nothing}"
        )
    try:
        row = spark.sql(
            f"CALL {table.catalog}.system.fast_forward('{table.identifier}', 'main', '{branch}')"
        ).first()
    except Exception as exc:
        if "not an ancestor" in str(exc):
            raise MainMovedError(
                f"{table.sql}: main moved while branch {branch} was audited (another run of this table "
                f"published, or a maintenance commit); {nothing}"
            ) from exc
        if branch not in branches(spark, table):
            raise CheckpointError(
                f"{table.sql}: branch {branch} was dropped by another run of this table; {nothing}"
            ) from exc
        raise
    assert row is not None
    return int(row["updated_ref"])
