"""``lean-ops deploy`` against moto: first deploy creates, second changes nothing, a changed
config updates only what changed."""

from __future__ import annotations

import copy
import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
import yaml
from moto import mock_aws

from lean_ops_spark.cli.main import main
from lean_ops_spark.config import load_project
from lean_ops_spark.config.environment import parse_environment
from lean_ops_spark.deploy import AwsClients, DeploymentInputs, apply_plan, plan_deployment
from lean_ops_spark.deploy.artifacts import lambda_package
from lean_ops_spark.deploy.plan import DeployError, glue_default_arguments
from lean_ops_spark.runtime.jars import aws_artifacts, fetch_jars
from tests.unit.test_orchestration_scenarios import ENV_DOC

REPO = Path(__file__).resolve().parents[2]
REGION = "us-east-1"


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A private copy of the checkout's deployable parts (others edit the real one concurrently)."""
    root = tmp_path / "project"
    shutil.copytree(
        REPO / "lean_ops_spark", root / "lean_ops_spark", ignore=shutil.ignore_patterns("__pycache__")
    )
    (root / "orchestration").mkdir()
    shutil.copy(REPO / "orchestration" / "checkpoints_lambda.py", root / "orchestration")
    (root / "jobs").mkdir()
    for script in ("curation_job.py", "semantic_job.py", "maintenance_job.py"):
        (root / "jobs" / script).write_text(f"# {script}\n")
    shutil.copytree(REPO / "conf", root / "conf", ignore=shutil.ignore_patterns("environments"))
    (root / "conf" / "environments").mkdir()
    (root / "conf" / "environments" / "test.yaml").write_text(yaml.safe_dump(_env_doc()))
    (root / "dist").mkdir()
    (root / "dist" / "lean_ops_spark-0.1.0-py3-none-any.whl").write_bytes(b"wheel bytes v1")
    return root


def _env_doc(**state_machine: Any) -> dict[str, Any]:
    doc = copy.deepcopy(ENV_DOC)
    doc["state_machine"].update(state_machine)
    return doc


@pytest.fixture
def aws(fake_aws_env: str) -> Iterator[AwsClients]:
    with mock_aws():
        boto3.client("s3").create_bucket(Bucket=ENV_DOC["artifacts"]["bucket"])
        iam = boto3.client("iam")
        iam.create_role(RoleName="lambda", AssumeRolePolicyDocument=json.dumps({"Version": "2012-10-17"}))
        yield AwsClients.for_region(REGION)


def _inputs(root: Path, doc: dict[str, Any] | None = None) -> DeploymentInputs:
    environment = parse_environment(doc or _env_doc(), "test.yaml", "test")
    project = load_project(root / "conf", environment.profile)
    return DeploymentInputs(
        environment=environment,
        profile=project.profile,
        topics=tuple(environment.selected_topics(list(project.topics))),
        project_root=root,
        conf_root=root / "conf",
        wheel=root / "dist" / "lean_ops_spark-0.1.0-py3-none-any.whl",
    )


def _actions(plan: Any) -> dict[str, str]:
    return {f"{c.kind}:{c.name}": c.action for c in plan.changes}


def test_first_deploy_creates_everything_and_the_second_changes_nothing(
    project: Path, aws: AwsClients
) -> None:
    first = apply_plan(plan_deployment(_inputs(project), aws))
    assert set(_actions(first).values()) == {"create"}
    kinds = sorted({c.kind for c in first.changes})
    assert kinds == ["glue_job", "lambda_function", "s3_object", "schedule", "state_machine"]
    assert sum(c.kind == "schedule" for c in first.changes) == 3  # maintenance + orders + clickstream

    second = plan_deployment(_inputs(project), aws)
    assert set(_actions(second).values()) == {"unchanged"}
    assert second.pending == ()

    job = aws.glue.get_job(JobName="lean-ops-test-curation")["Job"]
    assert job["GlueVersion"] == "5.1"
    args = job["DefaultArguments"]
    assert args["--datalake-formats"] == "iceberg"
    assert args["--additional-python-modules"] == (
        "s3://lean-ops-test-artifacts/lean-ops/test/wheels/lean_ops_spark-0.1.0-py3-none-any.whl"
    )
    assert args["--conf"].startswith(
        "spark.sql.extensions=org.apache.iceberg.spark.extensions.IcebergSparkSessionExtensions --conf "
        "spark.sql.catalog.lake=org.apache.iceberg.spark.SparkCatalog"
    )
    assert "spark.sql.catalog.lake.catalog-impl=org.apache.iceberg.aws.glue.GlueCatalog" in args["--conf"]
    assert "spark.sql.catalog.lake.io-impl=org.apache.iceberg.aws.s3.S3FileIO" in args["--conf"]
    assert args["--lean_ops_conf"] == "s3://lean-ops-test-artifacts/lean-ops/test/conf"
    fn = aws.lambda_.get_function(FunctionName="lean-ops-test-checkpoints")["Configuration"]
    assert fn["Handler"] == "checkpoints_lambda.handler"
    assert (
        fn["Environment"]["Variables"]["LEAN_OPS_CONF"] == "s3://lean-ops-test-artifacts/lean-ops/test/conf"
    )
    schedule = aws.scheduler.get_schedule(Name="lean-ops-test-pipeline-topic-orders")
    assert json.loads(schedule["Target"]["Input"]) == {"topic": "orders"}
    assert schedule["Target"]["Arn"].endswith(":stateMachine:lean-ops-test-pipeline")
    maintenance = aws.scheduler.get_schedule(Name="lean-ops-test-pipeline-maintenance")
    assert maintenance["Target"]["Arn"] == "arn:aws:scheduler:::aws-sdk:glue:startJobRun"
    uploaded = aws.s3.get_object(
        Bucket="lean-ops-test-artifacts", Key="lean-ops/test/conf/topics/orders.yaml"
    )
    assert uploaded["Body"].read() == (project / "conf" / "topics" / "orders.yaml").read_bytes()


def test_a_changed_config_updates_only_what_changed(project: Path, aws: AwsClients) -> None:
    apply_plan(plan_deployment(_inputs(project), aws))
    doc = _env_doc(backlog_threshold_records=5000)
    doc["lambda"]["memory_mb"] = 2048
    doc["topics"] = ["orders"]  # clickstream leaves this environment
    (project / "conf" / "topics" / "orders.yaml").write_text(
        (project / "conf" / "topics" / "orders.yaml").read_text() + "\n# a comment\n"
    )
    plan = plan_deployment(_inputs(project, doc), aws)
    pending = {f"{c.kind}:{c.name}": (c.action, c.changed) for c in plan.pending}
    assert pending == {
        "s3_object:s3://lean-ops-test-artifacts/lean-ops/test/conf/topics/orders.yaml": (
            "update",
            ("sha256",),
        ),
        "lambda_function:lean-ops-test-checkpoints": ("update", ("MemorySize",)),
        "lambda_function:lean-ops-test-curation-result": ("update", ("MemorySize",)),
        "state_machine:lean-ops-test-pipeline": ("update", ("definition",)),
        "schedule:lean-ops-test-pipeline-topic-clickstream": ("delete", ("topic no longer configured",)),
    }
    apply_plan(plan)
    assert plan_deployment(_inputs(project, doc), aws).pending == ()
    definition = json.loads(
        aws.stepfunctions.describe_state_machine(
            stateMachineArn="arn:aws:states:us-east-1:123456789012:stateMachine:lean-ops-test-pipeline"
        )["definition"]
    )
    rule = definition["States"]["CheckBacklogThreshold"]["Choices"][0]["And"][1]["Or"][0]
    assert rule["NumericGreaterThan"] == 5000
    assert (
        aws.lambda_.get_function(FunctionName="lean-ops-test-checkpoints")["Configuration"]["MemorySize"]
        == 2048
    )


def test_a_changed_lambda_source_updates_the_code_only(project: Path, aws: AwsClients) -> None:
    apply_plan(plan_deployment(_inputs(project), aws))
    entry = project / "orchestration" / "checkpoints_lambda.py"
    entry.write_text(entry.read_text() + "\n# changed\n")
    plan = plan_deployment(_inputs(project), aws)
    assert {(c.name, c.changed) for c in plan.pending} == {
        ("lean-ops-test-checkpoints", ("CodeSha256",)),
        ("lean-ops-test-curation-result", ("CodeSha256",)),
    }
    apply_plan(plan)
    assert plan_deployment(_inputs(project), aws).pending == ()


def test_a_glue_change_is_planned_as_an_update_of_that_job_only(project: Path, aws: AwsClients) -> None:
    """moto 5.2.5 has no glue UpdateJob, so the apply is shown failing with a named resource."""
    apply_plan(plan_deployment(_inputs(project), aws))
    doc = _env_doc()
    doc["glue"]["jobs"]["semantic"]["number_of_workers"] = 10
    plan = plan_deployment(_inputs(project, doc), aws)
    assert [(c.kind, c.name, c.action, c.changed) for c in plan.pending] == [
        ("glue_job", "lean-ops-test-semantic", "update", ("NumberOfWorkers",))
    ]
    with pytest.raises(DeployError, match="glue job lean-ops-test-semantic"):
        apply_plan(plan)


def test_lambda_package_is_reproducible(project: Path) -> None:
    first, sha = lambda_package(project)
    again, sha_again = lambda_package(project)
    assert first == again and sha == sha_again


def test_glue_default_arguments_never_carry_the_region_conf(project: Path) -> None:
    inputs = _inputs(project)
    args = glue_default_arguments(
        inputs.environment, inputs.profile, "s3://b/w.whl", inputs.environment.curation_job
    )
    assert "client.region" not in args["--conf"]
    assert args["--lean_ops_profile"] == "glue"
    # the semantic job's Snowflake refresh reads governance/<env>.yaml through it
    assert args["--lean_ops_env"] == inputs.environment.name


def test_cli_dry_run_prints_the_plan_and_changes_nothing(
    project: Path, aws: AwsClients, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["deploy", "--env", "test", "--conf", str(project / "conf"), "--project-root", str(project)]
    wheel = ["--wheel", str(project / "dist" / "lean_ops_spark-0.1.0-py3-none-any.whl")]
    assert main([*argv, *wheel, "--dry-run", "--json"]) == 0
    document = json.loads(capsys.readouterr().out)
    assert document["dry_run"] is True and set(document["counts"]) == {"create"}
    assert aws.glue.get_jobs()["Jobs"] == []  # nothing was created
    assert main([*argv, *wheel]) == 0
    assert "unchanged" not in capsys.readouterr().out
    assert main([*argv, *wheel, "--json"]) == 0
    assert set(json.loads(capsys.readouterr().out)["counts"]) == {"unchanged"}


def test_aws_bundle_is_an_optional_extra_jar(tmp_path: Path) -> None:
    (bundle,) = aws_artifacts("1.7.1")
    assert bundle.coordinates == "org.apache.iceberg:iceberg-aws-bundle:1.7.1"
    calls: list[str] = []

    def repo(url: str, _timeout: float) -> bytes:
        import hashlib

        calls.append(url)
        body = url.removesuffix(".sha1").encode()
        return hashlib.sha1(body).hexdigest().encode() if url.endswith(".sha1") else body

    assert len(fetch_jars(tmp_path, "1.10.0", "https://m.example", download=repo)) == 2  # default unchanged
    paths = fetch_jars(tmp_path, "1.10.0", "https://m.example", download=repo, include_aws=True)
    assert [p.name for p in paths][-1] == "iceberg-aws-bundle-1.10.0.jar"
    assert len(calls) == 6
