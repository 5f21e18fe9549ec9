"""``lean-ops deploy`` against moto: first deploy creates, second changes nothing, a changed
config updates only what changed, and what the environment no longer has is deleted."""

from __future__ import annotations

import copy
import dataclasses
import importlib.metadata
import json
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone
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
from lean_ops_spark.deploy.plan import (
    GREAT_EXPECTATIONS_REQUIREMENT,
    DeployError,
    _schedules,
    glue_default_arguments,
)
from lean_ops_spark.errors import ConfigError
from lean_ops_spark.runtime.jars import aws_artifacts, fetch_jars
from tests.unit.test_orchestration_scenarios import ENV_DOC

REPO = Path(__file__).resolve().parents[2]
REGION = "us-east-1"
BUCKET = "lean-ops-test-artifacts"
WHEEL_URI = f"s3://{BUCKET}/lean-ops/test/wheels/lean_ops_spark-0.1.0-py3-none-any.whl"
JOBS = ("lean-ops-test-curation", "lean-ops-test-semantic", "lean-ops-test-maintenance")
OLD_MACHINE = "arn:aws:states:us-east-1:123456789012:stateMachine:lean-ops-test-pipeline"


def deploy_project(tmp_path: Path) -> Path:
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


@pytest.fixture
def project(tmp_path: Path) -> Path:
    return deploy_project(tmp_path)


def _env_doc(**state_machine: Any) -> dict[str, Any]:
    doc = copy.deepcopy(ENV_DOC)
    doc["state_machine"].update(state_machine)
    return doc


@contextmanager
def moto_clients() -> Iterator[AwsClients]:
    """Clients of a moto account holding the artifact bucket and the Lambda role."""
    with mock_aws():
        boto3.client("s3").create_bucket(Bucket=ENV_DOC["artifacts"]["bucket"])
        iam = boto3.client("iam")
        iam.create_role(RoleName="lambda", AssumeRolePolicyDocument=json.dumps({"Version": "2012-10-17"}))
        yield AwsClients.for_region(REGION)


@pytest.fixture
def aws(fake_aws_env: str) -> Iterator[AwsClients]:
    with moto_clients() as clients:
        yield clients


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
    # as deployed: left out, it follows the topic count (an UpdateJob, which moto 5.2.5 does not
    # have; see test_deploy_capacity)
    doc["glue"]["jobs"]["semantic"]["max_concurrent_runs"] = 2
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


# --------------------------------------------------------------------------- Glue job arguments


def test_only_the_semantic_job_installs_great_expectations(project: Path, aws: AwsClients) -> None:
    """It alone runs the data-quality suites; the others keep a small install (pip at every start)."""
    apply_plan(plan_deployment(_inputs(project), aws))
    modules = {
        name: aws.glue.get_job(JobName=name)["Job"]["DefaultArguments"]["--additional-python-modules"]
        for name in JOBS
    }
    assert modules == {
        "lean-ops-test-curation": WHEEL_URI,
        "lean-ops-test-semantic": f"{WHEEL_URI},{GREAT_EXPECTATIONS_REQUIREMENT}",
        "lean-ops-test-maintenance": WHEEL_URI,
    }


def test_the_great_expectations_pin_is_a_version_of_the_dq_extra() -> None:
    # (not asserted equal to the installed version: a new release within the extra's range
    # would turn a clean clone's run red; bump the pin when the tests move to it)
    from packaging.requirements import Requirement

    pinned = Requirement(GREAT_EXPECTATIONS_REQUIREMENT)
    ((operator, version),) = [(s.operator, s.version) for s in pinned.specifier]
    assert operator == "==" and "," not in GREAT_EXPECTATIONS_REQUIREMENT  # Glue splits on commas
    extras = [Requirement(r) for r in importlib.metadata.requires("lean-ops-spark") or ()]
    (dq,) = [r for r in extras if r.marker and r.marker.evaluate({"extra": "dq"}) and r.name == pinned.name]
    assert version in dq.specifier


def test_a_jobs_own_conf_and_python_modules_extend_ours(project: Path) -> None:
    doc = _env_doc()
    doc["glue"]["jobs"]["semantic"]["arguments"] = {
        "--conf": "--conf spark.sql.shuffle.partitions=64 --conf spark.sql.adaptive.enabled=true",
        "--additional-python-modules": "great-expectations==1.25.0, requests==2.32.3",
        "--enable-metrics": "true",
    }
    doc["glue"]["jobs"]["curation"]["arguments"] = {"--additional-python-modules": "requests==2.32.3"}
    inputs = _inputs(project, doc)
    env = inputs.environment
    semantic = glue_default_arguments(env, inputs.profile, "s3://b/w.whl", env.semantic_job)
    confs = semantic["--conf"].split(" --conf ")
    assert (
        confs[0] == "spark.sql.extensions=org.apache.iceberg.spark.extensions.IcebergSparkSessionExtensions"
    )
    assert "spark.sql.catalog.lake.io-impl=org.apache.iceberg.aws.s3.S3FileIO" in confs
    assert confs[-2:] == ["spark.sql.shuffle.partitions=64", "spark.sql.adaptive.enabled=true"]
    # the job's Great Expectations pin takes the place of ours
    assert (
        semantic["--additional-python-modules"] == "s3://b/w.whl,great-expectations==1.25.0,requests==2.32.3"
    )
    assert semantic["--enable-metrics"] == "true"
    doc["glue"]["jobs"]["semantic"]["arguments"] = {
        "--additional-python-modules": "s3://b/great_expectations-1.25.0-py3-none-any.whl"
    }
    inputs = _inputs(project, doc)
    env = inputs.environment
    semantic = glue_default_arguments(env, inputs.profile, "s3://b/w.whl", env.semantic_job)
    assert semantic["--additional-python-modules"] == (
        "s3://b/w.whl,s3://b/great_expectations-1.25.0-py3-none-any.whl"
    )
    curation = glue_default_arguments(env, inputs.profile, "s3://b/w.whl", env.curation_job)
    assert curation["--additional-python-modules"] == "s3://b/w.whl,requests==2.32.3"
    assert (
        curation["--conf"]
        == glue_default_arguments(env, inputs.profile, "s3://b/w.whl", env.maintenance_job)["--conf"]
    )


@pytest.mark.parametrize(
    ("conf", "message"),
    [
        ("spark.sql.extensions=com.example.Other", r"spark\.sql\.extensions is set by lean-ops deploy"),
        (
            "spark.sql.catalog.lake.warehouse=s3://elsewhere/",
            r"spark\.sql\.catalog\.lake\.warehouse is set by",
        ),
        ("spark.sql.shuffle.partitions", r"'spark\.sql\.shuffle\.partitions' is not key=value"),
    ],
)
def test_a_jobs_conf_may_not_replace_the_catalog(project: Path, conf: str, message: str) -> None:
    doc = _env_doc()
    doc["glue"]["jobs"]["curation"]["arguments"] = {"--conf": conf}
    inputs = _inputs(project, doc)
    with pytest.raises(ConfigError, match=r"test\.yaml: glue\.jobs\.curation\.arguments\.--conf: " + message):
        glue_default_arguments(
            inputs.environment, inputs.profile, "s3://b/w.whl", inputs.environment.curation_job
        )


def test_removing_network_or_encryption_detaches_the_jobs(project: Path, aws: AwsClients) -> None:
    """UpdateJob replaces the whole job, so the fields only need to be compared when absent too."""
    governed = _env_doc()
    governed["network"] = {
        "connection": "lean-ops-test-vpc",
        "subnet_id": "subnet-0123456789abcdef0",
        "security_group_ids": ["sg-0123456789abcdef0"],
        "availability_zone": "us-east-1a",
    }
    governed["encryption"] = {
        "kms_key_arn": "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab",
        "security_configuration": "lean-ops-test-kms",
    }
    apply_plan(plan_deployment(_inputs(project, governed), aws))
    assert plan_deployment(_inputs(project, governed), aws).pending == ()

    without_network = copy.deepcopy(governed)
    del without_network["network"]
    plan = plan_deployment(_inputs(project, without_network), aws)
    assert {c.name: c.changed for c in plan.pending} == dict.fromkeys(JOBS, ("Connections",))

    without_encryption = copy.deepcopy(governed)
    del without_encryption["encryption"]
    plan = plan_deployment(_inputs(project, without_encryption), aws)
    # the S3FileIO SSE settings leave --conf too
    assert {c.name: c.changed for c in plan.pending} == dict.fromkeys(
        JOBS, ("DefaultArguments", "SecurityConfiguration")
    )


def test_schedule_targets_are_in_the_environment_partition() -> None:
    doc = json.loads(json.dumps(_env_doc()).replace("arn:aws:", "arn:aws-us-gov:"))
    doc["region"] = "us-gov-west-1"
    env = parse_environment(doc, "gov.yaml", "gov")
    targets = {name: s["Target"]["Arn"] for name, s in _schedules(env, ["orders"]).items()}
    assert targets == {
        "lean-ops-test-pipeline-maintenance": "arn:aws-us-gov:scheduler:::aws-sdk:glue:startJobRun",
        "lean-ops-test-pipeline-topic-orders": (
            "arn:aws-us-gov:states:us-gov-west-1:123456789012:stateMachine:lean-ops-test-pipeline"
        ),
    }


# --------------------------------------------------------------------------- what the environment no longer has


def _keys(aws: AwsClients) -> set[str]:
    return {o["Key"] for o in aws.s3.list_objects_v2(Bucket=BUCKET).get("Contents", [])}


def test_deleted_conf_files_are_deleted_from_s3(project: Path, aws: AwsClients) -> None:
    """The Lambdas and jobs read the deployed conf/: a file left there stays live."""
    apply_plan(plan_deployment(_inputs(project), aws))
    # not ours: another prefix, and runtime state next to conf/
    for key in ("lean-ops/other/conf/topics/x.yaml", "lean-ops/test/state/snowflake-schemas.json"):
        aws.s3.put_object(Bucket=BUCKET, Key=key, Body=b"{}")
    (project / "conf" / "quality" / "semantic" / "orders.yaml").unlink()
    (project / "conf" / "semantic" / "clickstream.yaml").unlink()
    plan = plan_deployment(_inputs(project), aws)
    assert [(c.name, c.action, c.changed) for c in plan.pending] == [
        (f"s3://{BUCKET}/lean-ops/test/conf/{rel}", "delete", ("not in the config folder",))
        for rel in ("quality/semantic/orders.yaml", "semantic/clickstream.yaml")
    ]
    apply_plan(plan)
    keys = _keys(aws)
    assert "lean-ops/test/conf/semantic/clickstream.yaml" not in keys
    assert "lean-ops/test/conf/quality/semantic/orders.yaml" not in keys
    assert {"lean-ops/other/conf/topics/x.yaml", "lean-ops/test/state/snowflake-schemas.json"} <= keys
    assert "lean-ops/test/conf/topics/clickstream.yaml" in keys
    assert plan_deployment(_inputs(project), aws).pending == ()


@contextmanager
def _s3_clock(monkeypatch: pytest.MonkeyPatch, hours_ago: float) -> Iterator[None]:
    """S3 objects written inside get a LastModified ``hours_ago`` (moto stamps them with its utcnow)."""
    at = datetime.now(timezone.utc).replace(tzinfo=None) - timedelta(hours=hours_ago)
    with monkeypatch.context() as patched:
        patched.setattr("moto.s3.models.utcnow", lambda: at)
        yield


def _put_wheel(aws: AwsClients, monkeypatch: pytest.MonkeyPatch, version: str, hours_ago: float) -> str:
    """A wheel an earlier deployment left, uploaded ``hours_ago``; returns its URI."""
    key = f"lean-ops/test/wheels/lean_ops_spark-{version}-py3-none-any.whl"
    with _s3_clock(monkeypatch, hours_ago):
        aws.s3.put_object(Bucket=BUCKET, Key=key, Body=f"wheel bytes {version}".encode())
    return f"s3://{BUCKET}/{key}"


def _wheel_changes(plan: Any) -> dict[str, tuple[str, tuple[str, ...]]]:
    return {c.name: (c.action, c.changed) for c in plan.changes if "/wheels/" in c.name}


KEPT = "kept: job runs started before this deploy may still install it"
OLDER = ("older than the previous wheel",)


def test_the_previous_wheel_stays_and_older_ones_are_deleted_after_the_jobs_move(
    project: Path, aws: AwsClients, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A job run started just before the deploy updated its job installs the previous wheel
    while it starts up: that one stays, the older ones go once the jobs moved."""
    with _s3_clock(monkeypatch, hours_ago=1):
        apply_plan(plan_deployment(_inputs(project), aws))  # the jobs install 0.1.0
    oldest = _put_wheel(aws, monkeypatch, "0.0.8", hours_ago=48)
    older = _put_wheel(aws, monkeypatch, "0.0.9", hours_ago=24)
    new_wheel = project / "dist" / "lean_ops_spark-0.2.0-py3-none-any.whl"
    new_wheel.write_bytes(b"wheel bytes v2")
    plan = plan_deployment(dataclasses.replace(_inputs(project), wheel=new_wheel), aws)
    order = [(c.kind, c.action) for c in plan.pending]
    assert order == [("s3_object", "create"), *[("glue_job", "update")] * 3, *[("s3_object", "delete")] * 2]
    assert _wheel_changes(plan) == {
        WHEEL_URI.replace("0.1.0", "0.2.0"): ("create", ("sha256",)),
        WHEEL_URI: (
            "unchanged",
            (KEPT, "the newest previous wheel", "installed by " + " and ".join(JOBS) + " now"),
        ),
        oldest: ("delete", OLDER),
        older: ("delete", OLDER),
    }
    assert plan.pending[-2:] == tuple(c for c in plan.changes if c.name in (oldest, older))  # after the jobs


def test_a_redeploy_of_the_same_wheel_keeps_the_previous_one_without_churn(
    project: Path, aws: AwsClients, monkeypatch: pytest.MonkeyPatch
) -> None:
    oldest = _put_wheel(aws, monkeypatch, "0.0.8", hours_ago=48)
    previous = _put_wheel(aws, monkeypatch, "0.0.9", hours_ago=24)
    plan = apply_plan(plan_deployment(_inputs(project), aws))
    assert _wheel_changes(plan) == {
        WHEEL_URI: ("create", ("sha256",)),
        previous: ("unchanged", (KEPT, "the newest previous wheel")),
        oldest: ("delete", OLDER),
    }
    for _ in range(2):
        again = plan_deployment(_inputs(project), aws)
        assert again.pending == ()
        assert _wheel_changes(again) == {
            WHEEL_URI: ("unchanged", ()),
            previous: ("unchanged", (KEPT, "the newest previous wheel")),
        }
    assert {k for k in _keys(aws) if "/wheels/" in k} == {
        "lean-ops/test/wheels/lean_ops_spark-0.0.9-py3-none-any.whl",
        "lean-ops/test/wheels/lean_ops_spark-0.1.0-py3-none-any.whl",
    }


def test_the_wheel_the_jobs_install_stays_after_a_deploy_that_failed_before_moving_them(
    project: Path, aws: AwsClients, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A failed deploy left a newer wheel than the one the jobs install: both stay."""
    with _s3_clock(monkeypatch, hours_ago=2):
        apply_plan(plan_deployment(_inputs(project), aws))  # the jobs install 0.1.0
    failed = project / "dist" / "lean_ops_spark-0.2.0-py3-none-any.whl"
    failed.write_bytes(b"wheel bytes v2")
    with _s3_clock(monkeypatch, hours_ago=1), pytest.raises(DeployError, match="glue job"):
        # uploads 0.2.0, then fails on UpdateJob (moto 5.2.5 has none, as a denied call would)
        apply_plan(plan_deployment(dataclasses.replace(_inputs(project), wheel=failed), aws))
    new_wheel = project / "dist" / "lean_ops_spark-0.3.0-py3-none-any.whl"
    new_wheel.write_bytes(b"wheel bytes v3")
    plan = plan_deployment(dataclasses.replace(_inputs(project), wheel=new_wheel), aws)
    assert _wheel_changes(plan) == {
        WHEEL_URI.replace("0.1.0", "0.3.0"): ("create", ("sha256",)),
        WHEEL_URI.replace("0.1.0", "0.2.0"): ("unchanged", (KEPT, "the newest previous wheel")),
        WHEEL_URI: ("unchanged", (KEPT, "installed by " + " and ".join(JOBS) + " now")),
    }
    assert not [c for c in plan.pending if c.action == "delete"]


def test_renaming_the_state_machine_deletes_the_old_one_and_its_schedules(
    project: Path, aws: AwsClients
) -> None:
    apply_plan(plan_deployment(_inputs(project), aws))
    # another environment's schedules in the same account: left alone
    role = "arn:aws:iam::123456789012:role/scheduler"
    for name, target in (
        ("other-pipeline-topic-orders", "arn:aws:states:us-east-1:123456789012:stateMachine:other-pipeline"),
        ("other-pipeline-maintenance", "arn:aws:scheduler:::aws-sdk:glue:startJobRun"),
    ):
        aws.scheduler.create_schedule(
            Name=name,
            Description="lean-ops-spark environment other",
            ScheduleExpression="rate(1 hour)",
            FlexibleTimeWindow={"Mode": "OFF"},
            Target={"Arn": target, "RoleArn": role, "Input": "{}"},
        )
    renamed = _env_doc(name="lean-ops-test-pipeline-v2")
    plan = plan_deployment(_inputs(project, renamed), aws)
    now = "not lean-ops-test-pipeline-v2"
    assert [(c.kind, c.name, c.changed) for c in plan.pending if c.action == "delete"] == [
        (
            "schedule",
            "lean-ops-test-pipeline-maintenance",
            ("schedule of a previous state_machine.name (now lean-ops-test-pipeline-v2)",),
        ),
        (
            "schedule",
            "lean-ops-test-pipeline-topic-clickstream",
            (f"targets state machine lean-ops-test-pipeline, {now}",),
        ),
        (
            "schedule",
            "lean-ops-test-pipeline-topic-orders",
            (f"targets state machine lean-ops-test-pipeline, {now}",),
        ),
        ("state_machine", "lean-ops-test-pipeline", ("state_machine.name is now lean-ops-test-pipeline-v2",)),
    ]
    apply_plan(plan)
    assert sorted(s["Name"] for s in aws.scheduler.list_schedules()["Schedules"]) == [
        "lean-ops-test-pipeline-v2-maintenance",
        "lean-ops-test-pipeline-v2-topic-clickstream",
        "lean-ops-test-pipeline-v2-topic-orders",
        "other-pipeline-maintenance",
        "other-pipeline-topic-orders",
    ]
    machines = aws.stepfunctions.list_state_machines()["stateMachines"]
    assert [m["name"] for m in machines] == ["lean-ops-test-pipeline-v2"]
    assert plan_deployment(_inputs(project, renamed), aws).pending == ()


def test_a_renamed_state_machine_with_running_executions_is_reported_not_deleted(
    project: Path, aws: AwsClients
) -> None:
    apply_plan(plan_deployment(_inputs(project), aws))
    aws.stepfunctions.start_execution(stateMachineArn=OLD_MACHINE, input=json.dumps({"topic": "orders"}))
    plan = plan_deployment(_inputs(project, _env_doc(name="lean-ops-test-pipeline-v2")), aws)
    (old,) = [c for c in plan.changes if c.kind == "state_machine" and c.name == "lean-ops-test-pipeline"]
    assert old.action == "stale" and old not in plan.pending
    assert "has running executions" in old.changed[1]
    assert plan.counts()["stale"] == 1
    apply_plan(plan)
    aws.stepfunctions.describe_state_machine(stateMachineArn=OLD_MACHINE)  # still there, schedules gone
    assert not [s for s in aws.scheduler.list_schedules()["Schedules"] if "v2" not in s["Name"]]


def test_a_state_machine_deployed_before_the_environment_tag_gets_it(project: Path, aws: AwsClients) -> None:
    apply_plan(plan_deployment(_inputs(project), aws))
    aws.stepfunctions.untag_resource(resourceArn=OLD_MACHINE, tagKeys=["lean-ops:environment"])
    plan = plan_deployment(_inputs(project), aws)
    assert [(c.kind, c.action, c.changed) for c in plan.pending] == [("state_machine", "update", ("tags",))]
    apply_plan(plan)
    tags = aws.stepfunctions.list_tags_for_resource(resourceArn=OLD_MACHINE)["tags"]
    assert tags == [{"key": "lean-ops:environment", "value": "test"}]
    assert plan_deployment(_inputs(project), aws).pending == ()


def test_stale_schedules_are_found_beyond_the_first_page(project: Path, aws: AwsClients) -> None:
    """ListSchedules answers 50 at a time (moto as AWS); every page is read."""
    apply_plan(plan_deployment(_inputs(project), aws))
    for i in range(60):  # left by topics removed long ago
        aws.scheduler.create_schedule(
            Name=f"lean-ops-test-pipeline-topic-gone{i:02d}",
            ScheduleExpression="rate(1 hour)",
            FlexibleTimeWindow={"Mode": "OFF"},
            Target={"Arn": OLD_MACHINE, "RoleArn": "arn:aws:iam::123456789012:role/scheduler"},
        )
    plan = plan_deployment(_inputs(project), aws)
    deletes = [c.name for c in plan.pending if c.action == "delete"]
    assert deletes == [f"lean-ops-test-pipeline-topic-gone{i:02d}" for i in range(60)]


class _LambdaCalls:
    """The Lambda client, recording the calls that change a function and the waits between them."""

    def __init__(self, client: Any) -> None:
        self._client = client
        self.calls: list[str] = []

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._client, name)
        if name not in ("update_function_code", "update_function_configuration", "get_waiter"):
            return attr

        def call(*args: Any, **kwargs: Any) -> Any:
            self.calls.append(f"{name}:{args[0]}" if args else name)
            return attr(*args, **kwargs)

        return call


def test_a_lambda_code_update_is_waited_for_before_its_configuration(project: Path, aws: AwsClients) -> None:
    """A configuration update during an in-progress code update fails with ResourceConflictException."""
    apply_plan(plan_deployment(_inputs(project), aws))
    entry = project / "orchestration" / "checkpoints_lambda.py"
    entry.write_text(entry.read_text() + "\n# changed\n")
    doc = _env_doc()
    doc["lambda"]["memory_mb"] = 2048
    recorder = _LambdaCalls(aws.lambda_)
    plan = plan_deployment(_inputs(project, doc), dataclasses.replace(aws, lambda_=recorder))
    apply_plan(plan)
    once = ["update_function_code", "get_waiter:function_updated", "update_function_configuration"]
    assert recorder.calls == once * 2
    assert plan_deployment(_inputs(project, doc), aws).pending == ()
