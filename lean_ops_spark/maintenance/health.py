"""Table health measured from Iceberg metadata tables (``files``, ``manifests``, ``partitions``,
``snapshots``) into a frozen :class:`TableHealth`.

Nothing here scans table data: every query reads metadata only. Reading runs a handful of
small Spark jobs per table (see :func:`measure_health`).

A table whose partitioning evolved holds files written with several partition specs. The
``files`` table shows every file's partition in one struct with the fields of all specs (a
field its spec lacks is null), so files are grouped by (spec id, partition) and each group
keeps the values of its own spec's fields only: a null there is a real null.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from lean_ops_spark.catalog.checkpoints import SnapshotRecord
from lean_ops_spark.catalog.metadata import current_schema, load_metadata_document, parse_table_metadata
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
    "partition_specs_from_metadata",
    "partition_value_label",
]

#: Iceberg's default ``write.target-file-size-bytes`` (512 MiB) when the table sets none.
DEFAULT_TARGET_FILE_SIZE_BYTES = 512 * 1024 * 1024

PartitionValue = str | int | float | bool | date | datetime | Decimal | None

_TIME_TRANSFORMS = {"years": "year", "months": "month", "days": "day", "hours": "hour"}
_WIDTH_TRANSFORM = re.compile(r"^(bucket|truncate)\((\d+),\s*([A-Za-z_][A-Za-z0-9_]*)\)$")
_TIME_TRANSFORM = re.compile(r"^(years|months|days|hours)\(([A-Za-z_][A-Za-z0-9_]*)\)$")
_IDENTITY = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
#: Transform names of a partition spec in ``metadata.json`` (``bucket[16]`` -> ``bucket``).
_SPEC_TRANSFORMS = frozenset({"identity", "year", "month", "day", "hour", "bucket", "truncate"})
_COUNTS = (
    "data_files",
    "small_files",
    "data_bytes",
    "records",
    "pos_files",
    "dv_files",
    "eq_files",
    "pos_records",
    "eq_records",
    "delete_bytes",
)


@dataclass(frozen=True)
class PartitionField:
    """One field of a partition spec, named as the ``files`` table's partition struct shows it."""

    name: str
    transform: str  # identity | year | month | day | hour | bucket | truncate | unknown
    source_column: str | None
    source_type: str | None  # Spark type of the source column, e.g. "timestamp"


@dataclass(frozen=True)
class PartitionHealth:
    """Files and deletes of one partition of the current snapshot, under one partition spec.

    ``values`` hold the fields of the spec the files were written with. ``current_spec`` is
    False for files written before the table's partitioning evolved: a filter built from the
    current spec's fields does not select them.

    ``last_updated_ms`` is when the newest live file of the partition was committed; None
    when the snapshots that wrote its files have been expired. Those snapshots are older
    than every live ancestor of the current snapshot, so ``updated_before_ms`` then holds the
    commit time of the oldest live ancestor: the partition was last written before it.
    """

    values: tuple[tuple[str, PartitionValue], ...]
    data_file_count: int
    small_file_count: int
    data_bytes: int
    record_count: int
    position_delete_file_count: int = 0
    equality_delete_file_count: int = 0
    last_updated_ms: int | None = None
    spec_id: int | None = None
    current_spec: bool = True
    #: Of ``position_delete_file_count``: v3 deletion vectors (blobs in Puffin files).
    deletion_vector_count: int = 0
    updated_before_ms: int | None = None
    #: The fields of the spec the files were written with: their transforms render the label
    #: (a value of a field not among them is shown as it is).
    fields: tuple[PartitionField, ...] = ()

    @property
    def label(self) -> str:
        """``ts_day=2026-11-01/cat=a``; ``(unpartitioned)`` for an unpartitioned table.

        Time transforms read as Iceberg writes them (``ts_month=2025-12``, not months since
        1970: see :func:`partition_value_label`). Partitions of an older spec say so:
        ``cat=a (older spec 0)``, ``(unpartitioned, older spec 0)``.
        """
        if not self.values:
            return "(unpartitioned)" if self.current_spec else f"(unpartitioned, older spec {self.spec_id})"
        transforms = {f.name: f.transform for f in self.fields}
        text = "/".join(f"{k}={partition_value_label(transforms.get(k), v)}" for k, v in self.values)
        return text if self.current_spec else f"{text} (older spec {self.spec_id})"

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
    table's target file size. ``partition_fields`` are the current spec's fields;
    ``partition_specs`` hold every spec's (by spec id), for partitions of older specs.
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
    #: Of ``position_delete_file_count``: v3 deletion vectors (one per data file they delete
    #: from; several share a Puffin file). Merged by compaction, never by
    #: ``rewrite_position_delete_files``.
    deletion_vector_count: int = 0
    position_delete_record_count: int = 0
    equality_delete_record_count: int = 0
    delete_bytes: int = 0
    manifest_count: int = 0
    delete_manifest_count: int = 0
    manifest_bytes: int = 0
    snapshot_count: int = 0
    oldest_snapshot_ms: int | None = None
    partition_fields: tuple[PartitionField, ...] = ()
    partition_spec_id: int | None = None
    partition_specs: Mapping[int, tuple[PartitionField, ...]] = field(
        default_factory=lambda: MappingProxyType({})
    )
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

    @property
    def older_spec_data_file_count(self) -> int:
        """Data files written with an older partition spec (before partition evolution)."""
        return sum(p.data_file_count for p in self.partitions if not p.current_spec)

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
            "deletion_vector_count": self.deletion_vector_count,
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
            "partition_spec_id": self.partition_spec_id,
            "partition_count": len(self.partitions),
            "older_spec_data_file_count": self.older_spec_data_file_count,
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


_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


def partition_value_label(transform: str | None, value: PartitionValue) -> str:
    """A partition value as Iceberg shows it (its transforms' human strings, as in data file
    paths): ``year`` 55 -> ``2025``, ``month`` 671 -> ``2025-12``, ``day`` -> ``2025-12-31``,
    ``hour`` 490885 -> ``2025-12-31-13`` (UTC); ``null`` for None; any other value as it is.

    Spark's ``files`` and ``partitions`` metadata tables give year, month and hour values as
    ints (units since 1970-01-01 UTC) and day values as dates; a day given as an int (days
    since 1970) reads the same.
    """
    if value is None:
        return "null"
    if not isinstance(value, int) or isinstance(value, bool):
        return str(value)
    if transform == "year":
        return f"{1970 + value:04d}"
    if transform == "month":
        years, month = divmod(value, 12)
        return f"{1970 + years:04d}-{month + 1:02d}"
    if transform == "day":
        return (_EPOCH + timedelta(days=value)).date().isoformat()
    if transform == "hour":
        moment = _EPOCH + timedelta(hours=value)
        return f"{moment.year:04d}-{moment.month:02d}-{moment.day:02d}-{moment.hour:02d}"
    return str(value)


def _spec_transform(text: str) -> str:
    name = text.split("[", 1)[0].strip()
    return name if name in _SPEC_TRANSFORMS else "void" if name == "void" else "unknown"


def partition_specs_from_metadata(
    document: Mapping[str, Any], struct_names: Sequence[str], column_types: Mapping[str, str]
) -> tuple[int | None, dict[int, tuple[PartitionField, ...]]]:
    """The current spec id and every spec's fields, from a table's ``metadata.json`` document.

    Fields are named as in the ``files`` table's partition struct, which has one field per
    partition field id of any spec, in field-id order. ``void`` fields (a dropped field of a
    v1 table) are left out: they are always null. Should the struct not line up with the
    specs, every field is ``unknown`` (such tables are compacted whole).

    Args:
        document: the parsed ``metadata.json`` (``partition-specs``, ``default-spec-id``, schemas).
        struct_names: the field names of the ``files`` table's ``partition`` struct.
        column_types: Spark type of each top-level column, e.g. ``{"ts": "timestamp"}``.
    """
    specs = document.get("partition-specs") or [
        {"spec-id": 0, "fields": document.get("partition-spec") or []}
    ]
    default = document.get("default-spec-id")
    current = int(default) if default is not None else max((int(s["spec-id"]) for s in specs), default=None)
    columns = {int(f["id"]): str(f["name"]) for f in current_schema(document).get("fields", ())}
    field_ids = sorted({int(f["field-id"]) for s in specs for f in s.get("fields", ())})
    if len(field_ids) != len(struct_names):
        unknown = tuple(PartitionField(n, "unknown", None, None) for n in struct_names)
        return current, {int(s["spec-id"]): unknown for s in specs}
    names = dict(zip(field_ids, struct_names, strict=True))
    by_spec: dict[int, tuple[PartitionField, ...]] = {}
    for spec in specs:
        fields = []
        for f in spec.get("fields", ()):
            transform = _spec_transform(str(f["transform"]))
            if transform == "void":
                continue
            column = columns.get(int(f["source-id"])) if transform != "unknown" else None
            if column is None:  # a nested or dropped source column: no filter can name it
                transform = "unknown"
            fields.append(
                PartitionField(
                    names[int(f["field-id"])], transform, column, column_types.get(column) if column else None
                )
            )
        by_spec[int(spec["spec-id"])] = tuple(fields)
    return current, by_spec


def _values(partition: Any, names: list[str]) -> tuple[tuple[str, PartitionValue], ...]:
    if partition is None:
        return ()
    data = partition.asDict()
    return tuple((n, data.get(n)) for n in names)


def _spec_values(
    values: tuple[tuple[str, PartitionValue], ...], fields: tuple[PartitionField, ...] | None
) -> tuple[tuple[str, PartitionValue], ...]:
    """The values of ``fields`` (one spec's) out of the all-spec struct's; all of them if unknown."""
    if fields is None:
        return values
    names = {f.name for f in fields}
    return tuple((n, v) for n, v in values if n in names)


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

    document = load_metadata_document(spark, table)
    metadata = parse_table_metadata(table.identifier, document)
    files = spark.table(table.metadata_table("files"))
    partitioned = "partition" in files.columns
    struct_names = (
        [f.name for f in files.schema["partition"].dataType.fields]  # type: ignore[attr-defined]
        if partitioned
        else []
    )
    column_types = (
        {f.name: f.dataType.simpleString() for f in spark.table(table.sql).schema.fields}
        if partitioned
        else {}
    )
    current_spec, spec_fields = partition_specs_from_metadata(document, struct_names, column_types)
    group = "spec_id, partition, " if partitioned else ""
    # One pass over `files`: per (spec, partition) and per power-of-two size bucket of data files
    # (bucket -1 holds the delete files); partitions and the histogram are summed from it.
    bucket = (
        "CASE WHEN content = 0 THEN CAST(floor(log2(greatest(file_size_in_bytes, 1))) AS INT) ELSE -1 END"
    )
    # A v3 deletion vector is a blob in a Puffin file that holds the vectors of other data files
    # too; every vector's row repeats the file's size, so its own bytes are the blob's.
    delete_size = (
        "CASE WHEN file_format = 'PUFFIN' THEN content_size_in_bytes ELSE file_size_in_bytes END"
        if "content_size_in_bytes" in files.columns
        else "file_size_in_bytes"
    )
    cell_rows = spark.sql(
        f"SELECT {group}{bucket} AS bucket, "
        "count_if(content = 0) AS data_files, "
        f"count_if(content = 0 AND file_size_in_bytes < {small}) AS small_files, "
        "coalesce(sum(CASE WHEN content = 0 THEN file_size_in_bytes END), 0) AS data_bytes, "
        "coalesce(sum(CASE WHEN content = 0 THEN record_count END), 0) AS records, "
        "count_if(content = 1) AS pos_files, count_if(content = 2) AS eq_files, "
        "count_if(content = 1 AND file_format = 'PUFFIN') AS dv_files, "
        "coalesce(sum(CASE WHEN content = 1 THEN record_count END), 0) AS pos_records, "
        "coalesce(sum(CASE WHEN content = 2 THEN record_count END), 0) AS eq_records, "
        f"coalesce(sum(CASE WHEN content > 0 THEN {delete_size} END), 0) AS delete_bytes "
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
    records = metadata.records
    # Files whose writing snapshots were expired have no last update: they were written before
    # the oldest live ancestor of the current snapshot (expiry removes the oldest ancestors).
    ancestors = list(metadata.ancestors())
    oldest_ancestor_ms = ancestors[-1].committed_at_ms if ancestors else None

    # Keyed by spec id too: after partition evolution an older spec's files show nulls for
    # the fields it lacks, which must not merge them with (or read as) real null partitions.
    sums: dict[tuple[int | None, tuple[tuple[str, PartitionValue], ...]], dict[str, int]] = {}
    histogram: dict[int, int] = {}
    for row in cell_rows:
        values = _values(row["partition"] if partitioned else None, struct_names)
        spec_id = int(row["spec_id"]) if partitioned else current_spec
        totals = sums.setdefault((spec_id, values), dict.fromkeys(_COUNTS, 0))
        for name in _COUNTS:
            totals[name] += int(row[name])
        if row["bucket"] >= 0:
            histogram[int(row["bucket"])] = histogram.get(int(row["bucket"]), 0) + int(row["data_files"])
    partitions = sorted(
        (
            PartitionHealth(
                values=_spec_values(values, spec_fields.get(spec_id)) if spec_id is not None else values,
                data_file_count=t["data_files"],
                small_file_count=t["small_files"],
                data_bytes=t["data_bytes"],
                record_count=t["records"],
                position_delete_file_count=t["pos_files"],
                equality_delete_file_count=t["eq_files"],
                # the partitions table merges specs whose structs are equal: the latest of them
                last_updated_ms=last_updated.get(values),
                spec_id=spec_id,
                current_spec=spec_id == current_spec,
                deletion_vector_count=t["dv_files"],
                updated_before_ms=oldest_ancestor_ms if last_updated.get(values) is None else None,
                fields=spec_fields.get(spec_id, ()) if spec_id is not None else (),
            )
            for (spec_id, values), t in sums.items()
        ),
        key=lambda p: (not p.current_spec, p.spec_id or 0, str(p.values)),
    )
    manifests = {int(r["content"]): (int(r["manifests"]), int(r["bytes"])) for r in manifest_rows}
    snapshots = tuple(_snapshot_point(r) for r in sorted(records, key=lambda r: r.committed_at_ms))
    return TableHealth(
        table=table,
        measured_at_ms=int(measured_at.timestamp() * 1000),
        current_snapshot_id=metadata.current_snapshot_id if records else None,
        target_file_size_bytes=target,
        small_file_threshold_bytes=small,
        data_file_count=sum(p.data_file_count for p in partitions),
        small_file_count=sum(p.small_file_count for p in partitions),
        data_bytes=sum(p.data_bytes for p in partitions),
        record_count=sum(p.record_count for p in partitions),
        position_delete_file_count=sum(p.position_delete_file_count for p in partitions),
        equality_delete_file_count=sum(p.equality_delete_file_count for p in partitions),
        deletion_vector_count=sum(p.deletion_vector_count for p in partitions),
        position_delete_record_count=sum(t["pos_records"] for t in sums.values()),
        equality_delete_record_count=sum(t["eq_records"] for t in sums.values()),
        delete_bytes=sum(t["delete_bytes"] for t in sums.values()),
        manifest_count=sum(n for n, _ in manifests.values()),
        delete_manifest_count=manifests.get(1, (0, 0))[0],
        manifest_bytes=sum(b for _, b in manifests.values()),
        snapshot_count=len(snapshots),
        oldest_snapshot_ms=snapshots[0].committed_at_ms if snapshots else None,
        partition_fields=spec_fields.get(current_spec, ()) if current_spec is not None else (),
        partition_spec_id=current_spec,
        partition_specs=MappingProxyType(spec_fields),
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
