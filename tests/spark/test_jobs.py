"""The Glue entry scripts run unchanged under spark-submit on the local profile."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

from lean_ops_spark.catalog.bootstrap import bootstrap_tables
from lean_ops_spark.catalog.naming import topic_tables
from lean_ops_spark.raw import fault_rates, generate_events
from lean_ops_spark.raw.writer import append_raw
from lean_ops_spark.runtime.jars import default_jars_dir, local_jar_paths
from tests.conftest import CONF, REPO


def conf_for(config, tmp_path: Path) -> Path:
    """A copy of conf/ whose local profile points at the test's own namespaces."""
    root = tmp_path / "conf"
    shutil.copytree(CONF, root)
    profile_file = root / "profiles" / "local.yaml"
    profile = yaml.safe_load(profile_file.read_text())
    databases = config.profile.databases
    profile["databases"] = {
        "raw": databases.raw,
        "curated": databases.curated,
        "semantic": databases.semantic,
    }
    profile_file.write_text(yaml.safe_dump(profile))
    return root


def result_line(stdout: str) -> dict:
    """The job's one JSON result line (spark-submit also puts the driver's log on stdout)."""
    lines = [line for line in stdout.splitlines() if line.startswith('{"ok"')]
    assert lines, stdout[-3000:]
    return json.loads(lines[-1])


def run_job_script(script: str, config, tmp_path: Path, home: Path, *args: str) -> dict:
    """spark-submit ``jobs/<script>`` on the local profile with the test's namespaces; its JSON line."""
    done = spark_submit(
        script,
        *args,
        "--lean_ops_conf",
        str(conf_for(config, tmp_path)),
        "--lean_ops_profile",
        "local",
        "--home",
        str(home),
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    return result_line(done.stdout)


def spark_submit(script: str, *args: str) -> subprocess.CompletedProcess[str]:
    jars = ",".join(
        str(p)
        for p in local_jar_paths(default_jars_dir(), os.environ.get("LEAN_OPS_ICEBERG_VERSION") or "1.10.0")
    )
    submit = Path(sys.executable).parent / "spark-submit"
    env = {**os.environ, "PYSPARK_PYTHON": sys.executable, "PYTHONPATH": str(REPO)}
    return subprocess.run(
        [str(submit), "--master", "local[1]", "--jars", jars, str(REPO / "jobs" / script), *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO,
        timeout=600,
        check=False,
    )


def test_curation_job_under_spark_submit(spark, fresh_config, local_home, tmp_path) -> None:
    bootstrap_tables(spark, fresh_config, ["clickstream"])
    tables = topic_tables(fresh_config.profile, "clickstream")
    batch = generate_events(fresh_config.topic("clickstream"), 200, fault_rates(0.02, 0.05), seed=3)
    append_raw(spark, tables.raw, batch.records, appends=2)

    document = run_job_script(
        "curation_job.py",
        fresh_config,
        tmp_path,
        local_home.root,
        "--topic",
        "clickstream",
        "--run_id",
        "job-test-1",
    )
    assert document["ok"] is True and document["job"] == "curation"
    assert document["result"]["run_id"] == "job-test-1"
    assert document["result"]["ledger"]["balanced"] is True
    spark.sql(f"REFRESH TABLE {tables.curated.sql}")
    assert spark.table(tables.curated.sql).count() == batch.expected.curated_keys


def test_semantic_job_under_spark_submit_publishes_and_writes_the_snowflake_refresh(
    spark, fresh_config, local_home, tmp_path
) -> None:
    from lean_ops_spark.curation.pipeline import run_curation

    bootstrap_tables(spark, fresh_config, ["orders"])
    tables = topic_tables(fresh_config.profile, "orders")
    batch = generate_events(fresh_config.topic("orders"), 200, fault_rates(0.0, 0.0), seed=5)
    append_raw(spark, tables.raw, batch.records, appends=2)
    curated = run_curation(spark, fresh_config, "orders")
    assert curated.curated_snapshot_id is not None
    shutil.rmtree(local_home.root / "snowflake", ignore_errors=True)

    document = run_job_script(
        "semantic_job.py",
        fresh_config,
        tmp_path,
        local_home.root,
        "--topic",
        "orders",
        "--run_id",
        "sem-job-test-1",
        "--curated_snapshot_id",
        str(curated.curated_snapshot_id),
        "--lean_ops_env",
        "dev",
    )
    assert document["ok"] is True and document["job"] == "semantic"
    result = document["result"]
    assert result["status"] == "published" and result["curated_snapshot_id"] == str(
        curated.curated_snapshot_id
    )
    assert {m["model"]: m["status"] for m in result["models"]} == {
        "orders": "published",
        "orders_daily_revenue": "published",
    }
    semantic = f"{fresh_config.profile.catalog}.{fresh_config.profile.databases.semantic}.orders"
    spark.sql(f"REFRESH TABLE {semantic}")
    live = spark.table(tables.curated.sql).where("status <> 'cancelled'").count()  # the model's filter
    assert 0 < live == spark.table(semantic).count()
    # governance/dev.yaml has a snowflake: section and no connection: the SQL goes to a file
    snowflake = result["snowflake"]
    assert snowflake["outcome"]["mode"] == "written"
    assert snowflake["changes"]["new"] == ["orders", "orders_daily_revenue"]
    sql_file = Path(snowflake["outcome"]["sql_file"])
    assert sql_file.parent == local_home.root / "snowflake" / "sql"
    assert "ALTER ICEBERG TABLE ANALYTICS.LAKEHOUSE.orders REFRESH;" in sql_file.read_text()


def test_maintenance_job_under_spark_submit_compacts_the_named_table(
    spark, fresh_config, local_home, tmp_path
) -> None:
    bootstrap_tables(spark, fresh_config, ["clickstream"])
    raw = topic_tables(fresh_config.profile, "clickstream").raw
    batch = generate_events(fresh_config.topic("clickstream"), 300, fault_rates(0.0, 0.0), seed=9)
    append_raw(spark, raw, batch.records, appends=8)

    def data_files() -> int:
        spark.sql(f"REFRESH TABLE {raw.sql}")
        return int(spark.sql(f"SELECT count(*) FROM {raw.metadata_table('files')}").first()[0])

    before = data_files()
    assert before >= 8
    document = run_job_script(
        "maintenance_job.py",
        fresh_config,
        tmp_path,
        local_home.root,
        "--lean_ops_tables",
        raw.identifier,
        "--lean_ops_ops",
        "rewrite_data_files",
        "--lean_ops_frequency",
        "any",
    )
    assert document["ok"] is True and document["job"] == "maintenance"
    [table] = document["result"]["tables"]
    assert table["table"] == raw.sql
    [rewrite] = [o for o in table["operations"] if o["operation"] == "rewrite_data_files"]
    assert rewrite["status"] == "succeeded", rewrite
    assert data_files() < before
    assert spark.table(raw.sql).count() == len(batch.records)
