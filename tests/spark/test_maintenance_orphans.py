"""Safe orphan removal with the real procedure: a planted old orphan goes, live files never do."""

from __future__ import annotations

import os
import time
from dataclasses import replace
from pathlib import Path

from lean_ops_spark.config import parse_maintenance
from lean_ops_spark.maintenance.procedures import RemoveOrphanFilesResult
from lean_ops_spark.maintenance.runner import MaintenanceRequest, maintain
from tests.spark.conftest_maintenance import live_files, new_namespace, table

TEN_DAYS = 10 * 86400


def _age(path: Path, seconds: float) -> None:
    stamp = time.time() - seconds
    os.utime(path, (stamp, stamp))


def _orphans(report, sql_name: str) -> RemoveOrphanFilesResult:
    op = report.table(sql_name).operation("remove_orphan_files")
    assert op.status == "succeeded", op.outcome
    assert op.outcome is not None and isinstance(op.outcome.result, RemoveOrphanFilesResult)
    assert "prefix_mismatch_mode => 'ERROR'" in op.outcome.sql
    return op.outcome.result


def test_dry_run_lists_then_removal_deletes_only_the_old_orphan(spark, project_config, local_home) -> None:
    ref = table(new_namespace(spark), "events", layer="raw")
    spark.sql(f"CREATE TABLE {ref.sql} (id bigint, note string) USING iceberg")
    for i in range(3):
        spark.sql(f"INSERT INTO {ref.sql} VALUES ({i}, 'n{i}'), ({i + 10}, 'm{i}')")
    location = local_home.warehouse / ref.database / ref.name
    # Every file the table has is old enough to be a candidate: only the metadata can save it.
    for path in location.rglob("*"):
        if path.is_file():
            _age(path, TEN_DAYS)
    old_orphan = location / "data" / "00000-planted-orphan.parquet"
    old_orphan.write_bytes(b"not referenced by any snapshot")
    _age(old_orphan, TEN_DAYS)
    fresh_orphan = location / "data" / "00001-in-flight-write.parquet"  # e.g. a write still running
    fresh_orphan.write_bytes(b"too young to judge")
    live = live_files(spark, ref)
    assert len(live) >= 3 and all(p.exists() for p in live)
    rows_before = sorted(tuple(r) for r in spark.table(ref.sql).collect())

    config = replace(project_config, maintenance=parse_maintenance({}, "m.yaml"))  # the 72 h floor
    only = frozenset({"remove_orphan_files"})

    dry = _orphans(maintain(spark, config, MaintenanceRequest(ops=only, dry_run=True), tables=[ref]), ref.sql)
    assert dry.dry_run
    listed = {Path(p.removeprefix("file:")) for p in dry.orphan_files}
    assert old_orphan in listed
    assert fresh_orphan not in listed
    assert not listed & set(live)
    assert old_orphan.exists()  # a dry run deletes nothing

    real = _orphans(maintain(spark, config, MaintenanceRequest(ops=only), tables=[ref]), ref.sql)
    assert not real.dry_run
    deleted = {Path(p.removeprefix("file:")) for p in real.orphan_files}
    assert old_orphan in deleted and not old_orphan.exists()
    assert fresh_orphan.exists()
    assert all(p.exists() for p in live)
    spark.sql(f"REFRESH TABLE {ref.sql}")
    assert sorted(tuple(r) for r in spark.table(ref.sql).collect()) == rows_before
