"""Governance config: the environment's encryption/network/iam sections, ``governance/<env>.yaml``,
and the minimal reading of ``conf/semantic/``. Also the shared fixtures of the governance tests."""

from __future__ import annotations

import copy
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml

from lean_ops_spark.config.environment import load_environment, parse_environment
from lean_ops_spark.config.sources import LocalConfigSource
from lean_ops_spark.errors import ConfigError
from lean_ops_spark.governance.config import load_governance, parse_governance, resolve_principals
from lean_ops_spark.governance.context import load_governance_context
from lean_ops_spark.governance.semantic_tables import discover_semantic_tables
from tests.unit.test_orchestration_scenarios import ENV_DOC

REPO = Path(__file__).resolve().parents[2]
ACCOUNT = "123456789012"
KMS_KEY = f"arn:aws:kms:us-east-1:{ACCOUNT}:key/1234abcd-12ab-34cd-56ef-1234567890ab"


def role(name: str) -> str:
    return f"arn:aws:iam::{ACCOUNT}:role/{name}"


def governed_env_doc(**changes: Any) -> dict[str, Any]:
    """ENV_DOC with a role per job, SSE-KMS and a VPC."""
    doc = copy.deepcopy(ENV_DOC)
    for job in ("curation", "semantic", "maintenance"):
        doc["glue"]["jobs"][job]["role_arn"] = role(f"{job}-job")
    doc["encryption"] = {"kms_key_arn": KMS_KEY, "security_configuration": "lean-ops-test-kms"}
    doc["network"] = {
        "connection": "lean-ops-test-vpc",
        "subnet_id": "subnet-0123456789abcdef0",
        "security_group_ids": ["sg-0123456789abcdef0"],
        "availability_zone": "us-east-1a",
    }
    doc.update(changes)
    return doc


governed_env_doc.__test__ = False  # type: ignore[attr-defined]


def governance_doc(**snowflake: Any) -> dict[str, Any]:
    return {
        "principals": {"analyst": role("analyst")},
        "lake_formation": {
            "grants": {
                "curation_job": {
                    "raw": ["SELECT", "DESCRIBE"],
                    "curated": {
                        "tables": ["ALL"],
                        "database": ["CREATE_TABLE", "DESCRIBE"],
                        "data_location": True,
                    },
                    "quarantine": {"tables": ["ALL"], "data_location": True},
                },
                "semantic_job": {
                    "curated": ["SELECT", "DESCRIBE"],
                    "semantic": {"tables": ["ALL"], "database": ["CREATE_TABLE"], "data_location": True},
                },
                "lambda": {"raw": ["DESCRIBE"], "curated": ["DESCRIBE"], "semantic": ["DESCRIBE"]},
                "snowflake": {
                    "semantic": {
                        "tables": ["SELECT", "DESCRIBE"],
                        "excluded_columns": {"customer_orders": ["email"]},
                    }
                },
                "analyst": {"semantic": ["SELECT"]},
            }
        },
        "snowflake": {
            "database": "ANALYTICS",
            "schema": "LAKEHOUSE",
            "external_volume": "LEAN_OPS_TEST_VOLUME",
            "catalog_integration": {
                "name": "LEAN_OPS_TEST_GLUE",
                "type": "glue",
                "role_arn": role("snowflake"),
                "refresh_interval_seconds": 60,
            },
            **snowflake,
        },
    }


SEMANTIC_FILES = {
    # one model per file, columns as mappings
    "orders.yaml": {
        "name": "customer_orders",
        "columns": [{"name": "order_id", "expr": "order_id"}, {"name": "email", "expr": "customer.email"}],
    },
    # several models, target as a mapping
    "clickstream.yaml": {"models": [{"target": {"table": "daily_sessions"}, "columns": ["day", "sessions"]}]},
}
#: the semantic layer's own shape (conf/semantic/<topic>.yaml): entity and aggregate models
SEMANTIC_LAYER_FILE = {
    "topic": "orders",
    "models": [
        {
            "name": "orders",
            "kind": "entity",
            "key": ["order_id"],
            "columns": ["order_id", {"name": "order_status", "expr": "status"}],
        },
        {
            "name": "orders_daily_revenue",
            "kind": "aggregate",
            "group_by": [{"name": "order_date", "expr": "to_date(order_ts)", "type": "date"}, "currency"],
            "measures": [{"name": "revenue", "expr": "sum(total_amount)"}],
        },
    ],
}


def write_project(
    root: Path, env_doc: dict[str, Any] | None = None, gov_doc: dict[str, Any] | None = None
) -> Path:
    """A private conf/ tree: the checkout's profiles, topics, maintenance + our test files."""
    conf = root / "conf"
    shutil.copytree(
        REPO / "conf",
        conf,
        ignore=shutil.ignore_patterns("environments", "governance", "semantic"),
        dirs_exist_ok=True,
    )
    for folder, name, doc in (
        ("environments", "test.yaml", env_doc or governed_env_doc()),
        ("governance", "test.yaml", gov_doc or governance_doc()),
        *(("semantic", n, d) for n, d in SEMANTIC_FILES.items()),
    ):
        (conf / folder).mkdir(parents=True, exist_ok=True)
        (conf / folder / name).write_text(yaml.safe_dump(doc, sort_keys=False))
    return conf


write_project.__test__ = False  # type: ignore[attr-defined]


# --------------------------------------------------------------------------- environment additions


def test_environment_governance_sections_parse() -> None:
    env = parse_environment(governed_env_doc(iam={"resource_scope": "database"}), "test.yaml", "test")
    assert env.encryption is not None and env.encryption.kms_key_arn == KMS_KEY
    assert env.encryption.security_configuration == "lean-ops-test-kms"
    assert env.network is not None and env.network.security_group_ids == ("sg-0123456789abcdef0",)
    assert env.iam.resource_scope == "database" and env.iam.attach_policies is False
    assert env.job_role_arn(env.curation_job) == role("curation-job")
    assert (
        env.glue_job_arn(env.semantic_job) == f"arn:aws:glue:us-east-1:{ACCOUNT}:job/lean-ops-test-semantic"
    )


def test_environment_without_the_sections_is_unchanged() -> None:
    env = parse_environment(copy.deepcopy(ENV_DOC), "test.yaml", "test")
    assert env.encryption is None and env.network is None and env.iam.attach_policies is False
    assert env.job_role_arn(env.curation_job) == env.glue_role_arn
    assert load_environment(REPO / "conf", "dev").encryption is None  # the example keeps them commented out


@pytest.mark.parametrize(
    ("section", "value", "message"),
    [
        (
            "encryption",
            {"kms_key_arn": "alias/mine", "security_configuration": "x"},
            r"encryption\.kms_key_arn",
        ),
        (
            "encryption",
            {"kms_key_arn": KMS_KEY, "security_configuration": "x", "s3": 1},
            r"unknown key\(s\) s3",
        ),
        (
            "network",
            {
                "connection": "c",
                "subnet_id": "subnet-0123456789abcdef0",
                "security_group_ids": [],
                "availability_zone": "us-east-1a",
            },
            r"network\.security_group_ids: at least one",
        ),
        (
            "network",
            {
                "connection": "c",
                "subnet_id": "sub-1",
                "security_group_ids": ["sg-0123456789abcdef0"],
                "availability_zone": "us-east-1a",
            },
            r"network\.subnet_id",
        ),
        ("iam", {"resource_scope": "bucket"}, r"iam\.resource_scope: 'bucket' is not one of table, database"),
    ],
)
def test_environment_sections_are_strict(section: str, value: object, message: str) -> None:
    with pytest.raises(ConfigError, match=r"^test\.yaml: .*" + message):
        parse_environment(governed_env_doc(**{section: value}), "test.yaml", "test")


def test_a_job_role_must_be_an_arn() -> None:
    doc = governed_env_doc()
    doc["glue"]["jobs"]["semantic"]["role_arn"] = "semantic-role"
    with pytest.raises(
        ConfigError, match=r"glue\.jobs\.semantic\.role_arn: 'semantic-role' is not a valid IAM role ARN"
    ):
        parse_environment(doc, "test.yaml", "test")


# --------------------------------------------------------------------------- governance file


def test_the_example_governance_file_loads_and_resolves_principals() -> None:
    governance = load_governance(REPO / "conf", "dev")
    assert governance is not None and governance.snowflake is not None
    env = load_environment(REPO / "conf", "dev")
    principals = resolve_principals(governance, env)
    assert principals["curation_job"] == env.glue_role_arn  # no per-job role in the example
    assert principals["snowflake"] == governance.snowflake.catalog_integration.role_arn
    assert principals["analyst"].endswith(":role/lean-ops-dev-analyst")
    layers = {(g.principal, g.layer): g for g in governance.lake_formation.grants}
    assert layers[("curation_job", "raw")].table_permissions == ("SELECT", "DESCRIBE")
    assert layers[("curation_job", "curated")].database_permissions == ("CREATE_TABLE", "DESCRIBE")
    assert layers[("semantic_job", "semantic")].data_location is True


def test_excluded_columns_parse_per_table() -> None:
    governance = parse_governance(governance_doc(), "g.yaml", "test")
    (snowflake,) = [g for g in governance.lake_formation.grants if g.principal == "snowflake"]
    assert dict(snowflake.excluded_columns) == {"customer_orders": ("email",)}


def _mutate(path: list[str], value: object) -> dict[str, Any]:
    doc = governance_doc()
    node: Any = doc
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    return doc


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        (
            ["lake_formation", "grants", "nobody"],
            {"raw": ["SELECT"]},
            r"grants\.nobody: unknown principal 'nobody'",
        ),
        (["lake_formation", "grants", "lambda", "gold"], ["SELECT"], r"grants\.lambda\.gold: unknown layer"),
        (
            ["lake_formation", "grants", "lambda", "raw"],
            ["READ"],
            r"grants\.lambda\.raw\[0\]: 'READ' is not one of",
        ),
        (
            ["lake_formation", "grants", "lambda", "raw"],
            ["ALL", "SELECT"],
            r"grants\.lambda\.raw: ALL already includes SELECT",
        ),
        (
            ["lake_formation", "grants", "analyst", "semantic"],
            {"tables": ["ALL"], "excluded_columns": {"customer_orders": ["email"]}},
            r"excluded_columns need SELECT",
        ),
        (
            ["lake_formation", "grants", "lambda", "raw"],
            {"tables": ["SELECT"], "colour": 1},
            r"unknown key\(s\) colour",
        ),
        (["lake_formation", "revoke_extras"], True, r"lake_formation: unknown key\(s\) revoke_extras"),
        (["principals", "curation_job"], role("x"), r"principals\.curation_job: 'curation_job' is built in"),
        (
            ["principals", "bucket"],
            "arn:aws:s3:::bucket",
            r"principals\.bucket: .* is not an IAM role or user ARN",
        ),
        (["snowflake", "external_volume"], None, r"snowflake\.external_volume: required unless"),
        (
            ["snowflake", "catalog_integration", "access_delegation"],
            "vended_credentials",
            r"need type: glue_rest",
        ),
        (
            ["snowflake", "database"],
            "analytics-db",
            r"snowflake\.database: 'analytics-db' is not a valid Snowflake",
        ),
        (
            ["snowflake", "tables"],
            {"customer_orders": {"auto_refresh": "yes"}},
            r"auto_refresh: expected true or false",
        ),
    ],
)
def test_governance_file_is_strict(path: list[str], value: object, message: str) -> None:
    with pytest.raises(ConfigError, match=r"^g\.yaml: .*" + message):
        parse_governance(_mutate(path, value), "g.yaml", "test")


@pytest.mark.parametrize("key", ["password", "private_key", "token"])
def test_secrets_are_refused_with_what_to_use_instead(key: str) -> None:
    connection = {"account": "xy12345", "user": "LEAN_OPS", key: "hunter2"}
    with pytest.raises(
        ConfigError, match=rf"snowflake\.connection\.{key}: never put secrets in config; name an environment"
    ):
        parse_governance(_mutate(["snowflake", "connection"], connection), "g.yaml", "test")


def test_a_connection_needs_a_named_credential() -> None:
    connection = {"account": "xy12345", "user": "LEAN_OPS", "authenticator": "password"}
    with pytest.raises(ConfigError, match="authenticator password needs password_env"):
        parse_governance(_mutate(["snowflake", "connection"], connection), "g.yaml", "test")
    ok = parse_governance(
        _mutate(["snowflake", "connection"], {**connection, "password_env": "SNOWFLAKE_PASSWORD"}),
        "g.yaml",
        "test",
    )
    assert ok.snowflake is not None and ok.snowflake.connection is not None
    assert ok.snowflake.connection.password_env == "SNOWFLAKE_PASSWORD"


def test_a_missing_governance_file_lists_the_available_ones(tmp_path: Path) -> None:
    conf = write_project(tmp_path)
    with pytest.raises(ConfigError, match=r"governance config 'prod' not found .* \(available: test\)"):
        load_governance(conf, "prod")
    assert load_governance(conf, "prod", required=False) is None


# --------------------------------------------------------------------------- semantic tables


def test_semantic_tables_are_read_minimally_from_conf_semantic(tmp_path: Path) -> None:
    conf = write_project(tmp_path)
    (conf / "semantic" / "README.md").write_text("not yaml\n")
    (conf / "semantic" / "payments.yaml").write_text(
        "target: lakehouse_semantic.payments_daily\nunknown_key: 1\n"
    )
    (conf / "semantic" / "refunds.yaml").write_text("expressions: {}\n")  # no name: the file name
    tables = discover_semantic_tables(LocalConfigSource(conf))
    assert [(t.name, t.columns) for t in tables] == [
        ("customer_orders", ("order_id", "email")),
        ("daily_sessions", ("day", "sessions")),
        ("payments_daily", ()),
        ("refunds", ()),
    ]


def test_the_semantic_layers_own_model_files_are_understood(tmp_path: Path) -> None:
    folder = tmp_path / "conf" / "semantic"
    folder.mkdir(parents=True)
    (folder / "orders.yaml").write_text(yaml.safe_dump(SEMANTIC_LAYER_FILE, sort_keys=False))
    tables = discover_semantic_tables(LocalConfigSource(tmp_path / "conf"))
    assert [(t.name, t.columns) for t in tables] == [
        ("orders", ("order_id", "order_status")),
        ("orders_daily_revenue", ("order_date", "currency", "revenue")),
    ]


def test_an_explicit_list_wins_and_duplicates_are_refused(tmp_path: Path) -> None:
    conf = write_project(tmp_path)
    assert [t.name for t in discover_semantic_tables(LocalConfigSource(conf), ["only_this"])] == ["only_this"]
    (conf / "semantic" / "again.yaml").write_text("table: customer_orders\n")
    with pytest.raises(
        ConfigError, match=r"orders\.yaml: table 'customer_orders' is also the target of .*again\.yaml"
    ):
        discover_semantic_tables(LocalConfigSource(conf))
    (conf / "semantic" / "again.yaml").write_text("table: Customer-Orders\n")
    with pytest.raises(
        ConfigError, match=r"again\.yaml: table name: 'Customer-Orders' is not a valid identifier"
    ):
        discover_semantic_tables(LocalConfigSource(conf))


def test_governance_context_loads_everything_once(tmp_path: Path) -> None:
    conf = write_project(tmp_path)
    context = load_governance_context(conf, "test")
    assert context.topics == ("clickstream", "orders")
    assert [t.name for t in context.semantic_tables] == ["customer_orders", "daily_sessions"]
    scope = context.scope()
    assert [t.identifier for t in scope.tables("quarantine")] == [
        "lakehouse_curated.clickstream_quarantine",
        "lakehouse_curated.orders_quarantine",
    ]
    assert scope.table_location(scope.tables("semantic")[0]).uri == (
        "s3://example-lakehouse-warehouse/iceberg/lakehouse_semantic.db/customer_orders"
    )
    assert context.snowflake().table_name("customer_orders") == "ANALYTICS.LAKEHOUSE.customer_orders"
