"""A whole maintenance run on the real runtime: decisions from health, the procedures that ran,
health before/after, property drift, metrics; and the CLI and job entry points."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import datetime, timezone

import pytest

from lean_ops_spark.catalog.naming import topic_tables
from lean_ops_spark.cli.main import main
from lean_ops_spark.config import parse_maintenance
from lean_ops_spark.maintenance.job import run_maintenance_job
from lean_ops_spark.maintenance.procedures import RewriteDataFilesResult, RewriteManifestsResult
from lean_ops_spark.maintenance.runner import MaintenanceRequest, maintain
from lean_ops_spark.metrics import MemorySink
from tests.conftest import CONF
from tests.spark.conftest_maintenance import new_namespace, table

POLICY = parse_maintenance(
    {
        "thresholds": {"min_small_files": 4, "max_manifests": 8},
        "table_properties": {"write.target-file-size-bytes": 268435456},
    },
    "runner.yaml",
)


def _rows(spark, sql_name: str) -> list[tuple]:
    return sorted(tuple(r) for r in spark.table(sql_name).collect())


def test_health_driven_run_compacts_affected_partitions_and_reports_it(spark, project_config) -> None:
    ref = table(new_namespace(spark), "events", layer="raw")
    spark.sql(f"CREATE TABLE {ref.sql} (id bigint, ts timestamp) USING iceberg PARTITIONED BY (days(ts))")
    days = {"2026-11-18": 5, "2026-11-19": 4, "2026-11-20": 2}  # small files per day
    n = 0
    for day, files in days.items():
        for _ in range(files):
            spark.sql(f"INSERT INTO {ref.sql} VALUES ({n}, TIMESTAMP '{day} 10:00:00')")
            n += 1
    spark.sql(
        f"ALTER TABLE {ref.sql} SET TBLPROPERTIES ('write.target-file-size-bytes'='536870912')"
    )  # drift
    rows = _rows(spark, ref.sql)
    config = replace(project_config, maintenance=POLICY)
    sink = MemorySink()

    report = maintain(spark, config, MaintenanceRequest(frequency="daily"), sink=sink, tables=[ref])

    result = report.table(ref.sql)
    assert report.ok and result.status == "ok"
    # the drifted property was reported and set back
    [change] = result.properties
    assert (change.key, change.actual, change.expected, change.action) == (
        "write.target-file-size-bytes",
        "536870912",
        "268435456",
        "set",
    )
    props = {r["key"]: r["value"] for r in spark.sql(f"SHOW TBLPROPERTIES {ref.sql}").collect()}
    assert props["write.target-file-size-bytes"] == "268435456"

    compaction = result.operation("rewrite_data_files")
    assert compaction.status == "succeeded"
    assert compaction.plan.scope == ("ts_day=2026-11-18", "ts_day=2026-11-19")  # not the day with 2 files
    assert compaction.outcome is not None and isinstance(compaction.outcome.result, RewriteDataFilesResult)
    assert (compaction.outcome.result.rewritten_data_files, compaction.outcome.result.added_data_files) == (
        9,
        2,
    )
    manifests = result.operation("rewrite_manifests")
    assert manifests.status == "succeeded"
    assert "11 manifests > 8" in manifests.plan.reason
    assert isinstance(manifests.outcome.result, RewriteManifestsResult)  # type: ignore[union-attr]
    assert result.operation("expire_snapshots").status == "skipped"
    assert result.operation("remove_orphan_files").plan.reason == "runs weekly; this is a daily run"

    before, after = result.health_before, result.health_after
    assert before is not None and after is not None
    assert (before.data_file_count, after.data_file_count) == (11, 4)
    per_day = {p.label: p.data_file_count for p in after.partitions}
    assert per_day == {"ts_day=2026-11-18": 1, "ts_day=2026-11-19": 1, "ts_day=2026-11-20": 2}
    assert after.manifest_count < before.manifest_count
    assert _rows(spark, ref.sql) == rows  # same data

    dims = {"Table": ref.identifier, "Operation": "rewrite_data_files"}
    assert sink.values("FilesRewritten", **dims) == [9.0]
    assert sink.values("DataFileCount", Table=ref.identifier) == [4.0]  # health after
    assert sink.values("OperationConflicts", **dims) == [0.0]

    # a second run finds nothing left to do
    again = maintain(spark, config, MaintenanceRequest(frequency="daily"), tables=[ref]).table(ref.sql)
    assert [o.status for o in again.operations] == ["skipped"] * 5
    assert again.properties == () and again.health_after is None


def test_dry_run_plans_and_changes_nothing(spark, project_config) -> None:
    ref = table(new_namespace(spark), "planned", layer="raw")
    spark.sql(f"CREATE TABLE {ref.sql} (id bigint) USING iceberg")
    for i in range(5):
        spark.sql(f"INSERT INTO {ref.sql} VALUES ({i})")
    config = replace(project_config, maintenance=POLICY)
    report = maintain(spark, config, MaintenanceRequest(dry_run=True, frequency="weekly"), tables=[ref])
    result = report.table(ref.sql)
    assert result.operation("rewrite_data_files").status == "planned"
    assert result.operation("remove_orphan_files").status == "succeeded"  # a listing, with dry_run => true
    assert "dry_run => true" in result.operation("remove_orphan_files").outcome.sql  # type: ignore[union-attr]
    assert [c.action for c in result.properties] == ["drift"]
    assert result.health_after is None
    props = {r["key"]: r["value"] for r in spark.sql(f"SHOW TBLPROPERTIES {ref.sql}").collect()}
    assert "write.target-file-size-bytes" not in props
    assert spark.sql(f"SELECT count(*) FROM {ref.metadata_table('files')}").first()[0] == 5


@pytest.mark.usefixtures("spark")
def test_cli_health_html_maintain_and_the_job(spark, project_config, local_home, tmp_path, capsys) -> None:
    common = ["--conf", str(CONF), "--home", str(local_home.root)]
    assert main(["init", *common, "--json", "--topics", "orders"]) == 0
    capsys.readouterr()
    raw = topic_tables(project_config.profile, "orders").raw
    spark.sql(
        f"INSERT INTO {raw.sql} VALUES ('m1', 'orders', '{{}}', TIMESTAMP '2026-11-20 10:00:00', 'shop', 1)"
    )

    html = tmp_path / "health.html"
    assert main(["health", *common, "--table", raw.identifier, "--json", "--html", str(html)]) == 0
    document = json.loads(capsys.readouterr().out)
    [health] = document["tables"]
    assert health["table"] == raw.sql and health["data_file_count"] >= 1 and health["snapshot_count"] >= 1
    page = html.read_text()
    assert page.startswith("<!DOCTYPE html>") and raw.sql in page and page.count("<svg") == 3

    assert main(["health", *common, "--table", raw.identifier]) == 0
    text = capsys.readouterr().out
    assert "small %" in text and raw.sql in text

    run_html = tmp_path / "run.html"
    args = ["--table", raw.identifier, "--dry-run", "--ops", "expire_snapshots", "--html", str(run_html)]
    assert main(["maintain", *common, *args]) == 0
    text = capsys.readouterr().out
    assert "expire_snapshots" in text and "dry run, nothing changed" in text
    assert "maintenance run" in run_html.read_text() and "not requested (--ops)" in run_html.read_text()

    report = run_maintenance_job(
        spark,
        project_config,
        {"lean_ops_tables": raw.identifier, "lean_ops_dry_run": "true"},
    )
    assert report["ok"] and report["dry_run"]
    assert report["frequency"] == ("weekly" if datetime.now(timezone.utc).weekday() == 6 else "daily")
    [table_report] = report["tables"]
    assert table_report["table"] == raw.sql
    assert {o["operation"] for o in table_report["operations"]} == {
        "rewrite_data_files",
        "rewrite_position_delete_files",
        "rewrite_manifests",
        "expire_snapshots",
        "remove_orphan_files",
    }
