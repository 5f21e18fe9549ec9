"""Table naming, DDL text and session settings: pure functions, no Spark."""

from __future__ import annotations

from pathlib import Path

import pytest

from lean_ops_spark.catalog.naming import TableRef, topic_tables
from lean_ops_spark.catalog.schemas import sql_string, topic_table_definitions
from lean_ops_spark.config import load_project
from lean_ops_spark.errors import ConfigError, RuntimeSetupError
from lean_ops_spark.session import ICEBERG_EXTENSIONS, LocalHome, catalog_conf, local_session_conf

CONF = Path(__file__).resolve().parents[2] / "conf"


def test_topic_tables_follow_the_naming_contract() -> None:
    profile = load_project(CONF, "local").profile
    tables = topic_tables(profile, "orders")
    assert tables.raw.sql == "lake.raw.orders_staging"
    assert tables.curated.sql == "lake.curated.orders"
    assert tables.quarantine.sql == "lake.curated.orders_quarantine"
    assert tables.raw.identifier == "raw.orders_staging"


def test_table_ref_refuses_unsafe_names() -> None:
    with pytest.raises(ConfigError):
        TableRef("lake", "raw", "orders_staging; DROP TABLE x", "raw")
    with pytest.raises(ConfigError):
        topic_tables(load_project(CONF, "local").profile, "orders`")


def test_curated_ddl_has_contract_columns_partitioning_and_properties() -> None:
    config = load_project(CONF, "local")
    contract = config.topic("orders")
    raw, curated, quarantine = topic_table_definitions(
        topic_tables(config.profile, "orders"), contract, config.maintenance.table_properties
    )
    sql = curated.create_sql()
    assert sql.startswith("CREATE TABLE IF NOT EXISTS lake.curated.orders (")
    assert "  items array<struct<sku:string,quantity:int,unit_price:decimal(10,2)>>" in sql
    assert "PARTITIONED BY (days(order_ts))" in sql
    assert "'format-version'='2'" in sql
    assert "'write.merge.mode'='merge-on-read'" in sql
    assert "'write.target-file-size-bytes'='268435456'" in sql
    assert "PARTITIONED BY (days(ingestion_ts))" in raw.create_sql()
    assert [c[0] for c in raw.columns][:4] == ["message_id", "topic", "payload", "ingestion_ts"]
    assert "reason_code string" in quarantine.create_sql()


def test_sql_string_escapes_quotes_and_backslashes() -> None:
    assert sql_string("it's") == "'it\\'s'"
    assert sql_string("a\\b") == "'a\\\\b'"


def test_local_session_conf_is_the_embedded_default(tmp_path: Path) -> None:
    profile = load_project(CONF, "local").profile
    home = LocalHome.at(tmp_path)
    conf = local_session_conf(profile, home, [tmp_path / "a.jar", tmp_path / "b.jar"])
    assert conf["spark.sql.extensions"] == ICEBERG_EXTENSIONS
    assert conf["spark.sql.session.timeZone"] == "UTC"
    assert conf["spark.sql.catalog.lake.type"] == "jdbc"
    assert conf["spark.sql.catalog.lake.uri"] == f"jdbc:sqlite:{tmp_path / 'catalog.db'}"
    assert conf["spark.sql.catalog.lake.warehouse"] == (tmp_path / "warehouse").as_uri()
    assert conf["spark.jars"] == f"{tmp_path / 'a.jar'},{tmp_path / 'b.jar'}"
    assert conf["spark.ui.enabled"] == "false"  # from the profile's spark.conf
    assert int(conf["spark.sql.codegen.cache.maxEntries"]) >= 1000  # generated classes are reused


def test_glue_catalog_conf_uses_glue_catalog_and_s3fileio() -> None:
    profile = load_project(CONF, "glue").profile
    conf = catalog_conf(profile)
    assert conf["spark.sql.catalog.lake"] == "org.apache.iceberg.spark.SparkCatalog"
    assert conf["spark.sql.catalog.lake.catalog-impl"] == "org.apache.iceberg.aws.glue.GlueCatalog"
    assert conf["spark.sql.catalog.lake.io-impl"] == "org.apache.iceberg.aws.s3.S3FileIO"
    assert conf["spark.sql.catalog.lake.warehouse"] == profile.warehouse
    assert not any(k.startswith("spark.sql.extensions") for k in conf)  # static: from job params


def test_local_catalog_conf_needs_a_home() -> None:
    with pytest.raises(RuntimeSetupError, match="needs a home"):
        catalog_conf(load_project(CONF, "local").profile)
