"""Every branch executed by moto's Step Functions interpreter (JSONPath ASL).

moto 5.2.5 cannot run ``arn:aws:states:::glue:startJobRun.sync`` (it always fails with
``States.Runtime: 'NoneType' object has no attribute 'interrupt_all'``), so these tests
deploy a variant whose two Glue tasks use ``glue:startJobRun`` instead
(``swap_glue_resource``); every other state is the production definition. moto's
Lambda without Docker runs no code: the Lambdas' answers are scripted through its
``lambda_simple_results_queue`` (``moto/awslambda_simple/models.py``), the same queue
that ``/moto-api/static/lambda-simple/response`` fills in server mode.
"""

from __future__ import annotations

import io
import json
import time
import zipfile
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws
from moto.awslambda_simple.models import lambda_simple_backends
from moto.moto_api import state_manager

from lean_ops_spark.orchestration import state_machine as sm
from tests.unit.test_orchestration_scenarios import SCENARIOS, Scenario, test_environment

ACCOUNT = "123456789012"
REGION = "us-east-1"
MOTO_CONFIG: Any = {"stepfunctions": {"execute_state_machine": True}, "lambda": {"use_docker": False}}


@pytest.fixture
def aws(fake_aws_env: str) -> Iterator[None]:
    with mock_aws(config=MOTO_CONFIG):
        yield
    state_manager.unset_transition("glue::job_run")


def _zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("checkpoints_lambda.py", "def handler(event, context):\n    return event\n")
    return buffer.getvalue()


def _deploy(curation_max_runs: int = 1) -> str:
    env = test_environment()
    iam = boto3.client("iam")
    role = iam.create_role(
        RoleName="lambda",
        AssumeRolePolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": []}),
    )["Role"]["Arn"]
    awslambda = boto3.client("lambda")
    for name in (env.checkpoints_function, env.curation_result_function):
        awslambda.create_function(
            FunctionName=name, Runtime="python3.11", Role=role, Handler="checkpoints_lambda.handler",
            Code={"ZipFile": _zip()},
        )  # fmt: skip
    glue = boto3.client("glue")
    for job, runs in ((env.curation_job, curation_max_runs), (env.semantic_job, 4)):
        glue.create_job(
            Name=job.name, Role=env.glue_role_arn, GlueVersion="5.1",
            Command={"Name": "glueetl", "ScriptLocation": "s3://b/jobs/x.py"},
            ExecutionProperty={"MaxConcurrentRuns": runs},
        )  # fmt: skip
    definition = sm.swap_glue_resource(sm.render_state_machine(env))  # moto: .sync is broken
    return str(
        boto3.client("stepfunctions").create_state_machine(
            name=env.state_machine_name,
            definition=sm.definition_json(definition),
            roleArn=env.state_machine_role_arn,
        )["stateMachineArn"]
    )


def _script_lambdas(answers: list[dict[str, Any]]) -> None:
    lambda_simple_backends[ACCOUNT][REGION].lambda_simple_results_queue.extend(json.dumps(a) for a in answers)


def _run(machine_arn: str) -> tuple[dict[str, Any], list[str]]:
    sfn = boto3.client("stepfunctions")
    execution = sfn.start_execution(
        stateMachineArn=machine_arn, name="exec", input=json.dumps({"topic": "orders"})
    )
    for _ in range(300):  # moto runs the interpreter in a background thread
        described = sfn.describe_execution(executionArn=execution["executionArn"])
        if described["status"] != "RUNNING":
            break
        time.sleep(0.1)
    events = sfn.get_execution_history(executionArn=execution["executionArn"])["events"]
    entered = [e["stateEnteredEventDetails"]["name"] for e in events if "stateEnteredEventDetails" in e]
    return described, entered


def _metric_names() -> list[str]:
    metrics = boto3.client("cloudwatch").list_metrics(Namespace="LeanOps")["Metrics"]
    return sorted(m["MetricName"] for m in metrics)


@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda s: s.name)
def test_every_branch_in_moto(aws: None, scenario: Scenario) -> None:
    machine = _deploy()
    if scenario.curation_fails:
        # a run that never finishes holds the job's only slot: startJobRun raises
        # Glue.ConcurrentRunsExceededException, retried once, then caught
        state_manager.set_transition(
            model_name="glue::job_run", transition={"progression": "manual", "times": 1000}
        )
        boto3.client("glue").start_job_run(JobName=test_environment().curation_job.name)
    _script_lambdas(scenario.lambda_answers)
    described, entered = _run(machine)
    assert entered == scenario.path
    assert described["status"] == scenario.status
    assert _metric_names() == sorted(scenario.metrics)
    assert lambda_simple_backends[ACCOUNT][REGION].lambda_simple_results_queue == []
    if scenario.status == "FAILED":
        assert described["error"] == "LeanOps.RunCurationJobFailed"
        assert described["cause"].startswith(
            "topic orders: RunCurationJob failed: Glue.ConcurrentRunsExceededException:"
        )


def test_the_curated_snapshot_token_reaches_the_semantic_job_in_moto(aws: None) -> None:
    machine = _deploy()
    _script_lambdas(next(s for s in SCENARIOS if s.name == "backlog_loop").lambda_answers)
    described, _ = _run(machine)
    assert described["status"] == "SUCCEEDED"
    glue = boto3.client("glue")
    env = test_environment()
    semantic_runs = glue.get_job_runs(JobName=env.semantic_job.name)["JobRuns"]
    curation_runs = glue.get_job_runs(JobName=env.curation_job.name)["JobRuns"]
    assert sorted(r["Arguments"]["--run_id"] for r in curation_runs) == ["exec:r1", "exec:r2"]
    assert {r["Arguments"]["--curated_snapshot_id"] for r in semantic_runs} == {"9001"}
    assert {r["Arguments"]["--topic"] for r in semantic_runs} == {"orders"}
