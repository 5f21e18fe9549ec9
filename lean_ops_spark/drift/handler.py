"""Drift handling inside a curation run, and drift detection without writing anything.

:func:`handle_drift` is what curation calls after parsing and classifying a batch, before
the circuit breaker and any data write:

1. reconcile the contract with the curated table (columns an earlier ``evolve`` added,
   contract edits the table lacks) and re-parse if that changes the contract;
2. observe the batch's payload schema and diff it against that contract;
3. decide per drift by the topic's ``drift_mode``; ``fail`` records the drift and raises
   :class:`~lean_ops_spark.errors.DriftError` with nothing else written (checkpoint unchanged);
4. otherwise plan the table changes, re-parse with the evolved contract and keep partly
   parsed values in ``_rescued_data`` — still without writing.

:func:`apply_drift` then writes the decision once the breaker has passed the batch: every
drift (audit row, metric, log line), then the ``ALTER TABLE`` statements (idempotent,
because the next run's reconciliation sees what is already there).

:func:`detect_drift` does steps 1-3 on the latest raw data and writes nothing.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from dataclasses import replace as dataclass_replace
from typing import TYPE_CHECKING, Any

from lean_ops_spark.catalog.checkpoints import (
    RAW_CHECKPOINT_KEY,
    current_snapshot_id,
    read_checkpoint,
    snapshot_records,
)
from lean_ops_spark.catalog.naming import TableRef, topic_tables
from lean_ops_spark.config.models import ProjectConfig, TopicContract
from lean_ops_spark.curation.batch import plan_batch
from lean_ops_spark.drift.audit import AUDIT_TABLE_NAME, record_drift
from lean_ops_spark.drift.diff import (
    DriftThresholds,
    ObservedSchema,
    Reconciliation,
    diff_batch,
    reconcile_with_curated,
)
from lean_ops_spark.drift.observe import (
    BatchCounts,
    lossy_columns,
    observe_batch,
    parse_batch,
    profile_batch,
    rescue_partial_values,
)
from lean_ops_spark.drift.policy import DriftPlan, alter_statements, plan_drift
from lean_ops_spark.drift.schema import NON_PAYLOAD_COLUMNS
from lean_ops_spark.errors import CatalogError, DriftError
from lean_ops_spark.session import lenient_casts, pin, release

if TYPE_CHECKING:
    from collections.abc import Callable, Collection, Sequence

    from pyspark.sql import DataFrame, SparkSession

__all__ = [
    "DriftOutcome",
    "DriftReport",
    "apply_drift",
    "detect_drift",
    "effective_contract",
    "handle_drift",
    "last_payload_column",
    "write_drift",
]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DriftOutcome:
    """What drift handling did in a run; ``contract`` and ``classified`` replace the run's own.

    ``counts`` are ``classified``'s record counts, from the same Spark job as the
    observation; None when drift handling changed the batch after observing it (re-parsed
    with an evolved contract, or partly parsed values rescued): count it again.
    ``pinned`` are the DataFrames drift handling pinned and still reads from (``session.pin``;
    ``classified`` among them when it is new), for the caller to release: the ones
    ``classified`` is built from once it is stored, ``classified`` once the run's writes are
    done. ``input_superseded``: the batch was parsed again from raw (an evolved contract), so
    nothing reads the caller's batch any more; the caller can release it right away instead
    of keeping two copies of the batch on the executors.
    """

    plan: DriftPlan
    observed: ObservedSchema
    contract: TopicContract
    classified: DataFrame
    statements: tuple[str, ...]
    rescued_columns: tuple[str, ...]
    audit_rows: int
    counts: BatchCounts | None = None
    pinned: tuple[DataFrame, ...] = ()
    input_superseded: bool = False

    def as_dict(self) -> dict[str, Any]:
        return {
            **self.plan.as_dict(),
            "applied": list(self.statements),
            "partly_parsed_columns_rescued": list(self.rescued_columns),
            "audit_rows": self.audit_rows,
        }


def effective_contract(spark: SparkSession, contract: TopicContract, curated: TableRef) -> TopicContract:
    """The contract as the curated table holds it: plus the columns an earlier ``evolve``
    added, with the types it widened. Any writer that MERGEs ``UPDATE SET *`` into curated
    (replay, for one) must parse with this, or the MERGE misses those columns.

    Raises:
        ContractError: the contract and the curated table cannot be reconciled in place.
    """
    spark.sql(f"REFRESH TABLE {curated.sql}")
    return reconcile_with_curated(contract, spark.table(curated.sql).schema).contract


def _parse(raw_batch: DataFrame, contract: TopicContract) -> DataFrame:
    return pin(parse_batch(raw_batch, contract))


def _failure_message(topic: str, plan: DriftPlan) -> str:
    items = "; ".join(
        f"{d.drift.kind.value} {d.drift.field_path} ({d.drift.old_type or '-'} -> {d.drift.new_type or '-'})"
        for d in plan.failed
    )
    return (
        f"{topic}: schema drift with drift_mode fail: {items}; nothing written, checkpoint unchanged "
        f"(update conf/topics/{topic}.yaml or switch the topic to evolve/rescue)"
    )


def last_payload_column(schema: Any) -> str | None:
    """The last column of a curated ``schema`` that holds payload (where an ALTER adds one)."""
    payload = [f.name for f in schema.fields if f.name not in NON_PAYLOAD_COLUMNS]
    return payload[-1] if payload else None


def handle_drift(
    spark: SparkSession,
    *,
    contract: TopicContract,
    curated: TableRef,
    raw_batch: DataFrame,
    classified: DataFrame,
    run_id: str,
    metrics: Any = None,
    audit: TableRef | None = None,
    thresholds: DriftThresholds | None = None,
    records_hint: int | None = None,
    check_batch: Callable[[BatchCounts], object] | None = None,
) -> DriftOutcome:
    """Detect schema drift in one curation batch and decide what to do (module docstring).

    Nothing is written (except the audit rows of a ``fail``): the outcome carries the
    ALTER statements and the decisions, and :func:`apply_drift` writes them (curation does,
    once the circuit breaker has passed the batch).

    Args:
        contract: the topic contract the batch was parsed with.
        curated: the topic's curated table (must exist).
        raw_batch: the raw rows of the batch (re-parsed when the contract changes).
        classified: ``parse_batch(raw_batch, contract)``, pinned (the caller's: it stays
            pinned, as do the outcome's ``pinned``, for the caller to release), or that
            through ``keep_profiled_payloads`` with the same ``records_hint``.
        audit: the audit table (default ``<curated_db>.lean_ops_drift_audit``).
        records_hint: the batch's record count if known (raw metadata): sizes the sample
            of clean records the observation profiles without counting first.
        check_batch: the caller's pre-write checks on the batch's counts (curation's circuit
            breaker), raising to stop the run: a ``fail`` runs them before it records, so a
            batch the breaker stops writes nothing and is reported as the breaker's.

    Raises:
        DriftError: the topic's drift_mode is ``fail`` and the batch drifted (recorded first).
        ContractError: the contract and the curated table cannot be reconciled in place.
    """
    audit_ref = audit or TableRef(curated.catalog, curated.database, AUDIT_TABLE_NAME, "audit")
    spark.sql(f"REFRESH TABLE {curated.sql}")
    schema = spark.table(curated.sql).schema
    reconciliation = reconcile_with_curated(contract, schema)
    batch = classified
    pinned: list[DataFrame] = []  # pinned here and still read: released by the caller (or on error)
    superseded = False  # the caller's batch is not read any more

    def reparse(with_contract: TopicContract, rescue: Collection[str] = ()) -> DataFrame:
        """The batch parsed again from raw (its partly parsed ``rescue`` columns rescued in
        the same pinned batch): no batch pinned before is read again."""
        nonlocal superseded
        while pinned:
            release(pinned.pop())
        superseded = True
        parsed = parse_batch(raw_batch, with_contract)
        pinned.append(pin(rescue_partial_values(parsed, with_contract, rescue) if rescue else parsed))
        return pinned[-1]

    profiled_only: list[DataFrame] = []  # read by the profile alone

    def full_payloads() -> DataFrame:
        # (the caller's batch may have kept only the payloads the sample needs)
        profiled_only.append(_parse(raw_batch, reconciliation.contract))
        return profiled_only[-1]

    try:
        if reconciliation.contract != contract:
            batch = reparse(reconciliation.contract)
        try:
            profile = profile_batch(
                batch,
                reconciliation.contract,
                records_hint=records_hint,
                full_payloads=full_payloads if batch is classified else None,
            )
        finally:
            for df in profiled_only:
                release(df)
        observed, observed_batch = profile.observed, batch
        drifts = diff_batch(observed, reconciliation.contract, thresholds)
        plan = plan_drift(reconciliation, drifts, contract.drift_mode)
        mode = contract.drift_mode.value
        if plan.failed:
            if check_batch is not None:
                check_batch(profile.counts)
            record_drift(
                spark,
                audit_ref,
                plan.decisions,
                topic=contract.topic,
                run_id=run_id,
                mode=mode,
                metrics=metrics,
            )
            raise DriftError(_failure_message(contract.topic, plan))
        statements = alter_statements(
            curated.sql, plan.changes, after_column=last_payload_column(schema), run_id=run_id
        )
        if plan.contract != reconciliation.contract:
            # Observed under the old contract, a value of a column widened or added since was a
            # cast failure or an unknown key, not partly parsed; in the new type it may be
            # rounded, or lose the keys an inferred struct leaves out: the re-parse checks
            # every changed column and rescues the records it marks.
            rescued = lossy_columns(plan.contract, observed, changed={c.column for c in plan.changes})
            batch = reparse(plan.contract, rescued)
        elif rescued := lossy_columns(plan.contract, observed):
            # built from the pinned batch (not released yet), when a later step first reads it
            batch = pin(rescue_partial_values(batch, plan.contract, rescued))
            pinned.append(batch)
    except BaseException:
        for df in reversed(pinned):
            release(df)
        raise
    counts = profile.counts if batch is observed_batch else None
    return DriftOutcome(
        plan, observed, plan.contract, batch, tuple(statements), rescued, 0, counts, tuple(pinned), superseded
    )


def apply_drift(
    spark: SparkSession,
    outcome: DriftOutcome,
    *,
    curated: TableRef,
    run_id: str,
    metrics: Any = None,
    audit: TableRef | None = None,
) -> DriftOutcome:
    """Write what :func:`handle_drift` decided: one audit row per drift with its metric and
    log line, then the ALTERs (idempotent).

    The audit rows go first: a run that dies after an ALTER is re-run with that column
    already in curated, which the re-run takes as curated's steady state and does not record
    again, so rows written after the ALTERs would be lost with the run. (A run that dies
    between the two records its drift again when re-run: one row per detection.)"""
    rows = write_drift(
        spark,
        outcome.plan,
        outcome.statements,
        contract=outcome.contract,
        curated=curated,
        run_id=run_id,
        metrics=metrics,
        audit=audit,
    )
    return dataclass_replace(outcome, audit_rows=rows)


def write_drift(
    spark: SparkSession,
    plan: DriftPlan,
    statements: Sequence[str],
    *,
    contract: TopicContract,
    curated: TableRef,
    run_id: str,
    metrics: Any = None,
    audit: TableRef | None = None,
) -> int:
    """Record ``plan``'s decisions (audit rows, metrics, log lines), then run ``statements``
    (its ALTERs of ``curated``) in that order (see :func:`apply_drift`); the audit rows written."""
    audit_ref = audit or TableRef(curated.catalog, curated.database, AUDIT_TABLE_NAME, "audit")
    rows = record_drift(
        spark,
        audit_ref,
        plan.decisions,
        topic=contract.topic,
        run_id=run_id,
        mode=contract.drift_mode.value,
        metrics=metrics,
    )
    for statement in statements:
        log.info("%s: %s", contract.topic, statement)
        spark.sql(statement)
    if statements:
        spark.sql(f"REFRESH TABLE {curated.sql}")
    return rows


# --------------------------------------------------------------------------- detection only


@dataclass(frozen=True)
class DriftReport:
    """Drift between the latest raw data and the contract (and curated), nothing written."""

    topic: str
    drift_mode: str
    raw_table: str
    raw_range: str
    records_read: int
    observed: ObservedSchema
    plan: DriftPlan
    statements: tuple[str, ...]

    @property
    def drifted(self) -> bool:
        return any(d.drift.source.value != "curated" for d in self.plan.decisions)

    def as_dict(self) -> dict[str, Any]:
        return {
            "topic": self.topic,
            "drift_mode": self.drift_mode,
            "raw_table": self.raw_table,
            "raw_range": self.raw_range,
            "records_read": self.records_read,
            "records_observed": self.observed.records,
            "drifted": self.drifted,
            "would": [d.as_dict() for d in self.plan.decisions],
            "would_apply": list(self.statements),
            "partly_parsed_columns": dict(self.observed.lossy_records),
        }


def _latest_raw(spark: SparkSession, config: ProjectConfig, topic: str) -> tuple[DataFrame | None, str]:
    """The raw rows the next curation run would read, else the newest raw append snapshot."""
    from pyspark.sql import functions as F

    contract = config.topic(topic)
    tables = topic_tables(config.profile, topic)
    spark.sql(f"REFRESH TABLE {tables.raw.sql}")
    checkpoint = read_checkpoint(spark, tables.curated, RAW_CHECKPOINT_KEY)
    records = snapshot_records(spark, tables.raw)
    current = current_snapshot_id(spark, tables.raw)
    plan = plan_batch(
        records,
        current,
        checkpoint.source_snapshot_id if checkpoint else None,
        max_snapshots=contract.max_snapshots_per_run,
        max_records=contract.max_records_per_run,
        table=tables.raw.sql,
    )
    reader = spark.read.format("iceberg")
    if plan.has_new_data:
        if plan.start_snapshot_id is None:
            reader = reader.option("snapshot-id", str(plan.end_snapshot_id))
        else:
            reader = reader.option("start-snapshot-id", str(plan.start_snapshot_id)).option(
                "end-snapshot-id", str(plan.end_snapshot_id)
            )
        where = f"pending: {plan.describe()}"
    else:
        by_id = {r.snapshot_id: r for r in records}
        snapshot_id = current
        while snapshot_id is not None and snapshot_id in by_id and by_id[snapshot_id].operation != "append":
            snapshot_id = by_id[snapshot_id].parent_id
        if snapshot_id is None or snapshot_id not in by_id:
            return None, f"{tables.raw.sql} has no appended data"
        parent = by_id[snapshot_id].parent_id
        if parent is None:
            reader = reader.option("snapshot-id", str(snapshot_id))
        else:
            reader = reader.option("start-snapshot-id", str(parent)).option(
                "end-snapshot-id", str(snapshot_id)
            )
        where = f"latest append: {tables.raw.sql} snapshot {snapshot_id} (nothing pending)"
    return reader.load(tables.raw.sql).withColumn("_raw_snapshot_id", F.lit(None).cast("bigint")), where


@lenient_casts
def detect_drift(
    spark: SparkSession, config: ProjectConfig, topic: str, *, thresholds: DriftThresholds | None = None
) -> DriftReport:
    """What the next curation run would find and do about drift; reads only.

    Raises:
        CatalogError/CheckpointError: the topic's tables are missing or unreadable.
        ContractError: the contract and the curated table cannot be reconciled.
    """
    contract = config.topic(topic)
    tables = topic_tables(config.profile, topic)
    try:
        spark.sql(f"REFRESH TABLE {tables.curated.sql}")
        schema = spark.table(tables.curated.sql).schema
    except Exception as exc:
        raise CatalogError(f"cannot read {tables.curated.sql} (run `lean-ops init` first?): {exc}") from exc
    reconciliation: Reconciliation = reconcile_with_curated(contract, schema)
    raw, where = _latest_raw(spark, config, topic)
    if raw is None:
        empty = ObservedSchema(0, {})
        plan = plan_drift(reconciliation, (), contract.drift_mode)
        statements = alter_statements(
            tables.curated.sql, plan.changes, after_column=last_payload_column(schema), run_id="(dry run)"
        )
        return DriftReport(
            topic, contract.drift_mode.value, tables.raw.sql, where, 0, empty, plan, tuple(statements)
        )
    batch = pin(parse_batch(raw, reconciliation.contract))
    try:
        read = batch.count()
        observed = observe_batch(batch, reconciliation.contract, records_hint=read)
    finally:
        release(batch)
    plan = plan_drift(
        reconciliation, diff_batch(observed, reconciliation.contract, thresholds), contract.drift_mode
    )
    statements = alter_statements(
        tables.curated.sql, plan.changes, after_column=last_payload_column(schema), run_id="(dry run)"
    )
    return DriftReport(
        topic, contract.drift_mode.value, tables.raw.sql, where, read, observed, plan, tuple(statements)
    )
