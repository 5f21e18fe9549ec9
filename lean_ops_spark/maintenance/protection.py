"""Checkpoint-safe snapshot expiry: which snapshots of a table a consumer still needs.

A consumer (curation for raw, semantic for curated) records in its own snapshot summaries
the snapshot of this table it consumed last (``catalog/checkpoints.py``). Its next
incremental read starts after that snapshot, which needs the snapshot (or at least its
child) to exist. A table that carries its own checkpoint key (curated, semantic) also
needs the newest snapshot carrying the key, or the ancestor walk that reads it fails.

``expire_snapshots`` keeps a snapshot if it is younger than ``older_than`` OR among the last
``retain_last``; so clamping ``older_than`` to the earliest commit time of the protected
snapshots and their descendants keeps them and everything after them.
:func:`expiry_protection` computes that bound (pure); :func:`read_consumer_checkpoints`
reads the checkpoints with Spark.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from lean_ops_spark.catalog.checkpoints import (
    CURATED_CHECKPOINT_KEY,
    RAW_CHECKPOINT_KEY,
    Checkpoint,
    SnapshotRecord,
    read_checkpoint,
)
from lean_ops_spark.catalog.naming import TableRef, topic_tables
from lean_ops_spark.config.models import Profile
from lean_ops_spark.errors import CheckpointError

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

__all__ = [
    "CheckpointConsumer",
    "ConsumerCheckpoint",
    "ExpiryProtection",
    "ProtectedSnapshot",
    "checkpoint_consumers",
    "expiry_protection",
    "own_checkpoint_key",
    "read_consumer_checkpoints",
    "read_own_checkpoint",
]


@dataclass(frozen=True)
class CheckpointConsumer:
    """A table whose snapshot summaries (under ``key``) name snapshots of the maintained table.

    ``designated``: the consumer reads exactly this table (raw -> its curated table), so a
    checkpoint naming a snapshot the table no longer has is an alarm. A consumer that may
    read several tables (a semantic model over curated tables) is not designated: its
    checkpoint protects this table only when it names one of this table's snapshots.
    """

    table: TableRef
    key: str
    designated: bool = True


@dataclass(frozen=True)
class ConsumerCheckpoint:
    """What one consumer holds: a snapshot id of the maintained table, nothing, or an error."""

    consumer: str
    key: str
    snapshot_id: int | None
    designated: bool = True
    error: str | None = None


@dataclass(frozen=True)
class ProtectedSnapshot:
    snapshot_id: int
    committed_at_ms: int
    why: str


@dataclass(frozen=True)
class ExpiryProtection:
    """The bound checkpoints put on ``expire_snapshots``.

    Attributes:
        floor_ms: ``older_than`` must be at or before this (None: no checkpoint to keep).
        protected: the snapshots that set the floor, and why.
        blocked: set when expiry must not run at all (a checkpoint that cannot be located).
        notes: checkpoints that did not constrain anything, for the report.
    """

    floor_ms: int | None = None
    protected: tuple[ProtectedSnapshot, ...] = ()
    blocked: str | None = None
    notes: tuple[str, ...] = ()

    def describe(self) -> str:
        if self.blocked:
            return self.blocked
        if not self.protected:
            return "; ".join(self.notes) or "no consumer checkpoint to keep"
        return "; ".join(p.why for p in self.protected)


def own_checkpoint_key(table: TableRef) -> str | None:
    """The checkpoint key ``table`` itself carries (curated: raw position; semantic: curated)."""
    return {"curated": RAW_CHECKPOINT_KEY, "semantic": CURATED_CHECKPOINT_KEY}.get(table.layer)


def checkpoint_consumers(
    spark: SparkSession, profile: Profile, table: TableRef
) -> tuple[CheckpointConsumer, ...]:
    """Who holds checkpoints into ``table``.

    Raw staging of a topic: the topic's curated table (``RAW_CHECKPOINT_KEY``). Curated:
    every table of the semantic database (``CURATED_CHECKPOINT_KEY``, not designated,
    because a model may read several curated tables). Other layers: nobody.
    """
    if table.layer == "raw" and table.topic:
        return (CheckpointConsumer(topic_tables(profile, table.topic).curated, RAW_CHECKPOINT_KEY),)
    if table.layer == "curated":
        database = profile.databases.semantic
        try:
            rows = spark.sql(f"SHOW TABLES IN {profile.catalog}.{database}").collect()
        except Exception as exc:
            if _namespace_missing(exc):  # the semantic namespace does not exist yet: no consumer
                return ()
            raise  # not knowing the consumers must not read as having none
        return tuple(
            CheckpointConsumer(
                TableRef(profile.catalog, database, r["tableName"], "semantic"),
                CURATED_CHECKPOINT_KEY,
                designated=False,
            )
            for r in rows
            if not r["isTemporary"]
        )
    return ()


def _namespace_missing(exc: Exception) -> bool:
    """Whether ``exc`` says a namespace does not exist (Spark's ``SCHEMA_NOT_FOUND``)."""
    text = f"{type(exc).__name__}: {exc}"
    return "SCHEMA_NOT_FOUND" in text or "NoSuchNamespace" in text


def read_consumer_checkpoints(
    spark: SparkSession, consumers: Sequence[CheckpointConsumer]
) -> tuple[ConsumerCheckpoint, ...]:
    """Each consumer's checkpoint; a missing consumer table holds none. A consumer whose
    existence or checkpoint cannot be read (a catalog error) is an error entry, which blocks
    expiry (:func:`expiry_protection`): unknown must not read as "holds none"."""
    out = []
    for consumer in consumers:
        try:
            exists = bool(spark.catalog.tableExists(consumer.table.sql))
        except Exception as exc:
            out.append(
                ConsumerCheckpoint(
                    consumer.table.sql,
                    consumer.key,
                    None,
                    consumer.designated,
                    f"cannot tell whether the table exists: {type(exc).__name__}: {exc}",
                )
            )
            continue
        if not exists:
            continue
        try:
            checkpoint = read_checkpoint(spark, consumer.table, consumer.key)
        except CheckpointError as exc:
            out.append(
                ConsumerCheckpoint(consumer.table.sql, consumer.key, None, consumer.designated, str(exc))
            )
            continue
        out.append(
            ConsumerCheckpoint(
                consumer.table.sql,
                consumer.key,
                None if checkpoint is None else checkpoint.source_snapshot_id,
                consumer.designated,
            )
        )
    return tuple(out)


def read_own_checkpoint(spark: SparkSession, table: TableRef) -> Checkpoint | None:
    """The checkpoint ``table`` carries itself, if its layer has one (None when unreadable)."""
    key = own_checkpoint_key(table)
    if key is None:
        return None
    try:
        return read_checkpoint(spark, table, key)
    except CheckpointError:
        return None  # already lost: expiry cannot make it worse, the consumer reports it


def expiry_protection(
    snapshots: Sequence[SnapshotRecord],
    checkpoints: Sequence[ConsumerCheckpoint],
    own: Checkpoint | None = None,
) -> ExpiryProtection:
    """The ``older_than`` bound that keeps every snapshot a checkpoint still needs (pure).

    Args:
        snapshots: the maintained table's live snapshots.
        checkpoints: what its consumers hold (:func:`read_consumer_checkpoints`).
        own: the newest checkpoint the table carries itself (:func:`read_own_checkpoint`).
    """
    by_id = {s.snapshot_id: s for s in snapshots}
    children_of: dict[int, list[SnapshotRecord]] = {}
    for s in snapshots:
        if s.parent_id is not None:
            children_of.setdefault(s.parent_id, []).append(s)
    # the earliest child of each snapshot (what an incremental read from it needs)
    children = {parent: min(kids, key=lambda k: k.committed_at_ms) for parent, kids in children_of.items()}
    protected: list[ProtectedSnapshot] = []
    notes: list[str] = []
    for cp in checkpoints:
        if cp.error is not None:
            return ExpiryProtection(
                blocked=f"checkpoint of {cp.consumer} ({cp.key}) cannot be read, so the snapshots it "
                f"needs are unknown: not expiring ({cp.error.splitlines()[0]})"
            )
        if cp.snapshot_id is None:
            notes.append(f"{cp.consumer} holds no checkpoint yet")
            continue
        snapshot = by_id.get(cp.snapshot_id)
        if snapshot is not None:
            protected.append(
                ProtectedSnapshot(
                    snapshot.snapshot_id,
                    snapshot.committed_at_ms,
                    f"keeps snapshot {snapshot.snapshot_id}, the checkpoint of {cp.consumer}",
                )
            )
            continue
        child = children.get(cp.snapshot_id)
        if child is not None:
            # The checkpoint itself is gone, but an incremental read only needs its child.
            protected.append(
                ProtectedSnapshot(
                    child.snapshot_id,
                    child.committed_at_ms,
                    f"keeps snapshot {child.snapshot_id}, the child of {cp.consumer}'s checkpoint "
                    f"{cp.snapshot_id}",
                )
            )
            continue
        if cp.designated:
            return ExpiryProtection(
                blocked=f"{cp.consumer} checkpoints snapshot {cp.snapshot_id}, which this table no longer "
                "has (nor its child): its next incremental read will fail; not expiring until resolved"
            )
        notes.append(f"{cp.consumer}'s checkpoint {cp.snapshot_id} is not a snapshot of this table")
    if own is not None and own.recorded_in_snapshot_id in by_id:
        recorded = by_id[own.recorded_in_snapshot_id]
        protected.append(
            ProtectedSnapshot(
                recorded.snapshot_id,
                recorded.committed_at_ms,
                f"keeps snapshot {recorded.snapshot_id}, which carries this table's own {own.key}",
            )
        )
    floor = min((_earliest_from(p, children_of) for p in protected), default=None)
    return ExpiryProtection(floor_ms=floor, protected=tuple(protected), notes=tuple(notes))


def _earliest_from(protected: ProtectedSnapshot, children_of: Mapping[int, Sequence[SnapshotRecord]]) -> int:
    """The earliest commit time of ``protected`` and its descendants. A consumer's next read
    walks from the current snapshot back to its checkpoint, so every snapshot on the way must
    stay; Iceberg accepts a child committed up to a minute before its parent (writers' clocks
    differ), and ``older_than`` at the protected snapshot's own time would expire such a child."""
    earliest = protected.committed_at_ms
    pending = [protected.snapshot_id]
    while pending:
        for child in children_of.get(pending.pop(), ()):
            earliest = min(earliest, child.committed_at_ms)
            pending.append(child.snapshot_id)
    return earliest
