"""Which curated row versions a semantic run must process: the change window.

Curated is updated by MERGE, so append-only incremental reads miss updated rows, and
changelog scans fail once curated has delete files (merge-on-read). Instead every row
version curated writes carries the id of the run that wrote it (``_run_id``), and every
snapshot that run commits carries it too (``lean-ops.run-id`` in the summary, written by
curation and replay). A semantic run therefore:

1. takes its checkpoint C (the curated snapshot its last published run consumed) and the
   pinned snapshot P (the one the curation run committed);
2. checks that P descends from C, collecting the run ids of the snapshots in (C, P];
3. reads curated *as of P* and keeps the rows whose ``_run_id`` is one of them.

That works with copy-on-write and merge-on-read alike (compaction snapshots carry no run
id and change no row version), and Iceberg's column metrics on ``_run_id`` skip the data
files no such run wrote. A snapshot that changed rows without a run id (an unknown
writer) stops the run rather than be silently missed. Deletions in curated are out of
scope: curation never deletes, and a deleted key would stay in the semantic table.
Processing is at-least-once (a run id seen again is processed again); the semantic writes
are idempotent, so that is safe.

A table computed under another definition of its model (another fingerprint, see
:meth:`~lean_ops_spark.semantic.models.SemanticModel.fingerprint`) is rebuilt instead
(:func:`plan_rebuild`): everything as of P, replacing the table's rows.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from lean_ops_spark.catalog.checkpoints import RUN_ID_KEY, SnapshotRecord, read_pinned
from lean_ops_spark.catalog.naming import TableRef
from lean_ops_spark.errors import CheckpointError

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

__all__ = ["ChangeWindow", "changed_rows", "plan_changes", "plan_rebuild"]

FULL = "full"  # no checkpoint: everything as of P
REBUILD = "rebuild"  # the model changed since C: everything as of P, like FULL
INCREMENTAL = "incremental"
UP_TO_DATE = "up_to_date"  # C == P, or C already descends from P
#: The modes that read everything as of P and replace the table's rows.
WHOLE = frozenset({FULL, REBUILD})


@dataclass(frozen=True)
class ChangeWindow:
    """The curated snapshots ``(checkpoint, pinned]`` and the runs that wrote in them."""

    table: str
    checkpoint_snapshot_id: int | None
    pinned_snapshot_id: int
    mode: str
    snapshots: tuple[int, ...] = ()
    run_ids: tuple[str, ...] = ()

    def describe(self) -> str:
        start = "the beginning" if self.checkpoint_snapshot_id is None else str(self.checkpoint_snapshot_id)
        return f"{self.table} snapshots after {start} up to {self.pinned_snapshot_id}"


def _changes_rows(record: SnapshotRecord) -> bool:
    if record.operation == "replace":  # compaction, manifest rewrites: same rows
        return False
    summary = record.summary
    return any(
        int(summary.get(k, "0") or 0) > 0
        for k in ("added-records", "deleted-records", "added-position-deletes", "added-equality-deletes")
    )


def plan_changes(
    records: Iterable[SnapshotRecord], checkpoint: int | None, pinned: int, table: str = "curated"
) -> ChangeWindow:
    """The change window for a run pinned to ``pinned`` whose last checkpoint is ``checkpoint``.

    Raises:
        CheckpointError: ``pinned`` is unknown, is not a descendant of ``checkpoint`` (nor
            its ancestor), ``checkpoint`` or a snapshot between them was expired, or one
            changed rows without a run id.
    """
    by_id = _by_id(records, pinned, table)
    if checkpoint is None:
        return ChangeWindow(table, None, pinned, FULL)
    if checkpoint == pinned:
        return ChangeWindow(table, checkpoint, pinned, UP_TO_DATE)
    if checkpoint not in by_id:
        # the run needs the versions the semantic table was computed from (an aggregate's
        # old groups, an entity's old partitions): they are gone with the snapshot
        raise CheckpointError(
            f"{table}: the semantic checkpoint {checkpoint} was expired, so the rows the semantic table "
            "was computed from cannot be read; rebuild it with a full refresh (drop the semantic table "
            "and run the semantic job again: it reloads everything)"
        )
    chain: list[SnapshotRecord] = []
    cursor: int | None = pinned
    while cursor is not None and cursor != checkpoint:
        record = by_id.get(cursor)
        if record is None:
            break
        chain.append(record)
        cursor = record.parent_id
    if cursor == checkpoint:
        run_ids: list[str] = []
        for record in reversed(chain):
            run_id = record.summary.get(RUN_ID_KEY)
            if run_id is not None:
                if run_id not in run_ids:
                    run_ids.append(run_id)
            elif _changes_rows(record):
                raise CheckpointError(
                    f"{table}: snapshot {record.snapshot_id} ({record.operation}) changed rows without a "
                    f"{RUN_ID_KEY}: the rows it changed cannot be found incrementally; rebuild the semantic "
                    "tables of this topic with a full refresh"
                )
        return ChangeWindow(
            table,
            checkpoint,
            pinned,
            INCREMENTAL,
            tuple(r.snapshot_id for r in reversed(chain)),
            tuple(run_ids),
        )
    expired = cursor is not None  # the walk from P stopped at a snapshot that no longer exists
    # Not a descendant: a stale token (P older than the checkpoint) is harmless, anything else is not.
    back: int | None = checkpoint
    while back is not None and back in by_id:
        if back == pinned:
            return ChangeWindow(table, checkpoint, pinned, UP_TO_DATE)
        back = by_id[back].parent_id
    if expired:
        raise CheckpointError(
            f"{table}: snapshot {cursor} between the checkpoint {checkpoint} and the pinned snapshot {pinned} "
            "was expired; the change window is unknown (rebuild with a full refresh)"
        )
    raise CheckpointError(
        f"{table}: pinned snapshot {pinned} is not a descendant of the semantic checkpoint {checkpoint} "
        "(was curated rolled back or replaced?)"
    )


def _by_id(records: Iterable[SnapshotRecord], pinned: int, table: str) -> dict[int, SnapshotRecord]:
    by_id = {r.snapshot_id: r for r in records}
    if pinned not in by_id:
        raise CheckpointError(
            f"{table}: pinned snapshot {pinned} does not exist (expired, or not this table's)"
        )
    return by_id


def plan_rebuild(
    records: Iterable[SnapshotRecord], checkpoint: int | None, pinned: int, table: str = "curated"
) -> ChangeWindow:
    """The window of a run whose table was computed under another model definition: all of
    curated as of ``pinned`` (mode ``rebuild``), unless ``pinned`` is older than the
    checkpoint (a stale token, ``up_to_date``: rebuilding from it would move the table back
    in time; the next current run rebuilds).

    Raises:
        CheckpointError: ``pinned`` is unknown.
    """
    by_id = _by_id(records, pinned, table)
    back = by_id[checkpoint].parent_id if checkpoint in by_id else None
    while back is not None and back in by_id:
        if back == pinned:
            return ChangeWindow(table, checkpoint, pinned, UP_TO_DATE)
        back = by_id[back].parent_id
    return ChangeWindow(table, checkpoint, pinned, REBUILD)


def changed_rows(spark: SparkSession, table: TableRef, window: ChangeWindow) -> DataFrame:
    """The curated row versions the window covers, as of the pinned snapshot. Pure (lazy)."""
    from pyspark.sql import functions as F

    pinned = read_pinned(spark, table, window.pinned_snapshot_id)
    if window.mode in WHOLE:
        return pinned
    return pinned.where(F.col("_run_id").isin(*window.run_ids)) if window.run_ids else pinned.limit(0)
