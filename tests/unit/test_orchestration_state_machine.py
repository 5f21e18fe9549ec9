"""The rendered definition: structure, documented transitions, and rendering from config."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from lean_ops_spark.config.environment import load_environment, parse_environment
from lean_ops_spark.errors import ConfigError
from lean_ops_spark.orchestration import state_machine as sm
from tests.unit.test_orchestration_scenarios import ENV_DOC, test_environment

CONF = Path(__file__).resolve().parents[2] / "conf"


@pytest.fixture
def definition() -> dict:
    return sm.render_state_machine(test_environment())


def test_definition_is_structurally_sound(definition: dict) -> None:
    assert sm.validate_definition(definition) == []
    assert set(definition["States"]) == set(sm.STATE_NAMES)
    assert definition["StartAt"] == sm.GET_ALL_CHECKPOINTS
    json.dumps(definition)  # serialisable as is


def test_documented_transitions(definition: dict) -> None:
    states = definition["States"]

    def goes(name: str) -> set[str]:
        return set(sm.transitions(states[name])) - set(sm.FAILURE_STATES)

    assert goes(sm.GET_ALL_CHECKPOINTS) == {sm.CHECK_FOR_NEW_RAW_DATA}
    assert goes(sm.CHECK_FOR_NEW_RAW_DATA) == {
        sm.NO_NEW_DATA,
        sm.RUN_CURATION_JOB,
        sm.RESOLVE_CURATED_SNAPSHOT,
    }
    assert states[sm.CHECK_FOR_NEW_RAW_DATA]["Default"] == sm.NO_NEW_DATA
    assert goes(sm.RUN_CURATION_JOB) == {sm.RESOLVE_CURATED_SNAPSHOT}
    assert goes(sm.RESOLVE_CURATED_SNAPSHOT) == {sm.CHECK_SCHEMA_EXISTS}
    assert goes(sm.CHECK_SCHEMA_EXISTS) == {sm.RUN_SEMANTIC_JOB, sm.NOTIFY_MISSING_SCHEMA}
    assert states[sm.CHECK_SCHEMA_EXISTS]["Default"] == sm.NOTIFY_MISSING_SCHEMA
    assert goes(sm.NOTIFY_MISSING_SCHEMA) == {sm.CHECK_CURATION_BACKLOG}
    # a topic without a semantic model loops on its raw backlog too
    assert goes(sm.CHECK_CURATION_BACKLOG) == {sm.CURATION_ONLY_SUCCESS, sm.GET_ALL_CHECKPOINTS}
    assert states[sm.CHECK_CURATION_BACKLOG]["Default"] == sm.CURATION_ONLY_SUCCESS
    assert states[sm.CHECK_CURATION_BACKLOG]["Choices"] == states[sm.CHECK_BACKLOG_THRESHOLD]["Choices"]
    assert goes(sm.RUN_SEMANTIC_JOB) == {sm.CHECK_BACKLOG_THRESHOLD}
    assert goes(sm.CHECK_BACKLOG_THRESHOLD) == {sm.FULL_PIPELINE_SUCCESS, sm.GET_ALL_CHECKPOINTS}
    assert states[sm.CHECK_BACKLOG_THRESHOLD]["Default"] == sm.FULL_PIPELINE_SUCCESS
    for terminal in (sm.NO_NEW_DATA, sm.CURATION_ONLY_SUCCESS, sm.FULL_PIPELINE_SUCCESS):
        assert states[terminal]["Type"] == "Succeed"
    assert states[sm.PIPELINE_FAILED] == {
        "Type": "Fail",
        "ErrorPath": "$.failure.error",
        "CausePath": "$.failure.cause",
    }


def test_every_task_catches_into_its_failure_state_and_the_failure_path_ends_failed(definition: dict) -> None:
    states = definition["States"]
    for task in sm.FAILING_TASKS:
        (catch,) = states[task]["Catch"]
        assert catch == {"ErrorEquals": ["States.ALL"], "ResultPath": "$.error", "Next": f"{task}Failed"}
        failed = states[f"{task}Failed"]
        assert failed["Next"] == sm.RECORD_FAILURE and failed["ResultPath"] == "$.failure"
        assert (
            task in failed["Parameters"]["cause.$"]
            and failed["Parameters"]["error"] == f"LeanOps.{task}Failed"
        )
    assert states[sm.RECORD_FAILURE]["Resource"] == sm.PUT_METRIC_RESOURCE
    assert set(sm.transitions(states[sm.RECORD_FAILURE])) == {sm.PIPELINE_FAILED}


def test_glue_tasks_run_sync_with_retry_on_concurrency_and_pass_the_token(definition: dict) -> None:
    states = definition["States"]
    for task, job in (
        (sm.RUN_CURATION_JOB, "lean-ops-test-curation"),
        (sm.RUN_SEMANTIC_JOB, "lean-ops-test-semantic"),
    ):
        state = states[task]
        assert state["Resource"] == sm.GLUE_SYNC_RESOURCE
        assert state["Parameters"]["JobName"] == job
        assert state["Retry"] == [
            {
                "ErrorEquals": ["Glue.ConcurrentRunsExceededException"],
                "IntervalSeconds": 1,
                "MaxAttempts": 1,
                "BackoffRate": 1.0,
            },
            sm.GLUE_THROTTLE_RETRY,  # a throttled StartJobRun: Glue.AWSGlueException
        ]
        assert state["Parameters"]["Arguments"]["--run_id.$"] == "$.checkpoints.run_id"
    semantic_args = states[sm.RUN_SEMANTIC_JOB]["Parameters"]["Arguments"]
    assert semantic_args["--curated_snapshot_id.$"] == "$.curation.curated_snapshot_id"
    resolve = states[sm.RESOLVE_CURATED_SNAPSHOT]
    assert resolve["ResultPath"] == "$.curation"
    assert resolve["Parameters"]["Payload"]["run_id.$"] == "$.checkpoints.run_id"


def test_missing_schema_emits_a_low_cardinality_metric(definition: dict) -> None:
    notify = definition["States"][sm.NOTIFY_MISSING_SCHEMA]
    assert notify["Resource"] == "arn:aws:states:::aws-sdk:cloudwatch:putMetricData"
    (datum,) = notify["Parameters"]["MetricData"]
    assert datum["MetricName"] == "MissingSemanticSchema"
    assert {d["Name"] for d in datum["Dimensions"]} == {"Environment", "Topic"}


def test_rendered_from_configuration() -> None:
    doc = copy.deepcopy(ENV_DOC)
    doc["state_machine"].update(backlog_threshold_records=7, backlog_threshold_snapshots=2, max_rounds=4)
    doc["lambda"]["functions"]["checkpoints"] = "other-fn"
    states = sm.render_state_machine(parse_environment(doc, "x.yaml", "x"))["States"]
    rule = states[sm.CHECK_BACKLOG_THRESHOLD]["Choices"][0]["And"]
    assert rule[0] == {"Variable": "$.checkpoints.round", "NumericLessThan": 4}
    assert [r["NumericGreaterThan"] for r in rule[1]["Or"]] == [7, 2]
    assert states[sm.GET_ALL_CHECKPOINTS]["Parameters"]["FunctionName"] == (
        "arn:aws:lambda:us-east-1:123456789012:function:other-fn"
    )


def test_every_arn_is_in_the_environment_partition() -> None:
    """China and GovCloud: the Lambda, Glue and CloudWatch integrations and the function ARNs
    carry the partition of the environment's role ARNs, not ``aws``."""
    doc = json.loads(json.dumps(ENV_DOC).replace("arn:aws:", "arn:aws-cn:"))
    doc["region"] = "cn-north-1"
    env = parse_environment(doc, "cn.yaml", "cn")
    assert (
        env.state_machine_arn
        == "arn:aws-cn:states:cn-north-1:123456789012:stateMachine:lean-ops-test-pipeline"
    )
    assert env.lambda_arn("f") == "arn:aws-cn:lambda:cn-north-1:123456789012:function:f"
    definition = sm.render_state_machine(env)
    states = definition["States"]
    resources = {name: state["Resource"] for name, state in states.items() if state["Type"] == "Task"}
    assert resources == {
        sm.GET_ALL_CHECKPOINTS: "arn:aws-cn:states:::lambda:invoke",
        sm.RESOLVE_CURATED_SNAPSHOT: "arn:aws-cn:states:::lambda:invoke",
        sm.RUN_CURATION_JOB: "arn:aws-cn:states:::glue:startJobRun.sync",
        sm.RUN_SEMANTIC_JOB: "arn:aws-cn:states:::glue:startJobRun.sync",
        sm.NOTIFY_MISSING_SCHEMA: "arn:aws-cn:states:::aws-sdk:cloudwatch:putMetricData",
        sm.RECORD_FAILURE: "arn:aws-cn:states:::aws-sdk:cloudwatch:putMetricData",
    }
    assert states[sm.GET_ALL_CHECKPOINTS]["Parameters"]["FunctionName"].startswith("arn:aws-cn:lambda:")
    assert "arn:aws:" not in json.dumps(definition)
    swapped = sm.swap_glue_resource(definition)["States"]  # the moto helper finds them too
    assert swapped[sm.RUN_CURATION_JOB]["Resource"] == sm.GLUE_ASYNC_RESOURCE


def test_swap_glue_resource_changes_only_the_glue_resources(definition: dict) -> None:
    swapped = sm.swap_glue_resource(definition)
    changed = [n for n in definition["States"] if definition["States"][n] != swapped["States"][n]]
    assert sorted(changed) == [sm.RUN_CURATION_JOB, sm.RUN_SEMANTIC_JOB]
    for name in changed:
        original = dict(definition["States"][name], Resource=sm.GLUE_ASYNC_RESOURCE)
        assert swapped["States"][name] == original
    assert definition["States"][sm.RUN_CURATION_JOB]["Resource"] == sm.GLUE_SYNC_RESOURCE  # not mutated


def test_validator_finds_broken_graphs(definition: dict) -> None:
    broken = copy.deepcopy(definition)
    broken["States"][sm.NO_NEW_DATA] = {"Type": "Pass", "Next": "Nowhere"}
    broken["States"]["Orphan"] = {"Type": "Succeed"}
    broken["States"]["Spin"] = {"Type": "Pass", "Next": "Spin"}
    del broken["States"][sm.CHECK_SCHEMA_EXISTS]["Default"]
    problems = "\n".join(sm.validate_definition(broken))
    assert "NoNewData: transition to unknown state 'Nowhere'" in problems
    assert "Orphan: unreachable" in problems
    assert "Spin: no path to a terminal state" in problems
    assert "CheckSchemaExists: Choice without Default" in problems


def test_shipped_environment_renders_a_sound_definition() -> None:
    env = load_environment(CONF, "dev")
    assert sm.validate_definition(sm.render_state_machine(env)) == []
    assert env.glue_version == "5.1" and env.iceberg_version == "1.10.0"


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        (("glue", "jobs", "curation", "colour"), "red", r"glue\.jobs\.curation: unknown key\(s\) colour"),
        (("account_id",), "12", r"account_id: '12' is not a valid 12-digit AWS account id"),
        (("glue", "version"), "4.0", r"glue\.version: '4\.0' is not one of 5\.0, 5\.1"),
        (("schedules", "pipeline"), "every hour", r"schedules\.pipeline: 'every hour' is not rate"),
        (("state_machine", "metric_namespace"), "AWS/Glue", r"may not start with 'AWS/'"),
        (("surprise",), 1, r"x\.yaml: unknown key\(s\) surprise"),
        (
            ("glue", "jobs", "curation", "arguments"),
            {"--datalake-formats": "delta"},
            r"x\.yaml: glue\.jobs\.curation\.arguments\.--datalake-formats: set by lean-ops deploy",
        ),
        (
            ("glue", "jobs", "semantic", "arguments"),
            {"--lean_ops_conf": "s3://elsewhere/conf"},
            r"glue\.jobs\.semantic\.arguments\.--lean_ops_conf: set by lean-ops deploy",
        ),
        (
            ("glue", "jobs", "maintenance", "arguments"),
            {"--job-language": "scala"},
            r"glue\.jobs\.maintenance\.arguments\.--job-language: set by lean-ops deploy",
        ),
    ],
)
def test_environment_is_parsed_strictly(path: tuple[str, ...], value: object, message: str) -> None:
    doc = copy.deepcopy(ENV_DOC)
    target = doc
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    with pytest.raises(ConfigError, match=message):
        parse_environment(doc, "x.yaml", "x")


def test_missing_environment_lists_the_available_ones() -> None:
    with pytest.raises(ConfigError, match=r"environment 'prod' not found .*available: dev"):
        load_environment(CONF, "prod")
