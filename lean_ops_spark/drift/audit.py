"""The drift notification: one audit row per drift, a CloudWatch metric and a log line.

The audit table ``<curated_db>.lean_ops_drift_audit`` is shared by every topic and only
ever appended to (appends from concurrent per-topic runs never conflict). A run retried
with the same run id appends its detections again: one row per detection, not per drift.
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from collections.abc import Sequence
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from lean_ops_spark import sqlexpr as S
from lean_ops_spark.catalog.naming import TableRef
from lean_ops_spark.catalog.schemas import BASE_PROPERTIES, TableDefinition
from lean_ops_spark.config.models import Profile
from lean_ops_spark.drift.diff import DriftSource
from lean_ops_spark.drift.policy import DriftAction, DriftDecision

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

__all__ = [
    "AUDIT_COLUMNS",
    "AUDIT_TABLE_NAME",
    "DRIFT_METRIC",
    "audit_rows",
    "audit_table",
    "audit_table_definition",
    "emit_drift_metrics",
    "log_drift",
    "record_drift",
]

log = logging.getLogger(__name__)

DRIFT_METRIC = "SchemaDrift"
AUDIT_TABLE_NAME = "lean_ops_drift_audit"
AUDIT_COLUMNS: tuple[tuple[str, str, str], ...] = (
    ("detected_at", "timestamp", "when the run detected the drift (UTC)"),
    ("topic", "string", "the topic"),
    ("run_id", "string", "the curation run that detected it"),
    ("field_path", "string", "payload path, arrays as [] (items[].sku)"),
    (
        "kind",
        "string",
        "new_field, nested_field_change, missing_required_field, nullability_change, "
        "type_widening or type_incompatible",
    ),
    ("old_type", "string", "the contract's (or curated's) type"),
    ("new_type", "string", "the observed or proposed type"),
    ("action", "string", "add_column, widen_column, rescue, quarantine or fail"),
    ("drift_mode", "string", "the topic's drift_mode when detected"),
    ("source", "string", "data (the batch) or contract (a contract edit curated lacked)"),
    ("records", "bigint", "values or records showing the drift"),
    ("observed", "bigint", "values or records observed at that path"),
    ("note", "string", "what the action means, e.g. no backfill of older rows"),
    ("detail", "string", "how the drift was measured"),
)


def audit_table(profile: Profile) -> TableRef:
    """``<curated_db>.lean_ops_drift_audit`` in the profile's catalog."""
    return TableRef(profile.catalog, profile.databases.curated, AUDIT_TABLE_NAME, "audit")


def audit_table_definition(table: TableRef) -> TableDefinition:
    return TableDefinition(
        table=table,
        columns=AUDIT_COLUMNS,
        partitioned_by=("days(detected_at)",),
        properties={**BASE_PROPERTIES, "lean-ops.layer": "audit"},
        comment="Schema drift detected by curation runs (one row per detection)",
    )


def _recorded(decisions: Sequence[DriftDecision]) -> list[DriftDecision]:
    """Decisions worth a row: data drift and contract edits applied (not the steady state
    of columns an earlier evolve added, which were recorded when they were added)."""
    return [d for d in decisions if d.drift.source is not DriftSource.CURATED]


def audit_rows(
    decisions: Sequence[DriftDecision], *, topic: str, run_id: str, mode: str, detected_at: datetime
) -> list[tuple[Any, ...]]:
    """Rows in :data:`AUDIT_COLUMNS` order (pure)."""
    return [
        (
            detected_at,
            topic,
            run_id,
            d.drift.field_path,
            d.drift.kind.value,
            d.drift.old_type,
            d.drift.new_type,
            d.action.value,
            mode,
            d.drift.source.value,
            d.drift.records,
            d.drift.observed,
            d.note,
            d.drift.detail,
        )
        for d in _recorded(decisions)
    ]


def emit_drift_metrics(metrics: Any, topic: str, decisions: Sequence[DriftDecision]) -> None:
    """``SchemaDrift`` per (topic, kind, action) and in total per topic (alarm on the total)."""
    if metrics is None:
        return
    recorded = _recorded(decisions)
    if not recorded:
        return
    groups = Counter((d.drift.kind.value, d.action.value) for d in recorded)
    for (kind, action), count in sorted(groups.items()):
        metrics.emit(
            DRIFT_METRIC, float(count), "Count", {"Topic": topic, "DriftKind": kind, "Action": action}
        )
    metrics.emit(DRIFT_METRIC, float(len(recorded)), "Count", {"Topic": topic})


def log_drift(topic: str, run_id: str, mode: str, decisions: Sequence[DriftDecision]) -> None:
    """One JSON log line per decision: WARNING for drift, INFO for curated's steady state."""
    for decision in decisions:
        level = logging.INFO if decision.drift.source is DriftSource.CURATED else logging.WARNING
        if decision.action is DriftAction.FAIL:
            level = logging.ERROR
        log.log(
            level,
            "schema drift %s",
            json.dumps(
                {
                    "event": "schema_drift",
                    "topic": topic,
                    "run_id": run_id,
                    "drift_mode": mode,
                    **decision.as_dict(),
                },
                sort_keys=True,
            ),
        )


def record_drift(
    spark: SparkSession,
    table: TableRef,
    decisions: Sequence[DriftDecision],
    *,
    topic: str,
    run_id: str,
    mode: str,
    metrics: Any = None,
    now: datetime | None = None,
) -> int:
    """Append the audit rows, emit the metrics and log lines. Returns the rows written."""
    log_drift(topic, run_id, mode, decisions)
    emit_drift_metrics(metrics, topic, decisions)
    rows = audit_rows(
        decisions, topic=topic, run_id=run_id, mode=mode, detected_at=now or datetime.now(timezone.utc)
    )
    if not rows:
        return 0
    spark.sql(audit_table_definition(table).create_sql())
    _literal_frame(spark, rows).writeTo(table.sql).append()
    return len(rows)


def _literal_frame(spark: SparkSession, rows: Sequence[tuple[Any, ...]]) -> DataFrame:
    """``rows`` (in :data:`AUDIT_COLUMNS` order) as literals in one local projection, sent
    as one SQL expression (one py4j call instead of one per value).

    Not ``spark.createDataFrame(rows)``: that ships the rows through a Python worker (a
    task of its own that starts Python processes: ~0.5-1 s warm and several seconds on a
    fresh cluster) for a handful of rows.
    """
    structs = [
        S.struct(
            *[
                S.lit(value).cast(dtype).alias(name)
                for value, (name, dtype, _) in zip(row, AUDIT_COLUMNS, strict=True)
            ]
        )
        for row in rows
    ]
    return spark.range(1, numPartitions=1).selectExpr(f"inline({S.array(*structs).sql})")
