"""Least-privilege IAM documents: no wildcard actions, every remaining wildcard explained and
expected, each role limited to what its code touches, valid IAM syntax (moto's validator)."""

from __future__ import annotations

import fnmatch
import json
import os
import re
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from lean_ops_spark.catalog.naming import TableRef
from lean_ops_spark.cli.main import main
from lean_ops_spark.config.models import Profile
from lean_ops_spark.drift.audit import audit_table
from lean_ops_spark.governance.context import GovernanceContext, load_governance_context
from lean_ops_spark.governance.iam import INLINE_POLICY_LIMIT, PolicyStatement, RolePolicy, role_policies
from lean_ops_spark.governance.layers import GovernedScope
from lean_ops_spark.orchestration.checkpoints import get_all_checkpoints
from lean_ops_spark.orchestration.snapshots import MetadataFileSource, glue_pointers
from tests.unit.test_governance_config import KMS_KEY, governance_doc, governed_env_doc, role, write_project

WAREHOUSE = "arn:aws:s3:::example-lakehouse-warehouse/iceberg"
ARTIFACTS = "arn:aws:s3:::lean-ops-test-artifacts/lean-ops/test"
REGION_ACCOUNT = "us-east-1:123456789012"

#: Every wildcard resource a generated policy may hold, and why (asserted per statement).
ALLOWED_WILDCARDS = {
    "*": ("no resource-level permissions",),
    f"{WAREHOUSE}/*.db/*/*": ("object keys under a table's own location",),
    f"{WAREHOUSE}/*.db/*/metadata/*": ("metadata.json files",),
    f"{ARTIFACTS}/wheels/*": ("wheel's file name",),
    f"{ARTIFACTS}/conf/*": ("conf/ is a folder tree",),
    f"{ARTIFACTS}/snowflake/sql/*": ("one refresh SQL file per run",),
    f"arn:aws:logs:{REGION_ACCOUNT}:log-group:/aws-glue/jobs*": ("Glue names the job log groups",),
    f"arn:aws:logs:{REGION_ACCOUNT}:log-group:/aws-glue/jobs*:log-stream:*": (
        "Glue names the job log groups",
    ),
    f"arn:aws:logs:{REGION_ACCOUNT}:log-group:/aws/lambda/*:log-stream:*": ("one log stream per execution",),
    f"arn:aws:ec2:{REGION_ACCOUNT}:network-interface/*": ("elastic network interface per run",),
    f"arn:aws:secretsmanager:{REGION_ACCOUNT}:secret:*-??????": ("random 6-character suffix",),
    f"arn:aws:states:{REGION_ACCOUNT}:execution:lean-ops-test-pipeline:*": ("named when it starts",),
}


@pytest.fixture
def context(tmp_path: Path) -> GovernanceContext:
    gov = governance_doc()
    gov["snowflake"]["connection"] = {
        "account": "xy12345",
        "user": "LEAN_OPS",
        "secret_id": "lean-ops/test/snowflake",
    }
    return load_governance_context(write_project(tmp_path, gov_doc=gov), "test")


def _policies(context: GovernanceContext) -> dict[str, RolePolicy]:
    policies = role_policies(context.environment, context.scope(), context.governance)
    return {"+".join(p.roles): p for p in policies}


def _statements(policy: RolePolicy, action: str) -> list[dict[str, Any]]:
    out = []
    for statement in policy.document()["Statement"]:
        actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        if action in actions:
            out.append(statement)
    return out


def _resources(policy: RolePolicy, action: str) -> set[str]:
    found: set[str] = set()
    for statement in _statements(policy, action):
        value = statement["Resource"]
        found.update(value if isinstance(value, list) else [value])
    return found


def _allows(policy: RolePolicy, action: str, resource: str) -> bool:
    """Whether a statement of ``policy`` allows ``action`` on ``resource`` (``*``/``?`` as IAM matches them)."""
    return any(
        action in s.actions and any(fnmatch.fnmatchcase(resource, r) for r in s.resources)
        for s in policy.statements
    )


class _RecordingCatalog:
    """A Glue client (``GetTables``) and an S3 reader over a catalog that holds, in every
    database, a table under every name the estate could use; records what is asked."""

    class exceptions:  # boto3 names it so
        class EntityNotFoundException(Exception):
            pass

    def __init__(self, scope: GovernedScope) -> None:
        layers = ("raw", "curated", "quarantine", "semantic")
        self.names = sorted({t.name for layer in layers for t in scope.tables(layer)} | set(scope.topics))
        self.scope = scope
        self.listed: list[str] = []  # databases, one GetTables each
        self.read_files: list[str] = []  # s3:// metadata locations

    def location(self, database: str, name: str) -> str:
        table = TableRef(self.scope.profile.catalog, database, name, "any")
        return self.scope.table_location(table).child("metadata", "00001-0.metadata.json").uri

    def get_paginator(self, operation: str) -> Any:
        assert operation == "get_tables"
        catalog = self

        class Pages:
            def paginate(self, DatabaseName: str, **_: Any) -> list[dict[str, Any]]:
                catalog.listed.append(DatabaseName)
                tables = [
                    {"Name": n, "Parameters": {"metadata_location": catalog.location(DatabaseName, n)}}
                    for n in catalog.names
                ]
                return [{"TableList": tables}]

        return Pages()

    def read(self, location: str) -> bytes:
        self.read_files.append(location)
        return b"{}"


def test_one_policy_per_role_with_no_wildcard_action(context: GovernanceContext) -> None:
    policies = _policies(context)
    assert set(policies) == {
        "curation_job",
        "semantic_job",
        "maintenance_job",
        "lambda",
        "state_machine",
        "scheduler",
        "snowflake",
    }
    for policy in policies.values():
        for statement in policy.document()["Statement"]:
            assert statement["Effect"] == "Allow"
            assert re.fullmatch(r"[A-Za-z0-9]+", statement["Sid"])
            for action in statement["Action"]:
                assert "*" not in action and "?" not in action, (policy.roles, action)
        assert policy.fits_inline, (policy.roles, policy.size)


def test_every_remaining_wildcard_is_expected_and_explained(context: GovernanceContext) -> None:
    seen = set()
    for policy in _policies(context).values():
        for wildcard in policy.wildcards():
            resource = wildcard["resource"]
            matches = (
                ["*"]
                if resource == "*"
                else [p for p in ALLOWED_WILDCARDS if p != "*" and fnmatch.fnmatchcase(resource, p)]
            )
            assert matches, f"unexpected wildcard {wildcard}"
            assert any(any(w in wildcard["why"] for w in ALLOWED_WILDCARDS[p]) for p in matches), wildcard
            seen.add(matches[0])
    # a "*" resource only where the action has no resource-level permissions, each conditioned or justified
    for policy in _policies(context).values():
        for statement in policy.document()["Statement"]:
            if statement["Resource"] == "*":
                assert set(statement["Action"]) <= {
                    "cloudwatch:PutMetricData",
                    "lakeformation:GetDataAccess",
                    "ec2:DescribeNetworkInterfaces",
                    "ec2:DescribeRouteTables",
                    "ec2:DescribeSecurityGroups",
                    "ec2:DescribeSubnets",
                    "ec2:DescribeVpcAttribute",
                    "ec2:DescribeVpcEndpoints",
                }, statement
    assert "*" in seen and f"arn:aws:ec2:{REGION_ACCOUNT}:network-interface/*" in seen


def test_the_lambda_sees_only_its_own_state_machines_executions(context: GovernanceContext) -> None:
    """GetAllCheckpoints' overlap check (orchestration.overlap) lists and describes executions."""
    policy = _policies(context)["lambda"]
    machine = f"arn:aws:states:{REGION_ACCOUNT}:stateMachine:lean-ops-test-pipeline"
    (listing,) = _statements(policy, "states:ListExecutions")
    (describing,) = _statements(policy, "states:DescribeExecution")
    assert listing["Resource"] == machine
    assert describing["Resource"] == f"arn:aws:states:{REGION_ACCOUNT}:execution:lean-ops-test-pipeline:*"
    assert not _statements(policy, "states:StartExecution") and not _statements(
        policy, "states:StopExecution"
    )


def test_metrics_are_limited_to_the_namespace(context: GovernanceContext) -> None:
    policies = _policies(context)
    for name, namespace in (("curation_job", "LeanOps"), ("state_machine", "LeanOps")):
        (statement,) = _statements(policies[name], "cloudwatch:PutMetricData")
        assert statement["Resource"] == "*"
        assert statement["Condition"] == {"StringEquals": {"cloudwatch:namespace": [namespace]}}


def test_curation_reads_raw_and_writes_curated_quarantine_and_drift_audit_only(
    context: GovernanceContext,
) -> None:
    curation = _policies(context)["curation_job"]
    writes = _resources(curation, "s3:PutObject")
    assert writes == {
        f"{WAREHOUSE}/lakehouse_curated.db/{t}/*"
        for t in (
            "orders",
            "orders_quarantine",
            "clickstream",
            "clickstream_quarantine",
            "lean_ops_drift_audit",
        )
    }
    reads = _resources(curation, "s3:GetObject")
    assert f"{WAREHOUSE}/lakehouse_raw.db/orders_staging/*" in reads
    assert not any("lakehouse_semantic" in r for r in reads | writes)
    glue_writes = _resources(curation, "glue:UpdateTable")
    assert "arn:aws:glue:us-east-1:123456789012:table/lakehouse_raw/orders_staging" not in glue_writes
    assert "arn:aws:glue:us-east-1:123456789012:table/lakehouse_curated/orders_quarantine" in glue_writes
    assert _resources(curation, "s3:GetObject") >= {
        f"{ARTIFACTS}/jobs/curation_job.py",
        f"{ARTIFACTS}/wheels/*",
        f"{ARTIFACTS}/conf/*",
    }
    (listing,) = [s for s in _statements(curation, "s3:ListBucket") if "TableFiles" in s["Sid"]]
    assert listing["Resource"] == "arn:aws:s3:::example-lakehouse-warehouse"
    assert "iceberg/lakehouse_raw.db/orders_staging/*" in listing["Condition"]["StringLike"]["s3:prefix"]


def test_curation_may_create_and_append_to_the_drift_audit_table(context: GovernanceContext) -> None:
    """On any drift, curation runs CREATE TABLE IF NOT EXISTS on ``<curated_db>.lean_ops_drift_audit``
    and appends its rows (drift.audit.record_drift): Glue read/create/update, S3 under its location."""
    policies = _policies(context)
    curation = policies["curation_job"]
    table = audit_table(context.profile)
    assert table.identifier == "lakehouse_curated.lean_ops_drift_audit"
    glue_table = f"arn:aws:glue:{REGION_ACCOUNT}:table/lakehouse_curated/lean_ops_drift_audit"
    for action in ("glue:GetTable", "glue:CreateTable", "glue:UpdateTable"):
        assert _allows(curation, action, glue_table), action
    files = f"{WAREHOUSE}/lakehouse_curated.db/lean_ops_drift_audit"
    for key in ("data/detected_at_day=2024-05-01/00000-0-a.parquet", "metadata/00001-b.metadata.json"):
        for action in ("s3:GetObject", "s3:PutObject"):
            assert _allows(curation, action, f"{files}/{key}"), (action, key)
    (listing,) = [s for s in _statements(curation, "s3:ListBucket") if "TableFiles" in s["Sid"]]
    assert (
        "iceberg/lakehouse_curated.db/lean_ops_drift_audit/*"
        in listing["Condition"]["StringLike"]["s3:prefix"]
    )
    # nobody else writes it
    for name in ("semantic_job", "lambda", "snowflake"):
        assert not _allows(policies[name], "s3:PutObject", f"{files}/metadata/00001-b.metadata.json"), name


def test_maintenance_may_rewrite_the_drift_audit_table(context: GovernanceContext) -> None:
    """The default maintenance run expires and compacts the drift audit table too
    (maintenance.runner.resolve_tables); with table-scoped ARNs it was left out and AWS
    refused every operation on it."""
    maintenance = _policies(context)["maintenance_job"]
    glue_table = f"arn:aws:glue:{REGION_ACCOUNT}:table/lakehouse_curated/lean_ops_drift_audit"
    for action in ("glue:GetTable", "glue:UpdateTable"):
        assert _allows(maintenance, action, glue_table), action
    files = f"{WAREHOUSE}/lakehouse_curated.db/lean_ops_drift_audit"
    for action in ("s3:GetObject", "s3:PutObject", "s3:DeleteObject"):
        assert _allows(maintenance, action, f"{files}/data/detected_at_day=2024-05-01/00000-0-a.parquet"), (
            action
        )


def test_semantic_never_touches_raw_or_quarantine_and_can_refresh_snowflake(
    context: GovernanceContext,
) -> None:
    semantic = _policies(context)["semantic_job"]
    text = json.dumps(semantic.document())
    assert "quarantine" not in text and "lakehouse_raw" not in text
    assert _resources(semantic, "s3:PutObject") == {
        f"{WAREHOUSE}/lakehouse_semantic.db/customer_orders/*",
        f"{WAREHOUSE}/lakehouse_semantic.db/daily_sessions/*",
        f"{ARTIFACTS}/snowflake/sql/*",
        f"{ARTIFACTS}/state/snowflake-schemas.json",
    }
    assert _resources(semantic, "secretsmanager:GetSecretValue") == {
        "arn:aws:secretsmanager:us-east-1:123456789012:secret:lean-ops/test/snowflake-??????"
    }


def test_semantic_may_list_exactly_the_snowflake_state_key(context: GovernanceContext) -> None:
    """Without s3:ListBucket S3 answers GetObject on the not-yet-written state file with 403
    AccessDenied instead of 404 NoSuchKey: the first refresh could never happen. Listing is
    allowed for that one key only."""
    semantic = _policies(context)["semantic_job"]
    (state,) = [
        s for s in _statements(semantic, "s3:ListBucket") if s["Sid"] == "SemanticJobSnowflakeStateList"
    ]
    assert state["Resource"] == "arn:aws:s3:::lean-ops-test-artifacts"
    assert state["Condition"] == {
        "StringEquals": {"s3:prefix": ["lean-ops/test/state/snowflake-schemas.json"]}
    }
    # every listing of the role stays limited by a prefix condition
    assert all(s.get("Condition") for s in _statements(semantic, "s3:ListBucket"))


def test_a_configured_state_file_is_the_one_listed_and_none_without_snowflake(tmp_path: Path) -> None:
    doc = governance_doc(refresh={"state": "s3://other-bucket/lean/state.json"})
    semantic = _policies(load_governance_context(write_project(tmp_path / "a", gov_doc=doc), "test"))[
        "semantic_job"
    ]
    (state,) = [s for s in _statements(semantic, "s3:ListBucket") if "Snowflake" in s["Sid"]]
    assert state["Resource"] == "arn:aws:s3:::other-bucket"
    assert state["Condition"] == {"StringEquals": {"s3:prefix": ["lean/state.json"]}}
    assert "arn:aws:s3:::other-bucket/lean/state.json" in _resources(semantic, "s3:GetObject")

    doc = governance_doc()
    del doc["snowflake"]
    del doc["lake_formation"]["grants"]["snowflake"]
    semantic = _policies(load_governance_context(write_project(tmp_path / "b", gov_doc=doc), "test"))[
        "semantic_job"
    ]
    assert not [s for s in _statements(semantic, "s3:ListBucket") if "Snowflake" in s["Sid"]]


def test_lambda_reads_table_metadata_only(context: GovernanceContext) -> None:
    policy = _policies(context)["lambda"]
    actions = {a for s in policy.document()["Statement"] for a in s["Action"]}
    assert not any(a.startswith(("s3:Put", "s3:Delete", "glue:Create", "glue:Update")) for a in actions)
    reads = _resources(policy, "s3:GetObject")
    assert f"{WAREHOUSE}/lakehouse_raw.db/orders_staging/metadata/*" in reads
    assert not any(r.startswith(WAREHOUSE) and not r.endswith("/metadata/*") for r in reads)
    assert not any("quarantine" in r for r in reads)
    # each model's table holds its curated checkpoint (semantic_behind); the test project's
    # models are not named after their topics
    assert {r for r in reads if "lakehouse_semantic" in r} == {
        f"{WAREHOUSE}/lakehouse_semantic.db/{model}/metadata/*"
        for model in ("customer_orders", "daily_sessions")
    }
    assert not any(a.startswith(("glue:Delete", "glue:BatchDelete", "s3:Abort")) for a in actions)
    (kms,) = _statements(policy, "kms:Decrypt")
    assert kms["Resource"] == KMS_KEY
    assert kms["Condition"] == {"StringEquals": {"kms:ViaService": ["s3.us-east-1.amazonaws.com"]}}


def test_the_lambda_may_read_what_get_all_checkpoints_reads(context: GovernanceContext) -> None:
    """GetAllCheckpoints lists each database (``GetTables``) and reads each table's current
    ``metadata.json``: raw, curated and the semantic tables of the topic's models, whose
    snapshots carry the curated checkpoint (without them ``semantic_behind`` never fires).
    Read only: nothing is written."""
    scope = context.scope()
    catalog = _RecordingCatalog(scope)
    source = MetadataFileSource(glue_pointers(catalog), catalog.read, max_workers=1)
    by_topic = {Path(t.source).stem: t.name for t in context.semantic_tables}  # one model per file here

    def models(profile: Profile, topic: str) -> tuple[TableRef, ...]:
        return (TableRef(profile.catalog, profile.databases.semantic, by_topic[topic], "semantic", topic),)

    report = get_all_checkpoints(source, scope.profile, scope.topics, semantic_tables=models)
    assert {t.semantic_table for t in report.topics} == {
        "lake.lakehouse_semantic.customer_orders",
        "lake.lakehouse_semantic.daily_sessions",
    }
    assert report.errors == {}
    assert all(t.semantic_table_exists for t in report.topics)
    assert sorted(catalog.listed) == ["lakehouse_curated", "lakehouse_raw", "lakehouse_semantic"]
    assert len(catalog.read_files) == 3 * len(scope.topics)
    policy = _policies(context)["lambda"]
    glue = f"arn:aws:glue:{REGION_ACCOUNT}"
    for database in catalog.listed:
        for resource in (f"{glue}:catalog", f"{glue}:database/{database}"):
            assert _allows(policy, "glue:GetTables", resource), resource
    for location in catalog.read_files:
        key = location.removeprefix("s3://")
        database, name = key.split("/")[-4].removesuffix(".db"), key.split("/")[-3]
        assert _allows(policy, "glue:GetTables", f"{glue}:table/{database}/{name}"), (database, name)
        assert _allows(policy, "s3:GetObject", f"arn:aws:s3:::{key}"), location
        table_files = f"arn:aws:s3:::{key.rsplit('/metadata/', 1)[0]}"
        for action in ("s3:PutObject", "s3:DeleteObject"):
            assert not _allows(policy, action, f"arn:aws:s3:::{key}"), (action, location)
        assert not _allows(policy, "s3:GetObject", f"{table_files}/data/00000-0.parquet"), location
        for action in ("glue:CreateTable", "glue:UpdateTable", "glue:DeleteTable"):
            assert not _allows(policy, action, f"{glue}:table/{database}/{name}"), (action, name)


def test_state_machine_and_scheduler_name_their_targets(context: GovernanceContext) -> None:
    policies = _policies(context)
    sm = policies["state_machine"]
    assert _resources(sm, "lambda:InvokeFunction") == {
        "arn:aws:lambda:us-east-1:123456789012:function:lean-ops-test-checkpoints",
        "arn:aws:lambda:us-east-1:123456789012:function:lean-ops-test-curation-result",
    }
    assert _resources(sm, "glue:StartJobRun") == {
        "arn:aws:glue:us-east-1:123456789012:job/lean-ops-test-curation",
        "arn:aws:glue:us-east-1:123456789012:job/lean-ops-test-semantic",
    }
    scheduler = policies["scheduler"]
    assert _resources(scheduler, "states:StartExecution") == {
        "arn:aws:states:us-east-1:123456789012:stateMachine:lean-ops-test-pipeline"
    }
    assert _resources(scheduler, "glue:StartJobRun") == {
        "arn:aws:glue:us-east-1:123456789012:job/lean-ops-test-maintenance"
    }


def test_kms_and_vpc_appear_only_when_configured(tmp_path: Path, context: GovernanceContext) -> None:
    curation = _policies(context)["curation_job"]
    assert _resources(curation, "kms:GenerateDataKey") == {KMS_KEY}
    assert "logs:AssociateKmsKey" in {a for s in curation.document()["Statement"] for a in s["Action"]}
    assert _resources(curation, "ec2:CreateNetworkInterface") == {
        "arn:aws:ec2:us-east-1:123456789012:subnet/subnet-0123456789abcdef0",
        "arn:aws:ec2:us-east-1:123456789012:security-group/sg-0123456789abcdef0",
        "arn:aws:ec2:us-east-1:123456789012:network-interface/*",
    }
    assert _resources(curation, "glue:GetConnection") >= {
        "arn:aws:glue:us-east-1:123456789012:connection/lean-ops-test-vpc"
    }
    plain_env = governed_env_doc()
    del plain_env["encryption"], plain_env["network"]
    plain = load_governance_context(write_project(tmp_path / "plain", env_doc=plain_env), "test")
    text = json.dumps(
        [p.document() for p in role_policies(plain.environment, plain.scope(), plain.governance)]
    )
    assert "kms:" not in text and "ec2:" not in text and "logs:AssociateKmsKey" not in text


def test_snowflake_role_reads_semantic_only(context: GovernanceContext) -> None:
    policy = _policies(context)["snowflake"]
    assert _resources(policy, "s3:GetObject") == {
        f"{WAREHOUSE}/lakehouse_semantic.db/customer_orders/*",
        f"{WAREHOUSE}/lakehouse_semantic.db/daily_sessions/*",
    }
    assert _statements(policy, "lakeformation:GetDataAccess") == []  # external volume, not vended


def test_database_scope_is_smaller_and_explained(tmp_path: Path) -> None:
    doc = governed_env_doc(iam={"resource_scope": "database"})
    for job in doc["glue"]["jobs"].values():
        job.pop("role_arn")  # one shared role: the biggest document
    context = load_governance_context(write_project(tmp_path, env_doc=doc), "test")
    policies = _policies(context)
    shared = policies["curation_job+semantic_job+maintenance_job"]
    assert shared.role_arn == role("glue")
    assert _resources(shared, "glue:UpdateTable") >= {
        "arn:aws:glue:us-east-1:123456789012:table/lakehouse_raw/*"
    }
    assert any(w["why"].startswith("iam.resource_scope: database") for w in shared.wildcards())
    assert shared.fits_inline
    # the jobs' like statements are merged: each resource listed once
    statements = shared.document()["Statement"]
    assert {"GlueCatalogRead", "TableFilesRead", "TableFilesWrite", "Metrics"} <= {
        s["Sid"] for s in statements
    }
    for statement in statements:
        resources = (
            statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
        )
        assert len(resources) == len(set(resources)), statement["Sid"]


def test_a_statement_refuses_wildcard_actions_and_unexplained_wildcards() -> None:
    with pytest.raises(ValueError, match="wildcard actions are not allowed"):
        PolicyStatement("S3All", ("s3:*",), ("arn:aws:s3:::b",))
    with pytest.raises(ValueError, match="needs a reason"):
        PolicyStatement("S3Objects", ("s3:GetObject",), ("arn:aws:s3:::b/*",))


def test_documents_are_valid_iam_policies(context: GovernanceContext, fake_aws_env: str) -> None:
    with mock_aws():
        iam = boto3.client("iam")
        for policy in _policies(context).values():
            assert policy.size <= INLINE_POLICY_LIMIT
            iam.create_policy(
                PolicyName=policy.role_name, PolicyDocument=policy.text()
            )  # raises if malformed


def test_cli_prints_documents_and_writes_files(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    conf = write_project(tmp_path)
    out = tmp_path / "policies"
    assert main(["iam", "--env", "test", "--conf", str(conf), "--json", "--out", str(out)]) == 0
    document = json.loads(capsys.readouterr().out)
    assert {r["role_arn"] for r in document["roles"]} >= {role("curation-job"), role("lambda")}
    assert sorted(os.listdir(out))[:2] == ["curation-job.json", "lambda.json"]
    assert main(["iam", "--env", "test", "--conf", str(conf)]) == 0
    text = capsys.readouterr().out
    assert "# arn:aws:iam::123456789012:role/curation-job  (curation_job;" in text
    assert (
        "CurationJobMetrics: * -- cloudwatch:PutMetricData: the action has no resource-level permissions"
        in text
    )


def test_an_estate_without_semantic_tables_still_gets_valid_documents(tmp_path: Path) -> None:
    doc = governance_doc()
    doc["semantic_tables"] = []
    conf = write_project(tmp_path, gov_doc=doc)
    for model in (conf / "semantic").iterdir():
        model.unlink()
    context = load_governance_context(conf, "test")
    assert context.semantic_tables == ()
    policies = _policies(context)
    assert _resources(policies["semantic_job"], "s3:PutObject") == {
        f"{ARTIFACTS}/snowflake/sql/*",
        f"{ARTIFACTS}/state/snowflake-schemas.json",
    }
    for policy in policies.values():
        assert all(statement["Resource"] for statement in policy.document()["Statement"])
