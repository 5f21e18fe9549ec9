"""Health figures against the metadata tables, and decisions that must change the table.

Each decision here is run for real: a planned operation has to do what its reason says
(delete files it applies are gone afterwards, cold partitions are left alone, v3 deletion
vectors are not handed to a procedure that ignores them), on Iceberg 1.10 and 1.7.1.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from lean_ops_spark.catalog.naming import TableRef
from lean_ops_spark.config import ProjectConfig, parse_maintenance
from lean_ops_spark.maintenance.health import TableHealth, measure_health
from lean_ops_spark.maintenance.policy import PlanContext, plan_maintenance
from lean_ops_spark.maintenance.procedures import (
    RewriteDataFilesResult,
    RewritePositionDeletesResult,
    iceberg_runtime_version,
)
from lean_ops_spark.maintenance.runner import MaintenanceRequest, maintain
from tests.spark.conftest_maintenance import add_equality_delete, new_namespace, table

MOR = (
    "'format-version'='{v}', 'write.delete.mode'='merge-on-read', 'write.update.mode'='merge-on-read', "
    "'write.merge.mode'='merge-on-read'"
)


def _append_wide_rows(spark: Any, ref: TableRef, start: int, rows: int, extra: str) -> None:
    """One data file of ``rows`` rows of ~140 bytes each (hex digests barely compress)."""
    spark.range(start, start + rows, numPartitions=1).selectExpr(
        "id",
        *([extra] if extra else []),
        "concat(sha2(cast(id AS string), 512), sha2(cast(-id AS string), 512)) AS payload",
    ).writeTo(ref.sql).append()


def _truth(spark: Any, ref: TableRef, small: int) -> dict[str, int]:
    """The figures counted straight from the metadata tables."""
    t = ref.metadata_table
    data = spark.sql(
        f"SELECT count(*) n, coalesce(sum(file_size_in_bytes), 0) b, coalesce(sum(record_count), 0) r, "
        f"count_if(file_size_in_bytes < {small}) s FROM {t('data_files')}"
    ).first()
    deletes = spark.sql(
        "SELECT count_if(content = 1) p, count_if(content = 2) e, "
        "coalesce(sum(CASE WHEN content = 1 THEN record_count END), 0) pr, "
        "coalesce(sum(CASE WHEN content = 2 THEN record_count END), 0) er, "
        f"count_if(file_format = 'PUFFIN') dv FROM {t('delete_files')}"
    ).first()
    manifests = spark.sql(
        f"SELECT count(*) n, count_if(content = 1) d, coalesce(sum(length), 0) b FROM {t('manifests')}"
    ).first()
    return {
        "data_file_count": data["n"],
        "data_bytes": data["b"],
        "record_count": data["r"],
        "small_file_count": data["s"],
        "position_delete_file_count": deletes["p"],
        "equality_delete_file_count": deletes["e"],
        "position_delete_record_count": deletes["pr"],
        "equality_delete_record_count": deletes["er"],
        "deletion_vector_count": deletes["dv"],
        "manifest_count": manifests["n"],
        "delete_manifest_count": manifests["d"],
        "manifest_bytes": manifests["b"],
        "snapshot_count": spark.sql(f"SELECT count(*) FROM {t('snapshots')}").first()[0],
    }


def _measured(health: TableHealth) -> dict[str, int]:
    return {
        "data_file_count": health.data_file_count,
        "data_bytes": health.data_bytes,
        "record_count": health.record_count,
        "small_file_count": health.small_file_count,
        "position_delete_file_count": health.position_delete_file_count,
        "equality_delete_file_count": health.equality_delete_file_count,
        "position_delete_record_count": health.position_delete_record_count,
        "equality_delete_record_count": health.equality_delete_record_count,
        "deletion_vector_count": health.deletion_vector_count,
        "manifest_count": health.manifest_count,
        "delete_manifest_count": health.delete_manifest_count,
        "manifest_bytes": health.manifest_bytes,
        "snapshot_count": health.snapshot_count,
    }


def _ids(spark: Any, ref: TableRef) -> list[int]:
    return sorted(r["id"] for r in spark.table(ref.sql).select("id").collect())


def test_measured_figures_equal_the_metadata_tables(spark: Any, tmp_path: Path) -> None:
    namespace = new_namespace(spark)
    merged = table(namespace, "merged")  # unpartitioned, MERGE and DELETE merge-on-read
    spark.sql(
        f"CREATE TABLE {merged.sql} (id bigint, v string) USING iceberg TBLPROPERTIES ({MOR.format(v=2)})"
    )
    for i in range(4):
        spark.sql(f"INSERT INTO {merged.sql} VALUES ({i}, 'x'), ({i + 10}, 'y')")
    spark.sql(
        f"MERGE INTO {merged.sql} t USING (SELECT 1 id, 'z' v UNION ALL SELECT 50, 'n') s ON t.id = s.id "
        "WHEN MATCHED THEN UPDATE SET v = s.v WHEN NOT MATCHED THEN INSERT *"
    )
    spark.sql(f"DELETE FROM {merged.sql} WHERE id = 12")
    daily = table(namespace, "daily")  # days(ts), position and equality deletes
    spark.sql(
        f"CREATE TABLE {daily.sql} (id bigint, ts timestamp) USING iceberg PARTITIONED BY (days(ts)) "
        f"TBLPROPERTIES ({MOR.format(v=2)})"
    )
    for i in range(3):
        spark.sql(
            f"INSERT INTO {daily.sql} VALUES ({i}, TIMESTAMP '2026-11-01 10:00:00Z'), "
            f"({i + 10}, TIMESTAMP '2026-11-02 10:00:00Z'), ({i + 20}, TIMESTAMP '2026-11-02 11:00:00Z')"
        )
    spark.sql(f"DELETE FROM {daily.sql} WHERE id = 21")
    add_equality_delete(
        spark, daily, "id", 1, [11], tmp_path / "eq.parquet", partition_path="ts_day=2026-11-02"
    )
    empty = table(namespace, "empty")  # no snapshot at all
    spark.sql(f"CREATE TABLE {empty.sql} (id bigint, ts timestamp) USING iceberg PARTITIONED BY (days(ts))")
    emptied = table(namespace, "emptied")  # a current snapshot without data
    spark.sql(f"CREATE TABLE {emptied.sql} (id bigint) USING iceberg TBLPROPERTIES ({MOR.format(v=2)})")
    spark.sql(f"INSERT INTO {emptied.sql} VALUES (1), (2)")
    spark.sql(f"DELETE FROM {emptied.sql} WHERE id = 1")
    spark.sql(f"DELETE FROM {emptied.sql} WHERE true")

    for ref in (merged, daily, empty, emptied):
        health = measure_health(spark, ref)
        assert _measured(health) == _truth(spark, ref, health.small_file_threshold_bytes), ref.sql
        partitions = spark.sql(
            "SELECT sum(file_count) f, sum(record_count) r, sum(position_delete_file_count) p, "
            f"sum(equality_delete_file_count) e, count(*) n FROM {ref.metadata_table('partitions')}"
        ).first()
        assert sum(p.data_file_count for p in health.partitions) == (partitions["f"] or 0)
        assert sum(p.delete_file_count for p in health.partitions) == (partitions["p"] or 0) + (
            partitions["e"] or 0
        )
    assert measure_health(spark, empty).current_snapshot_id is None
    assert measure_health(spark, emptied).current_snapshot_id is not None


def test_format_version_3_deletion_vectors_are_counted_once_and_never_sent_to_the_delete_rewrite(
    spark: Any, project_config: ProjectConfig
) -> None:
    version = iceberg_runtime_version(spark)
    ref = table(new_namespace(spark), "vectors")
    spark.sql(
        f"CREATE TABLE {ref.sql} (id bigint, cat string) USING iceberg PARTITIONED BY (cat) "
        f"TBLPROPERTIES ({MOR.format(v=3)})"
    )
    for i in range(4):
        spark.sql(
            f"INSERT INTO {ref.sql} VALUES ({i}, 'a'), ({i + 100}, 'a'), ({i + 200}, 'b'), ({i + 300}, 'b')"
        )
    for i in range(4):  # one statement deletes from a file of each partition
        spark.sql(f"DELETE FROM {ref.sql} WHERE id = {i} OR id = {i + 200}")
    rows = _ids(spark, ref)

    health = measure_health(spark, ref)
    truth = _truth(spark, ref, health.small_file_threshold_bytes)

    vectors = version is not None and version >= (1, 8)  # 1.7.1 writes position delete files
    if vectors:  # two vectors share each Puffin file: their bytes are their blobs, counted once
        blobs = spark.sql(
            f"SELECT sum(content_size_in_bytes) b FROM {ref.metadata_table('delete_files')}"
        ).first()["b"]
        puffins = spark.sql(
            f"SELECT sum(s) FROM (SELECT DISTINCT file_path, file_size_in_bytes s FROM "
            f"{ref.metadata_table('delete_files')})"
        ).first()[0]
        assert health.delete_bytes == blobs < puffins

    # Deletes within the compaction ratio, but enough delete files for a delete rewrite.
    policy = parse_maintenance(
        {"thresholds": {"delete_file_ratio": 5, "min_position_delete_files": 2}}, "vectors.yaml"
    )
    config = replace(project_config, maintenance=policy)
    ops = frozenset({"rewrite_data_files", "rewrite_position_delete_files"})
    report = maintain(spark, config, MaintenanceRequest(ops=ops), tables=[ref]).table(ref.sql)
    rewrite = report.operation("rewrite_position_delete_files")
    if vectors:  # rewrite_position_delete_files leaves deletion vectors as they are
        assert rewrite.status == "skipped"
        assert rewrite.plan.reason == (
            "0 position delete files (besides 8 deletion vectors, which only compaction merges), fewer than 2"
        )
    else:
        assert rewrite.status == "succeeded"
        assert rewrite.outcome is not None and isinstance(
            rewrite.outcome.result, RewritePositionDeletesResult
        )
        assert rewrite.outcome.result.rewritten_delete_files == 8
    assert _ids(spark, ref) == rows
    assert health.deletion_vector_count == (8 if vectors else 0)
    assert _measured(health) == truth


@pytest.mark.parametrize("format_version", [2, 3])
def test_compaction_applying_deletes_leaves_no_delete_file_behind(
    spark: Any, project_config: ProjectConfig, format_version: int
) -> None:
    # Right-sized files: compaction rewrites only the one with a delete, so the partition keeps
    # older data files and Iceberg's remove-dangling-deletes does not drop the position delete.
    ref = table(new_namespace(spark), "sized_deletes")
    spark.sql(
        f"CREATE TABLE {ref.sql} (id bigint, ts timestamp, payload string) USING iceberg "
        f"PARTITIONED BY (days(ts)) TBLPROPERTIES ({MOR.format(v=format_version)})"
    )
    for k in range(3):
        _append_wide_rows(spark, ref, k * 1000, 300, "TIMESTAMP '2026-11-01 10:00:00Z' AS ts")
    largest = spark.sql(f"SELECT max(file_size_in_bytes) FROM {ref.metadata_table('data_files')}").first()[0]
    target = str(int(largest / 0.95))  # every file within binpack's 75%..180% of the target
    spark.sql(f"DELETE FROM {ref.sql} WHERE id = 5")
    rows = _ids(spark, ref)
    policy = parse_maintenance({"table_properties": {"write.target-file-size-bytes": target}}, "sized.yaml")
    config = replace(project_config, maintenance=policy)
    ops = frozenset({"rewrite_data_files", "rewrite_position_delete_files"})

    report = maintain(spark, config, MaintenanceRequest(ops=ops, frequency="daily"), tables=[ref]).table(
        ref.sql
    )

    assert report.health_before is not None and report.health_before.delete_file_count == 1
    assert report.health_before.small_file_count == 0
    compaction = report.operation("rewrite_data_files")
    assert compaction.status == "succeeded"
    assert compaction.outcome is not None and isinstance(compaction.outcome.result, RewriteDataFilesResult)
    assert compaction.outcome.result.rewritten_data_files == 1
    # the delete is gone: health after shows what the compaction's reason promised
    assert report.health_after is not None and report.health_after.delete_file_count == 0
    assert spark.sql(f"SELECT count(*) FROM {ref.metadata_table('delete_files')}").first()[0] == 0
    assert _ids(spark, ref) == rows
    again = maintain(spark, config, MaintenanceRequest(ops=ops), tables=[ref]).table(ref.sql)
    assert again.operation("rewrite_data_files").status == "skipped"
    assert again.operation("rewrite_position_delete_files").status == "skipped"


def test_a_partition_written_by_expired_snapshots_long_ago_is_cold(
    spark: Any, project_config: ProjectConfig
) -> None:
    ref = table(new_namespace(spark), "expired_writes", layer="raw")
    spark.sql(f"CREATE TABLE {ref.sql} (id bigint, cat string) USING iceberg PARTITIONED BY (cat)")
    for i in range(6):
        spark.sql(f"INSERT INTO {ref.sql} VALUES ({i}, 'old')")
    spark.sql(f"INSERT INTO {ref.sql} VALUES (100, 'new')")
    newest = spark.sql(f"SELECT max(committed_at) FROM {ref.metadata_table('snapshots')}").first()[0]
    spark.sql(  # keep only the last snapshot: the writers of partition "old" are gone
        f"CALL lake.system.expire_snapshots(table => '{ref.identifier}', "
        f"older_than => TIMESTAMP '{newest.isoformat(sep=' ')}', retain_last => 1)"
    )
    for i in range(6):
        spark.sql(f"INSERT INTO {ref.sql} VALUES ({i}, 'new')")
    later = datetime.now(timezone.utc) + timedelta(days=30)  # both partitions last written 30 days ago

    health = measure_health(spark, ref, now=later)

    plan = plan_maintenance(
        health, project_config.maintenance, PlanContext(now=later, only=frozenset({"rewrite_data_files"}))
    )
    compaction = plan[0]
    assert not compaction.run, compaction.reason
    assert "no partition written in the last 7 days holds >= 5 small files" in compaction.reason
    by_label = {p.label: p for p in health.partitions}
    assert by_label["cat=old"].last_updated_ms is None  # the partitions table cannot tell
    oldest = min(s.committed_at_ms for s in health.snapshots)
    assert by_label["cat=old"].updated_before_ms == oldest
    assert by_label["cat=new"].last_updated_ms is not None
    # written within the window (now): still taken as hot
    assert plan_maintenance(
        measure_health(spark, ref), project_config.maintenance, PlanContext(now=datetime.now(timezone.utc))
    )[0].scope == ("cat=new", "cat=old")


def test_compaction_rewrites_the_files_health_counted_as_small(
    spark: Any, project_config: ProjectConfig
) -> None:
    # 90% of the target is "small" here; binpack's own default is 75%
    ref = table(new_namespace(spark), "fraction", layer="raw")
    spark.sql(f"CREATE TABLE {ref.sql} (id bigint, payload string) USING iceberg")
    for k in range(5):
        _append_wide_rows(spark, ref, k * 1000, 300, "")
    largest = spark.sql(f"SELECT max(file_size_in_bytes) FROM {ref.metadata_table('data_files')}").first()[0]
    target = str(int(largest / 0.8))  # every file at ~80% of the target
    policy = parse_maintenance(
        {
            "thresholds": {"small_file_fraction": 0.9},
            "table_properties": {"write.target-file-size-bytes": target},
        },
        "fraction.yaml",
    )
    config = replace(project_config, maintenance=policy)

    report = maintain(
        spark, config, MaintenanceRequest(ops=frozenset({"rewrite_data_files"})), tables=[ref]
    ).table(ref.sql)

    assert report.health_before is not None and report.health_before.small_file_count == 5
    compaction = report.operation("rewrite_data_files")
    assert compaction.status == "succeeded", compaction.plan.reason
    assert compaction.outcome is not None and isinstance(compaction.outcome.result, RewriteDataFilesResult)
    assert compaction.outcome.result.rewritten_data_files == 5
