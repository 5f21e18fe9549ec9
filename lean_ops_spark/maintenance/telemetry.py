"""Metric names, units and emission for table health and maintenance runs.

One place lists the metrics, so what is emitted and what the CloudWatch dashboard charts
cannot drift apart. Dimensions: ``Table`` (``database.table``) for health, plus
``Operation`` for procedure results; never a run or snapshot id.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from lean_ops_spark.maintenance.health import TableHealth
from lean_ops_spark.maintenance.procedures import ProcedureOutcome
from lean_ops_spark.metrics import MetricSink

__all__ = [
    "HEALTH_METRICS",
    "OPERATION_METRICS",
    "HealthMetric",
    "emit_health",
    "emit_outcome",
]


@dataclass(frozen=True)
class HealthMetric:
    name: str
    unit: str
    value: Callable[[TableHealth], float | None]
    label: str


HEALTH_METRICS: tuple[HealthMetric, ...] = (
    HealthMetric("DataFileCount", "Count", lambda h: h.data_file_count, "data files"),
    HealthMetric("SmallFileCount", "Count", lambda h: h.small_file_count, "small data files"),
    HealthMetric("SmallFileRatio", "None", lambda h: h.small_file_ratio, "small-file ratio"),
    HealthMetric("AvgDataFileBytes", "Bytes", lambda h: h.avg_data_file_bytes, "average data file size"),
    HealthMetric(
        "PositionDeleteFileCount", "Count", lambda h: h.position_delete_file_count, "position deletes"
    ),
    HealthMetric(
        "EqualityDeleteFileCount", "Count", lambda h: h.equality_delete_file_count, "equality deletes"
    ),
    HealthMetric("DeleteFileRatio", "None", lambda h: h.delete_file_ratio, "delete files per data file"),
    HealthMetric("ManifestCount", "Count", lambda h: h.manifest_count, "manifests"),
    HealthMetric("AvgManifestBytes", "Bytes", lambda h: h.avg_manifest_bytes, "average manifest size"),
    HealthMetric("SnapshotCount", "Count", lambda h: h.snapshot_count, "snapshots"),
    HealthMetric(
        "OldestSnapshotAgeSeconds",
        "Seconds",
        lambda h: None if h.oldest_snapshot_age_hours is None else h.oldest_snapshot_age_hours * 3600,
        "oldest snapshot age",
    ),
    HealthMetric("TotalDataBytes", "Bytes", lambda h: h.data_bytes, "data bytes"),
    HealthMetric("TotalRecords", "Count", lambda h: h.record_count, "records"),
)

#: Per-operation metrics (dimensions Table + Operation): name -> unit.
OPERATION_METRICS: dict[str, str] = {
    "FilesRewritten": "Count",
    "FilesAdded": "Count",
    "BytesRewritten": "Bytes",
    "FilesFailed": "Count",
    "DeleteFilesRemoved": "Count",
    "ManifestsRewritten": "Count",
    "ManifestsAdded": "Count",
    "DeleteFilesRewritten": "Count",
    "DeleteFilesAdded": "Count",
    "SnapshotsExpired": "Count",
    "FilesDeleted": "Count",
    "DataFilesDeleted": "Count",
    "OrphanFilesDeleted": "Count",
    "OrphanFilesFound": "Count",
    "OperationSeconds": "Seconds",
    "OperationConflicts": "Count",
    "OperationFailures": "Count",
}


def emit_health(sink: MetricSink, health: TableHealth) -> int:
    """Emit every health metric of one table; returns how many were emitted."""
    dims = {"Table": health.table.identifier}
    emitted = 0
    for metric in HEALTH_METRICS:
        value = metric.value(health)
        if value is not None:
            sink.emit(metric.name, value, metric.unit, dims)
            emitted += 1
    return emitted


def emit_outcome(sink: MetricSink, table_identifier: str, outcome: ProcedureOutcome) -> None:
    """Emit one procedure's typed result, duration and conflict/failure counts."""
    dims = {"Table": table_identifier, "Operation": outcome.operation}
    sink.emit("OperationSeconds", outcome.seconds, "Seconds", dims)
    sink.emit("OperationConflicts", 1 if outcome.status == "conflict" else 0, "Count", dims)
    sink.emit("OperationFailures", 1 if outcome.status == "failed" else 0, "Count", dims)
    if outcome.result is not None:
        for name, value, unit in outcome.result.metrics():
            sink.emit(name, value, unit, dims)
