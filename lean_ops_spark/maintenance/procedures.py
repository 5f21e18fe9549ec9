"""Iceberg maintenance procedures: CALL text from typed specs, and typed results from their output.

Every argument of an Iceberg ``CALL`` must be a literal, so the SQL is built here from
validated values only (identifiers checked by ``TableRef``, strings escaped, timestamps as
UTC literals) and unit-tested as text. :func:`run_procedure` runs one call and turns its
output row into a typed result, or a failure into a typed outcome: a commit conflict with a
concurrent writer is a ``conflict`` outcome (the next run retries), never a crash.

Output columns differ between Iceberg versions (``removed_delete_files_count`` of
``rewrite_data_files`` exists from 1.10 only); parsers read columns by name and treat the
newer ones as optional.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, ClassVar

from lean_ops_spark.catalog.naming import TableRef
from lean_ops_spark.catalog.schemas import collected_timestamp_literal, sql_string
from lean_ops_spark.errors import MaintenanceError
from lean_ops_spark.maintenance.health import PartitionField, PartitionHealth, PartitionValue

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

__all__ = [
    "MAX_WHERE_PARTITIONS",
    "ORPHAN_MIN_AGE",
    "ExpireSnapshotsCall",
    "ExpireSnapshotsResult",
    "ProcedureCall",
    "ProcedureOutcome",
    "ProcedureResult",
    "RemoveOrphanFilesCall",
    "RemoveOrphanFilesResult",
    "RewriteDataFilesCall",
    "RewriteDataFilesResult",
    "RewriteManifestsCall",
    "RewriteManifestsResult",
    "RewritePositionDeletesCall",
    "RewritePositionDeletesResult",
    "iceberg_runtime_version",
    "is_commit_conflict",
    "partition_predicate",
    "partitions_predicate",
    "run_procedure",
    "timestamp_literal",
]

#: remove_orphan_files refuses a younger ``older_than`` (Iceberg does too, unless spark.testing).
ORPHAN_MIN_AGE = timedelta(hours=24)
#: Beyond this many partitions, compaction is not restricted by a ``where`` (the OR gets silly).
MAX_WHERE_PARTITIONS = 100

# --------------------------------------------------------------------------- literals


def timestamp_literal(moment: datetime) -> str:
    """``TIMESTAMP '2026-11-01 12:00:00.123Z'``: an absolute instant, whatever the session zone.

    Raises:
        MaintenanceError: a naive datetime (its instant would depend on the session zone).
    """
    if moment.tzinfo is None:
        raise MaintenanceError(f"timestamp {moment!r} has no time zone; use an aware (UTC) datetime")
    utc = moment.astimezone(timezone.utc)
    return f"TIMESTAMP '{utc.strftime('%Y-%m-%d %H:%M:%S')}.{utc.microsecond // 1000:03d}Z'"


def _map_literal(options: Mapping[str, str]) -> str:
    pairs = ", ".join(f"{sql_string(k)}, {sql_string(v)}" for k, v in sorted(options.items()))
    return f"map({pairs})"


def _call(table: TableRef, procedure: str, arguments: Sequence[tuple[str, str | None]]) -> str:
    args = [f"table => {sql_string(table.identifier)}"]
    args.extend(f"{name} => {value}" for name, value in arguments if value is not None)
    return f"CALL {table.catalog}.system.{procedure}({', '.join(args)})"


# --------------------------------------------------------------------------- partition predicates


def _value_literal(value: PartitionValue, spark_type: str | None) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float, Decimal)):
        return repr(value) if isinstance(value, float) else str(value)
    if isinstance(value, datetime):  # collected from the partitions table
        return collected_timestamp_literal(value, spark_type)
    if isinstance(value, date):
        return f"DATE '{value.isoformat()}'"
    return sql_string(str(value))


def _range(column: str, spark_type: str | None, start: datetime, end: datetime) -> str | None:
    if spark_type == "date":
        return f"{column} >= DATE '{start.date().isoformat()}' AND {column} < DATE '{end.date().isoformat()}'"
    if spark_type == "timestamp":
        return f"{column} >= {timestamp_literal(start)} AND {column} < {timestamp_literal(end)}"
    if spark_type == "timestamp_ntz":
        fmt = "%Y-%m-%d %H:%M:%S"
        return f"{column} >= TIMESTAMP_NTZ '{start.strftime(fmt)}' AND {column} < TIMESTAMP_NTZ '{end.strftime(fmt)}'"
    return None


def _add_months(months_since_epoch: int) -> datetime:
    year, month = divmod(months_since_epoch, 12)
    return datetime(1970 + year, month + 1, 1, tzinfo=timezone.utc)


_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


def _field_predicate(spec: PartitionField, value: PartitionValue) -> str | None:
    column = spec.source_column
    if column is None:
        return None
    if value is None:
        return f"{column} IS NULL" if spec.transform in ("identity", "year", "month", "day", "hour") else None
    if spec.transform == "identity":
        literal = _value_literal(value, spec.source_type)
        return None if literal is None else f"{column} = {literal}"
    if spec.transform == "day" and isinstance(value, (date, int)):
        day = value if isinstance(value, date) else (_EPOCH + timedelta(days=value)).date()
        start = datetime(day.year, day.month, day.day, tzinfo=timezone.utc)
        if spec.source_type == "date":
            return f"{column} = DATE '{day.isoformat()}'"
        return _range(column, spec.source_type, start, start + timedelta(days=1))
    if isinstance(value, bool) or not isinstance(value, int):
        return None
    if spec.transform == "hour":
        start = _EPOCH + timedelta(hours=value)
        return _range(column, spec.source_type, start, start + timedelta(hours=1))
    if spec.transform == "month":
        return _range(column, spec.source_type, _add_months(value), _add_months(value + 1))
    if spec.transform == "year":
        return _range(column, spec.source_type, _add_months(12 * value), _add_months(12 * (value + 1)))
    return None  # bucket, truncate, unknown: not expressible as a source-column filter


def partition_predicate(fields: Sequence[PartitionField], partition: PartitionHealth) -> str | None:
    """A filter on source columns that selects exactly ``partition`` (None if inexpressible).

    ``fields`` are those of the spec ``partition`` was written with; a partition that does not
    name each of them is of another spec (None). Time transforms become half-open UTC ranges
    (``days(ts)`` = 2026-11-01 -> ``ts >= TIMESTAMP '2026-11-01 00:00:00.000Z' AND ts <
    TIMESTAMP '2026-11-02 ...'``), so Iceberg can project them onto the partition.
    """
    by_name = {f.name: f for f in fields}
    if {name for name, _ in partition.values} != set(by_name):
        return None
    parts = []
    for name, value in partition.values:
        predicate = _field_predicate(by_name[name], value)
        if predicate is None:
            return None
        parts.append(predicate)
    if not parts:
        return None
    return " AND ".join(f"({p})" for p in parts) if len(parts) > 1 else parts[0]


def partitions_predicate(
    fields: Sequence[PartitionField],
    partitions: Sequence[PartitionHealth],
    limit: int = MAX_WHERE_PARTITIONS,
    *,
    specs: Mapping[int, Sequence[PartitionField]] | None = None,
) -> str | None:
    """An OR of :func:`partition_predicate`; None (= whole table) if any is inexpressible or too many.

    ``fields`` are the current spec's. A partition of an older spec (``current_spec`` False,
    written before the partitioning evolved) is matched with that spec's own fields from
    ``specs`` (every spec's, by id): its rows satisfy that filter, so Iceberg selects its
    files (and current-spec files that satisfy it too). The current spec's fields would miss
    them: a field their spec lacks reads null, which their rows' columns are not. Without
    ``specs``, or for an unpartitioned older spec, the answer is None (whole table).
    """
    if not fields or not partitions or len(partitions) > limit:
        return None
    predicates = []
    for partition in sorted(partitions, key=lambda p: p.label):
        spec_id = partition.spec_id
        if partition.current_spec:
            spec_fields: Sequence[PartitionField] = fields
        elif specs is None or spec_id is None or spec_id not in specs:
            return None
        else:
            spec_fields = specs[spec_id]
        predicate = partition_predicate(spec_fields, partition)
        if predicate is None:
            return None
        predicates.append(predicate)
    return " OR ".join(f"({p})" for p in predicates)


# --------------------------------------------------------------------------- calls


@dataclass(frozen=True)
class ExpireSnapshotsCall:
    """``expire_snapshots``: older than ``older_than`` AND not among the last ``retain_last``."""

    name: ClassVar[str] = "expire_snapshots"
    older_than: datetime
    retain_last: int

    def __post_init__(self) -> None:
        if self.retain_last < 1:
            raise MaintenanceError(
                f"expire_snapshots: retain_last must be at least 1, got {self.retain_last}"
            )

    def sql(self, table: TableRef) -> str:
        return _call(
            table,
            self.name,
            [
                ("older_than", timestamp_literal(self.older_than)),
                ("retain_last", str(int(self.retain_last))),
                # Summaries can be large on busy tables: stream instead of collecting on the driver.
                ("stream_results", "true"),
            ],
        )


@dataclass(frozen=True)
class RewriteDataFilesCall:
    """``rewrite_data_files`` (binpack) restricted by ``where``, with Iceberg ``options``."""

    name: ClassVar[str] = "rewrite_data_files"
    where: str | None = None
    options: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))

    def sql(self, table: TableRef) -> str:
        return _call(
            table,
            self.name,
            [
                ("strategy", "'binpack'"),
                ("options", _map_literal(self.options) if self.options else None),
                ("where", sql_string(self.where) if self.where else None),
            ],
        )


@dataclass(frozen=True)
class RewriteManifestsCall:
    """``rewrite_manifests``: cluster the current snapshot's manifests by partition."""

    name: ClassVar[str] = "rewrite_manifests"

    def sql(self, table: TableRef) -> str:
        return _call(table, self.name, [("use_caching", "false")])


@dataclass(frozen=True)
class RewritePositionDeletesCall:
    """``rewrite_position_delete_files``: merge small position delete files, drop dangling ones."""

    name: ClassVar[str] = "rewrite_position_delete_files"
    where: str | None = None
    options: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))

    def sql(self, table: TableRef) -> str:
        return _call(
            table,
            self.name,
            [
                ("options", _map_literal(self.options) if self.options else None),
                ("where", sql_string(self.where) if self.where else None),
            ],
        )


@dataclass(frozen=True)
class RemoveOrphanFilesCall:
    """``remove_orphan_files`` with ``prefix_mismatch_mode => 'ERROR'`` and a 24 h floor.

    ``planned_at`` is when the call was planned: ``older_than`` must be at least 24 hours
    before it (72 h by default policy), or construction fails.
    """

    name: ClassVar[str] = "remove_orphan_files"
    older_than: datetime
    planned_at: datetime
    dry_run: bool = False

    def __post_init__(self) -> None:
        if self.older_than.tzinfo is None or self.planned_at.tzinfo is None:
            raise MaintenanceError("remove_orphan_files: older_than and planned_at must be time-zone aware")
        if self.older_than > self.planned_at - ORPHAN_MIN_AGE:
            hours = (self.planned_at - self.older_than).total_seconds() / 3600
            raise MaintenanceError(
                f"remove_orphan_files: older_than is only {hours:.1f} h before now; refusing less than "
                "24 h (files of writes still in flight would be deleted; 72 h is the production floor)"
            )

    def sql(self, table: TableRef) -> str:
        return _call(
            table,
            self.name,
            [
                ("older_than", timestamp_literal(self.older_than)),
                ("dry_run", "true" if self.dry_run else "false"),
                # Never IGNORE/DELETE: a scheme or authority mismatch (s3 vs s3a) must stop the run.
                ("prefix_mismatch_mode", "'ERROR'"),
            ],
        )


ProcedureCall = (
    ExpireSnapshotsCall
    | RewriteDataFilesCall
    | RewriteManifestsCall
    | RewritePositionDeletesCall
    | RemoveOrphanFilesCall
)

# --------------------------------------------------------------------------- results


def _column(row: Mapping[str, Any], column: str, procedure: str) -> int:
    if column not in row:
        raise MaintenanceError(
            f"{procedure}: output has no column {column!r} (got {', '.join(sorted(row))}); "
            "unsupported Iceberg version?"
        )
    value = row[column]
    return 0 if value is None else int(value)


def _single_row(rows: Sequence[Mapping[str, Any]], procedure: str) -> Mapping[str, Any]:
    if len(rows) != 1:
        raise MaintenanceError(f"{procedure}: expected one output row, got {len(rows)}")
    return rows[0]


@dataclass(frozen=True)
class ExpireSnapshotsResult:
    deleted_data_files: int
    deleted_position_delete_files: int
    deleted_equality_delete_files: int
    deleted_manifest_files: int
    deleted_manifest_lists: int
    deleted_statistics_files: int
    snapshots_expired: int = 0

    @classmethod
    def parse(cls, rows: Sequence[Mapping[str, Any]], snapshots_expired: int = 0) -> ExpireSnapshotsResult:
        row = _single_row(rows, "expire_snapshots")
        name = "expire_snapshots"
        return cls(
            deleted_data_files=_column(row, "deleted_data_files_count", name),
            deleted_position_delete_files=_column(row, "deleted_position_delete_files_count", name),
            deleted_equality_delete_files=_column(row, "deleted_equality_delete_files_count", name),
            deleted_manifest_files=_column(row, "deleted_manifest_files_count", name),
            deleted_manifest_lists=_column(row, "deleted_manifest_lists_count", name),
            deleted_statistics_files=int(row.get("deleted_statistics_files_count") or 0),
            snapshots_expired=snapshots_expired,
        )

    @property
    def files_deleted(self) -> int:
        return (
            self.deleted_data_files
            + self.deleted_position_delete_files
            + self.deleted_equality_delete_files
            + self.deleted_manifest_files
            + self.deleted_manifest_lists
            + self.deleted_statistics_files
        )

    def summary(self) -> str:
        return (
            f"{self.snapshots_expired} snapshots expired; deleted {self.deleted_data_files} data, "
            f"{self.deleted_position_delete_files + self.deleted_equality_delete_files} delete, "
            f"{self.deleted_manifest_files} manifest and {self.deleted_manifest_lists} manifest-list files"
        )

    def metrics(self) -> tuple[tuple[str, float, str], ...]:
        return (
            ("SnapshotsExpired", self.snapshots_expired, "Count"),
            ("FilesDeleted", self.files_deleted, "Count"),
            ("DataFilesDeleted", self.deleted_data_files, "Count"),
        )


@dataclass(frozen=True)
class RewriteDataFilesResult:
    rewritten_data_files: int
    added_data_files: int
    rewritten_bytes: int
    failed_data_files: int
    #: Delete files the rewrite made obsolete; None on Iceberg < 1.10 (no such column).
    removed_delete_files: int | None

    @classmethod
    def parse(cls, rows: Sequence[Mapping[str, Any]]) -> RewriteDataFilesResult:
        row = _single_row(rows, "rewrite_data_files")
        name = "rewrite_data_files"
        removed = row.get("removed_delete_files_count")
        return cls(
            rewritten_data_files=_column(row, "rewritten_data_files_count", name),
            added_data_files=_column(row, "added_data_files_count", name),
            rewritten_bytes=_column(row, "rewritten_bytes_count", name),
            failed_data_files=_column(row, "failed_data_files_count", name),
            removed_delete_files=None if removed is None else int(removed),
        )

    def summary(self) -> str:
        text = (
            f"rewrote {self.rewritten_data_files} data files ({self.rewritten_bytes / 1e6:.2f} MB) "
            f"into {self.added_data_files}"
        )
        if self.removed_delete_files:
            text += f", removed {self.removed_delete_files} delete files"
        if self.failed_data_files:
            text += f", {self.failed_data_files} files failed"
        return text

    def metrics(self) -> tuple[tuple[str, float, str], ...]:
        out: list[tuple[str, float, str]] = [
            ("FilesRewritten", self.rewritten_data_files, "Count"),
            ("FilesAdded", self.added_data_files, "Count"),
            ("BytesRewritten", self.rewritten_bytes, "Bytes"),
            ("FilesFailed", self.failed_data_files, "Count"),
        ]
        if self.removed_delete_files is not None:
            out.append(("DeleteFilesRemoved", self.removed_delete_files, "Count"))
        return tuple(out)


@dataclass(frozen=True)
class RewriteManifestsResult:
    rewritten_manifests: int
    added_manifests: int

    @classmethod
    def parse(cls, rows: Sequence[Mapping[str, Any]]) -> RewriteManifestsResult:
        row = _single_row(rows, "rewrite_manifests")
        return cls(
            rewritten_manifests=_column(row, "rewritten_manifests_count", "rewrite_manifests"),
            added_manifests=_column(row, "added_manifests_count", "rewrite_manifests"),
        )

    def summary(self) -> str:
        return f"rewrote {self.rewritten_manifests} manifests into {self.added_manifests}"

    def metrics(self) -> tuple[tuple[str, float, str], ...]:
        return (
            ("ManifestsRewritten", self.rewritten_manifests, "Count"),
            ("ManifestsAdded", self.added_manifests, "Count"),
        )


@dataclass(frozen=True)
class RewritePositionDeletesResult:
    rewritten_delete_files: int
    added_delete_files: int
    rewritten_bytes: int
    added_bytes: int

    @classmethod
    def parse(cls, rows: Sequence[Mapping[str, Any]]) -> RewritePositionDeletesResult:
        row = _single_row(rows, "rewrite_position_delete_files")
        name = "rewrite_position_delete_files"
        return cls(
            rewritten_delete_files=_column(row, "rewritten_delete_files_count", name),
            added_delete_files=_column(row, "added_delete_files_count", name),
            rewritten_bytes=_column(row, "rewritten_bytes_count", name),
            added_bytes=_column(row, "added_bytes_count", name),
        )

    def summary(self) -> str:
        return f"rewrote {self.rewritten_delete_files} position delete files into {self.added_delete_files}"

    def metrics(self) -> tuple[tuple[str, float, str], ...]:
        return (
            ("DeleteFilesRewritten", self.rewritten_delete_files, "Count"),
            ("DeleteFilesAdded", self.added_delete_files, "Count"),
            ("BytesRewritten", self.rewritten_bytes, "Bytes"),
        )


@dataclass(frozen=True)
class RemoveOrphanFilesResult:
    orphan_files: tuple[str, ...]
    dry_run: bool

    @classmethod
    def parse(cls, rows: Sequence[Mapping[str, Any]], dry_run: bool) -> RemoveOrphanFilesResult:
        for row in rows:
            if "orphan_file_location" not in row:
                raise MaintenanceError("remove_orphan_files: output has no column 'orphan_file_location'")
        return cls(tuple(sorted(str(r["orphan_file_location"]) for r in rows)), dry_run)

    def summary(self) -> str:
        verb = "would delete" if self.dry_run else "deleted"
        return f"{verb} {len(self.orphan_files)} orphan files"

    def metrics(self) -> tuple[tuple[str, float, str], ...]:
        return (
            ("OrphanFilesFound" if self.dry_run else "OrphanFilesDeleted", len(self.orphan_files), "Count"),
        )


ProcedureResult = (
    ExpireSnapshotsResult
    | RewriteDataFilesResult
    | RewriteManifestsResult
    | RewritePositionDeletesResult
    | RemoveOrphanFilesResult
)


@dataclass(frozen=True)
class ProcedureOutcome:
    """What happened when one procedure ran.

    ``status``: ``succeeded``; ``conflict`` (a commit lost to a concurrent writer: nothing
    is corrupted, groups that committed stay, the next run retries); ``failed``.
    """

    operation: str
    status: str
    seconds: float
    sql: str
    result: ProcedureResult | None = None
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.status == "succeeded"

    def summary(self) -> str:
        if self.result is not None:
            return self.result.summary()
        return (self.error or self.status).splitlines()[0]

    def as_dict(self) -> dict[str, Any]:
        return {
            "operation": self.operation,
            "status": self.status,
            "seconds": round(self.seconds, 3),
            "sql": self.sql,
            "result": None if self.result is None else asdict(self.result),
            "summary": self.summary(),
            "error": self.error,
        }


# --------------------------------------------------------------------------- running

#: Messages of lost commit races: a concurrent writer changed what the commit was based on
#: (CommitFailedException; the ValidationExceptions of Iceberg's conflict checks; the
#: partial-progress summary of failed group commits). Any other ValidationException is a
#: precondition that will fail again (GC disabled, orphan files that cannot be told apart
#: because of a scheme or authority mismatch): a failure, not a conflict.
_CONFLICT_MARKERS = (
    "CommitFailedException",
    "Cannot commit, ",  # "…, missing data files", "…, found new delete for replaced data file"
    "Found conflicting files",
    "Found new conflicting delete files",
    "found new delete",
    "found new position delete",
    "Missing required files to delete",
    "rewrite commits failed",
)
#: Preconditions that never clear by themselves, whatever else the message says.
_NEVER_CONFLICTS = ("Unable to determine whether certain files are orphan", "GC is disabled")
_default_catalog_lock = threading.Lock()


def is_commit_conflict(message: str) -> bool:
    """Whether an error message is a lost commit race (retry next run), not a real failure."""
    if any(marker in message for marker in _NEVER_CONFLICTS):
        return False
    return any(marker in message for marker in _CONFLICT_MARKERS)


@contextmanager
def _procedure_session(spark: SparkSession, catalog: str) -> Iterator[None]:
    """Run a CALL with the session's default catalog moved off ``catalog``.

    Iceberg actions clone the session; if the default catalog is the JDBC ``lake``, the
    clone initialises a second JdbcCatalog, whose start-up leaves a metadata query open
    on its SQLite connection. That read lock makes every later commit of the session fail
    with SQLITE_BUSY. The CALL names its catalog and table explicitly, so it does not need
    the default; other threads' SQL keeps working as long as it names its catalog too.
    """
    key = "spark.sql.defaultCatalog"
    with _default_catalog_lock:
        previous = spark.conf.get(key, None)
        if previous != catalog:
            yield
            return
        spark.conf.set(key, "spark_catalog")
        try:
            yield
        finally:
            spark.conf.set(key, previous)


def iceberg_runtime_version(spark: SparkSession) -> tuple[int, ...] | None:
    """The Iceberg version the session actually runs (``IcebergBuild``), e.g. (1, 7, 1) on Glue 5.0.

    None when it cannot be read (no Iceberg runtime, or not a JVM session).
    """
    jvm = spark.sparkContext._jvm
    if jvm is None:
        return None
    try:
        text = str(jvm.org.apache.iceberg.IcebergBuild.version())
    except Exception:
        return None
    match = re.match(r"(\d+)\.(\d+)(?:\.(\d+))?", text)
    if match is None:
        return None
    return tuple(int(part) for part in match.groups() if part is not None)


def _snapshot_ids(spark: SparkSession, table: TableRef) -> set[int]:
    return {
        int(r["snapshot_id"])
        for r in spark.sql(f"SELECT snapshot_id FROM {table.metadata_table('snapshots')}").collect()
    }


def run_procedure(spark: SparkSession, table: TableRef, call: ProcedureCall) -> ProcedureOutcome:
    """Run ``call`` on ``table`` and parse its output (runs Spark jobs; commits to the table).

    Returns a ``conflict`` or ``failed`` outcome instead of raising when the procedure
    itself fails.

    Raises:
        MaintenanceError: the output has an unexpected shape (unsupported Iceberg version).
    """
    sql = call.sql(table)
    started = time.monotonic()
    before: set[int] = set()
    try:
        if isinstance(call, ExpireSnapshotsCall):
            before = _snapshot_ids(spark, table)
        with _procedure_session(spark, table.catalog):
            rows = [r.asDict() for r in spark.sql(sql).collect()]
        spark.sql(f"REFRESH TABLE {table.sql}")
    except Exception as exc:
        message = str(exc)
        status = "conflict" if is_commit_conflict(message) else "failed"
        return ProcedureOutcome(call.name, status, time.monotonic() - started, sql, error=_trim(message))
    result: ProcedureResult
    if isinstance(call, ExpireSnapshotsCall):
        result = ExpireSnapshotsResult.parse(rows, len(before - _snapshot_ids(spark, table)))
    elif isinstance(call, RewriteDataFilesCall):
        result = RewriteDataFilesResult.parse(rows)
    elif isinstance(call, RewriteManifestsCall):
        result = RewriteManifestsResult.parse(rows)
    elif isinstance(call, RewritePositionDeletesCall):
        result = RewritePositionDeletesResult.parse(rows)
    else:
        result = RemoveOrphanFilesResult.parse(rows, call.dry_run)
    return ProcedureOutcome(call.name, "succeeded", time.monotonic() - started, sql, result)


def _trim(message: str, lines: int = 6) -> str:
    """The head of a (Java) error: enough to read the cause, without the whole stack."""
    kept = [line for line in message.strip().splitlines() if not line.lstrip().startswith("at ")]
    return "\n".join(kept[:lines])
