"""The local ASL executor walking the rendered definition, with fake bindings, every branch."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest

from lean_ops_spark.errors import RuntimeSetupError
from lean_ops_spark.orchestration import state_machine as sm
from lean_ops_spark.orchestration.local_runner import (
    ExecutionEvent,
    LocalExecutor,
    TaskFailed,
    TaskNotAvailable,
    glue_job_binding,
    lambda_binding,
    metric_binding,
)
from tests.unit.test_orchestration_scenarios import SCENARIOS, Scenario, test_environment


class FakePipeline:
    """Scripted Lambdas, recorded Glue jobs and metrics."""

    def __init__(self, scenario: Scenario) -> None:
        self.answers = list(scenario.lambda_answers)
        self.curation_fails = scenario.curation_fails
        self.lambda_calls: list[Any] = []
        self.jobs: list[tuple[str, Mapping[str, str]]] = []
        self.metrics: list[str] = []
        self.sleeps: list[float] = []
        self.events: list[ExecutionEvent] = []

    def answer(self, payload: Any) -> Any:
        self.lambda_calls.append(payload)
        return self.answers.pop(0)

    def curation(self, arguments: Mapping[str, str]) -> None:
        self.jobs.append(("curation", arguments))
        if self.curation_fails:
            raise TaskFailed(
                "Glue.ConcurrentRunsExceededException", "Concurrent runs exceeded for lean-ops-test-curation"
            )

    def semantic(self, arguments: Mapping[str, str]) -> None:
        self.jobs.append(("semantic", arguments))

    def executor(self, definition: dict) -> LocalExecutor:
        return LocalExecutor(
            definition,
            bindings={
                sm.GET_ALL_CHECKPOINTS: lambda_binding(self.answer),
                sm.RESOLVE_CURATED_SNAPSHOT: lambda_binding(self.answer),
                sm.RUN_CURATION_JOB: glue_job_binding(self.curation),
                sm.RUN_SEMANTIC_JOB: glue_job_binding(self.semantic),
                sm.PUT_METRIC_RESOURCE: metric_binding(
                    lambda _ns, datum: self.metrics.append(datum["MetricName"])
                ),
            },
            on_event=self.events.append,
            sleep=self.sleeps.append,
        )


@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda s: s.name)
def test_every_branch(scenario: Scenario) -> None:
    fake = FakePipeline(scenario)
    result = fake.executor(sm.render_state_machine(test_environment())).run({"topic": "orders"}, name="exec")
    assert result.path == scenario.path
    assert result.status == scenario.status
    assert fake.metrics == scenario.metrics
    assert fake.answers == []  # every scripted answer consumed
    entered = [e.state for e in fake.events if e.kind == "entered"]
    assert entered == scenario.path  # progress reported per state


def test_token_passing_and_run_ids() -> None:
    scenario = next(s for s in SCENARIOS if s.name == "backlog_loop")
    fake = FakePipeline(scenario)
    result = fake.executor(sm.render_state_machine(test_environment())).run({"topic": "orders"}, name="exec")
    assert result.status == "SUCCEEDED"
    assert fake.jobs == [
        ("curation", {"--topic": "orders", "--run_id": "exec:r1"}),
        ("semantic", {"--topic": "orders", "--run_id": "exec:r1", "--curated_snapshot_id": "9001"}),
        ("curation", {"--topic": "orders", "--run_id": "exec:r2"}),
        ("semantic", {"--topic": "orders", "--run_id": "exec:r2", "--curated_snapshot_id": "9001"}),
    ]
    first, resolve, second, _ = fake.lambda_calls
    assert first == {
        "topic": "orders",
        "execution_name": "exec",
        "execution_arn": "local:local:exec",  # the overlap check needs ARNs: off locally
        "state_machine_arn": "local:local",
        "state": {"topic": "orders"},
    }
    assert resolve == {"topic": "orders", "run_id": "exec:r1"}
    assert second["state"]["checkpoints"]["round"] == 1  # the loop brings the round back


def test_failure_retries_then_records_a_clear_cause() -> None:
    scenario = next(s for s in SCENARIOS if s.name == "job_failure")
    fake = FakePipeline(scenario)
    result = fake.executor(sm.render_state_machine(test_environment())).run({"topic": "orders"})
    assert fake.sleeps == [1.0]  # one retry (max_attempts 1) on ConcurrentRunsExceeded
    assert len(fake.jobs) == 2
    assert result.error == "LeanOps.RunCurationJobFailed"
    assert result.cause == (
        "topic orders: RunCurationJob failed: Glue.ConcurrentRunsExceededException: "
        "Concurrent runs exceeded for lean-ops-test-curation"
    )


def test_max_rounds_stops_the_loop() -> None:
    env = test_environment()  # max_rounds 3
    always_behind = [
        answer
        for round_ in (1, 2, 3)
        for answer in (
            SCENARIOS[3].lambda_answers[0] | {"round": round_, "run_id": f"x:r{round_}"},
            SCENARIOS[3].lambda_answers[1],
        )
    ]
    fake = FakePipeline(Scenario("behind", always_behind, []))
    result = fake.executor(sm.render_state_machine(env)).run({"topic": "orders"})
    assert result.status == "SUCCEEDED" and result.final_state == sm.FULL_PIPELINE_SUCCESS
    assert result.path.count(sm.GET_ALL_CHECKPOINTS) == 3


def test_a_missing_binding_fails_the_execution_with_a_clear_cause() -> None:
    scenario = next(s for s in SCENARIOS if s.name == "full_success")
    fake = FakePipeline(scenario)
    executor = fake.executor(sm.render_state_machine(test_environment()))

    def not_yet(_task: Any) -> Any:
        raise TaskNotAvailable("RunCurationJob: the curation job is not available yet")

    executor.bindings = {**executor.bindings, sm.RUN_CURATION_JOB: not_yet}
    result = executor.run({"topic": "orders"})
    assert result.status == "FAILED"
    assert "TaskNotAvailable: RunCurationJob: the curation job is not available yet" in (result.cause or "")


def test_executor_semantics_on_a_small_definition() -> None:
    definition = {
        "StartAt": "Shape",
        "States": {
            "Shape": {
                "Type": "Pass",
                "Parameters": {
                    "greeting.$": "States.Format('hello {} #{}', $.who, $.n)",
                    "items.$": "States.Array($.n, 'x')",
                    "next.$": "States.MathAdd($.n, 1)",
                    "name.$": "$$.Execution.Name",
                },
                "ResultPath": "$.shaped",
                "Next": "Pick",
            },
            "Pick": {
                "Type": "Choice",
                "Choices": [
                    {"Not": {"Variable": "$.missing", "IsPresent": True}, "Next": "Check"},
                ],
                "Default": "Bad",
            },
            "Check": {
                "Type": "Choice",
                "Choices": [
                    {
                        "And": [
                            {"Variable": "$.shaped.next", "NumericGreaterThanEquals": 3},
                            {"Variable": "$.who", "StringEquals": "lake"},
                        ],
                        "Next": "Done",
                    }
                ],
                "Default": "Bad",
            },
            "Bad": {"Type": "Fail", "Error": "Bad", "Cause": "wrong branch"},
            "Done": {"Type": "Succeed", "OutputPath": "$.shaped"},
        },
    }
    result = LocalExecutor(definition, bindings={}).run({"who": "lake", "n": 2}, name="e1")
    assert result.status == "SUCCEEDED"
    assert result.output == {"greeting": "hello lake #2", "items": [2, "x"], "next": 3, "name": "e1"}


def test_a_missing_path_is_a_runtime_error_that_no_catch_hides() -> None:
    definition = {
        "StartAt": "T",
        "States": {
            "T": {
                "Type": "Task",
                "Resource": "arn:x",
                "Parameters": {"v.$": "$.nope"},
                "Catch": [{"ErrorEquals": ["States.ALL"], "Next": "Caught"}],
                "End": True,
            },
            "Caught": {"Type": "Succeed"},
        },
    }
    result = LocalExecutor(definition, bindings={"arn:x": lambda _t: {}}).run({})
    assert (result.status, result.error) == ("FAILED", "States.Runtime")


def test_states_format_keeps_escaped_braces_literal() -> None:
    """As on AWS: ``\\{\\}`` in the template is the text ``{}``, not a placeholder."""
    definition = {
        "StartAt": "P",
        "States": {
            "P": {
                "Type": "Pass",
                "Parameters": {
                    "s.$": "States.Format('lit \\{\\} and {} \\'q\\' \\\\{}', $.a, $.b)",
                    "plain.$": "States.Array('a\\{b')",
                },
                "End": True,
            }
        },
    }
    result = LocalExecutor(definition, bindings={}).run({"a": "v", "b": 2})
    assert (result.status, result.error, result.cause) == ("SUCCEEDED", None, None)
    assert result.output == {"s": "lit {} and v 'q' \\2", "plain": ["a{b"]}


def test_a_null_input_or_output_path_selects_an_empty_object() -> None:
    """InputPath/OutputPath ``null`` give ``{}`` on AWS, in every state type that has them."""
    definition = {
        "StartAt": "P",
        "States": {
            "P": {"Type": "Pass", "OutputPath": None, "Next": "T"},
            "T": {"Type": "Task", "Resource": "arn:t", "InputPath": None, "ResultPath": "$.r", "Next": "C"},
            "C": {
                "Type": "Choice",
                "InputPath": None,
                "OutputPath": None,
                "Choices": [{"Variable": "$.r", "IsPresent": True, "Next": "Bad"}],
                "Default": "S",
            },
            "Bad": {"Type": "Fail", "Error": "Bad"},
            "S": {"Type": "Succeed", "InputPath": None},
        },
    }
    seen: list[Any] = []
    bindings = {"arn:t": lambda task: seen.append(task.parameters) or {"ok": 1}}
    result = LocalExecutor(definition, bindings=bindings).run({"a": 1})
    assert (result.status, result.error, result.cause) == ("SUCCEEDED", None, None)
    assert seen == [{}] and result.output == {}
    assert result.path == ["P", "T", "C", "S"]


def test_an_incomplete_local_runtime_ends_the_execution_instead_of_failing_the_task() -> None:
    """No jars: no retry, no catch, no failure path: the error reaches the caller (exit 3)."""
    definition = {
        "StartAt": "Job",
        "States": {
            "Job": {
                "Type": "Task",
                "Resource": "arn:glue",
                "Retry": [{"ErrorEquals": ["States.ALL"], "MaxAttempts": 2}],
                "Catch": [{"ErrorEquals": ["States.ALL"], "Next": "Caught"}],
                "End": True,
            },
            "Caught": {"Type": "Succeed"},
        },
    }
    calls: list[Mapping[str, str]] = []

    def job(arguments: Mapping[str, str]) -> None:
        calls.append(arguments)
        raise RuntimeSetupError("missing JVM dependencies in /jars")

    executor = LocalExecutor(definition, bindings={"arn:glue": glue_job_binding(job)}, sleep=lambda _s: None)
    with pytest.raises(RuntimeSetupError, match="missing JVM dependencies"):
        executor.run({})
    assert len(calls) == 1
