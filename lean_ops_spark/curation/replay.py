"""Replay of RETRY-class quarantine rows through the curation path.

RETRY records (e.g. an unknown schema version) may succeed after the contract changes.
A replay run re-parses and re-classifies every pending RETRY row with the current
contract, MERGEs the ones that now pass into curated (with the same newest-wins rule), and
then marks each row in quarantine: ``replayed``, still ``pending`` (attempt count + 1),
``exhausted`` after ``max_attempts``, or ``dropped`` when it now fails a DROP check.
Curated is written first and quarantine last, so a crash in between repeats the replay
harmlessly (the curated MERGE does not rewrite a version it already holds). A row is only
updated if it still has the attempt count the replay read: when two replays of a topic
overlap, the later one to commit changes nothing another has already counted and fails with
:class:`~lean_ops_spark.errors.ConcurrentRunError` instead of reporting counts it did not
apply.

Metrics (when a sink is given): ``ReplayRowsRead`` and one count per outcome
(``ReplayRowsReplayed``, ``ReplayRowsStillPending``, ``ReplayRowsExhausted``,
``ReplayRowsDropped``) plus ``ReplayDurationSeconds``, with dimensions ``Topic`` and
``Layer=quarantine``: an alarm on exhausted or dropped rows needs them. On Glue a replay is
a run of the curation job with ``--replay true`` (:mod:`lean_ops_spark.curation.job`).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from lean_ops_spark.catalog.checkpoints import RUN_ID_KEY, current_snapshot_id, read_pinned
from lean_ops_spark.catalog.naming import TableRef, topic_tables
from lean_ops_spark.config.models import ProjectConfig, TopicContract
from lean_ops_spark.curation.merge import batch_partition_days, view_name
from lean_ops_spark.curation.pipeline import check_run_id, merge_into_curated
from lean_ops_spark.curation.reasons import ErrorClass
from lean_ops_spark.curation.transform import ERROR_COLUMN, add_audit_columns, dedupe_latest, parsed_columns
from lean_ops_spark.drift.diff import reconcile_with_curated
from lean_ops_spark.drift.handler import effective_contract, last_payload_column, write_drift
from lean_ops_spark.drift.observe import parse_batch, rescue_partial_values
from lean_ops_spark.drift.policy import alter_statements, plan_drift
from lean_ops_spark.errors import ConcurrentRunError, ConfigError, LedgerError
from lean_ops_spark.metrics import MetricSink
from lean_ops_spark.session import lenient_casts

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

__all__ = ["ReplayResult", "run_replay"]

STEP_REPLAY_MERGED = "replay_merged"
REPLAY_KEY = "lean-ops.replay"
#: Attempts before a pending row is exhausted, unless a replay is given another number.
DEFAULT_MAX_ATTEMPTS = 5


@dataclass(frozen=True)
class ReplayResult:
    """``pending = replayed + still_pending + exhausted + dropped``; ``pending`` is the number
    of rows read, counted apart from the outcomes (a replay whose counts differ fails)."""

    topic: str
    run_id: str
    pending: int
    replayed: int
    still_pending: int
    exhausted: int
    dropped: int
    curated_snapshot_id: int | None
    duration_seconds: float

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@lenient_casts
def run_replay(
    spark: SparkSession,
    config: ProjectConfig,
    topic: str,
    *,
    run_id: str | None = None,
    max_attempts: int = DEFAULT_MAX_ATTEMPTS,
    after_step: Callable[[str], None] | None = None,
    metrics: MetricSink | None = None,
) -> ReplayResult:
    """Replay the pending RETRY rows of ``topic``'s quarantine (see the module docstring);
    ``metrics`` gets its counts, also when nothing was pending.

    Raises:
        ConfigError: ``max_attempts`` is below 1 (it would exhaust every pending row at once).
        LedgerError: the rows classified are not the pending rows read (nothing written).
        ConcurrentRunError: another replay updated rows this one read (see the module docstring).
    """
    result = _replay(
        spark, config, topic, run_id=run_id, max_attempts=max_attempts, after_step=after_step, metrics=metrics
    )
    _emit_metrics(metrics, result)
    return result


def _replay(
    spark: SparkSession,
    config: ProjectConfig,
    topic: str,
    *,
    run_id: str | None,
    max_attempts: int,
    after_step: Callable[[str], None] | None,
    metrics: MetricSink | None,
) -> ReplayResult:
    from pyspark import StorageLevel
    from pyspark.sql import functions as F

    if max_attempts < 1:
        raise ConfigError(f"max_attempts must be at least 1, got {max_attempts}")

    started = time.time()
    run_id = check_run_id(run_id or f"rpl-{uuid.uuid4().hex[:12]}")
    tables = topic_tables(config.profile, topic)
    # Columns an earlier evolve added to curated must be in the MERGE source too (and the
    # contract's columns curated does not have yet are added before the MERGE).
    contract = effective_contract(spark, config.topic(topic), tables.curated)
    spark.sql(f"REFRESH TABLE {tables.quarantine.sql}")
    # One snapshot of the quarantine: Spark recomputes the persisted frames below after the
    # quarantine MERGE (or another replay's) and must see the rows as this run read them.
    read_at = current_snapshot_id(spark, tables.quarantine)
    if read_at is None:
        return ReplayResult(topic, run_id, 0, 0, 0, 0, 0, None, time.time() - started)
    pending = (
        read_pinned(spark, tables.quarantine, read_at)
        .where((F.col("error_class") == ErrorClass.RETRY.value) & (F.col("replay_status") == "pending"))
        .select(
            "message_id",
            "topic",
            "payload",
            "ingestion_ts",
            "producer",
            "schema_version",
            F.col("raw_snapshot_id").alias("_raw_snapshot_id"),
            F.col("attempt_count").alias("_attempt_count"),  # a payload field may be named so
        )
    )
    # Parsed as a curation run parses, partly parsed values (a rounded decimal, a struct's
    # unknown key) kept in _rescued_data as a run's drift step keeps them: nothing is lost.
    every_column = [c.name for c in parsed_columns(contract)]
    classified = rescue_partial_values(parse_batch(pending, contract), contract, every_column).persist(
        StorageLevel.MEMORY_AND_DISK
    )
    cached = [classified]  # unpersisted however the replay ends
    try:
        error = F.col(ERROR_COLUMN)
        attempts = F.col("_attempt_count") + 1
        status = (
            F.when(error.isNull(), F.lit("replayed"))
            .when(error["error_class"] == ErrorClass.DROP.value, F.lit("dropped"))
            .when(attempts >= max_attempts, F.lit("exhausted"))
            .otherwise(F.lit("pending"))
        )
        outcomes = classified.select(
            "message_id",
            "ingestion_ts",
            F.col("_attempt_count").alias("attempt_count"),
            status.alias("status"),
            error["error_class"].alias("error_class"),
            error["reason_code"].alias("reason_code"),
            error["error_field"].alias("error_field"),
            error["error_detail"].alias("error_detail"),
        ).persist(StorageLevel.MEMORY_AND_DISK)
        cached.append(outcomes)
        counts = {
            r["status"]: int(r["n"])
            for r in outcomes.groupBy("status").agg(F.count(F.lit(1)).alias("n")).collect()
        }
        total = sum(counts.values())
        # The ledger: the rows read are counted on their own (not derived from the outcomes),
        # so a row lost or doubled between the read and the classification fails the replay
        # before it writes anything.
        _check_classified(pending.count(), counts, topic, run_id)
        if total == 0:
            return ReplayResult(topic, run_id, 0, 0, 0, 0, 0, None, time.time() - started)

        curated_snapshot: int | None = None
        if counts.get("replayed"):
            versions = add_audit_columns(
                dedupe_latest(classified.where(error.isNull()), contract).where(F.col("_version_rank") == 1),
                contract,
                run_id,
            )
            days = batch_partition_days(versions, contract)
            _apply_contract_changes(spark, config.topic(topic), tables.curated, run_id, metrics)
            curated_snapshot = merge_into_curated(
                spark,
                contract=contract,
                curated=tables.curated,
                versions=versions,
                partition_days=days,
                run_id=run_id,
                properties={RUN_ID_KEY: run_id, REPLAY_KEY: "true"},
            ).snapshot_id
        if after_step:
            after_step(STEP_REPLAY_MERGED)

        view = view_name("lean_ops_replay", run_id)
        outcomes.createOrReplaceTempView(view)
        try:
            spark.sql(
                f"MERGE INTO {tables.quarantine.sql} q USING {view} o "
                # a row is its message id and ingestion time: a message delivered again on
                # another day has a quarantine row per delivery
                "ON q.message_id = o.message_id AND q.ingestion_ts <=> o.ingestion_ts "
                "AND q.replay_status = 'pending' "
                "AND q.attempt_count = o.attempt_count "  # not counted by another replay meanwhile
                "WHEN MATCHED THEN UPDATE SET "
                "attempt_count = o.attempt_count + 1, last_attempt_at = current_timestamp(), "
                f"run_id = '{run_id}', replay_status = o.status, "
                "error_class = coalesce(o.error_class, q.error_class), "
                "reason_code = coalesce(o.reason_code, q.reason_code), "
                "error_field = CASE WHEN o.reason_code IS NULL THEN q.error_field ELSE o.error_field END, "
                "error_detail = coalesce(o.error_detail, q.error_detail)"
            )
        finally:
            spark.catalog.dropTempView(view)
        done = outcomes.select(
            F.col("message_id").alias("_id"),
            F.col("ingestion_ts").alias("_ts"),
            (F.col("attempt_count") + 1).alias("_attempt"),
        )
        rows = spark.table(tables.quarantine.sql).where(F.col("run_id") == run_id)
        applied = rows.join(
            done,
            (rows["message_id"] == done["_id"])
            & rows["ingestion_ts"].eqNullSafe(done["_ts"])
            & (rows["attempt_count"] == done["_attempt"]),
            "left_semi",
        ).count()
        if applied != total:
            raise ConcurrentRunError(
                f"replay of topic {topic!r} (run {run_id}): another replay updated {total - applied} of "
                f"the {total} pending quarantine rows this one read before it could; their attempt "
                f"counts were left as that replay set them (curated holds each version once either "
                f"way). Run `lean-ops replay --topic {topic}` again for what is still pending."
            )
    finally:
        for df in reversed(cached):
            df.unpersist()
    return ReplayResult(
        topic=topic,
        run_id=run_id,
        pending=total,
        replayed=counts.get("replayed", 0),
        still_pending=counts.get("pending", 0),
        exhausted=counts.get("exhausted", 0),
        dropped=counts.get("dropped", 0),
        curated_snapshot_id=curated_snapshot,
        duration_seconds=time.time() - started,
    )


def _emit_metrics(metrics: MetricSink | None, result: ReplayResult) -> None:
    """What a replay did, per outcome (see the module docstring); sent at once."""
    if metrics is None:
        return
    dims = {"Topic": result.topic, "Layer": "quarantine"}
    for name, value in (
        ("ReplayRowsRead", result.pending),
        ("ReplayRowsReplayed", result.replayed),
        ("ReplayRowsStillPending", result.still_pending),
        ("ReplayRowsExhausted", result.exhausted),
        ("ReplayRowsDropped", result.dropped),
    ):
        metrics.emit(name, float(value), "Count", dims)
    metrics.emit("ReplayDurationSeconds", result.duration_seconds, "Seconds", dims)
    metrics.flush()


def _check_classified(read: int, counts: dict[str, int], topic: str, run_id: str) -> None:
    """The replay's ledger: every pending row read has exactly one outcome.

    Raises:
        LedgerError: the rows classified are not the rows read (nothing is written yet).
    """
    total = sum(counts.values())
    if read != total:
        raise LedgerError(
            f"replay of topic {topic!r} (run {run_id}): read {read} pending quarantine rows but "
            f"classified {total} (by outcome: {counts}); nothing was written"
        )


def _apply_contract_changes(
    spark: SparkSession, contract: TopicContract, curated: TableRef, run_id: str, metrics: MetricSink | None
) -> None:
    """Bring curated up to ``contract`` as a curation run would (audit rows, then idempotent
    ALTERs: :func:`~lean_ops_spark.drift.handler.write_drift`): a column the contract gained
    since curated was last written (the fix that makes a RETRY row pass often adds one) is
    otherwise left out of the ``UPDATE SET *`` / ``INSERT *`` MERGE, and its replayed values
    are lost."""
    spark.sql(f"REFRESH TABLE {curated.sql}")
    schema = spark.table(curated.sql).schema
    reconciliation = reconcile_with_curated(contract, schema)
    if not reconciliation.changes:
        return
    plan = plan_drift(reconciliation, (), contract.drift_mode)
    statements = alter_statements(
        curated.sql, plan.changes, after_column=last_payload_column(schema), run_id=run_id
    )
    write_drift(spark, plan, statements, contract=contract, curated=curated, run_id=run_id, metrics=metrics)
