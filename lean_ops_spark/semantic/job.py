"""One semantic run of a topic: curated (pinned) -> every semantic model of the topic, each
written to an audit branch, validated with its suite and published by fast-forward.

Per model: create the table if needed -> read the checkpoint on main -> plan the change
window (:mod:`.incremental`) -> compute the changed entity rows or the affected groups
from curated *as of the pinned snapshot* -> MERGE them into the audit branch with the
checkpoint in the same snapshot -> run the suite on the branch -> fast-forward main.
Entity rows whose new version fails the model's filters are deleted; groups are
recomputed whole (from every row of the group, not the changed ones only) and groups left
empty are deleted. A first run, or a run whose table was computed under another definition
of the model (its fingerprint, recorded with each checkpoint, differs), computes the whole
table from curated as of the pinned snapshot and replaces the table's rows on the audit
branch instead of MERGEing; the fingerprint reaches main with the audited data.

The table's partition spec follows the model's ``partition:``: when they differ (the model's
partition changed, or the table was altered by hand), the run evolves the spec with Iceberg's
partition evolution before it writes, and logs a warning naming the table and both specs
(see :func:`_align_partitioning` for why before the audit branch is written).

A topic without a semantic model, or whose model needs a curated column that does not
exist, takes the NotifyMissingSchema path: a ``MissingSemanticSchema`` metric and a
warning naming what is missing, status ``missing_schema``, nothing written.
"""

from __future__ import annotations

import logging
import math
import os
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from lean_ops_spark.catalog.checkpoints import (
    CURATED_CHECKPOINT_KEY,
    RUN_ID_KEY,
    SnapshotRecord,
    find_checkpoint,
    read_pinned,
)
from lean_ops_spark.catalog.commit import with_commit_properties
from lean_ops_spark.catalog.metadata import load_table_snapshots
from lean_ops_spark.catalog.naming import TableRef, topic_tables
from lean_ops_spark.catalog.schemas import TableDefinition, collected_timestamp_literal, sql_string
from lean_ops_spark.config.models import ProjectConfig, TopicContract
from lean_ops_spark.config.sources import open_config_source
from lean_ops_spark.curation.merge import batch_partition_days, partition_predicate, view_name
from lean_ops_spark.errors import CatalogError, CheckpointError, ConfigError, DataQualityError
from lean_ops_spark.quality.results import DQResult
from lean_ops_spark.quality.suites import QualitySuite, load_suites
from lean_ops_spark.semantic.compiler import (
    EXISTS_COLUMN,
    KEEP_COLUMN,
    aggregate_rows,
    entity_rows,
    group_keys,
    in_groups,
    null_safe_join,
)
from lean_ops_spark.semantic.incremental import (
    UP_TO_DATE,
    WHOLE,
    ChangeWindow,
    changed_rows,
    plan_changes,
    plan_rebuild,
)
from lean_ops_spark.semantic.loader import check_models_and_suites, load_semantic_models
from lean_ops_spark.semantic.models import (
    AUDIT_COLUMNS,
    FINGERPRINT_KEY,
    ModelKind,
    SemanticModel,
    SemanticModels,
)
from lean_ops_spark.semantic.publish import (
    MainMovedError,
    audit_branch,
    branches,
    drop_audit_branches,
    drop_branch,
    fast_forward,
    moved_by_maintenance,
    wap_branch,
)
from lean_ops_spark.semantic.tables import (
    PartitionChange,
    align_partitioning,
    ensure_semantic_table,
    record_fingerprint,
    semantic_table,
    semantic_table_definition,
)

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

__all__ = [
    "STEP_AUDITED",
    "STEP_PUBLISHED",
    "STEP_WRITTEN",
    "ModelResult",
    "SemanticResult",
    "check_semantic_arguments",
    "run_semantic",
    "run_semantic_job",
]

log = logging.getLogger(__name__)

#: Step names passed to ``after_step`` (tests simulate crashes between steps).
STEP_WRITTEN = "written"  # the MERGE committed to the audit branch
STEP_AUDITED = "audited"  # the suite passed, main not yet moved
STEP_PUBLISHED = "published"  # main fast-forwarded, branch not yet dropped
MISSING_SCHEMA_METRIC = "MissingSemanticSchema"
_MAX_PARTITION_VALUES = 200
#: How often one model's write-audit-publish starts again from a main that maintenance moved
#: (a compaction or manifest rewrite committed while the run wrote or audited its branch).
MAX_MAINTENANCE_REBASES = 3


@dataclass(frozen=True)
class ModelResult:
    """What one model's run did. ``status``: published | audit_failed | up_to_date."""

    model: str
    kind: str
    table: str
    status: str
    curated_snapshot_id: int
    checkpoint_before: int | None
    window: str
    run_ids: tuple[str, ...] = ()
    rows_merged: int = 0
    semantic_snapshot_id: int | None = None
    branch: str | None = None
    dq: DQResult | None = None
    duration_seconds: float = 0.0
    #: the partition spec this run evolved the table's to (``spec 0 month(d) -> spec 1 day(d)``)
    partition_change: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "kind": self.kind,
            "table": self.table,
            "status": self.status,
            "curated_snapshot_id": str(self.curated_snapshot_id),
            "checkpoint_before": None if self.checkpoint_before is None else str(self.checkpoint_before),
            "window": self.window,
            "run_ids": list(self.run_ids),
            "rows_merged": self.rows_merged,
            "semantic_snapshot_id": None
            if self.semantic_snapshot_id is None
            else str(self.semantic_snapshot_id),
            "branch_kept": self.branch,
            "dq": self.dq.as_dict() if self.dq else None,
            "duration_seconds": round(self.duration_seconds, 3),
            "partition_change": self.partition_change,
        }


@dataclass(frozen=True)
class SemanticResult:
    """A topic's semantic run. ``status``: published | up_to_date | audit_failed |
    missing_schema | no_curated_data."""

    topic: str
    run_id: str
    status: str
    curated_table: str
    curated_snapshot_id: int | None
    models: tuple[ModelResult, ...] = ()
    missing: tuple[str, ...] = ()
    reason: str = ""
    duration_seconds: float = 0.0
    messages: tuple[str, ...] = field(default_factory=tuple)

    @property
    def ok(self) -> bool:
        return self.status != "audit_failed"

    def failures(self) -> str:
        """The failed audits in words (empty when none failed)."""
        return "; ".join(
            f"{m.table}: {m.dq.summary()} (branch {m.branch} kept, main unchanged)"
            for m in self.models
            if m.status == "audit_failed" and m.dq is not None
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "topic": self.topic,
            "run_id": self.run_id,
            "status": self.status,
            "curated_table": self.curated_table,
            "curated_snapshot_id": None
            if self.curated_snapshot_id is None
            else str(self.curated_snapshot_id),
            "models": [m.as_dict() for m in self.models],
            "missing": list(self.missing),
            "reason": self.reason,
            "duration_seconds": round(self.duration_seconds, 3),
        }


# --------------------------------------------------------------------------- SQL helpers


def _literal(value: Any, column_type: str | None) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        return collected_timestamp_literal(value, column_type)
    if isinstance(value, date):
        return f"DATE '{value.isoformat()}'"
    if isinstance(value, (int, float, Decimal)):
        return str(value)
    return sql_string(str(value))


def value_predicate(column: str, values: Sequence[Any], column_type: str | None = None) -> str | None:
    """A predicate matching every row whose ``column`` is one of ``values`` (a range when
    there are many); Iceberg turns it into a partition filter through the table's transform.

    ``column_type`` is the column's Spark type (``DataType.simpleString()``): a collected
    ``timestamp_ntz`` is a wall-clock time and is written as one; other times are written
    as their instant. None when there is nothing to match, or when a value is a NaN or an
    infinity (no literal for them prunes reliably: the caller matches without a predicate).
    """
    if any(isinstance(v, float) and not math.isfinite(v) for v in values):
        return None
    present = sorted({v for v in values if v is not None})
    parts = []
    if present:
        if len(present) > _MAX_PARTITION_VALUES:
            low, high = _literal(present[0], column_type), _literal(present[-1], column_type)
            parts.append(f"{column} BETWEEN {low} AND {high}")
        else:
            parts.append(f"{column} IN ({', '.join(_literal(v, column_type) for v in present)})")
    if any(v is None for v in values):
        parts.append(f"{column} IS NULL")
    return "(" + " OR ".join(parts) + ")" if parts else None


def merge_sql(target: str, source: str, model: SemanticModel, predicate: str | None) -> str:
    """The MERGE of an entity's changed rows or an aggregate's recomputed groups (pure)."""
    equal = "=" if model.kind is ModelKind.ENTITY else "<=>"
    on = " AND ".join(f"t.{k} {equal} s.{k}" for k in model.key)
    if predicate:
        on = f"{on} AND {predicate}"
    flag = KEEP_COLUMN if model.kind is ModelKind.ENTITY else EXISTS_COLUMN
    columns = [*model.output_columns, *(name for name, _ in AUDIT_COLUMNS)]
    updates = ", ".join(f"t.{c} = s.{c}" for c in columns if c not in model.key)
    return (
        f"MERGE INTO {target} t\nUSING {source} s\nON {on}\n"
        f"WHEN MATCHED AND NOT s.{flag} THEN DELETE\n"
        f"WHEN MATCHED THEN UPDATE SET {updates}\n"
        f"WHEN NOT MATCHED AND s.{flag} THEN INSERT ({', '.join(columns)}) "
        f"VALUES ({', '.join(f's.{c}' for c in columns)})"
    )


# --------------------------------------------------------------------------- sources


def _with_columns_of(df: DataFrame, reference: DataFrame, names: Sequence[str]) -> DataFrame:
    """``df`` with any of ``names`` it lacks (an older snapshot, before an evolve) as NULLs."""
    from pyspark.sql import functions as F

    types = {f.name: f.dataType for f in reference.schema.fields}
    missing = [n for n in names if n not in df.columns and n in types]
    return df.withColumns({n: F.lit(None).cast(types[n]) for n in missing}) if missing else df


@dataclass(frozen=True)
class _Run:
    spark: SparkSession
    config: ProjectConfig
    contract: TopicContract
    curated: TableRef
    pinned_snapshot_id: int
    records: tuple[SnapshotRecord, ...]
    run_id: str
    metrics: Any
    after_step: Callable[[str], None] | None


def _previous_versions(
    run: _Run, window: ChangeWindow, changed: DataFrame, model: SemanticModel
) -> DataFrame | None:
    """The versions the changed keys had at the checkpoint (what the semantic table was
    computed from), read pruned to the changed rows' curated partitions."""
    from pyspark.sql import functions as F

    if window.checkpoint_snapshot_id is None or window.mode in WHOLE:
        return None
    contract = run.contract
    days = batch_partition_days(changed, contract)
    previous = read_pinned(run.spark, run.curated, window.checkpoint_snapshot_id).alias("c")
    predicate = partition_predicate(contract, days, alias="c")
    if predicate:
        previous = previous.where(F.expr(predicate))
    previous = previous.join(changed.select(*contract.key).distinct(), on=list(contract.key), how="left_semi")
    return _with_columns_of(previous, changed, model.curated_columns)


def _aggregate_source(
    pinned: DataFrame, changed: DataFrame, previous: DataFrame | None, model: SemanticModel
) -> DataFrame:
    """Every affected group (of a changed row's new or old version) recomputed from all its
    rows as of the pinned snapshot; ``_exists`` is false for a group left without rows."""
    from pyspark.sql import functions as F

    affected = group_keys(changed, model)
    if previous is not None:
        affected = affected.unionByName(group_keys(previous, model))
    affected = affected.distinct()
    recomputed = aggregate_rows(in_groups(pinned, model, affected), model).withColumn(
        EXISTS_COLUMN, F.lit(True)
    )
    joined = null_safe_join(affected, recomputed, model.key, "left")
    return joined.withColumn(EXISTS_COLUMN, F.coalesce(F.col(EXISTS_COLUMN), F.lit(False)))


@dataclass(frozen=True)
class _Staged:
    source: DataFrame  # persisted
    rows: int
    predicate: str | None
    replace: bool = False  # the rows are the whole table (a first run or a rebuild)


def _with_audit_columns(run: _Run, rows: DataFrame) -> DataFrame:
    from pyspark.sql import functions as F

    return rows.withColumns(
        {"_curated_snapshot_id": F.lit(run.pinned_snapshot_id).cast("bigint"), "_run_id": F.lit(run.run_id)}
    )


def _stage_whole(run: _Run, model: SemanticModel, pinned: DataFrame) -> _Staged:
    """Every row of the table as of the pinned snapshot (persisted; the caller unpersists)."""
    from pyspark import StorageLevel
    from pyspark.sql import functions as F

    rows = (
        entity_rows(pinned, model).where(F.col(KEEP_COLUMN)).drop(KEEP_COLUMN)
        if model.kind is ModelKind.ENTITY
        else aggregate_rows(pinned, model)
    )
    source = _with_audit_columns(run, rows).persist(StorageLevel.MEMORY_AND_DISK)
    return _Staged(source, source.count(), None, replace=True)


def _stage(run: _Run, window: ChangeWindow, model: SemanticModel, pinned: DataFrame) -> _Staged:
    """The rows to MERGE (persisted; the caller unpersists) and the target partition predicate."""
    from pyspark import StorageLevel

    if window.mode in WHOLE:
        return _stage_whole(run, model, pinned)
    changed = changed_rows(run.spark, run.curated, window).persist(StorageLevel.MEMORY_AND_DISK)
    try:
        previous = _previous_versions(run, window, changed, model)
        if model.kind is ModelKind.ENTITY:
            staged = entity_rows(changed, model)
            old = entity_rows(previous, model) if previous is not None else None
        else:
            staged = _aggregate_source(pinned, changed, previous, model)
            old = None  # the affected groups already include the old versions' groups
        source = _with_audit_columns(run, staged).persist(StorageLevel.MEMORY_AND_DISK)
        predicate = None
        if model.partition is None:
            rows = source.count()
        else:  # one job: the row count and the partition values the MERGE may touch
            column = model.partition.column
            counted = source.groupBy(column).count().collect()
            rows = sum(int(r["count"]) for r in counted)
            values = [r[column] for r in counted]
            if old is not None and rows:
                values += [r[0] for r in old.select(column).distinct().collect()]
            column_type = source.schema[column].dataType.simpleString()
            predicate = value_predicate(f"t.{column}", values, column_type) if rows else None
    finally:
        changed.unpersist()
    return _Staged(source, rows, predicate)


def _commit(
    run: _Run, table: TableRef, model: SemanticModel, staged: _Staged, branch: str, *, base: int | None
) -> int:
    """MERGE into the run's audit ``branch`` (an empty append when nothing changed; an
    overwrite of every row when the staged rows are the whole table) with the checkpoint and
    the model's fingerprint in the snapshot summary; returns the branch head.

    ``base`` is main's snapshot when the run read its checkpoint: the branch must grow from
    it. (A branch is made from main when first written, so if another run of the table
    published in between, this run's window, computed from the older checkpoint, would be
    MERGEd on top of the newer data and published over it.)

    Raises:
        CheckpointError: the branch head lacks the checkpoint (properties were lost); nothing
            was published.
        MainMovedError: main moved since the run read its checkpoint; nothing was published.
    """
    from pyspark.sql import functions as F

    spark = run.spark
    properties = {
        CURATED_CHECKPOINT_KEY: str(run.pinned_snapshot_id),
        RUN_ID_KEY: run.run_id,
        FINGERPRINT_KEY: model.fingerprint(),
        "lean-ops.semantic-rows": str(staged.rows),
    }
    view = view_name(f"lean_ops_semantic_{model.name}", run.run_id)
    staged.source.createOrReplaceTempView(view)
    sql = merge_sql(table.sql, view, model, staged.predicate)
    try:
        with wap_branch(spark, branch):
            if staged.rows and not staged.replace:
                with_commit_properties(spark, properties, lambda: spark.sql(sql))
            else:
                columns = [*model.output_columns, *(n for n, _ in AUDIT_COLUMNS)]
                rows = staged.source if staged.replace else staged.source.limit(0)
                writer = rows.select(*columns).writeTo(table.sql)
                for key, value in properties.items():
                    writer = writer.option(f"snapshot-property.{key}", value)
                if staged.replace:  # every row of the branch, also those the model no longer produces
                    writer.overwrite(F.lit(True))
                else:
                    writer.append()
    finally:
        spark.catalog.dropTempView(view)
    head = branches(spark, table).get(branch)
    if head is None:
        raise CheckpointError(
            f"{table.sql}: the write did not create branch {branch} (is write.wap.enabled off, or did "
            "another run of this table drop it?)"
        )
    snapshots = load_table_snapshots(spark, table)
    written = snapshots.by_id()[head]
    missing = [k for k, v in properties.items() if written.summary.get(k) != v]
    if missing:
        raise CheckpointError(
            f"{table.sql}: branch snapshot {head} was committed without {', '.join(missing)} in its summary "
            "(is PYSPARK_PIN_THREAD disabled?); nothing was published"
        )
    parent = written.parent_id
    if parent != base:
        raise MainMovedError(
            f"{table.sql}: main moved from snapshot {base} to {parent} after this run read its checkpoint "
            "(another run of this table published, or a maintenance commit); nothing was published, "
            "re-run to build the window from the new main",
            by_maintenance=moved_by_maintenance(snapshots.records, base, snapshots.current_snapshot_id),
        )
    return head


def _run_model(run: _Run, model: SemanticModel, pinned: DataFrame, suite: QualitySuite | None) -> ModelResult:
    from lean_ops_spark.quality.runner import run_suite

    started = time.time()
    spark = run.spark
    table = semantic_table(run.config.profile, model)
    compiled = (
        entity_rows(pinned, model).drop(KEEP_COLUMN)
        if model.kind is ModelKind.ENTITY
        else aggregate_rows(pinned, model)
    )
    definition = semantic_table_definition(table, model, compiled.schema)
    ensure_semantic_table(spark, definition)
    log.debug("%s: table ready (%.1fs)", table.sql, time.time() - started)
    metadata = load_table_snapshots(spark, table)
    checkpoint = find_checkpoint(
        metadata.records, metadata.current_snapshot_id, CURATED_CHECKPOINT_KEY, table.sql
    )
    before = checkpoint.source_snapshot_id if checkpoint else None
    fingerprint = model.fingerprint()
    recorded = (
        metadata.by_id()[checkpoint.recorded_in_snapshot_id].summary.get(FINGERPRINT_KEY)
        if checkpoint
        else None
    )
    if checkpoint is not None and recorded != fingerprint:
        # the rows were computed by another definition of the model (filters, expressions...)
        # and the window would only recompute the changed ones: rebuild them all
        window = plan_rebuild(run.records, before, run.pinned_snapshot_id, run.curated.sql)
        if window.mode != UP_TO_DATE:
            log.warning(
                "%s: computed by another definition of model %s (fingerprint %s, now %s): rebuilding it "
                "from curated snapshot %s",
                table.sql,
                model.name,
                recorded or "not recorded",
                fingerprint,
                run.pinned_snapshot_id,
            )
    else:
        window = plan_changes(run.records, before, run.pinned_snapshot_id, run.curated.sql)
    change = _align_partitioning(spark, definition, model, model_changed=recorded != fingerprint)

    def result(status: str, **extra: Any) -> ModelResult:
        return ModelResult(
            model=model.name,
            kind=model.kind.value,
            table=table.sql,
            status=status,
            curated_snapshot_id=run.pinned_snapshot_id,
            checkpoint_before=before,
            window=window.mode,
            run_ids=window.run_ids,
            duration_seconds=time.time() - started,
            partition_change=change.describe() if change else None,
            **extra,
        )

    # Audit branches left by runs that failed their audit or died before or after publishing
    # (or of a run that is still going: it then fails instead of publishing); main is the
    # truth either way, so this run builds a branch of its own from it.
    drop_audit_branches(spark, table)
    branch = audit_branch(run.run_id)
    if window.mode == UP_TO_DATE:
        return result("up_to_date")
    log.debug("%s: window %s (%.1fs)", table.sql, window.describe(), time.time() - started)
    staged = _stage(run, window, model, pinned)
    log.debug("%s: staged %d rows (%.1fs)", table.sql, staged.rows, time.time() - started)
    try:
        head = _commit(run, table, model, staged, branch, base=metadata.current_snapshot_id)
    finally:
        staged.source.unpersist()
    count = staged.rows
    log.debug("%s: written to branch %s (%.1fs)", table.sql, branch, time.time() - started)
    if run.after_step:
        run.after_step(STEP_WRITTEN)

    dq = None
    if suite is not None:
        # the snapshot this run wrote, not the branch's head: what it audits is what it publishes
        dq = run_suite(read_pinned(spark, table, head), suite, table=f"{table.sql}@{branch}")
        if not dq.success:
            log.warning(
                "%s: audit failed, main unchanged, branch %s kept: %s", table.sql, branch, dq.summary()
            )
            return result("audit_failed", rows_merged=count, branch=branch, dq=dq)
    if run.after_step:
        run.after_step(STEP_AUDITED)
    published = _publish(spark, table, branch, head, base=metadata.current_snapshot_id)
    if run.after_step:
        run.after_step(STEP_PUBLISHED)
    drop_branch(spark, table, branch)
    record_fingerprint(spark, table, fingerprint)
    log.info("%s: published snapshot %s (curated %s)", table.sql, published, run.pinned_snapshot_id)
    return result("published", rows_merged=count, semantic_snapshot_id=published, dq=dq)


def _align_partitioning(
    spark: SparkSession, definition: TableDefinition, model: SemanticModel, *, model_changed: bool
) -> PartitionChange | None:
    """Evolve the table's partition spec to the model's, before this run writes its branch.

    A spec is table metadata, not a branch's: it cannot wait for the audit. Evolved first,
    the rows this run writes (a rebuild's: every row) are laid out by the model's partition.
    Should the audit then fail, or the run die before it publishes, main keeps its rows and
    checkpoint, in files of the old spec, which Iceberg keeps reading (and MERGEs prune each
    file by its own spec); only the files written from then on use the new spec. The re-run
    finds the spec already evolved (nothing to do, nothing logged) and main's fingerprint
    still the old one, so it rebuilds: the same table as had nothing failed.

    The spec is also evolved back when only the table changed (altered by hand, same
    fingerprint): the model file is the table's definition (its columns are enforced too),
    and keeping a layout it does not state would make the table's layout depend on its
    history, until the next rebuild reverts it anyway. Evolution rewrites no data and
    changes no row, so the run stays incremental; later compactions rewrite old files in
    the new spec. To change a layout, change the model's ``partition:``.
    """
    change = align_partitioning(spark, definition)
    if change is not None:
        log.warning(
            "%s: partition spec evolved to the one model %s declares: %s (%s; files already written "
            "keep their spec, files written from now on use the new one)",
            definition.table.sql,
            model.name,
            change.describe(),
            "the model changed" if model_changed else "the table's spec was changed outside the model",
        )
    return change


def _publish(spark: SparkSession, table: TableRef, branch: str, head: int, *, base: int | None) -> int:
    """:func:`fast_forward` main to the audited ``head`` of ``branch``, grown from main's ``base``.

    Raises:
        MainMovedError: main moved since ``base``; ``by_maintenance`` says whether through
            maintenance commits only.
    """
    try:
        return fast_forward(spark, table, branch, audited=head)
    except MainMovedError as exc:
        now = load_table_snapshots(spark, table)
        raise MainMovedError(
            str(exc), by_maintenance=moved_by_maintenance(now.records, base, now.current_snapshot_id)
        ) from exc


def _run_model_rebasing(
    run: _Run, model: SemanticModel, pinned: DataFrame, suite: QualitySuite | None
) -> ModelResult:
    """:func:`_run_model`, started again (a branch of its own from the new main) when main
    moved through maintenance commits only while the run wrote or audited its branch.

    Maintenance runs on its own schedule, concurrently with the semantic job: a compaction or
    manifest rewrite of the semantic table commits a ``replace`` snapshot to main, and the
    branch made from the old main can no longer be fast-forwarded. Such a commit changes no
    row and carries no checkpoint, so the window planned from main's checkpoint is still
    right; a move by anything else (another run of the table published) still fails the run.
    """
    for attempt in range(MAX_MAINTENANCE_REBASES + 1):
        try:
            return _run_model(run, model, pinned, suite)
        except MainMovedError as exc:
            if not exc.by_maintenance or attempt == MAX_MAINTENANCE_REBASES:
                raise
            log.warning(
                "%s: main moved through maintenance commits while the run wrote or audited its branch; "
                "writing it again from the new main (%d of %d)",
                model.name,
                attempt + 1,
                MAX_MAINTENANCE_REBASES,
            )
    raise AssertionError("unreachable")  # pragma: no cover


# --------------------------------------------------------------------------- the topic


def _notify_missing(metrics: Any, topic: str, reason: str) -> None:
    log.warning("topic %s: semantic step skipped (NotifyMissingSchema): %s", topic, reason)
    if metrics is not None:
        metrics.emit(MISSING_SCHEMA_METRIC, 1.0, "Count", {"Topic": topic})


def _emit(metrics: Any, topic: str, outcome: ModelResult) -> None:
    if metrics is None:
        return
    dims = {"Topic": topic, "Table": outcome.model, "Layer": "semantic"}
    metrics.emit("SemanticRowsMerged", float(outcome.rows_merged), "Count", dims)
    metrics.emit("SemanticPublished", 1.0 if outcome.status == "published" else 0.0, "Count", dims)
    metrics.emit("DurationSeconds", outcome.duration_seconds, "Seconds", dims)
    if outcome.dq is not None:
        metrics.emit("DataQualityFailedExpectations", float(len(outcome.dq.failed)), "Count", dims)
        if not outcome.dq.success:
            metrics.emit("DataQualityFailed", 1.0, "Count", dims)


def run_semantic(
    spark: SparkSession,
    config: ProjectConfig,
    topic: str,
    *,
    curated_snapshot_id: int | None = None,
    run_id: str | None = None,
    models: SemanticModels | None = None,
    suites: Mapping[str, QualitySuite] | None = None,
    metrics: Any = None,
    after_step: Callable[[str], None] | None = None,
) -> SemanticResult:
    """Run every semantic model of ``topic`` (see the module docstring).

    Args:
        curated_snapshot_id: the curated snapshot to read (the one the curation run
            committed); default the curated table's current snapshot.
        models: the topic's models (default: ``semantic/<topic>.yaml`` under the config root).
        suites: data-quality suites by table name (default: ``quality/semantic/<topic>.yaml``);
            a table without a suite is published unchecked.
        after_step: called with a step name after each write (crash-safety tests).

    Raises:
        CheckpointError: the pinned snapshot is unknown or not a descendant of a checkpoint.
        ConfigError: a model or suite file is invalid, or a table no longer matches its model.
    """
    from lean_ops_spark.curation.pipeline import check_run_id

    started = time.time()
    contract = config.topic(topic)
    curated = topic_tables(config.profile, topic).curated
    run_id = check_run_id(run_id or f"sem-{uuid.uuid4().hex[:12]}")
    source = open_config_source(config.root or "conf")

    def result(status: str, pinned: int | None, **extra: Any) -> SemanticResult:
        return SemanticResult(
            topic, run_id, status, curated.sql, pinned, duration_seconds=time.time() - started, **extra
        )

    if models is None:
        models = load_semantic_models(source, topic)
    if models is None:
        reason = (
            f"no semantic model for topic {topic!r} ({source.describe(f'semantic/{topic}.yaml')} is missing)"
        )
        _notify_missing(metrics, topic, reason)
        return result("missing_schema", curated_snapshot_id, reason=reason)
    if suites is None:
        suites = load_suites(source, "semantic", topic)
    check_models_and_suites(models, suites, contract)
    try:
        spark.sql(f"REFRESH TABLE {curated.sql}")
        curated_metadata = load_table_snapshots(spark, curated)
    except Exception as exc:
        raise CatalogError(f"cannot read {curated.sql} (run `lean-ops init` first?): {exc}") from exc
    pinned_id = (
        curated_snapshot_id if curated_snapshot_id is not None else curated_metadata.current_snapshot_id
    )
    if pinned_id is None:
        return result("no_curated_data", None, reason=f"{curated.sql} has no snapshot yet")
    records = curated_metadata.records
    if pinned_id not in {r.snapshot_id for r in records}:
        raise CheckpointError(f"{curated.sql}: pinned snapshot {pinned_id} does not exist")
    pinned = read_pinned(spark, curated, pinned_id)
    missing = tuple(c for c in models.curated_columns if c not in set(pinned.columns))
    if missing:
        reason = (
            f"{models.source}: curated table {curated.sql} (snapshot {pinned_id}) lacks column(s) "
            f"{', '.join(missing)} that the semantic models need"
        )
        _notify_missing(metrics, topic, reason)
        return result("missing_schema", pinned_id, missing=missing, reason=reason)
    run = _Run(spark, config, contract, curated, pinned_id, records, run_id, metrics, after_step)
    outcomes = []
    for model in models.models:
        outcome = _run_model_rebasing(run, model, pinned, suites.get(model.name))
        _emit(metrics, topic, outcome)
        outcomes.append(outcome)
    statuses = {o.status for o in outcomes}
    status = (
        "audit_failed"
        if "audit_failed" in statuses
        else "up_to_date"
        if statuses == {"up_to_date"}
        else "published"
    )
    return result(status, pinned_id, models=tuple(outcomes))


def _snapshot_argument(value: str | None) -> int | None:
    if value is None or value.strip().lower() in ("", "none", "null"):
        return None
    try:
        return int(value)
    except ValueError:
        raise ConfigError(f"--curated_snapshot_id must be a snapshot id, got {value!r}") from None


def check_semantic_arguments(config: ProjectConfig, arguments: Mapping[str, str]) -> None:
    """An unknown topic, a curated snapshot id that is not one, or a run id the commit would
    refuse fails before a session starts (``ConfigError``), as the curation job's do."""
    from lean_ops_spark.curation.pipeline import check_run_id

    if "topic" not in arguments:
        raise ConfigError("the semantic job needs --topic")
    config.topic(arguments["topic"])
    _snapshot_argument(arguments.get("curated_snapshot_id"))
    if arguments.get("run_id"):
        check_run_id(arguments["run_id"])


SNOWFLAKE_REFRESH_FAILED_METRIC = "SnowflakeRefreshFailed"


def refresh_snowflake_after_run(
    spark: SparkSession,
    config: ProjectConfig,
    outcome: SemanticResult,
    *,
    env_name: str | None,
    home: str | None = None,
    metrics: Any = None,
    environ: Mapping[str, str] | None = None,
    connect: Callable[..., Any] | None = None,
) -> dict[str, Any] | None:
    """``ALTER ICEBERG TABLE … REFRESH`` for this run's semantic tables whose schema changed.

    Runs when ``env_name`` (the job's ``--lean_ops_env``) has ``governance/<env>.yaml`` with
    a ``snowflake:`` section; otherwise returns None. Schemas are fingerprinted through the
    job's own Spark catalog, compared with the refresh state file, and exactly the changed
    (or never-refreshed) tables are refreshed: through the connector when
    ``snowflake.connection`` is set, else into a SQL file (reported in the job's output).
    On the local profile the SQL folder and state file live under the home
    (``<home>/snowflake/``), since the environment's defaults are on S3.

    A failure does not fail the job: the data is already published, and the state only
    advances for refreshed tables, so the next run retries. It is logged, counted
    (``SnowflakeRefreshFailed``) and returned as ``{"error": ...}``.

    Raises:
        ConfigError: the governance or environment file is invalid (re-running is safe).
    """
    from lean_ops_spark.config.environment import load_environment
    from lean_ops_spark.governance.config import load_governance
    from lean_ops_spark.governance.schema_state import SparkSchemaSource
    from lean_ops_spark.governance.snowflake_refresh import refresh_after_commit

    if not env_name or not outcome.models:
        return None
    root = config.root or "conf"
    try:
        source = open_config_source(root)
        governance = load_governance(root, env_name, source=source, required=False)
        if governance is None or governance.snowflake is None:
            return None
        tables = sorted(  # the governed ones, when the governance file lists them
            {m.model for m in outcome.models}
            & set(governance.semantic_tables or [m.model for m in outcome.models])
        )
        locations = None
        if config.profile.kind == "local":
            from lean_ops_spark.session import LocalHome

            folder = LocalHome.at(home or ".lean-ops").root / "snowflake"
            locations = (str(folder / "sql"), str(folder / "schemas.json"))
        result = refresh_after_commit(
            tables,
            governance=governance,
            environment=load_environment(root, env_name, source=source),
            profile=config.profile,
            environ=os.environ if environ is None else environ,
            connect=connect,
            source=SparkSchemaSource(spark),
            locations=locations,
        )
    except ConfigError:
        raise  # a broken governance or environment file is the operator's to fix, loudly
    except Exception as exc:  # the data is published: report, count, retry next run
        log.warning("%s: Snowflake refresh failed (retried on the next run): %s", outcome.topic, exc)
        if metrics is not None:
            metrics.emit(
                SNOWFLAKE_REFRESH_FAILED_METRIC, 1.0, "Count", {"Topic": outcome.topic, "Layer": "semantic"}
            )
        return {"error": f"{type(exc).__name__}: {exc}"}
    if result is None:
        return None
    if result.outcome is not None and result.outcome.done:
        where = result.outcome.sql_file or "Snowflake"
        log.info("%s: Snowflake refresh for %s -> %s", outcome.topic, ", ".join(result.outcome.done), where)
    return result.as_dict()


def run_semantic_job(
    spark: SparkSession, config: ProjectConfig, arguments: Mapping[str, str]
) -> Mapping[str, Any]:
    """The semantic job (Glue, ``lean-ops pipeline``): ``topic``, ``run_id``, ``curated_snapshot_id``;
    optional ``lean_ops_env`` (Snowflake refresh after the commits) and ``home`` (local).

    Raises:
        DataQualityError: a suite failed: that table's main is unchanged and its audit branch
            kept; the message names the failed expectations with sample values.
    """
    from lean_ops_spark.metrics import build_sink

    if "topic" not in arguments:
        raise ConfigError("the semantic job needs --topic")
    sink = build_sink(config.profile.metrics, region=config.profile.region)
    try:
        outcome = run_semantic(
            spark,
            config,
            arguments["topic"],
            curated_snapshot_id=_snapshot_argument(arguments.get("curated_snapshot_id")),
            run_id=arguments.get("run_id") or None,
            metrics=sink,
        )
        snowflake = refresh_snowflake_after_run(
            spark,
            config,
            outcome,
            env_name=arguments.get("lean_ops_env"),
            home=arguments.get("home"),
            metrics=sink,
        )
    finally:
        sink.flush()
    if not outcome.ok:
        raise DataQualityError(f"{outcome.topic}: {outcome.failures()}")
    return {**outcome.as_dict(), "snowflake": snowflake}
