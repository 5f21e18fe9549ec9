"""Health metrics measured on real tables built to have known values."""

from __future__ import annotations

import os
from dataclasses import replace
from datetime import datetime, timezone

import pytest

from lean_ops_spark.config import parse_maintenance
from lean_ops_spark.config.models import HealthThresholds
from lean_ops_spark.maintenance.health import measure_health
from lean_ops_spark.maintenance.procedures import RewriteDataFilesCall, RewriteDataFilesResult
from lean_ops_spark.maintenance.runner import MaintenanceRequest, maintain
from tests.spark.conftest_maintenance import add_equality_delete, live_files, new_namespace, table


def test_file_counts_sizes_small_files_and_snapshot_age(spark) -> None:
    ref = table(new_namespace(spark), "sized")
    spark.sql(f"CREATE TABLE {ref.sql} (id bigint, payload string) USING iceberg")
    for i in range(3):  # three one-row files: small
        spark.sql(f"INSERT INTO {ref.sql} VALUES ({i}, 'x')")
    # one file of ~200 KB (hex digests barely compress): big once the target is 64 KB
    spark.range(100, 3100, numPartitions=1).selectExpr(
        "id", "concat(sha2(cast(id AS string), 512), sha2(cast(-id AS string), 512)) AS payload"
    ).writeTo(ref.sql).append()
    spark.sql(f"ALTER TABLE {ref.sql} SET TBLPROPERTIES ('write.target-file-size-bytes'='65536')")

    first = spark.sql(f"SELECT min(committed_at) FROM {ref.metadata_table('snapshots')}").first()[0]
    oldest_ms = int(first.replace(tzinfo=timezone.utc).timestamp() * 1000)
    now = datetime.fromtimestamp((oldest_ms + 90 * 60_000) / 1000, tz=timezone.utc)
    health = measure_health(spark, ref, HealthThresholds(small_file_fraction=0.75), now=now)

    sizes = sorted(os.path.getsize(p) for p in live_files(spark, ref))  # the files on disk
    assert len(sizes) == 4 and sizes[-1] > 65536 > 49152 > sizes[-2]
    assert health.target_file_size_bytes == 65536
    assert health.small_file_threshold_bytes == 49152
    assert (health.data_file_count, health.small_file_count) == (4, 3)
    assert health.small_file_ratio == 0.75
    assert health.data_bytes == sum(sizes)
    assert health.avg_data_file_bytes == sum(sizes) / 4
    assert health.record_count == 3003
    assert (
        health.position_delete_file_count,
        health.equality_delete_file_count,
        health.delete_file_ratio,
    ) == (
        0,
        0,
        0.0,
    )
    assert (health.snapshot_count, health.manifest_count, health.delete_manifest_count) == (4, 4, 0)
    assert health.oldest_snapshot_age_hours == 1.5
    assert health.partition_fields == () and len(health.partitions) == 1
    assert health.partitions[0].label == "(unpartitioned)"
    histogram = dict(health.file_size_histogram)
    assert sum(histogram.values()) == 4
    big_bucket = max(histogram)
    assert big_bucket <= sizes[-1] < 2 * big_bucket and histogram[big_bucket] == 1
    assert [s.operation for s in health.snapshots] == ["append"] * 4
    assert [s.total_data_files for s in health.snapshots] == [1, 2, 3, 4]


def test_partitions_position_and_equality_deletes(spark, tmp_path) -> None:
    ref = table(new_namespace(spark), "deletes")
    spark.sql(
        f"CREATE TABLE {ref.sql} (id bigint, cat string) USING iceberg PARTITIONED BY (cat) TBLPROPERTIES "
        "('format-version'='2', 'write.delete.mode'='merge-on-read', 'write.update.mode'='merge-on-read')"
    )
    for i in range(1, 5):  # partition a: four two-row files (a one-row file would be dropped whole)
        spark.sql(f"INSERT INTO {ref.sql} VALUES ({i}, 'a'), ({i + 100}, 'a')")
    spark.sql(f"INSERT INTO {ref.sql} VALUES (10, 'b'), (11, 'b')")  # partition b: one file
    spark.sql(f"DELETE FROM {ref.sql} WHERE id = 1")  # one position delete file each
    spark.sql(f"DELETE FROM {ref.sql} WHERE id = 2")
    add_equality_delete(spark, ref, "id", 1, [3], tmp_path / "eq-delete.parquet", partition_path="cat=a")

    health = measure_health(spark, ref)

    assert (health.data_file_count, health.record_count) == (5, 10)
    assert (health.position_delete_file_count, health.equality_delete_file_count) == (2, 1)
    assert (health.position_delete_record_count, health.equality_delete_record_count) == (2, 1)
    assert health.delete_file_count == 3
    assert health.delete_file_ratio == 3 / 5
    assert health.delete_bytes > 0
    assert [(f.name, f.transform, f.source_column, f.source_type) for f in health.partition_fields] == [
        ("cat", "identity", "cat", "string")
    ]
    by_label = {p.label: p for p in health.partitions}
    assert set(by_label) == {"cat=a", "cat=b"}
    assert (by_label["cat=a"].data_file_count, by_label["cat=a"].delete_file_count) == (4, 3)
    assert (by_label["cat=b"].data_file_count, by_label["cat=b"].delete_file_count) == (1, 0)
    assert all(p.last_updated_ms is not None for p in health.partitions)
    # the partitions with the most small files come first (every file is small at the 512 MiB default)
    assert [p.label for p in health.top_small_file_partitions()] == ["cat=a", "cat=b"]
    assert health.delete_manifest_count == 3 and health.manifest_count == 5 + 3
    # the deletes are real: a read applies all three
    assert sorted(r["id"] for r in spark.table(ref.sql).collect()) == [4, 10, 11, 101, 102, 103, 104]


EVOLVED_POLICY = parse_maintenance({"thresholds": {"min_small_files": 2}}, "evolved.yaml")


@pytest.mark.parametrize(
    ("first_spec", "old_label", "where"),
    [
        ("", "(unpartitioned, older spec 0)", None),  # nothing selects them but the whole table
        ("PARTITIONED BY (cat)", "cat=a (older spec 0)", "(cat = 'a')"),  # their own spec's field
    ],
)
def test_files_written_before_partition_evolution_are_compacted(
    spark, project_config, first_spec: str, old_label: str, where: str | None
) -> None:
    ref = table(new_namespace(spark), "evolved", layer="raw")
    spark.sql(f"CREATE TABLE {ref.sql} (id bigint, ts timestamp, cat string) USING iceberg {first_spec}")
    for i in range(4):  # four one-row files over two days, written before the evolution
        spark.sql(f"INSERT INTO {ref.sql} VALUES ({i}, TIMESTAMP '2026-11-0{1 + i % 2} 10:00:00Z', 'a')")
    spark.sql(f"ALTER TABLE {ref.sql} ADD PARTITION FIELD days(ts)")
    spark.sql(f"INSERT INTO {ref.sql} VALUES (9, TIMESTAMP '2026-11-03 10:00:00Z', 'b')")  # current spec
    rows = sorted(tuple(r) for r in spark.table(ref.sql).collect())

    health = measure_health(spark, ref)

    by_label = {p.label: p for p in health.partitions}
    assert set(by_label) == {old_label, "ts_day=2026-11-03" if not first_spec else "cat=b/ts_day=2026-11-03"}
    assert by_label[old_label].data_file_count == 4 and not by_label[old_label].current_spec
    assert health.partition_spec_id == 1 and health.older_spec_data_file_count == 4
    assert [f.name for f in health.partition_fields] == (["cat", "ts_day"] if first_spec else ["ts_day"])

    config = replace(project_config, maintenance=EVOLVED_POLICY)
    request = MaintenanceRequest(ops=frozenset({"rewrite_data_files"}))
    result = maintain(spark, config, request, tables=[ref]).table(ref.sql)

    compaction = result.operation("rewrite_data_files")
    assert compaction.status == "succeeded"
    assert compaction.plan.scope == (old_label,)
    assert isinstance(compaction.plan.call, RewriteDataFilesCall) and compaction.plan.call.where == where
    assert "written with an older partition spec (0)" in compaction.plan.reason
    assert compaction.outcome is not None and isinstance(compaction.outcome.result, RewriteDataFilesResult)
    assert compaction.outcome.result.rewritten_data_files == 4  # every file of the older spec
    after = measure_health(spark, ref)
    assert after.older_spec_data_file_count == 0
    assert all(p.current_spec for p in after.partitions)
    assert {p.label for p in after.partitions} == (
        {"ts_day=2026-11-01", "ts_day=2026-11-02", "ts_day=2026-11-03"}
        if not first_spec
        else {"cat=a/ts_day=2026-11-01", "cat=a/ts_day=2026-11-02", "cat=b/ts_day=2026-11-03"}
    )
    assert sorted(tuple(r) for r in spark.table(ref.sql).collect()) == rows
