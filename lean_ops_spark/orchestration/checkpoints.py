"""GetAllCheckpoints and ResolveCuratedSnapshot: the state machine's JVM-free lookups.

For every topic, :func:`get_all_checkpoints` reports the raw table's current snapshot,
the raw snapshot the last curation run consumed (``lean-ops.raw-snapshot-id`` in a curated
snapshot summary), the curated snapshot the last semantic run consumed
(``lean-ops.curated-snapshot-id`` in a semantic snapshot summary), and the backlog: the raw
``append`` snapshots after the checkpoint on the raw table's current ancestry and the sum
of their ``added-records``. ``has_new_raw_data`` is true when that backlog has a snapshot.

:func:`resolve_curation_run` runs after a curation job. A Glue job cannot return a value,
so it re-reads the curated table and picks the snapshot whose summary carries the run id
the job was started with (``lean-ops.run-id``): that id is the token the semantic job gets.
The same step answers CheckSchemaExists and the backlog left for CheckBacklogThreshold.

Snapshot ids leave this module as decimal strings in the payloads: Iceberg ids use all 63
bits and lose precision in JSON tooling that reads numbers as doubles.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from typing import Any

from lean_ops_spark.catalog.checkpoints import (
    CURATED_CHECKPOINT_KEY,
    RAW_CHECKPOINT_KEY,
    RUN_ID_KEY,
    Checkpoint,
    find_checkpoint,
)
from lean_ops_spark.catalog.naming import TableRef, topic_tables
from lean_ops_spark.config.models import Profile
from lean_ops_spark.config.sources import ConfigSource
from lean_ops_spark.curation.batch import plan_batch
from lean_ops_spark.errors import CheckpointError, ConfigError, LeanOpsError
from lean_ops_spark.orchestration.schema_check import SemanticSchemaCheck, check_semantic_schema
from lean_ops_spark.orchestration.snapshots import SnapshotSource, TableSnapshots

__all__ = [
    "Backlog",
    "CheckpointReport",
    "CurationRunResult",
    "SemanticTableNaming",
    "TopicCheckpoints",
    "compute_backlog",
    "default_semantic_table",
    "default_semantic_tables",
    "get_all_checkpoints",
    "model_semantic_tables",
    "resolve_curation_run",
]

#: ``(profile, topic) -> the topic's semantic tables`` (one per model, each with its own
#: curated checkpoint); :func:`model_semantic_tables` reads them from the models.
SemanticTableNaming = Callable[[Profile, str], Sequence[TableRef]]


def default_semantic_table(profile: Profile, topic: str) -> TableRef:
    """``<semantic_db>.<topic>``: the table of a model named after its topic."""
    return TableRef(profile.catalog, profile.databases.semantic, topic, "semantic", topic)


def default_semantic_tables(profile: Profile, topic: str) -> tuple[TableRef, ...]:
    """Without the models at hand: ``<semantic_db>.<topic>`` alone."""
    return (default_semantic_table(profile, topic),)


def model_semantic_tables(source: ConfigSource) -> SemanticTableNaming:
    """The tables of a topic's semantic models (``semantic/<topic>.yaml`` under ``source``),
    ``<semantic_db>.<model>`` each, as the semantic job names them; none for a topic without
    a model file, or whose file does not load (CheckSchemaExists reports that)."""
    from lean_ops_spark.semantic.tables import model_tables

    def tables(profile: Profile, topic: str) -> tuple[TableRef, ...]:
        try:
            return model_tables(source, profile, topic)
        except ConfigError:
            return ()

    return tables


def _id(value: int | None) -> str | None:
    return None if value is None else str(value)


@dataclass(frozen=True)
class Backlog:
    """Raw appends waiting for curation."""

    snapshots: int
    records: int
    #: Kept for the payload's shape: counts come from snapshot summaries and are exact.
    exact: bool = True


def compute_backlog(raw: TableSnapshots, checkpoint_raw_snapshot_id: int | None) -> Backlog:
    """Append snapshots (and their records) after ``checkpoint_raw_snapshot_id`` on the raw
    table's current ancestry: the same planning curation does, without a cap.

    Raises:
        CheckpointError: the checkpoint is not an ancestor of the current raw snapshot (the
            raw table was rolled back or replaced), or a pending snapshot was expired.
    """
    plan = plan_batch(
        raw.records,
        raw.current_snapshot_id,
        checkpoint_raw_snapshot_id,
        max_snapshots=sys.maxsize,
        table=raw.identifier,
    )
    return Backlog(len(plan.append_snapshots), plan.expected_records)


@dataclass(frozen=True)
class TopicCheckpoints:
    """Where one topic's consumers stand (one entry of GetAllCheckpoints)."""

    topic: str
    raw_table: str
    curated_table: str
    semantic_table: str
    raw_current_snapshot_id: int | None = None
    curation_checkpoint: Checkpoint | None = None
    curated_current_snapshot_id: int | None = None
    semantic_checkpoint: Checkpoint | None = None
    semantic_table_exists: bool = False
    backlog: Backlog = Backlog(0, 0)
    error: str | None = None
    #: curated holds a run's commit (curation or replay) newer than the semantic checkpoint
    #: (see :func:`semantic_behind`)
    semantic_lags: bool = False

    @property
    def raw_snapshot_consumed(self) -> int | None:
        """The raw snapshot id the last curation run consumed."""
        return None if self.curation_checkpoint is None else self.curation_checkpoint.source_snapshot_id

    @property
    def curated_snapshot_consumed(self) -> int | None:
        """The curated snapshot id the last semantic run consumed."""
        return None if self.semantic_checkpoint is None else self.semantic_checkpoint.source_snapshot_id

    @property
    def has_new_raw_data(self) -> bool:
        return self.error is None and self.backlog.snapshots > 0

    @property
    def semantic_behind(self) -> bool:
        """No raw to curate, but the semantic table has yet to read curated commits (after a
        failed audit or semantic job, or a replay): CheckForNewRawData runs semantic alone."""
        return self.error is None and not self.has_new_raw_data and self.semantic_lags

    def as_payload(self) -> dict[str, Any]:
        """JSON-safe form (ids as decimal strings)."""
        return {
            "topic": self.topic,
            "raw_table": self.raw_table,
            "curated_table": self.curated_table,
            "semantic_table": self.semantic_table,
            "raw_current_snapshot_id": _id(self.raw_current_snapshot_id),
            "raw_snapshot_consumed": _id(self.raw_snapshot_consumed),
            "curated_current_snapshot_id": _id(self.curated_current_snapshot_id),
            "curated_snapshot_consumed": _id(self.curated_snapshot_consumed),
            "last_curation_run_id": None
            if self.curation_checkpoint is None
            else self.curation_checkpoint.run_id,
            "semantic_table_exists": self.semantic_table_exists,
            "pending_raw_snapshots": self.backlog.snapshots,
            "pending_raw_records": self.backlog.records,
            "backlog_exact": self.backlog.exact,
            "has_new_raw_data": self.has_new_raw_data,
            "semantic_behind": self.semantic_behind,
            "error": self.error,
        }


@dataclass(frozen=True)
class CheckpointReport:
    """GetAllCheckpoints' answer for a list of topics."""

    topics: tuple[TopicCheckpoints, ...]

    @property
    def has_new_raw_data(self) -> bool:
        return any(t.has_new_raw_data for t in self.topics)

    @property
    def errors(self) -> dict[str, str]:
        return {t.topic: t.error for t in self.topics if t.error is not None}

    def as_payload(self) -> dict[str, Any]:
        return {
            "topics": [t.as_payload() for t in self.topics],
            "has_new_raw_data": self.has_new_raw_data,
            "topics_with_new_raw_data": [t.topic for t in self.topics if t.has_new_raw_data],
            "errors": self.errors,
        }


def _checkpoint(table: TableSnapshots, key: str) -> Checkpoint | None:
    if not table.exists:
        return None
    return find_checkpoint(table.records, table.current_snapshot_id, key, table.identifier)


def _topic_checkpoints(
    topic: str,
    raw_ref: TableRef,
    curated_ref: TableRef,
    semantic_refs: Sequence[TableRef],
    loaded: dict[str, TableSnapshots],
) -> TopicCheckpoints:
    raw, curated = (loaded[r.identifier] for r in (raw_ref, curated_ref))
    existing = [(ref, loaded[ref.identifier]) for ref in semantic_refs if loaded[ref.identifier].exists]
    # reported: the first of the topic's semantic tables that exists (in the models' order)
    first = next(iter([*(ref for ref, _ in existing), *semantic_refs]), None)
    shown_name = first.sql if first else ""
    base = TopicCheckpoints(
        topic, raw_ref.sql, curated_ref.sql, shown_name, semantic_table_exists=bool(existing)
    )
    missing = [t.identifier for t in (raw, curated) if not t.exists]
    if missing:
        return _with_error(base, f"table(s) missing: {', '.join(missing)} (run `lean-ops init`)")
    try:
        curation = _checkpoint(curated, RAW_CHECKPOINT_KEY)
        checkpoints = [(ref, _checkpoint(table, CURATED_CHECKPOINT_KEY)) for ref, table in existing]
        backlog = compute_backlog(raw, None if curation is None else curation.source_snapshot_id)
    except LeanOpsError as exc:
        return _with_error(base, str(exc))
    # each model's table keeps its own checkpoint: one that has yet to read a curated commit
    # (its audit failed, say, while another model's published) is reason enough to catch up;
    # so is a model whose table does not exist yet (new, or its first semantic run failed
    # before creating it) while curated holds a run's commit
    absent = [(ref, None) for ref in semantic_refs if not loaded[ref.identifier].exists]
    lagging = [(ref, cp) for ref, cp in [*checkpoints, *absent] if semantic_behind(curated, cp)]
    shown = next(iter([*lagging, *checkpoints]), None)  # the one lagging, if any
    return TopicCheckpoints(
        semantic_lags=bool(lagging),
        topic=topic,
        raw_table=raw_ref.sql,
        curated_table=curated_ref.sql,
        semantic_table=shown[0].sql if shown else shown_name,
        raw_current_snapshot_id=raw.current_snapshot_id,
        curation_checkpoint=curation,
        curated_current_snapshot_id=curated.current_snapshot_id,
        semantic_checkpoint=shown[1] if shown else None,
        semantic_table_exists=bool(existing),
        backlog=backlog,
    )


def semantic_behind(curated: TableSnapshots, semantic_checkpoint: Checkpoint | None) -> bool:
    """Whether a snapshot carrying a run id (a curation or replay commit, what the semantic
    job reads) is newer on curated's current ancestry than ``semantic_checkpoint``, the
    curated snapshot the semantic table last consumed (None: never)."""
    consumed = None if semantic_checkpoint is None else semantic_checkpoint.source_snapshot_id
    for record in curated.ancestors():
        if record.snapshot_id == consumed:
            return False
        if RUN_ID_KEY in record.summary:
            return True
    return False


def _with_error(base: TopicCheckpoints, error: str) -> TopicCheckpoints:
    return TopicCheckpoints(
        base.topic, base.raw_table, base.curated_table, base.semantic_table,
        semantic_table_exists=base.semantic_table_exists, error=error,
    )  # fmt: skip


def get_all_checkpoints(
    source: SnapshotSource,
    profile: Profile,
    topics: Sequence[str],
    *,
    semantic_tables: SemanticTableNaming = default_semantic_tables,
) -> CheckpointReport:
    """Checkpoints and backlog of every topic in one batch of catalog reads.

    A topic whose tables are missing or whose checkpoint cannot be read gets an ``error``
    (and ``has_new_raw_data`` false) instead of failing the other topics; callers that act
    on one topic should treat an error as a failure.
    """
    refs = []
    for topic in topics:
        tables = topic_tables(profile, topic)
        refs.append((topic, tables.raw, tables.curated, tuple(semantic_tables(profile, topic))))
    loaded = source.load([r for _, raw, cur, sem in refs for r in (raw, cur, *sem)])
    return CheckpointReport(tuple(_topic_checkpoints(t, raw, cur, sem, loaded) for t, raw, cur, sem in refs))


@dataclass(frozen=True)
class CurationRunResult:
    """What ResolveCuratedSnapshot tells the rest of the execution."""

    topic: str
    run_id: str
    curated_table: str
    curated_snapshot_id: int | None
    run_committed: bool
    raw_snapshot_consumed: int | None
    schema_exists: bool
    schema_reason: str
    backlog: Backlog

    def as_payload(self) -> dict[str, Any]:
        return {
            "topic": self.topic,
            "run_id": self.run_id,
            "curated_table": self.curated_table,
            "curated_snapshot_id": _id(self.curated_snapshot_id),
            "run_committed": self.run_committed,
            "raw_snapshot_consumed": _id(self.raw_snapshot_consumed),
            "schema_exists": self.schema_exists,
            "schema_reason": self.schema_reason,
            "pending_raw_snapshots": self.backlog.snapshots,
            "pending_raw_records": self.backlog.records,
        }


def _run_snapshot(curated: TableSnapshots, run_id: str) -> int | None:
    """The newest snapshot on the current ancestry whose summary carries ``run_id``."""
    return next((r.snapshot_id for r in curated.ancestors() if r.summary.get(RUN_ID_KEY) == run_id), None)


def resolve_curation_run(
    source: SnapshotSource,
    profile: Profile,
    topic: str,
    run_id: str,
    config_source: ConfigSource,
    *,
    schema_check: SemanticSchemaCheck = check_semantic_schema,
) -> CurationRunResult:
    """The curated snapshot a curation run committed, the schema answer and the backlog left.

    When no snapshot carries ``run_id`` (the run had nothing to commit), the curated
    table's current snapshot is the one the semantic job must read, and ``run_committed``
    is false.

    Raises:
        CheckpointError: the raw or curated table is missing, or the checkpoint is unreadable.
    """
    tables = topic_tables(profile, topic)
    loaded = source.load([tables.raw, tables.curated])
    raw, curated = loaded[tables.raw.identifier], loaded[tables.curated.identifier]
    for table in (raw, curated):
        if not table.exists:
            raise CheckpointError(f"topic {topic}: table {table.identifier} is missing (run `lean-ops init`)")
    run_snapshot = _run_snapshot(curated, run_id)
    checkpoint = _checkpoint(curated, RAW_CHECKPOINT_KEY)
    consumed = None if checkpoint is None else checkpoint.source_snapshot_id
    check = schema_check(config_source, topic, _columns(curated))
    return CurationRunResult(
        topic=topic,
        run_id=run_id,
        curated_table=tables.curated.sql,
        curated_snapshot_id=run_snapshot if run_snapshot is not None else curated.current_snapshot_id,
        run_committed=run_snapshot is not None,
        raw_snapshot_consumed=consumed,
        schema_exists=check.exists,
        schema_reason=check.reason,
        backlog=compute_backlog(raw, consumed),
    )


def _columns(table: TableSnapshots) -> Collection[str]:
    return frozenset(table.columns)
