"""``lean-ops deploy`` with the environment's governance settings, against moto: the Glue security
configuration and VPC connection exist, the jobs carry them and SSE-KMS for S3FileIO, each job
runs as its own role, the generated IAM policies are attached, and a second deploy changes nothing."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
import yaml
from moto import mock_aws

from lean_ops_spark.config import load_project
from lean_ops_spark.config.environment import parse_environment
from lean_ops_spark.deploy import AwsClients, DeploymentInputs, apply_plan, plan_deployment
from lean_ops_spark.deploy.plan import glue_default_arguments
from lean_ops_spark.errors import ConfigError
from tests.unit.test_governance_config import KMS_KEY, governed_env_doc, write_project

REPO = Path(__file__).resolve().parents[2]
ROLES = ("curation-job", "semantic-job", "maintenance-job", "lambda", "states", "scheduler", "snowflake")


@pytest.fixture
def project(tmp_path: Path) -> Path:
    root = tmp_path / "project"
    shutil.copytree(
        REPO / "lean_ops_spark", root / "lean_ops_spark", ignore=shutil.ignore_patterns("__pycache__")
    )
    (root / "orchestration").mkdir()
    shutil.copy(REPO / "orchestration" / "checkpoints_lambda.py", root / "orchestration")
    (root / "jobs").mkdir()
    for script in ("curation_job.py", "semantic_job.py", "maintenance_job.py"):
        (root / "jobs" / script).write_text(f"# {script}\n")
    write_project(root)
    (root / "dist").mkdir()
    (root / "dist" / "lean_ops_spark-0.1.0-py3-none-any.whl").write_bytes(b"wheel bytes v1")
    return root


@pytest.fixture
def aws(fake_aws_env: str) -> Iterator[AwsClients]:
    with mock_aws():
        boto3.client("s3").create_bucket(Bucket="lean-ops-test-artifacts")
        iam = boto3.client("iam")
        for name in ROLES:
            iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps({"Version": "2012-10-17"}))
        yield AwsClients.for_region("us-east-1")


def _inputs(root: Path, doc: dict[str, Any]) -> DeploymentInputs:
    (root / "conf" / "environments" / "test.yaml").write_text(yaml.safe_dump(doc))
    environment = parse_environment(doc, "test.yaml", "test")
    project = load_project(root / "conf", environment.profile)
    return DeploymentInputs(
        environment=environment,
        profile=project.profile,
        topics=tuple(environment.selected_topics(list(project.topics))),
        project_root=root,
        conf_root=root / "conf",
        wheel=root / "dist" / "lean_ops_spark-0.1.0-py3-none-any.whl",
    )


def _doc(**changes: Any) -> dict[str, Any]:
    doc = governed_env_doc(**changes)
    doc["lambda"]["role_arn"] = "arn:aws:iam::123456789012:role/lambda"
    return doc


def test_jobs_carry_kms_security_configuration_and_vpc(project: Path, aws: AwsClients) -> None:
    first = apply_plan(plan_deployment(_inputs(project, _doc()), aws))
    kinds = {c.kind for c in first.changes}
    assert {"glue_security_configuration", "glue_connection"} <= kinds
    assert {c.action for c in first.changes} == {"create"}

    security = aws.glue.get_security_configuration(Name="lean-ops-test-kms")["SecurityConfiguration"]
    encryption = security["EncryptionConfiguration"]
    assert encryption["S3Encryption"] == [{"S3EncryptionMode": "SSE-KMS", "KmsKeyArn": KMS_KEY}]
    assert encryption["CloudWatchEncryption"] == {"CloudWatchEncryptionMode": "SSE-KMS", "KmsKeyArn": KMS_KEY}
    assert encryption["JobBookmarksEncryption"] == {
        "JobBookmarksEncryptionMode": "CSE-KMS",
        "KmsKeyArn": KMS_KEY,
    }
    connection = aws.glue.get_connection(Name="lean-ops-test-vpc")["Connection"]
    assert connection["PhysicalConnectionRequirements"] == {
        "SubnetId": "subnet-0123456789abcdef0",
        "SecurityGroupIdList": ["sg-0123456789abcdef0"],
        "AvailabilityZone": "us-east-1a",
    }

    for job_name, role in (
        ("lean-ops-test-curation", "curation-job"),
        ("lean-ops-test-semantic", "semantic-job"),
        ("lean-ops-test-maintenance", "maintenance-job"),
    ):
        job = aws.glue.get_job(JobName=job_name)["Job"]
        assert job["Role"] == f"arn:aws:iam::123456789012:role/{role}"
        assert job["SecurityConfiguration"] == "lean-ops-test-kms"
        assert job["Connections"] == {"Connections": ["lean-ops-test-vpc"]}
        confs = job["DefaultArguments"]["--conf"].split(" --conf ")
        assert "spark.sql.catalog.lake.s3.sse.type=kms" in confs
        assert f"spark.sql.catalog.lake.s3.sse.key={KMS_KEY}" in confs
        assert "spark.sql.catalog.lake.io-impl=org.apache.iceberg.aws.s3.S3FileIO" in confs

    second = plan_deployment(_inputs(project, _doc()), aws)
    assert second.pending == ()


def test_without_the_settings_the_job_spec_is_as_before(project: Path, aws: AwsClients) -> None:
    doc = _doc()
    for key in ("encryption", "network"):
        del doc[key]
    inputs = _inputs(project, doc)
    args = glue_default_arguments(
        inputs.environment, inputs.profile, "s3://b/w.whl", inputs.environment.curation_job
    )
    assert "sse" not in args["--conf"]
    apply_plan(plan_deployment(inputs, aws))
    job = aws.glue.get_job(JobName="lean-ops-test-curation")["Job"]
    assert not job.get("SecurityConfiguration") and not job.get("Connections")
    assert aws.glue.get_security_configurations()["SecurityConfigurations"] == []


def test_a_changed_key_replaces_the_security_configuration(project: Path, aws: AwsClients) -> None:
    apply_plan(plan_deployment(_inputs(project, _doc()), aws))
    new_key = KMS_KEY.replace("1234abcd", "9999abcd")
    doc = _doc(encryption={"kms_key_arn": new_key, "security_configuration": "lean-ops-test-kms"})
    plan = plan_deployment(_inputs(project, doc), aws)
    pending = {(c.kind, c.name): c.changed for c in plan.pending}
    assert pending[("glue_security_configuration", "lean-ops-test-kms")] == ("EncryptionConfiguration",)
    # the jobs' --conf carries the new key too (an UpdateJob, which moto 5.2.5 does not have),
    # and the changed environment file is uploaded again
    assert {k for k, _ in pending} == {"glue_security_configuration", "glue_job", "s3_object"}
    (replace,) = [c for c in plan.pending if c.kind == "glue_security_configuration"]
    assert replace.run is not None
    replace.run()  # deleted and created again: Glue has no UpdateSecurityConfiguration
    got = aws.glue.get_security_configuration(Name="lean-ops-test-kms")["SecurityConfiguration"]
    assert got["EncryptionConfiguration"]["S3Encryption"][0]["KmsKeyArn"] == new_key


def test_attach_policies_puts_the_generated_policy_on_each_role(project: Path, aws: AwsClients) -> None:
    doc = _doc(iam={"attach_policies": True, "policy_name": "lean-ops-test"})
    first = apply_plan(plan_deployment(_inputs(project, doc), aws))
    attached = sorted(c.name for c in first.changes if c.kind == "iam_role_policy")
    assert attached == sorted(f"{r}/lean-ops-test" for r in ROLES)
    got = aws.iam.get_role_policy(RoleName="semantic-job", PolicyName="lean-ops-test")["PolicyDocument"]
    actions = {a for s in got["Statement"] for a in s["Action"]}
    assert "glue:CreateTable" in actions and "s3:PutObject" in actions
    assert not any(a.endswith("*") for a in actions)
    assert plan_deployment(_inputs(project, doc), aws).pending == ()


def test_an_oversized_policy_is_refused_with_what_to_do(project: Path, aws: AwsClients) -> None:
    doc = _doc(iam={"attach_policies": True}, topics=[])
    for job in doc["glue"]["jobs"].values():
        job.pop("role_arn")
    inputs = _inputs(project, doc)
    many = tuple(f"topic_{i:02d}" for i in range(40))
    inputs = DeploymentInputs(
        inputs.environment, inputs.profile, many, inputs.project_root, inputs.conf_root, inputs.wheel
    )
    with pytest.raises(ConfigError, match=r"over IAM's 10240 .*role_arn or set iam.resource_scope: database"):
        plan_deployment(inputs, aws)
