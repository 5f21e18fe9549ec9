"""Table health measured from Iceberg metadata tables (``files``, ``manifests``, ``partitions``,
``snapshots``) into a frozen :class:`TableHealth`.

Nothing here scans table data: every query reads metadata only. Reading runs a handful of
small Spark jobs per table (see :func:`measure_health`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from decimal import Decimal
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from lean_ops_spark.catalog.checkpoints import SnapshotRecord, current_snapshot_id, snapshot_records
from lean_ops_spark.catalog.naming import TableRef
from lean_ops_spark.config.models import HealthThresholds

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

__all__ = [
    "DEFAULT_TARGET_FILE_SIZE_BYTES",
    "PartitionField",
    "PartitionHealth",
    "PartitionValue",
    "SnapshotPoint",
    "TableHealth",
    "measure_health",
    "parse_partition_transform",
]

#: Iceberg's default ``write.target-file-size-bytes`` (512 MiB) when the table sets none.
DEFAULT_TARGET_FILE_SIZE_BYTES = 512 * 1024 * 1024

PartitionValue = str | int | float | bool | date | datetime | Decimal | None

_TIME_TRANSFORMS = {"years": "year", "months": "month", "days": "day", "hours": "hour"}
_WIDTH_TRANSFORM = re.compile(r"^(bucket|truncate)\((\d+),\s*([A-Za-z_][A-Za-z0-9_]*)\)$")
_TIME_TRANSFORM = re.compile(r"^(years|months|days|hours)\(([A-Za-z_][A-Za-z0-9_]*)\)$")
_IDENTITY = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_COUNTS = (
    "data_files",
    "small_files",
    "data_bytes",
    "records",
    "pos_files",
    "eq_files",
    "pos_records",
    "eq_records",
    "delete_bytes",
)


@dataclass(frozen=True)
class PartitionField:
    """One field of the current partition spec, as the ``files`` table's partition struct shows it."""

    name: str
    transform: str  # identity | year | month | day | hour | bucket | truncate | unknown
    source_column: str | None
    source_type: str | None  # Spark type of the source column, e.g. "timestamp"


@dataclass(frozen=True)
class PartitionHealth:
    """Files and deletes of one partition of the current snapshot."""

    values: tuple[tuple[str, PartitionValue], ...]
    data_file_count: int
    small_file_count: int
    data_bytes: int
    record_count: int
    position_delete_file_count: int = 0
    equality_delete_file_count: int = 0
    last_updated_ms: int | None = None

    @property
    def label(self) -> str:
        """``ts_day=2026-11-01/cat=a``; ``(unpartitioned)`` for an unpartitioned table."""
        if not self.values:
            return "(unpartitioned)"
        return "/".join(f"{k}={'null' if v is None else v}" for k, v in self.values)

    @property
    def delete_file_count(self) -> int:
        return self.position_delete_file_count + self.equality_delete_file_count


@dataclass(frozen=True)
class SnapshotPoint:
    """A live snapshot, for the timeline and the expiry decision."""

    snapshot_id: int
    parent_id: int | None
    committed_at_ms: int
    operation: str | None
    total_data_files: int | None = None
    total_delete_files: int | None = None
    total_records: int | None = None


@dataclass(frozen=True)
class TableHealth:
    """What a table's metadata says about its shape, as of its current snapshot.

    Counts cover the current snapshot (``files``/``manifests``); snapshot figures cover every
    live snapshot. "Small" means below ``small_file_threshold_bytes``, a fraction of the
    table's target file size.
    """

    table: TableRef
    measured_at_ms: int
    current_snapshot_id: int | None
    target_file_size_bytes: int
    small_file_threshold_bytes: int
    data_file_count: int = 0
    small_file_count: int = 0
    data_bytes: int = 0
    record_count: int = 0
    position_delete_file_count: int = 0
    equality_delete_file_count: int = 0
    position_delete_record_count: int = 0
    equality_delete_record_count: int = 0
    delete_bytes: int = 0
    manifest_count: int = 0
    delete_manifest_count: int = 0
    manifest_bytes: int = 0
    snapshot_count: int = 0
    oldest_snapshot_ms: int | None = None
    partition_fields: tuple[PartitionField, ...] = ()
    partitions: tuple[PartitionHealth, ...] = ()
    file_size_histogram: tuple[tuple[int, int], ...] = ()
    snapshots: tuple[SnapshotPoint, ...] = ()
    properties: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))

    @property
    def small_file_ratio(self) -> float:
        """Small data files / data files (0 for a table without data files)."""
        return self.small_file_count / self.data_file_count if self.data_file_count else 0.0

    @property
    def avg_data_file_bytes(self) -> float:
        return self.data_bytes / self.data_file_count if self.data_file_count else 0.0

    @property
    def delete_file_count(self) -> int:
        """Position plus equality delete files (v3 deletion vectors count as position deletes)."""
        return self.position_delete_file_count + self.equality_delete_file_count

    @property
    def delete_file_ratio(self) -> float:
        """Delete files / data files; the delete count itself when there is no data file."""
        if not self.data_file_count:
            return float(self.delete_file_count)
        return self.delete_file_count / self.data_file_count

    @property
    def data_manifest_count(self) -> int:
        return self.manifest_count - self.delete_manifest_count

    @property
    def avg_manifest_bytes(self) -> float:
        return self.manifest_bytes / self.manifest_count if self.manifest_count else 0.0

    @property
    def oldest_snapshot_age_hours(self) -> float | None:
        if self.oldest_snapshot_ms is None:
            return None
        return max(0.0, (self.measured_at_ms - self.oldest_snapshot_ms) / 3_600_000)

    @property
    def partitioned(self) -> bool:
        return bool(self.partition_fields)

    def top_small_file_partitions(self, limit: int = 10) -> tuple[PartitionHealth, ...]:
        """Partitions with the most small files (ties: more files first), without the clean ones."""
        ranked = sorted(
            (p for p in self.partitions if p.small_file_count),
            key=lambda p: (-p.small_file_count, -p.data_file_count, p.label),
        )
        return tuple(ranked[:limit])

    def as_dict(self, top_partitions: int = 10) -> dict[str, Any]:
        """A JSON-ready summary (partitions limited to the ``top_partitions`` worst)."""
        return {
            "table": self.table.sql,
            "layer": self.table.layer,
            "measured_at": _iso(self.measured_at_ms),
            "current_snapshot_id": self.current_snapshot_id,
            "target_file_size_bytes": self.target_file_size_bytes,
            "small_file_threshold_bytes": self.small_file_threshold_bytes,
            "data_file_count": self.data_file_count,
            "small_file_count": self.small_file_count,
            "small_file_ratio": round(self.small_file_ratio, 4),
            "avg_data_file_bytes": round(self.avg_data_file_bytes, 1),
            "data_bytes": self.data_bytes,
            "record_count": self.record_count,
            "position_delete_file_count": self.position_delete_file_count,
            "equality_delete_file_count": self.equality_delete_file_count,
            "delete_file_count": self.delete_file_count,
            "delete_file_ratio": round(self.delete_file_ratio, 4),
            "position_delete_record_count": self.position_delete_record_count,
            "equality_delete_record_count": self.equality_delete_record_count,
            "delete_bytes": self.delete_bytes,
            "manifest_count": self.manifest_count,
            "delete_manifest_count": self.delete_manifest_count,
            "avg_manifest_bytes": round(self.avg_manifest_bytes, 1),
            "snapshot_count": self.snapshot_count,
            "oldest_snapshot_at": _iso(self.oldest_snapshot_ms),
            "oldest_snapshot_age_hours": (
                None if self.oldest_snapshot_age_hours is None else round(self.oldest_snapshot_age_hours, 2)
            ),
            "partition_fields": [f"{f.transform}({f.source_column})" for f in self.partition_fields],
            "partition_count": len(self.partitions),
            "top_small_file_partitions": [
                {
                    "partition": p.label,
                    "small_files": p.small_file_count,
                    "data_files": p.data_file_count,
                    "bytes": p.data_bytes,
                    "records": p.record_count,
                }
                for p in self.top_small_file_partitions(top_partitions)
            ],
            "file_size_histogram": [{"from_bytes": b, "files": n} for b, n in self.file_size_histogram],
        }


def _iso(ms: int | None) -> str | None:
    return None if ms is None else datetime.fromtimestamp(ms / 1000, tz=timezone.utc).isoformat()


def parse_partition_transform(text: str) -> tuple[str, str | None]:
    """``days(ts)`` -> ("day", "ts"); ``bucket(16, id)`` -> ("bucket", "id"); ``cat`` -> ("identity", "cat").

    Anything else (nested columns, void) is ("unknown", None): such tables are compacted
    whole rather than by partition.
    """
    text = text.strip()
    match = _TIME_TRANSFORM.fullmatch(text)
    if match:
        return _TIME_TRANSFORMS[match.group(1)], match.group(2)
    match = _WIDTH_TRANSFORM.fullmatch(text)
    if match:
        return match.group(1), match.group(3)
    if _IDENTITY.fullmatch(text):
        return "identity", text
    return "unknown", None


def _partition_fields(
    spark: SparkSession, table: TableRef, struct_names: list[str]
) -> tuple[PartitionField, ...]:
    """The current spec's fields, matched by position to the ``files`` partition struct.

    ``DESCRIBE TABLE`` lists the current spec; the struct covers every spec the table ever
    had. When their lengths differ (partition evolution) the fields are ``unknown``.
    """
    rows = spark.sql(f"DESCRIBE TABLE {table.sql}").collect()
    transforms: list[str] = []
    section = None
    for row in rows:
        name = (row["col_name"] or "").strip()
        if name in ("# Partitioning", "# Partition Information"):
            section = name
            continue
        if section == "# Partitioning":  # any non-identity transform: "Part 0 | days(ts)"
            if not name.startswith("Part "):
                break
            transforms.append(str(row["data_type"]))
        elif section == "# Partition Information":  # identity only: one row per column
            if name == "# col_name":
                continue
            if not name or name.startswith("#"):
                break
            transforms.append(name)
    types = {f.name: f.dataType.simpleString() for f in spark.table(table.sql).schema.fields}
    if len(transforms) != len(struct_names):
        return tuple(PartitionField(n, "unknown", None, None) for n in struct_names)
    fields = []
    for struct_name, text in zip(struct_names, transforms, strict=True):
        transform, column = parse_partition_transform(text)
        fields.append(PartitionField(struct_name, transform, column, types.get(column) if column else None))
    return tuple(fields)


def _values(partition: Any, names: list[str]) -> tuple[tuple[str, PartitionValue], ...]:
    if partition is None:
        return ()
    data = partition.asDict()
    return tuple((n, data.get(n)) for n in names)


def measure_health(
    spark: SparkSession,
    table: TableRef,
    thresholds: HealthThresholds | None = None,
    *,
    now: datetime | None = None,
) -> TableHealth:
    """Measure ``table`` from its metadata tables (triggers a few small Spark jobs).

    Args:
        spark: the session.
        table: an existing Iceberg table.
        thresholds: where "small" starts (``small_file_fraction`` of the target file size).
        now: the measuring time (ages are relative to it); defaults to the clock.
    """
    thresholds = thresholds or HealthThresholds()
    measured_at = now or datetime.now(timezone.utc)
    spark.sql(f"REFRESH TABLE {table.sql}")
    properties = {r["key"]: r["value"] for r in spark.sql(f"SHOW TBLPROPERTIES {table.sql}").collect()}
    target = int(properties.get("write.target-file-size-bytes", DEFAULT_TARGET_FILE_SIZE_BYTES))
    small = int(target * thresholds.small_file_fraction)

    files = spark.table(table.metadata_table("files"))
    partitioned = "partition" in files.columns
    struct_names = (
        [f.name for f in files.schema["partition"].dataType.fields]  # type: ignore[attr-defined]
        if partitioned
        else []
    )
    group = "partition, " if partitioned else ""
    # One pass over `files`: per partition and per power-of-two size bucket of data files
    # (bucket -1 holds the delete files); partitions and the histogram are summed from it.
    bucket = (
        "CASE WHEN content = 0 THEN CAST(floor(log2(greatest(file_size_in_bytes, 1))) AS INT) ELSE -1 END"
    )
    cell_rows = spark.sql(
        f"SELECT {group}{bucket} AS bucket, "
        "count_if(content = 0) AS data_files, "
        f"count_if(content = 0 AND file_size_in_bytes < {small}) AS small_files, "
        "coalesce(sum(CASE WHEN content = 0 THEN file_size_in_bytes END), 0) AS data_bytes, "
        "coalesce(sum(CASE WHEN content = 0 THEN record_count END), 0) AS records, "
        "count_if(content = 1) AS pos_files, count_if(content = 2) AS eq_files, "
        "coalesce(sum(CASE WHEN content = 1 THEN record_count END), 0) AS pos_records, "
        "coalesce(sum(CASE WHEN content = 2 THEN record_count END), 0) AS eq_records, "
        "coalesce(sum(CASE WHEN content > 0 THEN file_size_in_bytes END), 0) AS delete_bytes "
        f"FROM {table.metadata_table('files')} GROUP BY {group}{bucket}"
    ).collect()
    updated_rows = spark.sql(
        f"SELECT {group}CAST(unix_millis(last_updated_at) AS BIGINT) AS updated_ms "
        f"FROM {table.metadata_table('partitions')}"
    ).collect()
    last_updated = {
        _values(r["partition"] if partitioned else None, struct_names): r["updated_ms"] for r in updated_rows
    }
    manifest_rows = spark.sql(
        "SELECT content, count(*) AS manifests, coalesce(sum(length), 0) AS bytes "
        f"FROM {table.metadata_table('manifests')} GROUP BY content"
    ).collect()
    records = snapshot_records(spark, table)

    sums: dict[tuple[tuple[str, PartitionValue], ...], dict[str, int]] = {}
    histogram: dict[int, int] = {}
    for row in cell_rows:
        values = _values(row["partition"] if partitioned else None, struct_names)
        totals = sums.setdefault(values, dict.fromkeys(_COUNTS, 0))
        for name in _COUNTS:
            totals[name] += int(row[name])
        if row["bucket"] >= 0:
            histogram[int(row["bucket"])] = histogram.get(int(row["bucket"]), 0) + int(row["data_files"])
    partitions = [
        PartitionHealth(
            values=values,
            data_file_count=t["data_files"],
            small_file_count=t["small_files"],
            data_bytes=t["data_bytes"],
            record_count=t["records"],
            position_delete_file_count=t["pos_files"],
            equality_delete_file_count=t["eq_files"],
            last_updated_ms=last_updated.get(values),
        )
        for values, t in sorted(sums.items(), key=lambda item: str(item[0]))
    ]
    manifests = {int(r["content"]): (int(r["manifests"]), int(r["bytes"])) for r in manifest_rows}
    snapshots = tuple(_snapshot_point(r) for r in sorted(records, key=lambda r: r.committed_at_ms))
    return TableHealth(
        table=table,
        measured_at_ms=int(measured_at.timestamp() * 1000),
        current_snapshot_id=current_snapshot_id(spark, table) if records else None,
        target_file_size_bytes=target,
        small_file_threshold_bytes=small,
        data_file_count=sum(p.data_file_count for p in partitions),
        small_file_count=sum(p.small_file_count for p in partitions),
        data_bytes=sum(p.data_bytes for p in partitions),
        record_count=sum(p.record_count for p in partitions),
        position_delete_file_count=sum(p.position_delete_file_count for p in partitions),
        equality_delete_file_count=sum(p.equality_delete_file_count for p in partitions),
        position_delete_record_count=sum(t["pos_records"] for t in sums.values()),
        equality_delete_record_count=sum(t["eq_records"] for t in sums.values()),
        delete_bytes=sum(t["delete_bytes"] for t in sums.values()),
        manifest_count=sum(n for n, _ in manifests.values()),
        delete_manifest_count=manifests.get(1, (0, 0))[0],
        manifest_bytes=sum(b for _, b in manifests.values()),
        snapshot_count=len(snapshots),
        oldest_snapshot_ms=snapshots[0].committed_at_ms if snapshots else None,
        partition_fields=_partition_fields(spark, table, struct_names) if partitioned else (),
        partitions=tuple(partitions),
        file_size_histogram=tuple((2**b, n) for b, n in sorted(histogram.items())),
        snapshots=snapshots,
        properties=MappingProxyType(properties),
    )


def _summary_int(summary: Mapping[str, str], key: str) -> int | None:
    value = summary.get(key)
    try:
        return None if value is None else int(value)
    except ValueError:
        return None


def _snapshot_point(record: SnapshotRecord) -> SnapshotPoint:
    return SnapshotPoint(
        snapshot_id=record.snapshot_id,
        parent_id=record.parent_id,
        committed_at_ms=record.committed_at_ms,
        operation=record.operation,
        total_data_files=_summary_int(record.summary, "total-data-files"),
        total_delete_files=_summary_int(record.summary, "total-delete-files"),
        total_records=_summary_int(record.summary, "total-records"),
    )
