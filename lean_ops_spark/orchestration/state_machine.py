"""The Step Functions definition (JSONPath ASL) of DESIGN.md §2, rendered from an environment.

One execution runs one topic (input ``{"topic": "orders"}``), so the graph is the documented
flow, plus a branch for a topic with no raw to curate whose semantic table has yet to read
curated's last commits (a failed audit or semantic job, a replay: GetAllCheckpoints'
``semantic_behind``), which goes straight to ResolveCuratedSnapshot (no run carries the
round's run id, so it answers curated's current snapshot) and on to the semantic job::

    GetAllCheckpoints → CheckForNewRawData ─no─→ NoNewData
                                            ├yes→ RunCurationJob → ResolveCuratedSnapshot → CheckSchemaExists
                                            └semantic behind→ ResolveCuratedSnapshot
        CheckSchemaExists ─no─→ NotifyMissingSchema → CheckCurationBacklog ─no─→ CurationOnlySuccess
                          │                                            └yes→ GetAllCheckpoints (next round)
                          └yes→ RunSemanticJob → CheckBacklogThreshold ─no─→ FullPipelineSuccess
                                                                        └yes→ GetAllCheckpoints (next round)

Both backlog checks loop while the raw backlog is above a threshold and fewer than
``max_rounds`` rounds ran: a topic without a semantic model (yet) drains its backlog too.

Every task catches ``States.ALL`` into ``<Task>Failed`` (a Pass that writes ``$.failure``
with a cause naming the topic and the state), then RecordFailure (a CloudWatch metric)
and PipelineFailed (a Fail state whose error and cause come from ``$.failure``).

Retries: the Lambdas on Lambda's transient errors and on ``ThrottledError`` (a throttled
catalog, S3 or Step Functions call); the Glue jobs on ``Glue.ConcurrentRunsExceededException``
(``glue.retry``) and on a throttled StartJobRun (``Glue.AWSGlueException``). A failed job run
is not retried: curation's circuit breaker or a data-quality failure would only repeat.

Token passing: a Glue job cannot return a value, so GetAllCheckpoints mints the run id
(``<execution name>:r<round>``, characters the jobs refuse replaced) that RunCurationJob
passes as ``--run_id``; the curation commit writes it into its snapshot summary
(``lean-ops.run-id``) and ResolveCuratedSnapshot re-reads the curated table to find that
snapshot. Its id reaches RunSemanticJob as ``--curated_snapshot_id`` and the semantic job
reads curated pinned to it.

Per topic, not a Map: a failing topic fails only its own execution (with its own history
and cause), a topic with backlog loops without waiting for the others, and adding a topic
changes the schedules (one per topic, rendered by ``deploy``) but not this definition.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator, Mapping
from typing import Any

from lean_ops_spark.config.environment import Environment

__all__ = [
    "FAILURE_STATES",
    "GLUE_ASYNC_RESOURCE",
    "GLUE_SYNC_RESOURCE",
    "STATE_NAMES",
    "definition_json",
    "render_state_machine",
    "swap_glue_resource",
    "task_resource",
    "validate_definition",
]

#: Service-integration ARNs in the ``aws`` partition; :func:`task_resource` gives an
#: environment's own (``arn:aws-cn:...`` in China, ``arn:aws-us-gov:...`` in GovCloud).
GLUE_SYNC_RESOURCE = "arn:aws:states:::glue:startJobRun.sync"
#: Only for moto, whose ``.sync`` Glue integration is broken (see ``swap_glue_resource``).
GLUE_ASYNC_RESOURCE = "arn:aws:states:::glue:startJobRun"
LAMBDA_RESOURCE = "arn:aws:states:::lambda:invoke"
PUT_METRIC_RESOURCE = "arn:aws:states:::aws-sdk:cloudwatch:putMetricData"

GET_ALL_CHECKPOINTS = "GetAllCheckpoints"
CHECK_FOR_NEW_RAW_DATA = "CheckForNewRawData"
NO_NEW_DATA = "NoNewData"
RUN_CURATION_JOB = "RunCurationJob"
RESOLVE_CURATED_SNAPSHOT = "ResolveCuratedSnapshot"
CHECK_SCHEMA_EXISTS = "CheckSchemaExists"
NOTIFY_MISSING_SCHEMA = "NotifyMissingSchema"
CURATION_ONLY_SUCCESS = "CurationOnlySuccess"
RUN_SEMANTIC_JOB = "RunSemanticJob"
CHECK_BACKLOG_THRESHOLD = "CheckBacklogThreshold"
CHECK_CURATION_BACKLOG = "CheckCurationBacklog"
FULL_PIPELINE_SUCCESS = "FullPipelineSuccess"
RECORD_FAILURE = "RecordFailure"
PIPELINE_FAILED = "PipelineFailed"

#: The tasks that can fail, each with its ``<Task>Failed`` Pass state.
FAILING_TASKS = (GET_ALL_CHECKPOINTS, RUN_CURATION_JOB, RESOLVE_CURATED_SNAPSHOT, RUN_SEMANTIC_JOB)
FAILURE_STATES = tuple(f"{task}Failed" for task in FAILING_TASKS)
STATE_NAMES = (
    GET_ALL_CHECKPOINTS,
    CHECK_FOR_NEW_RAW_DATA,
    NO_NEW_DATA,
    RUN_CURATION_JOB,
    RESOLVE_CURATED_SNAPSHOT,
    CHECK_SCHEMA_EXISTS,
    NOTIFY_MISSING_SCHEMA,
    CHECK_CURATION_BACKLOG,
    CURATION_ONLY_SUCCESS,
    RUN_SEMANTIC_JOB,
    CHECK_BACKLOG_THRESHOLD,
    FULL_PIPELINE_SUCCESS,
    *FAILURE_STATES,
    RECORD_FAILURE,
    PIPELINE_FAILED,
)

LAMBDA_RETRY = {
    "ErrorEquals": [
        "Lambda.ServiceException",
        "Lambda.AWSLambdaException",
        "Lambda.SdkClientException",
        "Lambda.TooManyRequestsException",
    ],
    "IntervalSeconds": 2,
    "MaxAttempts": 3,
    "BackoffRate": 2.0,
}


#: A throttled catalog, S3 or Step Functions call inside a Lambda (the handlers raise
#: ``ThrottledError``; a Lambda error is named after its exception class).
THROTTLE_RETRY = {
    "ErrorEquals": ["ThrottledError"],
    "IntervalSeconds": 5,
    "MaxAttempts": 4,
    "BackoffRate": 2.0,
}

#: A throttled ``glue:startJobRun``: Step Functions reports it as ``Glue.AWSGlueException``
#: ("Rate exceeded ... Error Code: ThrottlingException"); a refused start ran nothing.
#: Independent of ``glue.retry`` (the ConcurrentRunsExceeded budget, 0 locally); a failed
#: job run (``States.TaskFailed``) is never retried here.
GLUE_THROTTLE_RETRY = {
    "ErrorEquals": ["Glue.AWSGlueException", "Glue.ThrottlingException"],
    "IntervalSeconds": 10,
    "MaxAttempts": 4,
    "BackoffRate": 2.0,
}


def task_resource(resource: str, partition: str) -> str:
    """``resource`` (one of the ``*_RESOURCE`` ARNs above) in ``partition``."""
    return resource.replace("arn:aws:", f"arn:{partition}:", 1)


def _catch(task: str) -> list[dict[str, Any]]:
    return [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.error", "Next": f"{task}Failed"}]


def _glue_task(
    env: Environment, task: str, *, job_name: str, arguments: dict[str, str], next_state: str, result: str
) -> dict[str, Any]:
    retry = env.glue_retry
    state: dict[str, Any] = {
        "Type": "Task",
        "Resource": task_resource(GLUE_SYNC_RESOURCE, env.partition),
        "Parameters": {"JobName": job_name, "Arguments": arguments},
        "ResultPath": result,
        "Retry": [],
        "Catch": _catch(task),
        "Next": next_state,
    }
    if retry.max_attempts > 0:
        state["Retry"].append(
            {
                "ErrorEquals": ["Glue.ConcurrentRunsExceededException"],
                "IntervalSeconds": retry.interval_seconds,
                "MaxAttempts": retry.max_attempts,
                "BackoffRate": retry.backoff_rate,
            }
        )
    state["Retry"].append(dict(GLUE_THROTTLE_RETRY))
    return state


def _metric(env: Environment, name: str, extra_dimensions: list[dict[str, str]]) -> dict[str, Any]:
    # Low-cardinality dimensions only: every combination is a billed metric; run ids go to logs.
    return {
        "Namespace": env.metric_namespace,
        "MetricData": [
            {
                "MetricName": name,
                "Value": 1,
                "Unit": "Count",
                "Dimensions": [
                    {"Name": "Environment", "Value": env.name},
                    {"Name": "Topic", "Value.$": "$.topic"},
                    *extra_dimensions,
                ],
            }
        ],
    }


def _backlog_loop(env: Environment, default: str) -> dict[str, Any]:
    """Back to GetAllCheckpoints while the raw backlog ResolveCuratedSnapshot saw is above a
    threshold and fewer than ``max_rounds`` rounds ran; else ``default``."""
    return {
        "Type": "Choice",
        "Choices": [
            {
                "And": [
                    {"Variable": "$.checkpoints.round", "NumericLessThan": env.max_rounds},
                    {
                        "Or": [
                            {
                                "Variable": "$.curation.pending_raw_records",
                                "NumericGreaterThan": env.backlog_threshold_records,
                            },
                            {
                                "Variable": "$.curation.pending_raw_snapshots",
                                "NumericGreaterThan": env.backlog_threshold_snapshots,
                            },
                        ]
                    },
                ],
                "Next": GET_ALL_CHECKPOINTS,
            }
        ],
        "Default": default,
    }


def render_state_machine(env: Environment) -> dict[str, Any]:
    """The state machine definition for ``env`` (a JSON-serialisable dict).

    Execution input: ``{"topic": "<topic>"}``.
    """
    states: dict[str, Any] = {
        GET_ALL_CHECKPOINTS: {
            "Type": "Task",
            "Comment": "PyIceberg-side lookup (no JVM): checkpoints, backlog, the next run id",
            "Resource": task_resource(LAMBDA_RESOURCE, env.partition),
            "Parameters": {
                "FunctionName": env.lambda_arn(env.checkpoints_function),
                "Payload": {
                    "topic.$": "$.topic",
                    "execution_name.$": "$$.Execution.Name",
                    "execution_arn.$": "$$.Execution.Id",
                    "state_machine_arn.$": "$$.StateMachine.Id",
                    "state.$": "$",
                },
            },
            "ResultSelector": {
                "round.$": "$.Payload.round",
                "run_id.$": "$.Payload.run_id",
                "topic.$": "$.Payload.topics[0]",
            },
            "ResultPath": "$.checkpoints",
            "Retry": [LAMBDA_RETRY, THROTTLE_RETRY],
            "Catch": _catch(GET_ALL_CHECKPOINTS),
            "Next": CHECK_FOR_NEW_RAW_DATA,
        },
        CHECK_FOR_NEW_RAW_DATA: {
            "Type": "Choice",
            "Choices": [
                {
                    "Variable": "$.checkpoints.topic.has_new_raw_data",
                    "BooleanEquals": True,
                    "Next": RUN_CURATION_JOB,
                },
                {  # nothing to curate, but semantic has yet to read curated's last commits
                    "Variable": "$.checkpoints.topic.semantic_behind",
                    "BooleanEquals": True,
                    "Next": RESOLVE_CURATED_SNAPSHOT,
                },
            ],
            "Default": NO_NEW_DATA,
        },
        NO_NEW_DATA: {
            "Type": "Succeed",
            "Comment": "no raw append since the curation checkpoint, and semantic up to date",
        },
        RUN_CURATION_JOB: _glue_task(
            env,
            RUN_CURATION_JOB,
            job_name=env.curation_job.name,
            arguments={"--topic.$": "$.topic", "--run_id.$": "$.checkpoints.run_id"},
            next_state=RESOLVE_CURATED_SNAPSHOT,
            result="$.curation_job",
        ),
        RESOLVE_CURATED_SNAPSHOT: {
            "Type": "Task",
            "Comment": "the curated snapshot carrying this run id (the semantic job's token), "
            "CheckSchemaExists' answer and the raw backlog left",
            "Resource": task_resource(LAMBDA_RESOURCE, env.partition),
            "Parameters": {
                "FunctionName": env.lambda_arn(env.curation_result_function),
                "Payload": {"topic.$": "$.topic", "run_id.$": "$.checkpoints.run_id"},
            },
            "ResultSelector": {
                "curated_snapshot_id.$": "$.Payload.curated_snapshot_id",
                "run_committed.$": "$.Payload.run_committed",
                "schema_exists.$": "$.Payload.schema_exists",
                "schema_reason.$": "$.Payload.schema_reason",
                "pending_raw_snapshots.$": "$.Payload.pending_raw_snapshots",
                "pending_raw_records.$": "$.Payload.pending_raw_records",
            },
            "ResultPath": "$.curation",
            "Retry": [LAMBDA_RETRY, THROTTLE_RETRY],
            "Catch": _catch(RESOLVE_CURATED_SNAPSHOT),
            "Next": CHECK_SCHEMA_EXISTS,
        },
        CHECK_SCHEMA_EXISTS: {
            "Type": "Choice",
            "Choices": [
                {"Variable": "$.curation.schema_exists", "BooleanEquals": True, "Next": RUN_SEMANTIC_JOB}
            ],
            "Default": NOTIFY_MISSING_SCHEMA,
        },
        NOTIFY_MISSING_SCHEMA: {
            "Type": "Task",
            "Comment": "metric here; the reason is logged by ResolveCuratedSnapshot and kept in $.curation",
            "Resource": task_resource(PUT_METRIC_RESOURCE, env.partition),
            "Parameters": _metric(env, "MissingSemanticSchema", []),
            "ResultPath": None,
            # a metric that cannot be sent must not turn a good curation run into a failure
            "Catch": [
                {
                    "ErrorEquals": ["States.ALL"],
                    "ResultPath": "$.metric_error",
                    "Next": CHECK_CURATION_BACKLOG,
                }
            ],
            "Next": CHECK_CURATION_BACKLOG,
        },
        # a topic without a semantic model (yet) drains its raw backlog like any other
        CHECK_CURATION_BACKLOG: _backlog_loop(env, CURATION_ONLY_SUCCESS),
        CURATION_ONLY_SUCCESS: {
            "Type": "Succeed",
            "Comment": "curated; no semantic model for this topic yet",
        },
        RUN_SEMANTIC_JOB: _glue_task(
            env,
            RUN_SEMANTIC_JOB,
            job_name=env.semantic_job.name,
            arguments={
                "--topic.$": "$.topic",
                "--run_id.$": "$.checkpoints.run_id",
                "--curated_snapshot_id.$": "$.curation.curated_snapshot_id",
            },
            next_state=CHECK_BACKLOG_THRESHOLD,
            result="$.semantic_job",
        ),
        CHECK_BACKLOG_THRESHOLD: _backlog_loop(env, FULL_PIPELINE_SUCCESS),
        FULL_PIPELINE_SUCCESS: {"Type": "Succeed"},
    }
    for task in FAILING_TASKS:
        states[f"{task}Failed"] = {
            "Type": "Pass",
            "Parameters": {
                "state": task,
                "topic.$": "$.topic",
                "error": f"LeanOps.{task}Failed",
                "cause.$": f"States.Format('topic {{}}: {task} failed: {{}}: {{}}', $.topic, $.error.Error, $.error.Cause)",
            },
            "ResultPath": "$.failure",
            "Next": RECORD_FAILURE,
        }
    states[RECORD_FAILURE] = {
        "Type": "Task",
        "Resource": task_resource(PUT_METRIC_RESOURCE, env.partition),
        "Parameters": _metric(env, "PipelineFailures", [{"Name": "State", "Value.$": "$.failure.state"}]),
        "ResultPath": None,
        "Catch": [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.metric_error", "Next": PIPELINE_FAILED}],
        "Next": PIPELINE_FAILED,
    }
    states[PIPELINE_FAILED] = {"Type": "Fail", "ErrorPath": "$.failure.error", "CausePath": "$.failure.cause"}
    return {
        "Comment": f'lean-ops pipeline ({env.name}): one execution per topic, input {{"topic": "<topic>"}}',
        "StartAt": GET_ALL_CHECKPOINTS,
        "States": states,
    }


def swap_glue_resource(definition: Mapping[str, Any], resource: str = GLUE_ASYNC_RESOURCE) -> dict[str, Any]:
    """A copy of ``definition`` whose Glue tasks use ``resource``; nothing else changes.

    For moto only: its ``glue:startJobRun.sync`` fails with ``'NoneType' object has no
    attribute 'interrupt_all'`` (moto 5.2.5), while the plain ``startJobRun`` works.
    """
    swapped = copy.deepcopy(dict(definition))
    sync_suffix = GLUE_SYNC_RESOURCE.removeprefix("arn:aws")  # any partition
    for _name, state in _all_states(swapped):
        if str(state.get("Resource", "")).endswith(sync_suffix):
            state["Resource"] = resource
    return swapped


def definition_json(definition: Mapping[str, Any]) -> str:
    """Canonical JSON (sorted keys): what deploy compares and uploads."""
    return json.dumps(definition, indent=2, sort_keys=True)


def _all_states(definition: Mapping[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    for name, state in definition.get("States", {}).items():
        yield name, state
        for branch in state.get("Branches", ()):
            yield from _all_states(branch)
        for key in ("Iterator", "ItemProcessor"):
            if key in state:
                yield from _all_states(state[key])


def _choice_targets(rules: list[Any]) -> Iterator[str]:
    for rule in rules:
        if "Next" in rule:
            yield rule["Next"]


def transitions(state: Mapping[str, Any]) -> list[str]:
    """Every state name ``state`` can go to (Next, Default, Choices, Catch)."""
    targets = []
    if "Next" in state:
        targets.append(state["Next"])
    if state.get("Type") == "Choice":
        targets.extend(_choice_targets(state.get("Choices", [])))
        if "Default" in state:
            targets.append(state["Default"])
    targets.extend(c["Next"] for c in state.get("Catch", ()))
    return targets


def _is_terminal(state: Mapping[str, Any]) -> bool:
    return state.get("Type") in ("Succeed", "Fail") or bool(state.get("End"))


def validate_definition(definition: Mapping[str, Any]) -> list[str]:
    """Structural problems of one state graph (empty when sound).

    Checks: StartAt exists; every Next/Default/Choice/Catch target exists; Choice states
    have a Default; non-terminal states have a Next; every state is reachable from StartAt;
    from every state some terminal state (Succeed, Fail, End) is reachable. Map/Parallel
    sub-graphs are checked the same way.
    """
    problems: list[str] = []
    states: Mapping[str, Any] = definition.get("States", {})
    start = definition.get("StartAt")
    if start not in states:
        problems.append(f"StartAt {start!r} is not a state")
    for name, state in states.items():
        kind = state.get("Type")
        for target in transitions(state):
            if target not in states:
                problems.append(f"{name}: transition to unknown state {target!r}")
        if kind == "Choice" and "Default" not in state:
            problems.append(f"{name}: Choice without Default (an unmatched input fails the execution)")
        if kind not in ("Choice", "Succeed", "Fail") and not state.get("End") and "Next" not in state:
            problems.append(f"{name}: neither Next nor End")
        if kind == "Task" and "Resource" not in state:
            problems.append(f"{name}: Task without Resource")
        for key in ("Iterator", "ItemProcessor"):
            if key in state:
                problems.extend(f"{name}.{key}: {p}" for p in validate_definition(state[key]))
    reachable: set[str] = set()
    frontier = [start] if start in states else []
    while frontier:
        name = str(frontier.pop())
        if name in reachable or name not in states:
            continue
        reachable.add(name)
        frontier.extend(transitions(states[name]))
    problems.extend(f"{name}: unreachable from {start}" for name in states if name not in reachable)
    # reverse search from the terminal states: which states can finish?
    can_finish = {name for name, state in states.items() if _is_terminal(state)}
    changed = True
    while changed:
        changed = False
        for name, state in states.items():
            if name not in can_finish and any(t in can_finish for t in transitions(state)):
                can_finish.add(name)
                changed = True
    problems.extend(f"{name}: no path to a terminal state" for name in states if name not in can_finish)
    return problems
