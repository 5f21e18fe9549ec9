"""Rough edges of the CLI, without Spark: ``snowflake refresh`` without credentials, ``dq`` on a
table without a suite, the semantic tables in ``tables``, and partition labels of time transforms.

The functions these fixes added are imported inside the tests, so that run against the code
before them each test fails on its own behaviour, not the whole module on an import.
"""

from __future__ import annotations

import json
import shutil
from datetime import date
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import yaml

from lean_ops_spark.cli.context import CliContext
from lean_ops_spark.cli.main import main
from lean_ops_spark.maintenance.health import PartitionField, PartitionHealth
from tests.unit.test_governance_config import governance_doc, write_project

REPO = Path(__file__).resolve().parents[2]
CONF = str(REPO / "conf")

#: Variables through which boto3 could find credentials (besides the files, pointed away below).
AWS_CREDENTIAL_VARIABLES = (
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_SECURITY_TOKEN",
    "AWS_PROFILE",
    "AWS_DEFAULT_PROFILE",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
    "AWS_ROLE_ARN",
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
    "AWS_ENDPOINT_URL",
)


@pytest.fixture
def no_aws_credentials(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """A machine where boto3 finds no credentials (and never asks the instance metadata service)."""
    for name in AWS_CREDENTIAL_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")


@pytest.fixture
def no_spark(monkeypatch: pytest.MonkeyPatch) -> None:
    """A command that gets as far as starting Spark fails the test."""

    def spark(_self: CliContext) -> Any:
        raise AssertionError("the command started Spark")

    monkeypatch.setattr(CliContext, "spark", spark)


# --------------------------------------------------------------------------- 1. snowflake refresh


def _refresh(conf: Path, home: Path, *extra: str) -> list[str]:
    return ["snowflake", "refresh", "--env", "test", "--conf", str(conf), "--home", str(home), *extra]


@pytest.mark.usefixtures("no_aws_credentials")
def test_snowflake_refresh_without_aws_credentials_is_a_config_error_naming_them(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """It used to exit 4 with boto3's `unexpected NoCredentialsError: Unable to locate credentials`."""
    conf = write_project(tmp_path)
    assert main([*_refresh(conf, tmp_path), "--json"]) == 2
    captured = capsys.readouterr()
    error = json.loads(captured.out)["error"]
    assert error["type"] == "ConfigError"
    message = error["message"]
    assert message.startswith("no AWS credentials found")
    for needed in (
        "Glue Data Catalog",
        "the state file s3://lean-ops-test-artifacts/lean-ops/test/state/snowflake-schemas.json",
        "the SQL folder s3://lean-ops-test-artifacts/lean-ops/test/snowflake/sql",
        "AWS_PROFILE",
        "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY",
        "--state and --sql-dir also take local paths",
    ):
        assert needed in message, needed
    assert len(captured.err.strip().splitlines()) == 1


@pytest.mark.usefixtures("no_aws_credentials")
def test_snowflake_refresh_names_the_unset_snowflake_credential_variables(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """It used to fail (exit 1) on the first unset variable only, as a Snowflake call error."""
    monkeypatch.delenv("LEAN_OPS_TEST_SF_KEY", raising=False)
    monkeypatch.delenv("LEAN_OPS_TEST_SF_KEY_PWD", raising=False)
    connection = {
        "account": "xy12345",
        "user": "LEAN_OPS",
        "private_key_file_env": "LEAN_OPS_TEST_SF_KEY",
        "private_key_password_env": "LEAN_OPS_TEST_SF_KEY_PWD",
    }
    conf = write_project(tmp_path, gov_doc=governance_doc(connection=connection))
    assert main(_refresh(conf, tmp_path)) == 2
    err = capsys.readouterr().err
    assert str(conf / "governance" / "test.yaml") in err
    assert "LEAN_OPS_TEST_SF_KEY (the path of the private key file (.p8); named by " in err
    assert "snowflake.connection.private_key_file_env" in err
    assert "LEAN_OPS_TEST_SF_KEY_PWD (the private key's passphrase" in err
    assert "`export LEAN_OPS_TEST_SF_KEY=...`" in err and "secret_id" in err and "--no-connect" in err

    # the library check behind it: only the variables the authenticator reads, unset or empty
    from lean_ops_spark.governance.context import load_governance_context
    from lean_ops_spark.governance.snowflake_refresh import missing_credential_variables

    settings = load_governance_context(conf, "test").snowflake().settings.connection
    assert settings is not None
    assert missing_credential_variables(settings, {"LEAN_OPS_TEST_SF_KEY": "/k.p8"}) == (
        ("private_key_password_env", "LEAN_OPS_TEST_SF_KEY_PWD"),
    )
    assert missing_credential_variables(
        settings, {"LEAN_OPS_TEST_SF_KEY": "", "LEAN_OPS_TEST_SF_KEY_PWD": "p"}
    ) == (("private_key_file_env", "LEAN_OPS_TEST_SF_KEY"),)


@pytest.mark.parametrize("subcommand", ["ddl", "refresh"])
def test_snowflake_without_a_snowflake_section_is_a_config_error(
    subcommand: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    doc = governance_doc()
    del doc["snowflake"], doc["lake_formation"]["grants"]["snowflake"]
    conf = write_project(tmp_path, gov_doc=doc)
    assert main(["snowflake", subcommand, "--env", "test", "--conf", str(conf)]) == 2
    err = capsys.readouterr().err
    assert "no snowflake: section; add one with database, schema" in err
    assert str(conf / "governance" / "test.yaml") in err


@pytest.mark.usefixtures("no_aws_credentials")
def test_snowflake_ddl_and_a_planned_refresh_need_no_credentials(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Guards (these worked before too): the DDL reads config only, and ``--tables`` with
    ``--dry-run`` only plans; neither may start asking for credentials."""
    conf = write_project(tmp_path)
    assert main(["snowflake", "ddl", "--env", "test", "--conf", str(conf)]) == 0
    assert "CREATE ICEBERG TABLE" in capsys.readouterr().out
    assert main([*_refresh(conf, tmp_path), "--tables", "customer_orders", "--dry-run"]) == 0
    assert "ALTER ICEBERG TABLE ANALYTICS.LAKEHOUSE.customer_orders REFRESH" in capsys.readouterr().out


# --------------------------------------------------------------------------- 2. dq without a suite


def _conf_copy(tmp_path: Path) -> Path:
    conf = tmp_path / "conf"
    shutil.copytree(CONF, conf)
    return conf


def _drop_suite(conf: Path, layer: str, topic: str, table: str | None = None) -> None:
    """Remove ``quality/<layer>/<topic>.yaml``, or only ``table``'s suite in it."""
    path = conf / "quality" / layer / f"{topic}.yaml"
    if table is None:
        path.unlink()
        return
    document = yaml.safe_load(path.read_text())
    del document["tables"][table]
    path.write_text(yaml.safe_dump(document))


@pytest.mark.usefixtures("no_spark")
@pytest.mark.parametrize(
    ("table", "drop", "expected"),
    [
        (  # a topic's curated table whose suite file does not exist
            "curated.clickstream",
            ("curated", "clickstream", None),
            "{conf}/quality/curated/clickstream.yaml does not exist",
        ),
        (  # a semantic model left out of its topic's suite file
            "semantic.orders_daily_revenue",
            ("semantic", "orders", "orders_daily_revenue"),
            "{conf}/quality/semantic/orders.yaml has no suite for table 'orders_daily_revenue'",
        ),
        (  # a table of no topic at all
            "curated.payments",
            None,
            "'payments' is not the curated table of a configured topic (clickstream, orders), and no "
            "suite file under {conf}/quality/curated (clickstream.yaml, orders.yaml) has a suite for it",
        ),
        (
            "semantic.nosuch",
            None,
            "'nosuch' is not a semantic model of a configured topic (clickstream, orders), and no "
            "suite file under {conf}/quality/semantic (clickstream.yaml, orders.yaml) has a suite for it",
        ),
    ],
    ids=["no-suite-file", "not-in-its-suite-file", "unknown-curated-table", "unknown-semantic-table"],
)
def test_dq_on_a_table_without_a_suite_fails_before_spark_starts(
    table: str,
    drop: tuple[str, str, str | None] | None,
    expected: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """It used to start Spark (or, on a home never initialised, ask for `lean-ops init`) first."""
    conf = _conf_copy(tmp_path)
    if drop is not None:
        _drop_suite(conf, *drop)
    home = tmp_path / "home"  # never initialised: Spark would refuse it (exit 3) before the suite
    assert main(["dq", "--table", table, "--conf", str(conf), "--home", str(home), "--json"]) == 2
    captured = capsys.readouterr()
    assert "starting Spark" not in captured.err
    error = json.loads(captured.out)["error"]
    assert error["type"] == "ConfigError"
    assert error["message"].startswith(f"no data-quality suite for {table}: {expected.format(conf=conf)}")


def test_dq_looks_the_suite_up_once_before_spark_and_hands_it_to_the_check(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from lean_ops_spark.cli.commands import dq as dq_command

    checked: list[dict[str, Any]] = []

    def check_table(_spark: Any, _config: Any, name: str, **kwargs: Any) -> Any:
        checked.append({"name": name, **kwargs})
        return SimpleNamespace(success=True, as_dict=lambda: {"table": name})

    monkeypatch.setattr(dq_command, "check_table", check_table)
    monkeypatch.setattr(CliContext, "spark", lambda _self: object())
    assert main(["dq", "--table", "curated.orders", "--conf", CONF, "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == {"ok": True, "table": "curated.orders"}
    [call] = checked
    assert call["suite"] is not None and call["suite"].name == "curated.orders"


# --------------------------------------------------------------------------- 3. tables: semantic tables


def _catalog(home: Path) -> Any:
    from pyiceberg.catalog.sql import SqlCatalog

    home.mkdir(parents=True, exist_ok=True)
    return SqlCatalog("lake", uri=f"sqlite:///{home}/catalog.db", warehouse=f"file://{home}/warehouse")


def test_tables_lists_each_topics_semantic_tables_and_marks_the_missing_ones(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from pyiceberg.schema import Schema
    from pyiceberg.types import LongType, NestedField

    home = tmp_path / "home"
    catalog = _catalog(home)
    catalog.create_namespace("semantic")
    catalog.create_table("semantic.orders", Schema(NestedField(1, "order_id", LongType(), required=False)))

    assert main(["tables", "--conf", CONF, "--home", str(home), "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)["tables"]
    assert [(t["table"], t["layer"], t["topic"], t["exists"]) for t in listed] == [
        ("lake.raw.clickstream_staging", "raw", "clickstream", False),
        ("lake.curated.clickstream", "curated", "clickstream", False),
        ("lake.curated.clickstream_quarantine", "quarantine", "clickstream", False),
        ("lake.semantic.clickstream", "semantic", "clickstream", False),
        ("lake.raw.orders_staging", "raw", "orders", False),
        ("lake.curated.orders", "curated", "orders", False),
        ("lake.curated.orders_quarantine", "quarantine", "orders", False),
        ("lake.semantic.orders", "semantic", "orders", True),
        ("lake.semantic.orders_daily_revenue", "semantic", "orders", False),
    ]
    created = next(t for t in listed if t["table"] == "lake.semantic.orders")
    assert created["current_snapshot_id"] is None and created["snapshot_count"] == 0
    assert created["last_updated"] is not None

    assert main(["tables", "--conf", CONF, "--home", str(home)]) == 0
    lines = capsys.readouterr().out.splitlines()
    rows = {line.split()[0]: line for line in lines[2:] if line.startswith("lake.")}
    assert "(missing)" in rows["lake.semantic.orders_daily_revenue"]
    assert "(missing)" in rows["lake.semantic.clickstream"]
    assert "(missing)" not in rows["lake.semantic.orders"]
    assert f"6 table(s) missing: run `lean-ops init --home {home}`" in lines
    assert lines[-1] == (
        "2 semantic table(s) missing: the first semantic run of their topic creates them, once its "
        f"curated table has data (`lean-ops semantic --topic clickstream --home {home}`, "
        f"`lean-ops semantic --topic orders --home {home}`)"
    )

    assert main(["tables", "--conf", CONF, "--home", str(home), "--topics", "clickstream", "--json"]) == 0
    only = json.loads(capsys.readouterr().out)["tables"]
    assert [t["table"] for t in only if t["layer"] == "semantic"] == ["lake.semantic.clickstream"]


def test_tables_still_lists_the_other_tables_when_a_model_file_is_broken(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    conf = _conf_copy(tmp_path)
    (conf / "semantic" / "clickstream.yaml").write_text("topic: clickstream\nmodels: 3\n")
    home = tmp_path / "home"
    _catalog(home)
    assert main(["tables", "--conf", str(conf), "--home", str(home), "--json"]) == 0
    captured = capsys.readouterr()
    listed = [t["table"] for t in json.loads(captured.out)["tables"]]
    assert "lake.curated.clickstream" in listed and "lake.semantic.orders" in listed
    assert "lake.semantic.clickstream" not in listed
    assert "semantic tables of topic clickstream not listed: " in captured.err


# --------------------------------------------------------------------------- 4. partition labels


def test_time_transform_values_read_as_iceberg_shows_them() -> None:
    from lean_ops_spark.maintenance.health import partition_value_label

    last_day = (date(2025, 12, 31) - date(1970, 1, 1)).days
    assert [
        partition_value_label("year", 55),
        partition_value_label("year", -1),
        partition_value_label("month", 671),
        partition_value_label("month", 0),
        partition_value_label("month", -1),
        partition_value_label("day", date(2025, 12, 31)),  # how Spark gives a day
        partition_value_label("day", last_day),
        partition_value_label("hour", last_day * 24 + 13),
        partition_value_label("hour", -1),
    ] == [
        "2025",
        "1969",
        "2025-12",
        "1970-01",
        "1969-12",
        "2025-12-31",
        "2025-12-31",
        "2025-12-31-13",
        "1969-12-31-23",
    ]
    # identity, bucket and truncate values as they are; a null as before
    assert [
        partition_value_label("identity", 671),
        partition_value_label("identity", date(2025, 12, 31)),
        partition_value_label("identity", True),
        partition_value_label("bucket", 3),
        partition_value_label("truncate", "abc"),
        partition_value_label(None, 671),
        partition_value_label("month", None),
    ] == ["671", "2025-12-31", "True", "3", "abc", "671", "null"]


def _partition(month: int, small: int = 1, **kwargs: Any) -> PartitionHealth:
    fields = (
        PartitionField("order_date_month", "month", "order_date", "date"),
        PartitionField("id_bucket", "bucket", "id", "bigint"),
    )
    values = (("order_date_month", month), ("id_bucket", 3))
    return PartitionHealth(values, 2, small, 100, 10, fields=fields, **kwargs)  # type: ignore[arg-type]


def test_partition_labels_render_transforms_and_sort_by_time() -> None:
    from lean_ops_spark.catalog.naming import TableRef
    from lean_ops_spark.maintenance.health import TableHealth

    assert _partition(671).label == "order_date_month=2025-12/id_bucket=3"
    assert _partition(671, spec_id=0, current_spec=False).label == (
        "order_date_month=2025-12/id_bucket=3 (older spec 0)"
    )
    # ties on small files go by label: now by month (months 99 and 100 sorted as "100" < "99" before)
    health = TableHealth(
        table=TableRef("lake", "curated", "orders", "curated", "orders"),
        measured_at_ms=0,
        current_snapshot_id=1,
        target_file_size_bytes=100,
        small_file_threshold_bytes=75,
        partitions=(_partition(100), _partition(671, small=2), _partition(99)),
    )
    assert [p["partition"] for p in health.as_dict()["top_small_file_partitions"]] == [
        "order_date_month=2025-12/id_bucket=3",
        "order_date_month=1978-04/id_bucket=3",
        "order_date_month=1978-05/id_bucket=3",
    ]
