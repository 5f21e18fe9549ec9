"""Checkpoints stored in Iceberg snapshot summaries, and how to read them back.

A curation run commits the raw snapshot id it consumed into the summary of the curated
snapshot its MERGE creates (``lean-ops.raw-snapshot-id``), so data and checkpoint commit
together. Semantic does the same with ``lean-ops.curated-snapshot-id``. Other writers
(compaction, maintenance) commit snapshots without the key, so reading a checkpoint means
walking the current snapshot's ancestors to the newest one that carries it.

The walk is pure (:func:`find_checkpoint`) and shared by the Spark reader here and the
PyIceberg reader of the checkpoints Lambda.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from lean_ops_spark.catalog.metadata import SnapshotRecord, load_table_snapshots
from lean_ops_spark.catalog.naming import TableRef
from lean_ops_spark.errors import CheckpointError

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

__all__ = [
    "CURATED_CHECKPOINT_KEY",
    "RAW_CHECKPOINT_KEY",
    "RUN_ID_KEY",
    "Checkpoint",
    "SnapshotRecord",
    "current_snapshot_id",
    "find_checkpoint",
    "read_checkpoint",
    "read_pinned",
    "snapshot_records",
]

RAW_CHECKPOINT_KEY = "lean-ops.raw-snapshot-id"
CURATED_CHECKPOINT_KEY = "lean-ops.curated-snapshot-id"
RUN_ID_KEY = "lean-ops.run-id"


@dataclass(frozen=True)
class Checkpoint:
    """A consumer's position: the source snapshot it consumed, and where that was recorded."""

    key: str
    source_snapshot_id: int
    recorded_in_snapshot_id: int
    run_id: str | None = None


def find_checkpoint(
    records: Iterable[SnapshotRecord], current_snapshot_id: int | None, key: str, table: str = "table"
) -> Checkpoint | None:
    """Walk from ``current_snapshot_id`` through parents to the newest snapshot carrying ``key``.

    Returns None when the table has no snapshot, or when its whole history is present and
    no snapshot carries the key (the consumer never ran).

    Raises:
        CheckpointError: the walk reached an expired ancestor before finding the key (the
            checkpoint was expired, so the position is unknown), or the key's value is not
            a snapshot id.
    """
    if current_snapshot_id is None:
        return None
    by_id = {r.snapshot_id: r for r in records}
    snapshot_id: int | None = current_snapshot_id
    while snapshot_id is not None:
        record = by_id.get(snapshot_id)
        if record is None:
            raise CheckpointError(
                f"{table}: snapshot {snapshot_id} in the ancestry of {current_snapshot_id} is expired before any "
                f"snapshot carrying {key!r} was found; the checkpoint was expired and the position is unknown"
            )
        value = record.summary.get(key)
        if value is not None:
            try:
                source = int(value)
            except ValueError as exc:
                raise CheckpointError(
                    f"{table}: snapshot {snapshot_id} has {key}={value!r}, not an id"
                ) from exc
            return Checkpoint(key, source, record.snapshot_id, record.summary.get(RUN_ID_KEY))
        snapshot_id = record.parent_id
    return None


def snapshot_records(spark: SparkSession, table: TableRef) -> list[SnapshotRecord]:
    """Every live snapshot of ``table`` (from its current metadata, no Spark job)."""
    return list(load_table_snapshots(spark, table).records)


def current_snapshot_id(spark: SparkSession, table: TableRef) -> int | None:
    """The table's current snapshot id (None for a table with no snapshot)."""
    return load_table_snapshots(spark, table).current_snapshot_id


def read_pinned(spark: SparkSession, table: TableRef, snapshot_id: int) -> DataFrame:
    """``table`` as of ``snapshot_id`` (time travel: later commits are invisible, also to a
    persisted DataFrame that Spark recomputes after one of them)."""
    return spark.read.format("iceberg").option("snapshot-id", str(int(snapshot_id))).load(table.sql)


def read_checkpoint(spark: SparkSession, table: TableRef, key: str) -> Checkpoint | None:
    """The checkpoint ``key`` of ``table`` as of its current snapshot (see :func:`find_checkpoint`)."""
    snapshots = load_table_snapshots(spark, table)
    return find_checkpoint(snapshots.records, snapshots.current_snapshot_id, key, table.sql)
