"""Bootstrap on the real local runtime, and PyIceberg reading what Spark wrote."""

from __future__ import annotations

import json
from datetime import datetime, timezone

import pytest
from pyiceberg.catalog.sql import SqlCatalog
from pyspark.sql import functions as F

from lean_ops_spark.catalog.bootstrap import bootstrap_tables
from lean_ops_spark.catalog.inventory import describe_tables
from lean_ops_spark.catalog.naming import topic_tables
from lean_ops_spark.catalog.pyiceberg_catalog import open_pyiceberg_catalog
from lean_ops_spark.cli.main import main
from tests.conftest import CONF


def _metadata_locations(catalog, identifiers):
    return {i: catalog.load_table(i).metadata_location for i in identifiers}


def test_bootstrap_creates_everything_once(spark, fresh_config, local_home) -> None:
    first = bootstrap_tables(spark, fresh_config)
    assert first.created == 6
    assert {t.layer for t in first.tables} == {"raw", "curated", "quarantine"}

    catalog = open_pyiceberg_catalog(fresh_config.profile, local_home)
    identifiers = [
        ref.identifier
        for topic in fresh_config.topics
        for ref in topic_tables(fresh_config.profile, topic).all()
    ]
    before = _metadata_locations(catalog, identifiers)

    second = bootstrap_tables(spark, fresh_config)
    assert second.created == 0
    assert not second.changed
    assert all(t.action == "exists" and not t.missing_columns for t in second.tables)
    assert _metadata_locations(catalog, identifiers) == before  # no new metadata version at all

    curated = catalog.load_table(topic_tables(fresh_config.profile, "orders").curated.identifier)
    assert curated.metadata.format_version == 2
    assert str(curated.spec()).find("order_ts_day") >= 0
    assert curated.properties["write.merge.mode"] == "merge-on-read"


def test_bootstrap_resets_drifted_properties(spark, fresh_config) -> None:
    bootstrap_tables(spark, fresh_config, ["clickstream"])
    curated = topic_tables(fresh_config.profile, "clickstream").curated
    spark.sql(f"ALTER TABLE {curated.sql} SET TBLPROPERTIES ('write.distribution-mode'='none')")
    result = bootstrap_tables(spark, fresh_config, ["clickstream"])
    status = {t.table: t for t in result.tables}[curated.sql]
    assert status.action == "updated"
    assert status.changed_properties == {"write.distribution-mode": "hash"}
    props = {r["key"]: r["value"] for r in spark.sql(f"SHOW TBLPROPERTIES {curated.sql}").collect()}
    assert props["write.distribution-mode"] == "hash"


def test_bootstrap_raises_a_v1_table_to_v2_and_reports_a_different_partitioning(spark, fresh_config) -> None:
    bootstrap_tables(spark, fresh_config, ["orders"])
    tables = topic_tables(fresh_config.profile, "orders")
    curated, quarantine = tables.curated, tables.quarantine
    schema = spark.table(curated.sql).schema
    spark.sql(f"DROP TABLE {curated.sql}")  # v1 (no row-level deletes: merge-on-read would fail)
    spark.createDataFrame([], schema).writeTo(curated.sql).tableProperty("format-version", "1").partitionedBy(
        F.days("order_ts")
    ).create()
    q_schema = spark.table(quarantine.sql).schema
    spark.sql(f"DROP TABLE {quarantine.sql}")  # unpartitioned instead of days(ingestion_ts)
    spark.createDataFrame([], q_schema).writeTo(quarantine.sql).create()

    result = {t.table: t for t in bootstrap_tables(spark, fresh_config, ["orders"]).tables}
    assert result[curated.sql].changed_properties.get("format-version") == "2"
    assert result[curated.sql].partitioning_differs is None
    assert _props(spark, curated.sql)["format-version"] == "2"
    assert result[quarantine.sql].partitioning_differs == "unpartitioned"
    assert result[tables.raw.sql].partitioning_differs is None  # days(ingestion_ts), as configured


def _props(spark, table: str) -> dict[str, str]:
    return {r["key"]: r["value"] for r in spark.sql(f"SHOW TBLPROPERTIES {table}").collect()}


def test_pyiceberg_sql_catalog_lists_and_reads_spark_tables(spark, fresh_config, local_home) -> None:
    bootstrap_tables(spark, fresh_config, ["orders"])
    raw = topic_tables(fresh_config.profile, "orders").raw
    ts = datetime(2026, 11, 1, 12, 0, tzinfo=timezone.utc)
    rows = [(f"m{i}", "orders", json.dumps({"order_id": f"o{i}"}), ts, "shop", 1) for i in range(3)]
    spark.createDataFrame(rows, spark.table(raw.sql).schema).writeTo(raw.sql).append()

    # a plain PyIceberg SqlCatalog on the same SQLite file, with the same catalog name
    catalog = SqlCatalog(
        fresh_config.profile.catalog, uri=local_home.sqlalchemy_uri, warehouse=local_home.warehouse_uri
    )
    assert (fresh_config.profile.databases.raw,) in catalog.list_namespaces()
    assert (fresh_config.profile.databases.raw, "orders_staging") in catalog.list_tables(
        fresh_config.profile.databases.raw
    )
    arrow = catalog.load_table(raw.identifier).scan().to_arrow()
    assert sorted(arrow.column("message_id").to_pylist()) == ["m0", "m1", "m2"]
    assert arrow.column("payload").to_pylist()[0].startswith('{"order_id"')

    spark_snapshot = spark.sql(
        f"SELECT snapshot_id FROM {raw.metadata_table('snapshots')} ORDER BY committed_at DESC LIMIT 1"
    ).first()[0]
    info = {i.table: i for i in describe_tables(catalog, fresh_config, ["orders"])}[raw.sql]
    assert (info.current_snapshot_id, info.records, info.data_files) == (spark_snapshot, 3, 1)


def test_a_different_catalog_name_sees_nothing(spark, fresh_config, local_home) -> None:
    bootstrap_tables(spark, fresh_config, ["orders"])
    other = SqlCatalog("not_lake", uri=local_home.sqlalchemy_uri, warehouse=local_home.warehouse_uri)
    assert (fresh_config.profile.databases.raw,) not in other.list_namespaces()


@pytest.mark.usefixtures("spark")
def test_cli_init_twice_then_tables_json(project_config, local_home, capsys) -> None:
    common = ["--conf", str(CONF), "--home", str(local_home.root), "--json"]
    assert main(["init", *common]) == 0
    first = json.loads(capsys.readouterr().out)
    assert main(["init", *common]) == 0
    second = json.loads(capsys.readouterr().out)
    assert second["changed"] is False
    assert {t["action"] for t in second["tables"]} == {"exists"}
    assert len(first["tables"]) == len(second["tables"]) == 6

    assert main(["tables", *common]) == 0
    listed = json.loads(capsys.readouterr().out)["tables"]
    names = {t["table"] for t in listed}
    for topic in ("orders", "clickstream"):
        for ref in topic_tables(project_config.profile, topic).all():
            assert ref.sql in names
    # the semantic tables of the topics' models too, which their first semantic run creates (not init)
    semantic = {t["table"] for t in listed if t["layer"] == "semantic"}
    assert semantic == {
        "lake.semantic.orders",
        "lake.semantic.orders_daily_revenue",
        "lake.semantic.clickstream",
    }
    assert all(t["exists"] for t in listed if t["layer"] != "semantic")


def test_session_runs_the_iceberg_version_the_profile_asks_for(spark, project_config) -> None:
    """A Glue 5.0 run (``make test ICEBERG_VERSION=1.7.1``) must not test the 1.10.0 jar."""
    running = spark.sparkContext._jvm.org.apache.iceberg.IcebergBuild.version()
    assert running == project_config.profile.iceberg_version


def test_local_session_quiets_retried_commit_warnings_but_keeps_errors(spark) -> None:
    """The demo printed a Java stack trace for every commit Iceberg retried and then made."""
    from lean_ops_spark.session import QUIET_LOCAL_LOGGERS

    log_manager = spark.sparkContext._jvm.org.apache.logging.log4j.LogManager
    for name in QUIET_LOCAL_LOGGERS:
        logger = log_manager.getLogger(name)
        assert not logger.isWarnEnabled(), name
        assert logger.isErrorEnabled(), name
    assert log_manager.getLogger("org.apache.iceberg.BaseMetastoreTableOperations").isWarnEnabled()


def test_curating_before_init_names_the_missing_table(spark, fresh_config) -> None:
    from lean_ops_spark.curation.pipeline import run_curation
    from lean_ops_spark.errors import CatalogError

    with pytest.raises(
        CatalogError, match=r"cannot read lake\.\w+\.orders_staging \(run `lean-ops init` first\?\)"
    ):
        run_curation(spark, fresh_config, "orders")

    bootstrap_tables(spark, fresh_config, ["orders"])
    spark.sql(f"DROP TABLE {topic_tables(fresh_config.profile, 'orders').curated.sql}")
    with pytest.raises(
        CatalogError, match=r"cannot load table lake\.\w+\.orders \(run `lean-ops init` first\?\)"
    ):
        run_curation(spark, fresh_config, "orders")


def test_session_conf_blocks_nest_and_overlap_in_threads_and_restore_the_first_value(spark) -> None:
    import threading

    from lean_ops_spark.session import session_conf

    key = "spark.sql.ansi.enabled"
    spark.conf.set(key, "true")
    try:
        with session_conf(spark, key, "false"):
            with session_conf(spark, key, "true"):
                assert spark.conf.get(key) == "true"
            assert spark.conf.get(key) == "false"  # nested: back to the outer block's value
        assert spark.conf.get(key) == "true"
        # two threads' blocks overlap, the first to open closes first
        a_in, b_in, a_out = threading.Event(), threading.Event(), threading.Event()
        seen: dict[str, str] = {}

        def a() -> None:
            with session_conf(spark, key, "false"):
                a_in.set()
                b_in.wait()
            a_out.set()

        def b() -> None:
            a_in.wait()
            with session_conf(spark, key, "false"):
                b_in.set()
                a_out.wait()
                seen["b after a closed"] = spark.conf.get(key)

        threads = [threading.Thread(target=a), threading.Thread(target=b)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert seen == {"b after a closed": "false"}  # a's exit left b's block alone
        assert spark.conf.get(key) == "true"  # and the value before both came back
    finally:
        spark.conf.unset(key)
