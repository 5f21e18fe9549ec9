"""One curation run: raw (incremental, checkpointed) -> curated + quarantine.

read checkpoint -> plan the raw range -> read -> parse/type/rescue -> classify -> count and
observe the batch -> schema drift decision -> circuit breaker -> drift ALTERs + audit, and
beside them the quarantine MERGE -> dedupe -> curated MERGE with the checkpoint in the same snapshot ->
verify -> ledger -> metrics. The parsed batch is pinned once (``session.pin``; narrow: see
``drift.observe.parse_batch``) and every later step reads it from there, so raw is read and
parsed once (again only when an evolve changes the contract). The counts the breaker and
the ledger need come from the same passes as the drift observation
(``drift.observe.profile_batch``), the first of which stores the batch.

Crash safety: nothing is written before the circuit breaker (a drift ``fail`` runs it, then
records its audit rows and stops the run); the drift ALTERs are idempotent; the quarantine MERGE is keyed
(re-running adds nothing); the curated MERGE commits data and checkpoint together, so a run
that dies before it is simply repeated, and one that dies after it finds no new data.
"""

from __future__ import annotations

import logging
import re
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import date
from typing import TYPE_CHECKING, Any

from lean_ops_spark.catalog.checkpoints import (
    RAW_CHECKPOINT_KEY,
    RUN_ID_KEY,
    read_checkpoint,
)
from lean_ops_spark.catalog.commit import with_commit_properties
from lean_ops_spark.catalog.metadata import SnapshotRecord, load_table_snapshots
from lean_ops_spark.catalog.naming import TableRef, TopicTables, topic_tables
from lean_ops_spark.config.models import ProjectConfig, TopicContract
from lean_ops_spark.curation.batch import BatchPlan, plan_batch
from lean_ops_spark.curation.ledger import Ledger
from lean_ops_spark.curation.merge import (
    curated_merge_sql,
    partition_predicate,
    quarantine_merge_sql,
    view_name,
)
from lean_ops_spark.curation.reasons import ErrorClass
from lean_ops_spark.curation.transform import (
    ERROR_COLUMN,
    add_audit_columns,
    dedupe_latest,
)
from lean_ops_spark.drift.handler import DriftOutcome, apply_drift, handle_drift
from lean_ops_spark.drift.observe import BatchCounts, batch_counts, keep_profiled_payloads, parse_batch
from lean_ops_spark.errors import CatalogError, CheckpointError, CircuitBreakerError, ConfigError, LedgerError
from lean_ops_spark.metrics import MetricSink
from lean_ops_spark.session import lenient_casts, pin, release

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame, SparkSession

__all__ = [
    "CurationOptions",
    "CurationResult",
    "check_run_id",
    "merge_into_curated",
    "pinned_batch",
    "run_curation",
]

log = logging.getLogger(__name__)

#: Step names passed to ``after_step`` (tests use them to simulate crashes between steps).
STEP_QUARANTINE_WRITTEN = "quarantine_written"
STEP_MERGED = "merged"
_KEEP_RANK = "_version_rank"
RUN_ID_PATTERN = re.compile(r"^[A-Za-z0-9_.:-]{1,128}$")


@dataclass(frozen=True)
class CurationOptions:
    """Per-run overrides of the contract's caps, and the run id (default: a new uuid)."""

    max_snapshots: int | None = None
    max_records: int | None = None
    run_id: str | None = None


@dataclass(frozen=True)
class CurationResult:
    """What one run did. ``status`` is ``committed`` or ``no_new_data``."""

    topic: str
    run_id: str
    status: str
    raw_table: str
    curated_table: str
    raw_start_snapshot_id: int | None
    raw_end_snapshot_id: int | None
    raw_current_snapshot_id: int | None
    curated_snapshot_id: int | None
    backlog_snapshots: int
    backlog_records: int
    lag_seconds: float | None
    duration_seconds: float
    ledger: Ledger | None = None
    error_rate: float = 0.0
    messages: tuple[str, ...] = field(default_factory=tuple)

    def as_dict(self) -> dict[str, Any]:
        return {
            "topic": self.topic,
            "run_id": self.run_id,
            "status": self.status,
            "raw_table": self.raw_table,
            "curated_table": self.curated_table,
            "raw_start_snapshot_id": self.raw_start_snapshot_id,
            "raw_end_snapshot_id": self.raw_end_snapshot_id,
            "raw_current_snapshot_id": self.raw_current_snapshot_id,
            "curated_snapshot_id": self.curated_snapshot_id,
            "backlog_snapshots": self.backlog_snapshots,
            "backlog_records": self.backlog_records,
            "lag_seconds": self.lag_seconds,
            "duration_seconds": round(self.duration_seconds, 3),
            "error_rate": round(self.error_rate, 6),
            "ledger": self.ledger.as_dict() if self.ledger else None,
            "messages": list(self.messages),
        }


def check_run_id(run_id: str) -> str:
    """Run ids end up in SQL literals and snapshot summaries: letters, digits, ``_.:-`` only."""
    if not RUN_ID_PATTERN.fullmatch(run_id):
        raise ConfigError(f"run id {run_id!r} must match {RUN_ID_PATTERN.pattern}")
    return run_id


def _refresh(spark: SparkSession, table: TableRef) -> None:
    try:
        spark.sql(f"REFRESH TABLE {table.sql}")
    except Exception as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise CatalogError(f"cannot read {table.sql} (run `lean-ops init` first?): {first}") from exc


def _read_raw(spark: SparkSession, raw: TableRef, plan: BatchPlan) -> DataFrame:
    from pyspark.sql import functions as F

    reader = spark.read.format("iceberg")
    if plan.start_snapshot_id is None:
        reader = reader.option("snapshot-id", str(plan.end_snapshot_id))
    else:
        reader = reader.option("start-snapshot-id", str(plan.start_snapshot_id)).option(
            "end-snapshot-id", str(plan.end_snapshot_id)
        )
    return reader.load(raw.sql).withColumn("_raw_snapshot_id", F.lit(plan.end_snapshot_id).cast("bigint"))


def _quarantine_message_id() -> Column:
    """The message id a bad record is quarantined under: its own, or for one without any
    (``MISSING_MESSAGE_ID``) an id derived from the whole record, so that a re-run finds the
    row again and two different such records do not collapse into one."""
    from pyspark.sql import functions as F

    def part(column: Column) -> Column:
        return F.coalesce(column, F.lit("\u0000"))

    content = F.concat_ws(
        "\u001f",
        part(F.col("topic")),
        part(F.unix_micros(F.col("ingestion_ts")).cast("string")),  # not the session's time zone
        part(F.col("payload")),
        part(F.col("producer")),
        part(F.col("schema_version").cast("string")),
    )
    missing = F.coalesce(F.trim(F.col("message_id")), F.lit("")) == ""
    return F.when(missing, F.concat(F.lit("lean-ops:sha256:"), F.sha2(content, 256))).otherwise(
        F.col("message_id")
    )


def _quarantine_rows(classified: DataFrame, run_id: str) -> DataFrame:
    """Bad records in the quarantine table's shape, one per message id."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    error = F.col(ERROR_COLUMN)
    first = Window.partitionBy("message_id").orderBy(F.col("ingestion_ts").asc())
    return (
        classified.where(error.isNotNull())
        .withColumn("message_id", _quarantine_message_id())
        .withColumn("_n", F.row_number().over(first))
        .where("_n = 1")
        .select(
            "message_id",
            "topic",
            F.col("_raw_snapshot_id").alias("raw_snapshot_id"),
            "ingestion_ts",
            "payload",
            "producer",
            "schema_version",
            error["error_class"].alias("error_class"),
            error["reason_code"].alias("reason_code"),
            error["error_field"].alias("error_field"),
            error["error_detail"].alias("error_detail"),
            F.lit(1).alias("attempt_count"),
            F.lit(run_id).alias("run_id"),
            F.current_timestamp().alias("quarantined_at"),
            F.current_timestamp().alias("last_attempt_at"),
            F.when(error["error_class"] == ErrorClass.RETRY.value, F.lit("pending")).alias("replay_status"),
        )
    )


def _write_quarantine(
    spark: SparkSession, quarantine: TableRef, classified: DataFrame, run_id: str, days: list[date]
) -> None:
    view = view_name("lean_ops_quarantine", run_id)
    _quarantine_rows(classified, run_id).createOrReplaceTempView(view)
    try:
        spark.sql(quarantine_merge_sql(quarantine.sql, view, days))
    finally:
        spark.catalog.dropTempView(view)


def _apply_drift_and_quarantine(
    spark: SparkSession,
    drift: DriftOutcome,
    *,
    tables: TopicTables,
    quarantine_days: list[date] | None,
    run_id: str,
    metrics: MetricSink | None,
) -> DriftOutcome:
    """Write the drift ALTERs/audit rows and the quarantine rows (when ``quarantine_days``, the
    ingestion days of the batch's bad records, is not None). They touch different tables,
    so the quarantine MERGE runs in a thread beside the drift writes (each is a few small jobs
    and a commit, mostly waiting); both are done when this returns, before the curated MERGE."""
    from pyspark import inheritable_thread_target

    with ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"{drift.contract.topic}-quarantine") as pool:
        quarantine = (
            pool.submit(
                inheritable_thread_target(_write_quarantine),
                spark,
                tables.quarantine,
                drift.classified,
                run_id,
                quarantine_days,
            )
            if quarantine_days is not None
            else None
        )
        try:
            return apply_drift(spark, drift, curated=tables.curated, run_id=run_id, metrics=metrics)
        finally:
            if quarantine is not None:
                quarantine.result()  # re-raises the quarantine write's error


@dataclass(frozen=True)
class CommittedSnapshot:
    """The curated snapshot a run committed, its summary, and the table's properties."""

    snapshot_id: int
    summary: Mapping[str, str]
    table_properties: Mapping[str, str]


def merge_into_curated(
    spark: SparkSession,
    *,
    contract: TopicContract,
    curated: TableRef,
    versions: DataFrame,
    partition_days: list[date],
    run_id: str,
    properties: Mapping[str, str],
) -> CommittedSnapshot:
    """MERGE ``versions`` (one per key, curated shape) into ``curated`` with ``properties``
    in the committed snapshot's summary; commit an empty append carrying them when the
    MERGE changed nothing, so the checkpoint always advances.

    The run's snapshot is found by its properties among those committed since the MERGE
    started, not taken to be the current one: another run of the topic may commit right
    after it (its snapshots carry their own run id).

    Raises:
        CheckpointError: a snapshot was committed without the properties.
    """
    before = load_table_snapshots(spark, curated).current_snapshot_id
    view = view_name("lean_ops_merge", run_id)
    versions.createOrReplaceTempView(view)
    sql = curated_merge_sql(curated.sql, view, contract, partition_predicate(contract, partition_days))
    try:
        with_commit_properties(spark, properties, lambda: spark.sql(sql))
    except CheckpointError as exc:  # nothing committed: say which table (and topic) it was for
        raise CheckpointError(f"{curated.sql} ({contract.topic}): {exc}") from exc
    finally:
        spark.catalog.dropTempView(view)
    after = load_table_snapshots(spark, curated)
    new = list(after.ancestors(stop=before))  # committed since the MERGE started
    mine = _carrying(new, properties)
    if mine is None:
        unmarked = next((r for r in new if RUN_ID_KEY not in r.summary), None)
        if unmarked is not None:
            missing = [k for k, v in properties.items() if unmarked.summary.get(k) != v]
            raise CheckpointError(
                f"{curated.sql}: snapshot {unmarked.snapshot_id} was committed without {', '.join(missing)} in "
                "its summary (is PYSPARK_PIN_THREAD disabled, or did another writer commit to the table "
                "during this run?); the next run will re-read the same raw range"
            )
        # The MERGE changed nothing (every version stale, or an all-bad batch), and any new
        # snapshot is another run's: still record the checkpoint.
        # (no rows from a Python list: that would start Python workers for nothing)
        writer = spark.table(curated.sql).limit(0).writeTo(curated.sql)
        for key, value in properties.items():
            writer = writer.option(f"snapshot-property.{key}", value)
        writer.append()
        after = load_table_snapshots(spark, curated)
        mine = _carrying(after.ancestors(stop=before), properties)
        if mine is None:
            raise CheckpointError(
                f"{curated.sql}: the empty append carrying {', '.join(properties)} is not in its history"
            )
    return CommittedSnapshot(mine.snapshot_id, mine.summary, after.properties)


def _carrying(records: Iterable[SnapshotRecord], properties: Mapping[str, str]) -> SnapshotRecord | None:
    """The newest of ``records`` whose summary has every one of ``properties``."""
    return next((r for r in records if all(r.summary.get(k) == v for k, v in properties.items())), None)


def pinned_batch(raw_batch: DataFrame, contract: TopicContract, records_hint: int) -> DataFrame:
    """The batch a run reads after raw: parsed, typed, rescued and classified
    (``drift.observe.parse_batch``), with payloads only where a later step reads them
    (quarantine, the drift profile: ``keep_profiled_payloads``, most of the bytes), pinned
    (``session.pin``): the first job that reads it (the drift profile) stores it and every later
    step reads it from there. The caller releases it (``session.release``). The bench's floor
    builds its batch with this too, so it stays what a run does."""
    return pin(keep_profiled_payloads(parse_batch(raw_batch, contract), records_hint))


def _upserted(
    spark: SparkSession,
    curated: TableRef,
    committed: CommittedSnapshot,
    run_id: str,
    *,
    raw_snapshot_id: int | None,
    contract: TopicContract,
    partition_days: list[date],
) -> tuple[int, int | None, int | None]:
    """Rows inserted or updated by the run: from the snapshot summary on merge-on-read
    tables (new data files hold exactly those rows), else (copy-on-write, whose new files
    also hold the rewritten rows) by counting the run's rows in the partitions it wrote, as
    of its snapshot.

    Updated rows are the positions the commit deleted: ``added-position-deletes`` less
    ``removed-position-deletes``, since a delete file (or deletion vector) that replaces an
    older one of the same data file carries that one's positions again. The run's rows are
    those with its run id *and* its raw snapshot: a retry of a job under the same run id
    (Step Functions passes the same ``--run_id`` to each attempt) after an attempt that
    committed an earlier range must not count that attempt's rows too."""
    if committed.table_properties.get("write.merge.mode") == "merge-on-read":
        summary = committed.summary
        added = int(summary.get("added-records", "0"))
        updated = int(summary.get("added-position-deletes", "0")) - int(
            summary.get("removed-position-deletes", "0")
        )
        return added, added - updated, updated
    predicate = partition_predicate(contract, partition_days)  # None: identity or nothing valid
    raw = "NULL" if raw_snapshot_id is None else str(int(raw_snapshot_id))
    where = f"t._run_id = '{run_id}' AND t._raw_snapshot_id <=> {raw}" + (
        f" AND {predicate}" if predicate else ""
    )
    count = spark.sql(
        f"SELECT count(*) AS n FROM {curated.sql} VERSION AS OF {committed.snapshot_id} t WHERE {where}"
    ).first()
    return (int(count["n"]) if count else 0), None, None


def _check_batch(
    stats: BatchCounts, plan: BatchPlan, contract: TopicContract, metrics: MetricSink | None
) -> float:
    """Pre-write checks: the read returned what raw metadata says was appended, and the
    error rate is under the topic's threshold (the circuit breaker). Returns the error rate.

    Raises:
        LedgerError: rows went missing or appeared between metadata and the read.
        CircuitBreakerError: too many bad records; says which reasons dominated.
    """
    topic = contract.topic
    quarantined = stats.quarantined
    error_rate = quarantined / stats.read if stats.read else 0.0
    if stats.read != plan.expected_records or stats.read != stats.valid + quarantined:
        raise LedgerError(
            f"{topic}: {plan.describe()} added {plan.expected_records} records but the read returned "
            f"{stats.read} ({stats.valid} valid + {quarantined} bad); nothing was written"
        )
    if error_rate > contract.error_rate_threshold:
        dominant = ", ".join(
            f"{k}={v}" for k, v in sorted(stats.by_reason.items(), key=lambda kv: -kv[1])[:3]
        )
        if metrics is not None:
            metrics.emit("CircuitBreakerTripped", 1.0, "Count", {"Topic": topic, "Layer": "curated"})
            metrics.emit("ErrorRate", error_rate, "None", {"Topic": topic, "Layer": "curated"})
            metrics.flush()
        raise CircuitBreakerError(
            f"{topic}: error rate {error_rate:.1%} of {stats.read} records in {plan.describe()} is above "
            f"the threshold {contract.error_rate_threshold:.1%} (dominant: {dominant}); nothing written, "
            "checkpoint unchanged"
        )
    return error_rate


@lenient_casts
def run_curation(
    spark: SparkSession,
    config: ProjectConfig,
    topic: str,
    *,
    options: CurationOptions | None = None,
    metrics: MetricSink | None = None,
    after_step: Callable[[str], None] | None = None,
    now: Callable[[], float] = time.time,
) -> CurationResult:
    """Curate the next raw batch of ``topic`` (see the module docstring for the steps).

    Args:
        metrics: where run metrics go (records per class, error rate, duration, lag, backlog).
        after_step: called with a step name after each write (crash-safety tests).

    Raises:
        CircuitBreakerError: the batch's error rate passed the threshold; nothing written.
        DriftError: the payload schema drifted and the topic's drift_mode is fail; nothing written.
        CheckpointError: the checkpoint cannot be read or did not commit with the data.
        LedgerError: some record is unaccounted for.
    """
    options = options or CurationOptions()
    started = now()
    contract = config.topic(topic)
    tables = topic_tables(config.profile, topic)
    run_id = check_run_id(options.run_id or f"cur-{uuid.uuid4().hex[:12]}")
    _refresh(spark, tables.raw)
    checkpoint = read_checkpoint(spark, tables.curated, RAW_CHECKPOINT_KEY)
    start = checkpoint.source_snapshot_id if checkpoint else None
    raw_snapshots = load_table_snapshots(spark, tables.raw)
    plan = plan_batch(
        raw_snapshots.records,
        raw_snapshots.current_snapshot_id,
        start,
        max_snapshots=contract.max_snapshots_per_run
        if options.max_snapshots is None
        else options.max_snapshots,
        max_records=contract.max_records_per_run if options.max_records is None else options.max_records,
        table=tables.raw.sql,
    )
    lag = (started - plan.oldest_pending_commit_ms / 1000) if plan.oldest_pending_commit_ms else None

    def result(status: str, **extra: Any) -> CurationResult:
        return CurationResult(
            topic=topic,
            run_id=run_id,
            status=status,
            raw_table=tables.raw.sql,
            curated_table=tables.curated.sql,
            raw_start_snapshot_id=plan.start_snapshot_id,
            raw_end_snapshot_id=plan.end_snapshot_id,
            raw_current_snapshot_id=plan.current_snapshot_id,
            backlog_snapshots=plan.backlog_snapshots,
            backlog_records=plan.backlog_records,
            lag_seconds=lag,
            duration_seconds=now() - started,
            **extra,
        )

    if not plan.has_new_data:
        log.info("%s: no new raw data after snapshot %s", topic, start)
        return result(
            "no_new_data", curated_snapshot_id=checkpoint.recorded_in_snapshot_id if checkpoint else None
        )

    raw_batch = _read_raw(spark, tables.raw, plan)
    classified = pinned_batch(raw_batch, contract, plan.expected_records)
    pinned = [classified]  # and what drift handling pins: released when nothing reads them
    try:
        # Schema drift: decides evolve (re-parse with the evolved contract), rescue (values
        # into _rescued_data) or fail (DriftError, recorded, nothing else written); its
        # ALTERs and audit rows are written only once the breaker has passed the batch.
        drift = handle_drift(
            spark,
            contract=contract,
            curated=tables.curated,
            raw_batch=raw_batch,
            classified=classified,
            run_id=run_id,
            metrics=metrics,
            records_hint=plan.expected_records,
            check_batch=lambda counts: _check_batch(counts, plan, contract, metrics),
        )
        if drift.input_superseded:  # parsed again from raw: the first batch is not read again
            release(classified)
            pinned.remove(classified)
        pinned += drift.pinned
        contract, classified = drift.contract, drift.classified
        stats = drift.counts or batch_counts(classified, contract)
        for df in pinned:  # classified is stored now: what it was built from is not read again
            if df is not classified:
                release(df)
        pinned = [classified]
        error_rate = _check_batch(stats, plan, contract, metrics)  # raises before any write
        drift = _apply_drift_and_quarantine(
            spark,
            drift,
            tables=tables,
            quarantine_days=list(stats.quarantine_days) if stats.quarantined else None,
            run_id=run_id,
            metrics=metrics,
        )
        if after_step:
            after_step(STEP_QUARANTINE_WRITTEN)

        from pyspark.sql import functions as F

        versions = add_audit_columns(
            dedupe_latest(classified.where(F.col(ERROR_COLUMN).isNull()), contract, _KEEP_RANK).where(
                F.col(_KEEP_RANK) == 1
            ),
            contract,
            run_id,
        )
        properties = {
            RAW_CHECKPOINT_KEY: str(plan.end_snapshot_id),
            RUN_ID_KEY: run_id,
            "lean-ops.contract-version": str(contract.version),
            "lean-ops.records-read": str(stats.read),
        }
        committed = merge_into_curated(
            spark,
            contract=contract,
            curated=tables.curated,
            versions=versions,
            partition_days=list(stats.partition_days),
            run_id=run_id,
            properties=properties,
        )
        if after_step:
            after_step(STEP_MERGED)
        upserted, inserted, updated = _upserted(
            spark,
            tables.curated,
            committed,
            run_id,
            raw_snapshot_id=plan.end_snapshot_id,
            contract=contract,
            partition_days=list(stats.partition_days),
        )
    finally:
        for df in reversed(pinned):  # a batch pinned from another goes first
            release(df)

    ledger = Ledger(
        read=stats.read,
        expected_read=plan.expected_records,
        valid=stats.valid,
        kept=stats.kept,
        upserted=upserted,
        inserted=inserted,
        updated=updated,
        quarantined_by_reason=dict(stats.by_reason),
        quarantined_by_class=stats.by_class,
        rescued_records=stats.rescued_records,
        rescued_fields=dict(stats.rescued_fields),
    )
    outcome = result(
        "committed", curated_snapshot_id=committed.snapshot_id, ledger=ledger, error_rate=error_rate
    )
    _emit_metrics(metrics, outcome)
    if not ledger.balanced:
        raise LedgerError(f"{topic}: run {run_id} ledger does not balance: {'; '.join(ledger.problems())}")
    log.info("%s: curated %s", topic, outcome.as_dict())
    return outcome


def _emit_metrics(metrics: MetricSink | None, outcome: CurationResult) -> None:
    if metrics is None:
        return
    dims = {"Topic": outcome.topic, "Layer": "curated"}
    ledger = outcome.ledger
    values: list[tuple[str, float, str, dict[str, str]]] = [
        ("DurationSeconds", outcome.duration_seconds, "Seconds", dims),
        ("BacklogSnapshots", float(outcome.backlog_snapshots), "Count", dims),
        ("BacklogRecords", float(outcome.backlog_records), "Count", dims),
        ("ErrorRate", outcome.error_rate, "None", dims),
    ]
    if outcome.lag_seconds is not None:
        values.append(("LagSeconds", outcome.lag_seconds, "Seconds", dims))
    if ledger is not None:
        values += [
            ("RecordsRead", float(ledger.read), "Count", dims),
            ("RecordsUpserted", float(ledger.upserted), "Count", dims),
            ("RecordsSuperseded", float(ledger.superseded_in_batch + ledger.stale), "Count", dims),
            ("RecordsRescued", float(ledger.rescued_records), "Count", dims),
        ]
        for error_class in (ErrorClass.DROP.value, ErrorClass.RETRY.value):
            values.append(
                (
                    "RecordsQuarantined",
                    float(ledger.quarantined_by_class.get(error_class, 0)),
                    "Count",
                    {**dims, "ErrorClass": error_class},
                )
            )
    for name, value, unit, dimensions in values:
        metrics.emit(name, value, unit, dimensions)
    metrics.flush()
