"""Config loading and validation: no Spark."""

from __future__ import annotations

import textwrap
from pathlib import Path

import boto3
import pytest
import yaml
from moto import mock_aws

from lean_ops_spark.config import DriftMode, load_project, parse_profile, parse_topic
from lean_ops_spark.config.sources import S3ConfigSource
from lean_ops_spark.errors import ConfigError

CONF = Path(__file__).resolve().parents[2] / "conf"


def minimal_topic(**overrides: object) -> dict[str, object]:
    topic: dict[str, object] = {
        "topic": "things",
        "key": ["thing_id"],
        "ordering_column": "updated_at",
        "partition": {"column": "updated_at"},
        "fields": [
            {"name": "thing_id", "type": "string", "required": True},
            {"name": "updated_at", "type": "timestamp", "required": True},
        ],
    }
    topic.update(overrides)
    return topic


def test_shipped_config_loads_both_topics_and_profiles() -> None:
    local = load_project(CONF, "local")
    assert set(local.topics) == {"orders", "clickstream"}
    assert local.profile.kind == "local"
    glue = load_project(CONF, "glue")
    assert glue.profile.warehouse is not None and glue.profile.warehouse.startswith("s3://")
    # the SQL catalog name is the same in both profiles, so SQL text never changes
    assert glue.profile.catalog == local.profile.catalog


def test_orders_contract_flattens_address_and_keeps_items_nested() -> None:
    orders = load_project(CONF, "local").topic("orders")
    columns = dict(orders.curated_columns())
    assert columns["shipping_address_city"] == "string"
    assert "shipping_address" not in columns
    assert columns["items"] == "array<struct<sku:string,quantity:int,unit_price:decimal(10,2)>>"
    assert columns["total_amount"] == "decimal(12,2)"
    assert columns["_rescued_data"] == "string"
    assert orders.key == ("order_id",)
    assert orders.partition.spark_ddl() == "days(order_ts)"
    assert orders.drift_mode is DriftMode.RESCUE


def test_unknown_key_is_refused_with_file_and_key() -> None:
    with pytest.raises(ConfigError, match=r"things\.yaml: unknown key\(s\) colour"):
        parse_topic(minimal_topic(colour="red"), "things.yaml")


def test_unknown_nested_key_names_the_field() -> None:
    data = minimal_topic()
    data["fields"] = [*data["fields"], {"name": "size", "type": "int", "unit": "cm"}]  # type: ignore[misc]
    with pytest.raises(ConfigError, match=r"fields\[2\]\[size\]: unknown key\(s\) unit"):
        parse_topic(data, "things.yaml")


@pytest.mark.parametrize(
    "bad_topic",
    ["orders; DROP TABLE curated.orders --", "Orders", "1orders", "orders-v2", "orders.x", "o" * 64, ""],
)
def test_identifier_injection_is_refused_before_sql(bad_topic: str) -> None:
    with pytest.raises(ConfigError, match="not a valid identifier"):
        parse_topic(minimal_topic(topic=bad_topic), "things.yaml")


def test_injection_in_column_and_database_names_is_refused() -> None:
    data = minimal_topic()
    data["fields"] = [*data["fields"], {"name": "x string) --", "type": "string"}]  # type: ignore[misc]
    with pytest.raises(ConfigError, match="not a valid identifier"):
        parse_topic(data, "things.yaml")
    with pytest.raises(ConfigError, match=r"databases\.raw: .* not a valid identifier"):
        parse_profile({"kind": "local", "databases": {"raw": "raw`; DROP"}}, "p.yaml", "local")


def test_key_must_be_a_required_field() -> None:
    data = minimal_topic()
    data["fields"] = [
        {"name": "thing_id", "type": "string"},
        {"name": "updated_at", "type": "timestamp", "required": True},
    ]
    with pytest.raises(ConfigError, match="key column 'thing_id' must be required"):
        parse_topic(data, "things.yaml")


def test_a_partition_column_the_merge_prunes_by_must_be_required() -> None:
    data = minimal_topic(partition={"column": "seen_at", "transform": "day"})
    data["fields"].append({"name": "seen_at", "type": "timestamp"})
    with pytest.raises(ConfigError, match=r"partition\.column 'seen_at' must be required: true"):
        parse_topic(data, "things.yaml")
    data["fields"][-1]["required"] = True
    assert parse_topic(data, "things.yaml").partition.column == "seen_at"


def test_partition_transform_needs_a_temporal_column() -> None:
    data = minimal_topic(partition={"column": "thing_id", "transform": "day"})
    with pytest.raises(ConfigError, match="needs a timestamp or date column"):
        parse_topic(data, "things.yaml")


@pytest.mark.parametrize(
    ("field", "message"),
    [
        ({"name": "p", "type": "decimal(40,2)"}, "precision <= 38"),
        ({"name": "p", "type": "varchar"}, "unknown type 'varchar'"),
        ({"name": "p", "type": "string", "min": 1}, "min/max apply to numeric"),
        ({"name": "p", "type": "int", "flatten": True}, "only struct fields can be flattened"),
        ({"name": "p", "type": "struct"}, r"fields: required key is missing"),
        ({"name": "p", "type": "array"}, r"items: required key is missing"),
    ],
)
def test_bad_field_types_are_refused(field: dict[str, object], message: str) -> None:
    data = minimal_topic()
    data["fields"] = [*data["fields"], field]  # type: ignore[misc]
    with pytest.raises(ConfigError, match=message):
        parse_topic(data, "things.yaml")


@pytest.mark.parametrize(
    ("field", "column"),
    [
        ({"name": "topic", "type": "string"}, "topic"),
        ({"name": "payload", "type": "struct", "fields": [{"name": "x", "type": "int"}]}, "payload"),
        (
            {
                "name": "message",
                "type": "struct",
                "flatten": True,
                "fields": [{"name": "id", "type": "string"}],
            },
            "message_id",
        ),
    ],
)
def test_fields_named_like_raw_record_columns_are_refused(field: dict[str, object], column: str) -> None:
    """Parsed into, such a column would replace the raw record's own (every record WRONG_TOPIC,
    message ids replaced): the error names the file, the field and the column."""
    data = minimal_topic()
    data["fields"] = [*data["fields"], field]  # type: ignore[misc]
    path = "message.id" if column == "message_id" else column
    with pytest.raises(
        ConfigError, match=rf"^things\.yaml: fields\[{path}\]: column name '{column}' is reserved"
    ):
        parse_topic(data, "things.yaml")


def test_reserved_columns_cover_the_raw_record_and_curation_columns() -> None:
    from lean_ops_spark.catalog.schemas import RAW_STAGING_COLUMNS
    from lean_ops_spark.config.models import RESERVED_COLUMNS

    curated = {name for name, _ in parse_topic(minimal_topic(), "things.yaml").curated_columns()}
    payload = {"thing_id", "updated_at"}
    assert {name for name, _, _ in RAW_STAGING_COLUMNS} | (curated - payload) <= RESERVED_COLUMNS


def test_error_rate_threshold_is_a_fraction() -> None:
    with pytest.raises(ConfigError, match=r"must be at most 1\.0"):
        parse_topic(minimal_topic(error_rate_threshold=5), "things.yaml")


def test_topic_file_name_must_match_topic(tmp_path: Path) -> None:
    (tmp_path / "profiles").mkdir()
    (tmp_path / "topics").mkdir()
    (tmp_path / "profiles" / "local.yaml").write_text("kind: local\n")
    (tmp_path / "topics" / "other.yaml").write_text(yaml.safe_dump(minimal_topic()))
    with pytest.raises(ConfigError, match="does not match the file name 'other'"):
        load_project(tmp_path, "local")


def test_missing_profile_lists_available_ones() -> None:
    with pytest.raises(ConfigError, match=r"profile 'prod' not found .*available: glue, local"):
        load_project(CONF, "prod")


def test_glue_profile_needs_s3_warehouse() -> None:
    with pytest.raises(ConfigError, match="needs an s3:// warehouse"):
        parse_profile({"kind": "glue", "warehouse": "/tmp/wh"}, "glue.yaml", "glue")


def test_invalid_yaml_names_the_file(tmp_path: Path) -> None:
    (tmp_path / "profiles").mkdir()
    (tmp_path / "profiles" / "local.yaml").write_text("kind: [local\n")
    with pytest.raises(ConfigError, match=r"local\.yaml: not valid YAML"):
        load_project(tmp_path, "local")


def test_maintenance_defaults_follow_the_platform_plan() -> None:
    policy = load_project(CONF, "local").maintenance
    expire = policy.operation("expire_snapshots")
    assert (expire.frequency, expire.options["retain_last"], expire.options["older_than_days"]) == (
        "daily",
        "20",
        "7",
    )
    assert policy.operation("remove_orphan_files").frequency == "weekly"
    assert policy.operation("remove_orphan_files").options["older_than_hours"] == "72"
    assert policy.table_properties["write.target-file-size-bytes"] == "268435456"


def test_models_are_frozen() -> None:
    contract = load_project(CONF, "local").topic("orders")
    with pytest.raises(AttributeError):
        contract.topic = "x"  # type: ignore[misc]
    with pytest.raises(TypeError):
        contract.table_properties["x"] = "y"  # type: ignore[index]


def test_unknown_topic_lists_configured_ones() -> None:
    with pytest.raises(
        ConfigError, match=r"unknown topic 'payments' \(configured topics: clickstream, orders\)"
    ):
        load_project(CONF, "local").topic("payments")


@mock_aws
def test_config_loads_from_an_s3_prefix() -> None:
    s3 = boto3.client("s3", region_name="us-east-1")
    s3.create_bucket(Bucket="cfg")
    for path in CONF.rglob("*.yaml"):
        s3.put_object(Bucket="cfg", Key=f"envs/dev/conf/{path.relative_to(CONF)}", Body=path.read_bytes())
    # a file outside the topics folder must not be taken for a topic
    s3.put_object(Bucket="cfg", Key="envs/dev/conf/topics/archive/old.yaml", Body=b"topic: old\n")
    source = S3ConfigSource("s3://cfg/envs/dev/conf", client=s3)
    config = load_project("s3://cfg/envs/dev/conf", "glue", source=source)
    assert set(config.topics) == {"orders", "clickstream"}
    assert config.topic("orders").source == "s3://cfg/envs/dev/conf/topics/orders.yaml"
    s3.put_object(
        Bucket="cfg",
        Key="envs/dev/conf/topics/bad.yaml",
        Body=textwrap.dedent("""
        topic: bad
        key: id
    """).encode(),
    )
    with pytest.raises(
        ConfigError, match=r"s3://cfg/envs/dev/conf/topics/bad\.yaml: .*required key is missing"
    ):
        load_project("s3://cfg/envs/dev/conf", "glue", source=source)
