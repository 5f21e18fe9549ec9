"""CALL text built from literals only, partition predicates, and typed results from each
Iceberg version's output columns (no Spark)."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

import pytest

from lean_ops_spark.catalog.naming import TableRef
from lean_ops_spark.errors import MaintenanceError
from lean_ops_spark.maintenance.health import PartitionField, PartitionHealth
from lean_ops_spark.maintenance.procedures import (
    ExpireSnapshotsCall,
    ExpireSnapshotsResult,
    ProcedureOutcome,
    RemoveOrphanFilesCall,
    RemoveOrphanFilesResult,
    RewriteDataFilesCall,
    RewriteDataFilesResult,
    RewriteManifestsCall,
    RewriteManifestsResult,
    RewritePositionDeletesCall,
    RewritePositionDeletesResult,
    is_commit_conflict,
    partition_predicate,
    partitions_predicate,
    timestamp_literal,
)

TABLE = TableRef("lake", "curated", "orders", "curated", "orders")
NOW = datetime(2026, 11, 20, 12, 0, 0, 123456, tzinfo=timezone.utc)


def test_timestamp_literal_is_an_absolute_utc_instant() -> None:
    assert timestamp_literal(NOW) == "TIMESTAMP '2026-11-20 12:00:00.123Z'"
    paris = timezone(timedelta(hours=1))
    assert (
        timestamp_literal(datetime(2026, 11, 20, 13, 0, tzinfo=paris))
        == "TIMESTAMP '2026-11-20 12:00:00.000Z'"
    )
    with pytest.raises(MaintenanceError, match="no time zone"):
        timestamp_literal(datetime(2026, 11, 20))


def test_expire_snapshots_sql() -> None:
    sql = ExpireSnapshotsCall(older_than=NOW, retain_last=20).sql(TABLE)
    assert sql == (
        "CALL lake.system.expire_snapshots(table => 'curated.orders', "
        "older_than => TIMESTAMP '2026-11-20 12:00:00.123Z', retain_last => 20, stream_results => true)"
    )
    with pytest.raises(MaintenanceError, match="retain_last must be at least 1"):
        ExpireSnapshotsCall(older_than=NOW, retain_last=0)


def test_rewrite_data_files_sql_escapes_the_where_string() -> None:
    call = RewriteDataFilesCall(
        where="ts >= TIMESTAMP '2026-11-20 00:00:00.000Z' AND note = 'it''s'",
        options={"partial-progress.enabled": "true", "min-input-files": "5"},
    )
    assert call.sql(TABLE) == (
        "CALL lake.system.rewrite_data_files(table => 'curated.orders', strategy => 'binpack', "
        "options => map('min-input-files', '5', 'partial-progress.enabled', 'true'), "
        "where => 'ts >= TIMESTAMP \\'2026-11-20 00:00:00.000Z\\' AND note = \\'it\\'\\'s\\'')"
    )
    assert RewriteDataFilesCall().sql(TABLE) == (
        "CALL lake.system.rewrite_data_files(table => 'curated.orders', strategy => 'binpack')"
    )


def test_manifest_and_position_delete_sql() -> None:
    assert RewriteManifestsCall().sql(TABLE) == (
        "CALL lake.system.rewrite_manifests(table => 'curated.orders', use_caching => false)"
    )
    assert RewritePositionDeletesCall(options={"partial-progress.enabled": "true"}).sql(TABLE) == (
        "CALL lake.system.rewrite_position_delete_files(table => 'curated.orders', "
        "options => map('partial-progress.enabled', 'true'))"
    )


def test_remove_orphan_files_sql_always_errors_on_prefix_mismatch() -> None:
    call = RemoveOrphanFilesCall(older_than=NOW - timedelta(hours=72), planned_at=NOW, dry_run=True)
    assert call.sql(TABLE) == (
        "CALL lake.system.remove_orphan_files(table => 'curated.orders', "
        "older_than => TIMESTAMP '2026-11-17 12:00:00.123Z', dry_run => true, prefix_mismatch_mode => 'ERROR')"
    )
    assert "dry_run => false" in RemoveOrphanFilesCall(NOW - timedelta(days=3), NOW).sql(TABLE)


@pytest.mark.parametrize("hours", [0, 1, 23.9])
def test_remove_orphan_files_refuses_less_than_24_hours(hours: float) -> None:
    with pytest.raises(MaintenanceError, match="refusing less than 24 h"):
        RemoveOrphanFilesCall(older_than=NOW - timedelta(hours=hours), planned_at=NOW)
    RemoveOrphanFilesCall(older_than=NOW - timedelta(hours=24), planned_at=NOW)  # the floor itself is fine


def _part(*values: tuple[str, object]) -> PartitionHealth:
    return PartitionHealth(values=values, data_file_count=1, small_file_count=1, data_bytes=1, record_count=1)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("field", "value", "expected"),
    [
        (
            PartitionField("ts_day", "day", "ts", "timestamp"),
            date(2026, 11, 1),
            "ts >= TIMESTAMP '2026-11-01 00:00:00.000Z' AND ts < TIMESTAMP '2026-11-02 00:00:00.000Z'",
        ),
        (PartitionField("d_day", "day", "d", "date"), date(2026, 11, 1), "d = DATE '2026-11-01'"),
        (
            PartitionField("ts_hour", "hour", "ts", "timestamp"),
            498197,  # hours since epoch: what Iceberg stored for 2026-11-01 05:30 UTC
            "ts >= TIMESTAMP '2026-11-01 05:00:00.000Z' AND ts < TIMESTAMP '2026-11-01 06:00:00.000Z'",
        ),
        (
            PartitionField("d_month", "month", "d", "date"),
            682,  # months since 1970-01: what Iceberg stored for 2026-11-01
            "d >= DATE '2026-11-01' AND d < DATE '2026-12-01'",
        ),
        (
            PartitionField("ts_year", "year", "ts", "timestamp"),
            56,
            "ts >= TIMESTAMP '2026-01-01 00:00:00.000Z' AND ts < TIMESTAMP '2027-01-01 00:00:00.000Z'",
        ),
        (PartitionField("s", "identity", "s", "string"), "o'k", "s = 'o\\'k'"),
        (PartitionField("n", "identity", "n", "int"), 7, "n = 7"),
        (PartitionField("s", "identity", "s", "string"), None, "s IS NULL"),
        (PartitionField("id_bucket", "bucket", "id", "bigint"), 3, None),
        (PartitionField("x", "unknown", None, None), 3, None),
    ],
)
def test_partition_predicate_per_transform(
    field: PartitionField, value: object, expected: str | None
) -> None:
    assert partition_predicate([field], _part((field.name, value))) == expected


def test_partitions_predicate_ors_partitions_and_gives_up_when_it_must() -> None:
    s = PartitionField("s", "identity", "s", "string")
    d = PartitionField("d_day", "day", "d", "date")
    a = _part(("s", "a"), ("d_day", date(2026, 11, 1)))
    b = _part(("s", "b"), ("d_day", date(2026, 11, 2)))
    assert partitions_predicate([s, d], [b, a]) == (
        "((s = 'a') AND (d = DATE '2026-11-01')) OR ((s = 'b') AND (d = DATE '2026-11-02'))"
    )
    assert partitions_predicate([s, d], [a, b], limit=1) is None  # too many: whole table
    bucket = PartitionField("id_bucket", "bucket", "id", "bigint")
    assert partitions_predicate([s, bucket], [_part(("s", "a"), ("id_bucket", 1))]) is None
    assert partitions_predicate([], [a]) is None


V1_7_REWRITE = {
    "rewritten_data_files_count": 12,
    "added_data_files_count": 2,
    "rewritten_bytes_count": 12345,
    "failed_data_files_count": 0,
}


def test_rewrite_data_files_result_on_1_7_has_no_removed_delete_count() -> None:
    result = RewriteDataFilesResult.parse([V1_7_REWRITE])
    assert result == RewriteDataFilesResult(12, 2, 12345, 0, None)
    assert ("DeleteFilesRemoved", 3, "Count") not in result.metrics()
    assert "rewrote 12 data files" in result.summary()


def test_rewrite_data_files_result_on_1_10_counts_removed_delete_files() -> None:
    result = RewriteDataFilesResult.parse([{**V1_7_REWRITE, "removed_delete_files_count": 3}])
    assert result.removed_delete_files == 3
    assert ("DeleteFilesRemoved", 3, "Count") in result.metrics()
    assert "removed 3 delete files" in result.summary()


def test_a_missing_required_column_is_a_clear_error() -> None:
    with pytest.raises(
        MaintenanceError, match=r"no column 'rewritten_bytes_count'.*unsupported Iceberg version"
    ):
        RewriteDataFilesResult.parse([{"rewritten_data_files_count": 1, "added_data_files_count": 1}])
    with pytest.raises(MaintenanceError, match="expected one output row, got 0"):
        RewriteManifestsResult.parse([])


def test_other_results_parse_their_columns() -> None:
    expire = ExpireSnapshotsResult.parse(
        [
            {
                "deleted_data_files_count": 4,
                "deleted_position_delete_files_count": 1,
                "deleted_equality_delete_files_count": 0,
                "deleted_manifest_files_count": 3,
                "deleted_manifest_lists_count": 5,
                "deleted_statistics_files_count": 0,
            }
        ],
        snapshots_expired=5,
    )
    assert (expire.snapshots_expired, expire.files_deleted) == (5, 13)
    assert ("SnapshotsExpired", 5, "Count") in expire.metrics()
    manifests = RewriteManifestsResult.parse([{"rewritten_manifests_count": 40, "added_manifests_count": 1}])
    assert manifests.summary() == "rewrote 40 manifests into 1"
    deletes = RewritePositionDeletesResult.parse(
        [
            {
                "rewritten_delete_files_count": 9,
                "added_delete_files_count": 1,
                "rewritten_bytes_count": 900,
                "added_bytes_count": 100,
            }
        ]
    )
    assert deletes == RewritePositionDeletesResult(9, 1, 900, 100)
    orphans = RemoveOrphanFilesResult.parse(
        [{"orphan_file_location": "file:/w/b"}, {"orphan_file_location": "file:/w/a"}], dry_run=True
    )
    assert orphans.orphan_files == ("file:/w/a", "file:/w/b")
    assert orphans.summary() == "would delete 2 orphan files"
    assert orphans.metrics() == (("OrphanFilesFound", 2, "Count"),)


@pytest.mark.parametrize(
    ("message", "conflict"),
    [
        (
            "org.apache.iceberg.exceptions.ValidationException: Cannot commit, found new delete for replaced data file",
            True,
        ),
        ("CommitFailedException: Cannot commit x: metadata location has changed", True),
        (
            "partial-progress.enabled is true but 1 rewrite commits failed. This is more than the maximum allowed failures of 0",
            True,
        ),
        ("Missing required files to delete: file:/w/a.parquet", True),
        (
            "ValidationException: Found conflicting files that can contain records matching true: [s3://b/x.parquet]",
            True,
        ),
        ("ValidationException: Cannot commit, missing data files: [file:/w/a.parquet]", True),
        ("java.lang.OutOfMemoryError: Java heap space", False),
        ("AnalysisException: Table or view not found", False),
        # preconditions, not races: they fail again on every run and must surface as failures
        (
            "org.apache.iceberg.exceptions.ValidationException: Unable to determine whether certain files are "
            "orphan. Conflicting authorities/schemes: [(bucket, null), (s3, file)]",
            False,
        ),
        (
            "org.apache.iceberg.exceptions.ValidationException: Cannot expire snapshots: GC is disabled "
            "(deleting files may corrupt other tables)",
            False,
        ),
    ],
)
def test_commit_conflicts_are_told_apart_from_failures(message: str, conflict: bool) -> None:
    assert is_commit_conflict(message) is conflict


def test_outcome_summary_and_dict() -> None:
    outcome = ProcedureOutcome(
        "rewrite_data_files", "conflict", 1.5, "CALL ...", error="ValidationException: x\nmore"
    )
    assert not outcome.ok
    assert outcome.summary() == "ValidationException: x"
    assert outcome.as_dict()["status"] == "conflict"


def test_an_identity_timestamp_partition_is_matched_by_its_collected_instant(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # the partitions table's values come from collect(): naive, in this process's zone, to the
    # microsecond; the predicate must name that instant exactly or compaction misses the partition
    import time

    monkeypatch.setenv("TZ", "America/New_York")
    time.tzset()
    try:
        field = PartitionField("ts", "identity", "ts", "timestamp")
        collected = datetime(2026, 1, 1, 0, 0, 0, 250)  # 05:00:00.000250 UTC
        assert partition_predicate([field], _part(("ts", collected))) == (
            "ts = TIMESTAMP '2026-01-01 05:00:00.000250Z'"
        )
    finally:
        monkeypatch.undo()
        time.tzset()


def test_a_partition_of_an_older_spec_is_matched_by_that_specs_fields_or_not_at_all() -> None:
    # spec 0: identity(s); spec 1 (current): s, days(d). Spec 0's files have no d_day value: the
    # current fields would ask for `d IS NULL`, which their rows (with a d) do not satisfy.
    s = PartitionField("s", "identity", "s", "string")
    d = PartitionField("d_day", "day", "d", "date")
    current = _part(("s", "b"), ("d_day", date(2026, 11, 2)))
    older = PartitionHealth((("s", "a"),), 1, 1, 1, 1, spec_id=0, current_spec=False)
    specs = {0: (s,), 1: (s, d)}
    assert partitions_predicate([s, d], [current, older], specs=specs) == (
        "(s = 'a') OR ((s = 'b') AND (d = DATE '2026-11-02'))"
    )
    assert partitions_predicate([s, d], [older]) is None  # its spec's fields unknown: whole table
    assert partition_predicate([s, d], older) is None  # not a partition of these fields
    unpartitioned = PartitionHealth((), 1, 1, 1, 1, spec_id=0, current_spec=False)
    assert partitions_predicate([s, d], [current, unpartitioned], specs={0: (), 1: (s, d)}) is None
