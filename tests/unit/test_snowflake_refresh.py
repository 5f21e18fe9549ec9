"""Schema refresh automation: the decision (fingerprints vs state), the statements, the connector
path with a fake DB-API connection, the SQL-file path, and the semantic job's call against moto."""

from __future__ import annotations

import gzip
import json
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from lean_ops_spark.catalog.naming import TableRef
from lean_ops_spark.cli.main import main
from lean_ops_spark.errors import RuntimeSetupError
from lean_ops_spark.governance.context import GovernanceContext, load_governance_context
from lean_ops_spark.governance.errors import GovernanceError, SnowflakeError
from lean_ops_spark.governance.schema_state import (
    MetadataSchemaSource,
    RefreshStateStore,
    detect_schema_changes,
    iceberg_schema_fingerprint,
    schema_fingerprint,
)
from lean_ops_spark.governance.snowflake import SnowflakeTarget
from lean_ops_spark.governance.snowflake_refresh import (
    connect_snowflake,
    execute_snowflake_refresh,
    plan_snowflake_refresh,
    refresh_after_commit,
    refresh_snowflake,
)
from tests.unit.test_governance_config import governance_doc, write_project
from tests.unit.test_snowflake_sql import assert_golden

NOW = datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)
WAREHOUSE_BUCKET = "example-lakehouse-warehouse"


class FakeCursor:
    def __init__(self, connection: FakeConnection) -> None:
        self.connection = connection
        self.closed = False

    def execute(self, command: str) -> object:
        if self.connection.fail_on and self.connection.fail_on in command:
            raise RuntimeError("SQL compilation error: object does not exist")
        self.connection.executed.append(command)
        return self

    def close(self) -> None:
        self.closed = True


class FakeConnection:
    """A DB-API-like connection that records what it was asked to run."""

    def __init__(self, fail_on: str | None = None) -> None:
        self.fail_on = fail_on
        self.executed: list[str] = []
        self.cursors: list[FakeCursor] = []
        self.closed = False

    def cursor(self) -> FakeCursor:
        self.cursors.append(FakeCursor(self))
        return self.cursors[-1]

    def close(self) -> None:
        self.closed = True


def metadata(fields: list[dict[str, Any]], *, schema_id: int = 0, snapshot: int = 1) -> dict[str, Any]:
    """A minimal Iceberg v2 ``metadata.json``."""
    return {
        "format-version": 2,
        "table-uuid": "9c12d441-03fe-4693-9a96-a0705ddf69c1",
        "location": "s3://bucket/t",
        "current-schema-id": schema_id,
        "schemas": [
            {"type": "struct", "schema-id": 0, "fields": fields[:1]},
            {"type": "struct", "schema-id": schema_id, "fields": fields},
        ],
        "current-snapshot-id": snapshot,
        "snapshots": [{"snapshot-id": snapshot, "timestamp-ms": 1, "summary": {"operation": "append"}}],
    }


ID = {"id": 1, "name": "order_id", "required": True, "type": "long"}
EMAIL = {"id": 2, "name": "email", "required": False, "type": "string"}
TOTAL = {"id": 3, "name": "total", "required": False, "type": "decimal(10,2)"}


@pytest.fixture
def context(tmp_path: Path) -> GovernanceContext:
    return load_governance_context(write_project(tmp_path), "test")


@pytest.fixture
def target(context: GovernanceContext) -> SnowflakeTarget:
    return context.snowflake()


# --------------------------------------------------------------------------- fingerprints and the decision


def test_the_fingerprint_follows_the_schema_not_the_data() -> None:
    base = iceberg_schema_fingerprint(metadata([ID, EMAIL], schema_id=1))
    assert iceberg_schema_fingerprint(metadata([ID, EMAIL], schema_id=1, snapshot=2)) == base  # a data commit
    assert iceberg_schema_fingerprint(metadata([ID, EMAIL, TOTAL], schema_id=2)) != base  # drift evolve
    promoted = {**EMAIL, "type": "int"}
    assert iceberg_schema_fingerprint(metadata([ID, promoted], schema_id=2)) != base
    v1 = {"format-version": 1, "schema": {"type": "struct", "fields": [ID, EMAIL]}}
    assert iceberg_schema_fingerprint(v1) == base
    assert schema_fingerprint([("a", "int")]) != schema_fingerprint([("a", "bigint")])


def test_the_metadata_source_reads_pointers_and_gzip_files(tmp_path: Path) -> None:
    plain, zipped = tmp_path / "a.metadata.json", tmp_path / "b.gz.metadata.json"
    plain.write_text(json.dumps(metadata([ID])))
    zipped.write_bytes(gzip.compress(json.dumps(metadata([ID, EMAIL], schema_id=1)).encode()))
    pointers = {"s.a": str(plain), "s.b": str(zipped), "s.c": None}
    source = MetadataSchemaSource(lambda _tables: pointers, lambda loc: Path(loc).read_bytes())
    refs = [TableRef("lake", "s", name, "semantic") for name in ("a", "b", "c")]
    observed = source.observe(refs)
    assert observed["s.c"] is None
    assert observed["s.b"] == iceberg_schema_fingerprint(metadata([ID, EMAIL], schema_id=1))


def test_detect_schema_changes_decision_table() -> None:
    changes = detect_schema_changes(
        {"same": "f1", "evolved": "f3", "first_seen": "f4", "not_created_yet": None},
        {"same": "f1", "evolved": "f2", "dropped_from_config": "f9"},
    )
    assert changes.changed == ("evolved",)
    assert changes.new == ("first_seen",)
    assert changes.unchanged == ("same",)
    assert changes.missing == ("not_created_yet",)
    assert changes.affected == ("evolved", "first_seen")


def test_the_plan_refreshes_exactly_the_affected_tables(target: SnowflakeTarget) -> None:
    plan = plan_snowflake_refresh(
        ["lakehouse_semantic.customer_orders"], target, new_tables=["daily_sessions"]
    )
    assert [(a.table, a.reason, [s.kind for s in a.statements]) for a in plan.actions] == [
        ("customer_orders", "schema changed", ["refresh"]),
        ("daily_sessions", "new table", ["create_table", "refresh"]),
    ]
    assert plan.statements[0].sql == "ALTER ICEBERG TABLE ANALYTICS.LAKEHOUSE.customer_orders REFRESH"
    assert plan_snowflake_refresh([], target).actions == ()
    with pytest.raises(SnowflakeError, match="not a table of the semantic database"):
        plan_snowflake_refresh(["lakehouse_curated.orders"], target)
    with pytest.raises(SnowflakeError, match="not a valid semantic table name"):
        plan_snowflake_refresh(["orders; DROP TABLE x"], target)


def test_auto_refresh_tables_are_skipped(tmp_path: Path) -> None:
    doc = governance_doc(tables={"customer_orders": {"auto_refresh": True}})
    target = load_governance_context(write_project(tmp_path, gov_doc=doc), "test").snowflake()
    plan = plan_snowflake_refresh(["customer_orders", "daily_sessions"], target)
    assert [a.table for a in plan.actions] == ["daily_sessions"]
    assert plan.skipped == (
        ("customer_orders", "schema changed; AUTO_REFRESH = TRUE: Snowflake polls the catalog (every 60 s)"),
    )


# --------------------------------------------------------------------------- execution


def test_the_connector_path_runs_each_statement_in_order(target: SnowflakeTarget, tmp_path: Path) -> None:
    connection = FakeConnection()
    plan = plan_snowflake_refresh(["customer_orders"], target, new_tables=["daily_sessions"])
    outcome = execute_snowflake_refresh(plan, connection=connection, sql_dir=str(tmp_path / "sql"))
    assert outcome.mode == "executed" and outcome.done == ("customer_orders", "daily_sessions")
    assert connection.executed == [s.sql for s in plan.statements]
    assert connection.executed[1].startswith(
        "CREATE ICEBERG TABLE IF NOT EXISTS ANALYTICS.LAKEHOUSE.daily_sessions"
    )
    assert all(c.closed for c in connection.cursors)
    assert not (tmp_path / "sql").exists()  # nothing written when a connection runs it


def test_without_a_connection_the_sql_file_is_written_and_reported(
    target: SnowflakeTarget, tmp_path: Path
) -> None:
    plan = plan_snowflake_refresh(["customer_orders"], target, new_tables=["daily_sessions"])
    outcome = execute_snowflake_refresh(plan, connection=None, sql_dir=str(tmp_path / "sql"), now=NOW)
    assert outcome.mode == "written"
    assert outcome.sql_file == str(tmp_path / "sql" / "snowflake-refresh-test-20250102T030405Z.sql")
    assert_golden("snowflake_refresh.sql", Path(outcome.sql_file).read_text())


def test_refresh_records_state_and_a_second_run_does_nothing(target: SnowflakeTarget, tmp_path: Path) -> None:
    state = RefreshStateStore(str(tmp_path / "state.json"))
    observed: dict[str, str | None] = {"customer_orders": "f1", "daily_sessions": None}
    connection = FakeConnection()
    first = refresh_snowflake(
        observed, target, state=state, connection=connection, sql_dir=str(tmp_path), now=NOW
    )
    assert first.changes is not None and first.changes.new == ("customer_orders",)
    assert first.changes.missing == ("daily_sessions",)
    assert [s.split("\n")[0] for s in connection.executed] == [
        "CREATE ICEBERG TABLE IF NOT EXISTS ANALYTICS.LAKEHOUSE.customer_orders",
        "ALTER ICEBERG TABLE ANALYTICS.LAKEHOUSE.customer_orders REFRESH",
    ]
    saved = json.loads((tmp_path / "state.json").read_text())
    assert saved == {
        "version": 1,
        "tables": {
            "customer_orders": {
                "fingerprint": "f1",
                "how": "connector",
                "refreshed_at": "2025-01-02T03:04:05Z",
            }
        },
    }
    again = FakeConnection()
    second = refresh_snowflake(
        observed, target, state=state, connection=again, sql_dir=str(tmp_path), now=NOW
    )
    assert second.plan.actions == () and again.executed == []
    assert second.outcome is not None and second.outcome.mode == "nothing"

    evolved = {"customer_orders": "f2", "daily_sessions": "g1"}
    third = FakeConnection()
    refresh_snowflake(evolved, target, state=state, connection=third, sql_dir=str(tmp_path), now=NOW)
    assert [s.split("\n")[0] for s in third.executed] == [
        "ALTER ICEBERG TABLE ANALYTICS.LAKEHOUSE.customer_orders REFRESH",
        "CREATE ICEBERG TABLE IF NOT EXISTS ANALYTICS.LAKEHOUSE.daily_sessions",
        "ALTER ICEBERG TABLE ANALYTICS.LAKEHOUSE.daily_sessions REFRESH",
    ]


def test_a_failed_statement_keeps_the_done_tables_and_is_retried(
    target: SnowflakeTarget, tmp_path: Path
) -> None:
    state = RefreshStateStore(str(tmp_path / "state.json"))
    state.save({"customer_orders": ("old", "connector"), "daily_sessions": ("old", "connector")}, now=NOW)
    observed: dict[str, str | None] = {"customer_orders": "new", "daily_sessions": "new"}
    failing = FakeConnection(fail_on="daily_sessions")
    with pytest.raises(
        SnowflakeError,
        match=r"REFRESH for daily_sessions failed: RuntimeError.*done before it: customer_orders",
    ):
        refresh_snowflake(observed, target, state=state, connection=failing, sql_dir=str(tmp_path), now=NOW)
    assert RefreshStateStore(str(tmp_path / "state.json")).load() == {
        "customer_orders": "new",
        "daily_sessions": "old",
    }
    retry = FakeConnection()
    refresh_snowflake(observed, target, state=state, connection=retry, sql_dir=str(tmp_path), now=NOW)
    assert retry.executed == ["ALTER ICEBERG TABLE ANALYTICS.LAKEHOUSE.daily_sessions REFRESH"]


def test_a_dry_run_records_nothing(target: SnowflakeTarget, tmp_path: Path) -> None:
    state = RefreshStateStore(str(tmp_path / "state.json"))
    result = refresh_snowflake(
        {"customer_orders": "f1"}, target, state=state, connection=None, sql_dir=str(tmp_path), dry_run=True
    )
    assert result.outcome is None and [a.table for a in result.plan.actions] == ["customer_orders"]
    assert not (tmp_path / "state.json").exists()


# --------------------------------------------------------------------------- connecting


def test_connect_reads_credentials_from_named_environment_variables(tmp_path: Path) -> None:
    doc = governance_doc(
        connection={
            "account": "xy12345.us-east-1",
            "user": "LEAN_OPS",
            "role": "LEAN_OPS_REFRESH",
            "warehouse": "LEAN_OPS_WH",
            "private_key_file_env": "SF_KEY_FILE",
            "private_key_password_env": "SF_KEY_PASSWORD",
        }
    )
    target = load_governance_context(write_project(tmp_path, gov_doc=doc), "test").snowflake()
    calls: list[dict[str, Any]] = []

    def connect(**kwargs: Any) -> FakeConnection:
        calls.append(kwargs)
        return FakeConnection()

    connect_snowflake(
        target, environ={"SF_KEY_FILE": "/keys/rsa.p8", "SF_KEY_PASSWORD": "pw"}, connect=connect
    )
    assert calls == [
        {
            "account": "xy12345.us-east-1",
            "user": "LEAN_OPS",
            "database": "ANALYTICS",
            "schema": "LAKEHOUSE",
            "role": "LEAN_OPS_REFRESH",
            "warehouse": "LEAN_OPS_WH",
            "authenticator": "SNOWFLAKE_JWT",
            "private_key_file": "/keys/rsa.p8",
            "private_key_file_pwd": "pw",
        }
    ]
    with pytest.raises(SnowflakeError, match="environment variable SF_KEY_FILE is not set"):
        connect_snowflake(target, environ={}, connect=connect)


def test_connect_reads_a_password_from_secrets_manager(tmp_path: Path, fake_aws_env: str) -> None:
    doc = governance_doc(
        connection={
            "account": "xy12345",
            "user": "LEAN_OPS",
            "authenticator": "password",
            "secret_id": "lean-ops/sf",
        }
    )
    target = load_governance_context(write_project(tmp_path, gov_doc=doc), "test").snowflake()
    calls: list[dict[str, Any]] = []
    with mock_aws():
        secrets = boto3.client("secretsmanager", region_name="us-east-1")
        secrets.create_secret(Name="lean-ops/sf", SecretString=json.dumps({"password": "from-the-secret"}))

        def connect(**kwargs: Any) -> FakeConnection:
            calls.append(kwargs)
            return FakeConnection()

        connect_snowflake(target, environ={}, secrets_client=secrets, connect=connect)
    assert calls[0]["password"] == "from-the-secret" and "authenticator" not in calls[0]


def test_a_missing_connector_is_a_clear_setup_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    doc = governance_doc(
        connection={
            "account": "xy12345",
            "user": "LEAN_OPS",
            "authenticator": "password",
            "password_env": "SF_PW",
        }
    )
    target = load_governance_context(write_project(tmp_path, gov_doc=doc), "test").snowflake()
    monkeypatch.setitem(sys.modules, "snowflake", None)  # `import snowflake.connector` raises ImportError
    with pytest.raises(RuntimeSetupError, match="snowflake-connector-python is not installed: pip install"):
        connect_snowflake(target, environ={"SF_PW": "x"})


# --------------------------------------------------------------------------- the semantic job's call, on moto


@pytest.fixture
def aws(fake_aws_env: str) -> Iterator[dict[str, Any]]:
    with mock_aws():
        s3 = boto3.client("s3", region_name="us-east-1")
        glue = boto3.client("glue", region_name="us-east-1")
        for bucket in (WAREHOUSE_BUCKET, "lean-ops-test-artifacts"):
            s3.create_bucket(Bucket=bucket)
        glue.create_database(DatabaseInput={"Name": "lakehouse_semantic"})
        yield {"s3": s3, "glue": glue}


def commit(aws: dict[str, Any], table: str, version: int, document: dict[str, Any]) -> None:
    """What GlueCatalog does on a commit: a new metadata.json and the table's pointer moved to it."""
    key = f"iceberg/lakehouse_semantic.db/{table}/metadata/{version:05d}-x.metadata.json"
    aws["s3"].put_object(Bucket=WAREHOUSE_BUCKET, Key=key, Body=json.dumps(document).encode())
    table_input = {
        "Name": table,
        "TableType": "EXTERNAL_TABLE",
        "Parameters": {"table_type": "ICEBERG", "metadata_location": f"s3://{WAREHOUSE_BUCKET}/{key}"},
    }
    if version == 0:
        aws["glue"].create_table(DatabaseName="lakehouse_semantic", TableInput=table_input)
    else:
        aws["glue"].update_table(DatabaseName="lakehouse_semantic", TableInput=table_input)


def _after_commit(context: GovernanceContext, aws: dict[str, Any], tables: list[str], **kwargs: Any) -> Any:
    return refresh_after_commit(
        tables,
        governance=context.governance,
        environment=context.environment,
        profile=context.profile,
        environ={},
        clients=aws,
        now=NOW,
        **kwargs,
    )


def test_after_commit_without_a_connection_writes_sql_to_the_artifacts_prefix(
    context: GovernanceContext, aws: dict[str, Any]
) -> None:
    commit(aws, "customer_orders", 0, metadata([ID, EMAIL]))
    result = _after_commit(context, aws, ["customer_orders", "daily_sessions"])
    assert result.changes.new == ("customer_orders",) and result.changes.missing == ("daily_sessions",)
    assert result.outcome.mode == "written"
    assert result.outcome.sql_file == (
        "s3://lean-ops-test-artifacts/lean-ops/test/snowflake/sql/snowflake-refresh-test-20250102T030405Z.sql"
    )
    body = (
        aws["s3"]
        .get_object(
            Bucket="lean-ops-test-artifacts",
            Key="lean-ops/test/snowflake/sql/snowflake-refresh-test-20250102T030405Z.sql",
        )["Body"]
        .read()
    )
    assert b"ALTER ICEBERG TABLE ANALYTICS.LAKEHOUSE.customer_orders REFRESH;" in body
    state = json.loads(
        aws["s3"]
        .get_object(Bucket="lean-ops-test-artifacts", Key="lean-ops/test/state/snowflake-schemas.json")[
            "Body"
        ]
        .read()
    )
    assert state["tables"]["customer_orders"]["how"] == "sql-file"

    commit(aws, "customer_orders", 1, metadata([ID, EMAIL], snapshot=2))  # data only
    assert _after_commit(context, aws, ["customer_orders"]).plan.actions == ()


def test_after_commit_with_a_connection_refreshes_only_the_evolved_table(
    tmp_path: Path, aws: dict[str, Any]
) -> None:
    doc = governance_doc(
        connection={"account": "xy12345", "user": "LEAN_OPS", "private_key_file_env": "SF_KEY"}
    )
    context = load_governance_context(write_project(tmp_path, gov_doc=doc), "test")
    commit(aws, "customer_orders", 0, metadata([ID, EMAIL]))
    commit(aws, "daily_sessions", 0, metadata([ID]))
    connections: list[FakeConnection] = []

    def connect(**_kwargs: Any) -> FakeConnection:
        connections.append(FakeConnection())
        return connections[-1]

    def run() -> list[str]:
        refresh_after_commit(
            ["customer_orders", "daily_sessions"],
            governance=context.governance,
            environment=context.environment,
            profile=context.profile,
            environ={"SF_KEY": "/keys/rsa.p8"},
            clients=aws,
            connect=connect,
            now=NOW,
        )
        assert connections[-1].closed
        return [s.split("\n")[0] for s in connections[-1].executed]

    assert len(run()) == 4  # first time: create-if-missing + refresh for both
    assert run() == []
    commit(aws, "customer_orders", 1, metadata([ID, EMAIL, TOTAL], schema_id=1))  # drift evolve
    assert run() == ["ALTER ICEBERG TABLE ANALYTICS.LAKEHOUSE.customer_orders REFRESH"]
    # a call for one table leaves the other's state alone
    commit(aws, "daily_sessions", 1, metadata([ID, EMAIL], schema_id=1))
    refresh_after_commit(
        ["daily_sessions"],
        governance=context.governance,
        environment=context.environment,
        profile=context.profile,
        environ={"SF_KEY": "/keys/rsa.p8"},
        clients=aws,
        connect=connect,
        now=NOW,
    )
    assert connections[-1].executed == ["ALTER ICEBERG TABLE ANALYTICS.LAKEHOUSE.daily_sessions REFRESH"]
    assert run() == []


class _S3WithoutListBucket:
    """A moto S3 client that answers like real S3 does for a role with s3:GetObject but no
    s3:ListBucket (moto enforces no IAM): GetObject on a missing key is 403 AccessDenied, not
    404 NoSuchKey. ``list_allowed`` / ``read_denied`` model the other permission cases."""

    def __init__(self, client: Any, *, list_allowed: bool = True, read_denied: bool = False) -> None:
        self.client = client
        self.exceptions = client.exceptions
        self.list_allowed = list_allowed
        self.read_denied = read_denied
        self.listed: list[str] = []

    @staticmethod
    def _denied(operation: str) -> Exception:
        from botocore.exceptions import ClientError

        return ClientError(
            {
                "Error": {"Code": "AccessDenied", "Message": "Access Denied"},
                "ResponseMetadata": {"HTTPStatusCode": 403},
            },
            operation,
        )

    def get_object(self, **kwargs: Any) -> Any:
        if self.read_denied:
            raise self._denied("GetObject")
        try:
            return self.client.get_object(**kwargs)
        except self.client.exceptions.NoSuchKey:
            raise self._denied("GetObject") from None

    def list_objects_v2(self, **kwargs: Any) -> Any:
        if not self.list_allowed:
            raise self._denied("ListObjectsV2")
        self.listed.append(kwargs["Prefix"])
        return self.client.list_objects_v2(**kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.client, name)


STATE_KEY = "lean-ops/test/state/snowflake-schemas.json"


def test_the_first_refresh_runs_when_s3_answers_the_missing_state_with_403(
    context: GovernanceContext, aws: dict[str, Any]
) -> None:
    """Before the first refresh there is no state file; without s3:ListBucket S3 says 403, which
    used to fail every run before anything was refreshed (so the state was never written)."""
    s3 = _S3WithoutListBucket(aws["s3"])
    commit(aws, "customer_orders", 0, metadata([ID, EMAIL]))
    first = _after_commit(context, {**aws, "s3": s3}, ["customer_orders"])
    assert first.changes.new == ("customer_orders",) and first.outcome.mode == "written"
    assert s3.listed == [STATE_KEY]  # exactly the key the semantic job's policy may list
    written = aws["s3"].get_object(Bucket="lean-ops-test-artifacts", Key=STATE_KEY)["Body"].read()
    assert json.loads(written)["tables"]["customer_orders"]["how"] == "sql-file"
    assert _after_commit(context, {**aws, "s3": s3}, ["customer_orders"]).plan.actions == ()


def test_a_denied_read_of_an_existing_state_file_is_an_error_not_an_empty_state(
    aws: dict[str, Any],
) -> None:
    """Taken for "no state", it would re-create every table and overwrite the others' entries."""
    aws["s3"].put_object(
        Bucket="lean-ops-test-artifacts",
        Key=STATE_KEY,
        Body=json.dumps({"version": 1, "tables": {"t": {"fingerprint": "f"}}}).encode(),
    )
    location = f"s3://lean-ops-test-artifacts/{STATE_KEY}"
    store = RefreshStateStore(location, _S3WithoutListBucket(aws["s3"], read_denied=True))
    with pytest.raises(GovernanceError, match="the Snowflake refresh state exists but reading it was denied"):
        store.load()
    assert RefreshStateStore(location, aws["s3"]).load() == {"t": "f"}  # untouched


def test_a_denied_read_that_cannot_be_listed_either_names_the_missing_permission(
    aws: dict[str, Any],
) -> None:
    store = RefreshStateStore(
        f"s3://lean-ops-test-artifacts/{STATE_KEY}", _S3WithoutListBucket(aws["s3"], list_allowed=False)
    )
    with pytest.raises(
        GovernanceError, match=r"s3:ListBucket on bucket lean-ops-test-artifacts for the prefix"
    ):
        store.load()


def test_a_missing_state_file_with_list_bucket_is_an_empty_state(aws: dict[str, Any]) -> None:
    store = RefreshStateStore(f"s3://lean-ops-test-artifacts/{STATE_KEY}", aws["s3"])  # moto: 404 NoSuchKey
    assert store.load() == {}


def test_after_commit_is_a_no_op_without_snowflake(tmp_path: Path, aws: dict[str, Any]) -> None:
    doc = governance_doc()
    del doc["snowflake"], doc["lake_formation"]["grants"]["snowflake"]
    context = load_governance_context(write_project(tmp_path, gov_doc=doc), "test")
    assert _after_commit(context, aws, ["customer_orders"]) is None


def test_cli_refresh_dry_run_then_file_then_nothing(
    tmp_path: Path, aws: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    conf = write_project(tmp_path)
    commit(aws, "customer_orders", 0, metadata([ID, EMAIL]))
    state, sql = tmp_path / "state.json", tmp_path / "sql"
    argv = [
        "snowflake",
        "refresh",
        "--env",
        "test",
        "--conf",
        str(conf),
        "--state",
        str(state),
        "--sql-dir",
        str(sql),
    ]
    assert main([*argv, "--dry-run", "--json"]) == 0
    document = json.loads(capsys.readouterr().out)
    assert document["dry_run"] is True and document["outcome"] is None
    assert [a["table"] for a in document["plan"]["actions"]] == ["customer_orders"]
    assert not state.exists()
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "schema: 0 changed, 1 new, 0 unchanged, 1 not in the catalog yet" in out
    assert f"no Snowflake connection configured: SQL written to {sql}/snowflake-refresh-test-" in out
    assert main(argv) == 0
    assert "nothing to refresh" in capsys.readouterr().out
    assert (
        main([*argv, "--tables", "daily_sessions", "--json"]) == 0
    )  # a requested refresh, regardless of state
    forced = json.loads(capsys.readouterr().out)
    assert forced["plan"]["actions"] == [
        {
            "table": "daily_sessions",
            "reason": "requested",
            "sql": ["ALTER ICEBERG TABLE ANALYTICS.LAKEHOUSE.daily_sessions REFRESH"],
        }
    ]
    assert forced["outcome"]["mode"] == "written"
