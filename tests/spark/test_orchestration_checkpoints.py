"""GetAllCheckpoints / ResolveCuratedSnapshot on tables written by Spark, read without a JVM.

Curation is simulated by committing curated snapshots with the checkpoint keys in their
summaries, exactly as the curation MERGE will. Both snapshot sources (the fast
metadata-file reader and PyIceberg) must give the same answer.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path

import pytest

from lean_ops_spark.catalog.bootstrap import bootstrap_tables
from lean_ops_spark.catalog.checkpoints import CURATED_CHECKPOINT_KEY, RAW_CHECKPOINT_KEY, RUN_ID_KEY
from lean_ops_spark.catalog.naming import topic_tables
from lean_ops_spark.config.models import Databases, ProjectConfig
from lean_ops_spark.config.sources import open_config_source
from lean_ops_spark.errors import CheckpointError
from lean_ops_spark.orchestration.checkpoints import (
    default_semantic_table,
    get_all_checkpoints,
    model_semantic_tables,
    resolve_curation_run,
)
from lean_ops_spark.orchestration.handlers import curation_result, get_all_checkpoints_event, open_runtime
from lean_ops_spark.orchestration.snapshots import open_snapshot_source

CONF = Path(__file__).resolve().parents[2] / "conf"


def _raw_append(spark, table: str, n: int, start: int = 0) -> int:
    rows = [
        (
            f"m{start + i}",
            "orders",
            json.dumps({"order_id": f"o{start + i}"}),
            datetime(2024, 5, 1, tzinfo=timezone.utc),
            "p",
            1,
        )
        for i in range(n)
    ]
    df = spark.createDataFrame(
        rows,
        "message_id string, topic string, payload string, ingestion_ts timestamp, producer string, schema_version int",
    )
    df.writeTo(table).append()
    return _current(spark, table)


def _current(spark, table: str) -> int:
    spark.sql(f"REFRESH TABLE {table}")
    return int(
        spark.sql(f"SELECT snapshot_id FROM {table}.snapshots ORDER BY committed_at DESC LIMIT 1").first()[0]
    )


def _commit_empty(spark, table: str, properties: dict[str, str]) -> int:
    """An append of no rows that still commits a snapshot with ``properties`` in its summary."""
    writer = spark.table(table).limit(0).writeTo(table)
    for key, value in properties.items():
        writer = writer.option(f"snapshot-property.{key}", value)
    writer.append()
    return _current(spark, table)


def _build_lake(spark, fresh_config: ProjectConfig, local_home) -> dict:
    """raw: 3 appends (2 + 3 + 4 rows); curation consumed the first; a later commit without the key."""
    bootstrap_tables(spark, fresh_config, ["orders"])
    tables = topic_tables(fresh_config.profile, "orders")
    raw1 = _raw_append(spark, tables.raw.sql, 2)
    raw2 = _raw_append(spark, tables.raw.sql, 3, start=10)
    raw3 = _raw_append(spark, tables.raw.sql, 4, start=20)
    curated_run = _commit_empty(
        spark, tables.curated.sql, {RAW_CHECKPOINT_KEY: str(raw1), RUN_ID_KEY: "run-1"}
    )
    later = _commit_empty(spark, tables.curated.sql, {"note": "compaction-like commit without the key"})
    return {
        "config": fresh_config,
        "tables": tables,
        "raw": (raw1, raw2, raw3),
        "curated_run": curated_run,
        "curated_current": later,
        "catalog_db": local_home.catalog_db,
    }


@pytest.fixture(scope="module")
def orders_lake(spark, project_config: ProjectConfig, local_home):
    """Shared by the read-only tests of this module (built once: Spark writes are slow here)."""
    databases = Databases(raw="orch_ck_raw", curated="orch_ck_curated", semantic="orch_ck_semantic")
    config = replace(project_config, profile=replace(project_config.profile, databases=databases))
    return _build_lake(spark, config, local_home)


@pytest.fixture
def own_lake(spark, fresh_config: ProjectConfig, local_home):
    """A lake of its own, for the test that commits more snapshots."""
    return _build_lake(spark, fresh_config, local_home)


def test_checkpoints_backlog_and_missing_semantic_table(own_lake, spark) -> None:
    orders_lake = own_lake
    profile = orders_lake["config"].profile
    source = open_snapshot_source(profile, orders_lake["catalog_db"])
    report = get_all_checkpoints(source, profile, ["orders"])
    (orders,) = report.topics
    raw1, _raw2, raw3 = orders_lake["raw"]
    assert orders.error is None
    assert orders.raw_current_snapshot_id == raw3
    assert orders.raw_snapshot_consumed == raw1
    assert orders.curation_checkpoint is not None
    assert orders.curation_checkpoint.recorded_in_snapshot_id == orders_lake["curated_run"]
    assert orders.curated_current_snapshot_id == orders_lake["curated_current"]
    assert (orders.backlog.snapshots, orders.backlog.records) == (2, 7)
    assert orders.has_new_raw_data and report.has_new_raw_data
    assert not orders.semantic_table_exists and orders.semantic_checkpoint is None

    # semantic consumed the curated run's snapshot
    semantic = default_semantic_table(profile, "orders")
    spark.sql(f"CREATE TABLE {semantic.sql} (order_id string) USING iceberg")
    _commit_empty(spark, semantic.sql, {CURATED_CHECKPOINT_KEY: str(orders_lake["curated_run"])})
    (orders,) = get_all_checkpoints(source, profile, ["orders"]).topics
    assert orders.semantic_table_exists
    assert orders.curated_snapshot_consumed == orders_lake["curated_run"]

    # curation caught up: no backlog, no new data; semantic has yet to read run-2's commit
    run2 = _commit_empty(
        spark, orders_lake["tables"].curated.sql, {RAW_CHECKPOINT_KEY: str(raw3), RUN_ID_KEY: "run-2"}
    )
    (orders,) = get_all_checkpoints(source, profile, ["orders"]).topics
    assert (orders.backlog.snapshots, orders.backlog.records, orders.has_new_raw_data) == (0, 0, False)
    payload = orders.as_payload()
    assert payload["raw_snapshot_consumed"] == str(raw3) and payload["last_curation_run_id"] == "run-2"
    assert orders.semantic_behind and payload["semantic_behind"] is True

    # semantic consumed it, then a compaction-like commit on curated: nothing left to read
    _commit_empty(spark, semantic.sql, {CURATED_CHECKPOINT_KEY: str(run2)})
    _commit_empty(spark, orders_lake["tables"].curated.sql, {"note": "compaction-like"})
    (orders,) = get_all_checkpoints(source, profile, ["orders"]).topics
    assert not orders.has_new_raw_data and not orders.semantic_behind

    # each model's table keeps its own checkpoint (the deployed Lambda finds them from the
    # models: orders and orders_daily_revenue); one still on the curated run is behind
    models = model_semantic_tables(open_config_source(str(CONF)))
    assert [t.name for t in models(profile, "orders")] == ["orders", "orders_daily_revenue"]
    revenue = models(profile, "orders")[1]
    # a model whose table does not exist yet (new, or its first run failed before creating
    # it) while curated holds run commits: behind too
    (orders,) = get_all_checkpoints(source, profile, ["orders"], semantic_tables=models).topics
    assert orders.semantic_behind and orders.semantic_table == revenue.sql
    assert orders.semantic_checkpoint is None and orders.semantic_table_exists  # (orders exists)
    spark.sql(f"CREATE TABLE {revenue.sql} (order_date date) USING iceberg")
    _commit_empty(spark, revenue.sql, {CURATED_CHECKPOINT_KEY: str(orders_lake["curated_run"])})
    (orders,) = get_all_checkpoints(source, profile, ["orders"], semantic_tables=models).topics
    assert orders.semantic_behind and orders.semantic_table == revenue.sql
    assert orders.curated_snapshot_consumed == orders_lake["curated_run"]
    _commit_empty(spark, revenue.sql, {CURATED_CHECKPOINT_KEY: str(run2)})
    (orders,) = get_all_checkpoints(source, profile, ["orders"], semantic_tables=models).topics
    assert not orders.semantic_behind and orders.semantic_table == semantic.sql


def test_fast_reader_agrees_with_pyiceberg(orders_lake) -> None:
    profile = orders_lake["config"].profile
    tables = orders_lake["tables"]
    refs = [tables.raw, tables.curated, tables.quarantine, default_semantic_table(profile, "orders")]
    fast = open_snapshot_source(profile, orders_lake["catalog_db"]).load(refs)
    reference = open_snapshot_source(profile, orders_lake["catalog_db"], kind="pyiceberg").load(refs)
    for ref in refs:
        a, b = fast[ref.identifier], reference[ref.identifier]
        assert (a.exists, a.current_snapshot_id, a.columns) == (b.exists, b.current_snapshot_id, b.columns)
        assert sorted(a.records, key=lambda r: r.snapshot_id) == sorted(
            b.records, key=lambda r: r.snapshot_id
        )
    assert not fast[refs[3].identifier].exists


def test_resolve_curation_run_picks_the_run_snapshot_and_checks_the_schema(
    orders_lake, tmp_path: Path
) -> None:
    profile = orders_lake["config"].profile
    source = open_snapshot_source(profile, orders_lake["catalog_db"])
    conf = tmp_path / "conf"
    (conf / "semantic").mkdir(parents=True)
    config_source = open_config_source(conf)

    result = resolve_curation_run(source, profile, "orders", "run-1", config_source)
    assert result.run_committed and result.curated_snapshot_id == orders_lake["curated_run"]
    assert result.raw_snapshot_consumed == orders_lake["raw"][0]
    assert (result.backlog.snapshots, result.backlog.records) == (2, 7)
    assert not result.schema_exists and "no semantic model" in result.schema_reason

    # the shipped model (its columns all exist in curated), then one needing a column curated lacks
    shipped = (CONF / "semantic" / "orders.yaml").read_text()
    (conf / "semantic" / "orders.yaml").write_text(shipped)
    assert resolve_curation_run(source, profile, "orders", "run-1", config_source).schema_exists
    (conf / "semantic" / "orders.yaml").write_text(
        shipped.replace(
            "      - order_id\n", "      - order_id\n      - {name: tier, expr: loyalty_tier}\n", 1
        )
    )
    missing = resolve_curation_run(source, profile, "orders", "run-1", config_source)
    assert not missing.schema_exists and "loyalty_tier" in missing.schema_reason

    unknown = resolve_curation_run(source, profile, "orders", "never-ran", config_source)
    assert not unknown.run_committed and unknown.curated_snapshot_id == orders_lake["curated_current"]


def test_lambda_events_on_a_local_config_root(orders_lake, local_home, tmp_path: Path) -> None:
    databases = orders_lake["config"].profile.databases
    conf = tmp_path / "conf"
    (conf / "topics").mkdir(parents=True)
    (conf / "profiles").mkdir()
    shutil.copy(CONF / "topics" / "orders.yaml", conf / "topics" / "orders.yaml")
    (conf / "profiles" / "local.yaml").write_text(
        f"kind: local\ndatabases: {{raw: {databases.raw}, curated: {databases.curated}, semantic: {databases.semantic}}}\n"
    )
    runtime = open_runtime(str(conf), "local", home=str(local_home.root))
    first = get_all_checkpoints_event({"topic": "orders"}, runtime)
    assert first["round"] == 1 and first["has_new_raw_data"] is True and first["run_id"] is None
    assert first["topics"][0]["pending_raw_records"] == 7
    state = {"topic": "orders", "checkpoints": {"round": first["round"]}}
    again = get_all_checkpoints_event({"topic": "orders", "execution_name": "x1", "state": state}, runtime)
    assert (again["round"], again["run_id"]) == (2, "x1:r2")
    resolved = curation_result({"topic": "orders", "run_id": "run-1"}, runtime)
    assert resolved["curated_snapshot_id"] == str(orders_lake["curated_run"])
    assert resolved["schema_exists"] is False


def test_a_broken_topic_is_an_error_for_that_topic_only(
    spark, fresh_config: ProjectConfig, local_home
) -> None:
    profile = fresh_config.profile
    bootstrap_tables(spark, fresh_config, ["orders"])  # clickstream tables never created
    source = open_snapshot_source(profile, local_home.catalog_db)
    report = get_all_checkpoints(source, profile, ["clickstream", "orders"])
    assert set(report.errors) == {"clickstream"} and "run `lean-ops init`" in report.errors["clickstream"]
    orders = report.topics[1]
    assert orders.error is None and orders.backlog.snapshots == 0 and not orders.has_new_raw_data
    with pytest.raises(CheckpointError, match="clickstream"):
        resolve_curation_run(source, profile, "clickstream", "r", open_config_source(CONF))
