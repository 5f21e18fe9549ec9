"""Flow review: the state machine's and the Lambdas' decisions in the corner cases.

Each test reproduces a defect the review found (it fails on the code before the fix):

* run ids minted from execution names that Step Functions accepts but the jobs refuse;
* a throttled Glue ``StartJobRun`` (``Glue.AWSGlueException``, "Rate exceeded") failing the
  execution instead of being retried;
* a throttled catalog or S3 call inside a Lambda failing the execution instead of being
  retried;
* a topic without a semantic model never looping on its curation backlog.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest

from lean_ops_spark.catalog.checkpoints import RAW_CHECKPOINT_KEY, RUN_ID_KEY
from lean_ops_spark.catalog.metadata import SnapshotRecord, TableSnapshots
from lean_ops_spark.catalog.naming import TableRef
from lean_ops_spark.config.sources import open_config_source
from lean_ops_spark.curation.pipeline import check_run_id
from lean_ops_spark.orchestration import state_machine as sm
from lean_ops_spark.orchestration.handlers import (
    LambdaRuntime,
    curation_result,
    get_all_checkpoints_event,
    load_profile,
)
from lean_ops_spark.orchestration.local_runner import (
    LocalExecutor,
    TaskFailed,
    glue_job_binding,
    lambda_binding,
    metric_binding,
)
from tests.unit.test_orchestration_scenarios import checkpoints, curation, test_environment

CONF = Path(__file__).resolve().parents[2] / "conf"


# --------------------------------------------------------------------------- a fake catalog


class FakeSource:
    """Raw with two appends after the checkpoint; curated holding the checkpoint."""

    def __init__(self, error: Exception | None = None) -> None:
        self.error = error

    def load(self, tables: Sequence[TableRef]) -> dict[str, TableSnapshots]:
        if self.error is not None:
            raise self.error
        out: dict[str, TableSnapshots] = {}
        for table in tables:
            if table.identifier.endswith("_staging"):
                records = (
                    SnapshotRecord(1, None, {"operation": "append", "added-records": "5"}, 1, "append"),
                    SnapshotRecord(2, 1, {"operation": "append", "added-records": "7"}, 2, "append"),
                    SnapshotRecord(3, 2, {"operation": "append", "added-records": "9"}, 3, "append"),
                )
                out[table.identifier] = TableSnapshots(table.identifier, True, 3, records)
            elif table.layer == "curated":
                summary = {"operation": "append", RAW_CHECKPOINT_KEY: "1", RUN_ID_KEY: "x:r1"}
                curated = (SnapshotRecord(10, None, summary, 1, "append"),)
                out[table.identifier] = TableSnapshots(table.identifier, True, 10, curated, ("order_id",))
            else:
                out[table.identifier] = TableSnapshots(table.identifier, False)
        return out


def runtime(source: Any) -> LambdaRuntime:
    config = open_config_source(str(CONF))
    return LambdaRuntime(
        profile=load_profile(config, "local"),
        config_source=config,
        snapshots=source,
        topics=("clickstream", "orders"),
        semantic_tables=lambda _profile, _topic: (),
    )


# --------------------------------------------------------------------------- run ids


@pytest.mark.parametrize(
    "name",
    [
        "orders+backfill",  # '+', '=', '@', '!', '(' and ')' are all valid execution names
        "manual=2024-06-01",
        "ops@team",
        "retry(1)!",
        "bestellungen-über-nacht",  # Step Functions accepts non-ASCII names
        "x" * 80,  # the longest name Step Functions accepts
    ],
)
def test_run_ids_from_any_valid_execution_name_are_accepted_by_the_jobs(name: str) -> None:
    """Step Functions accepts execution names the jobs' run-id check refuses; the run id the
    Lambda mints from them reached ``--run_id`` as is, so every curation run failed."""
    payload = get_all_checkpoints_event(
        {"topic": "orders", "execution_name": name, "state": {"topic": "orders"}}, runtime(FakeSource())
    )
    run_id = payload["run_id"]
    assert check_run_id(run_id) == run_id  # old code: ConfigError, run id ... must match
    assert run_id.endswith(":r1")


def test_run_ids_stay_distinct_and_keep_plain_names() -> None:
    source = runtime(FakeSource())

    def run_id(name: str) -> str:
        event = {"topic": "orders", "execution_name": name, "state": {"topic": "orders"}}
        return str(get_all_checkpoints_event(event, source)["run_id"])

    assert run_id("local-20240601T000000-abc123-orders") == "local-20240601T000000-abc123-orders:r1"
    assert len({run_id("a+b"), run_id("a=b"), run_id("a_b"), run_id("a@b")}) == 4


# --------------------------------------------------------------------------- Glue throttling


def test_a_throttled_glue_start_is_retried_not_failed() -> None:
    """AWS reports a throttled ``glue:startJobRun.sync`` as ``Glue.AWSGlueException`` ("Rate
    exceeded ... ThrottlingException", AWS knowledge center: glue-throttling-rate-exceeded).
    Only ConcurrentRunsExceeded was retried: one throttle failed the whole execution."""
    calls: list[str] = []
    sleeps: list[float] = []
    answers = [checkpoints(1, True, 10, 1), curation(True)]

    def curation_job(_arguments: Mapping[str, str]) -> None:
        calls.append("curation")
        if len(calls) == 1:
            raise TaskFailed(
                "Glue.AWSGlueException",
                "Rate exceeded (Service: AWSGlue; Status Code: 400; Error Code: ThrottlingException)",
            )

    executor = LocalExecutor(
        sm.render_state_machine(test_environment()),
        bindings={
            sm.GET_ALL_CHECKPOINTS: lambda_binding(lambda _p: answers.pop(0)),
            sm.RESOLVE_CURATED_SNAPSHOT: lambda_binding(lambda _p: answers.pop(0)),
            sm.RUN_CURATION_JOB: glue_job_binding(curation_job),
            sm.RUN_SEMANTIC_JOB: glue_job_binding(lambda _a: None),
            sm.PUT_METRIC_RESOURCE: metric_binding(lambda _ns, _d: None),
        },
        sleep=sleeps.append,
    )
    result = executor.run({"topic": "orders"}, name="exec")
    assert (result.status, result.error) == ("SUCCEEDED", None)  # old: FAILED, RunCurationJobFailed
    assert result.final_state == sm.FULL_PIPELINE_SUCCESS
    assert calls == ["curation", "curation"] and len(sleeps) == 1


def test_the_throttle_retrier_is_on_both_glue_tasks_even_without_the_concurrency_retry() -> None:
    """The local environment sets ``glue.retry.max_attempts: 0`` (no ConcurrentRuns retry);
    a throttle retrier does not depend on it, and ConcurrentRuns keeps its own budget."""
    definition = sm.render_state_machine(test_environment())
    for task in (sm.RUN_CURATION_JOB, sm.RUN_SEMANTIC_JOB):
        retry = definition["States"][task]["Retry"]
        names = [name for retrier in retry for name in retrier["ErrorEquals"]]
        assert names.count("Glue.ConcurrentRunsExceededException") == 1
        assert "Glue.AWSGlueException" in names
        assert "States.ALL" not in names  # a failed job run (States.TaskFailed) is never retried


# --------------------------------------------------------------------------- Lambda throttling


class FakeClientError(Exception):
    """The shape of botocore's ClientError (``response["Error"]["Code"]``)."""

    def __init__(self, code: str) -> None:
        super().__init__(f"An error occurred ({code}) when calling the GetTables operation: Rate exceeded")
        self.response = {"Error": {"Code": code, "Message": "Rate exceeded"}}


@pytest.mark.parametrize("code", ["ThrottlingException", "SlowDown", "TooManyRequestsException"])
def test_a_throttled_catalog_read_raises_an_error_the_state_machine_retries(code: str) -> None:
    """A Lambda error's name in Step Functions is the exception's class name (errorType).
    botocore's ``ClientError`` matched none of the Lambda retriers, so a throttled GetTables or
    S3 read failed the execution at once."""
    definition = sm.render_state_machine(test_environment())
    source = runtime(FakeSource(FakeClientError(code)))
    for task, call, event in (
        (sm.GET_ALL_CHECKPOINTS, get_all_checkpoints_event, {"topic": "orders", "execution_name": "e"}),
        (sm.RESOLVE_CURATED_SNAPSHOT, curation_result, {"topic": "orders", "run_id": "e:r1"}),
    ):
        with pytest.raises(Exception) as raised:
            call(event, source)
        error_name = type(raised.value).__name__
        retried = [n for r in definition["States"][task]["Retry"] for n in r["ErrorEquals"]]
        assert error_name in retried, f"{task}: {error_name} is not retried"
        assert code in str(raised.value)


def test_other_catalog_errors_are_not_retried() -> None:
    definition = sm.render_state_machine(test_environment())
    with pytest.raises(Exception) as raised:
        get_all_checkpoints_event({"topic": "orders"}, runtime(FakeSource(FakeClientError("AccessDenied"))))
    retried = [n for r in definition["States"][sm.GET_ALL_CHECKPOINTS]["Retry"] for n in r["ErrorEquals"]]
    assert type(raised.value).__name__ not in retried


def test_lambda_throttle_retry_in_the_local_executor() -> None:
    """End to end: GetAllCheckpoints throttled once, then answers; the execution goes on."""
    answers = [checkpoints(1, False)]
    calls: list[int] = []

    def get_all(_payload: Any) -> Any:
        calls.append(1)
        if len(calls) == 1:
            source = runtime(FakeSource(FakeClientError("ThrottlingException")))
            return get_all_checkpoints_event({"topic": "orders"}, source)
        return answers.pop(0)

    executor = LocalExecutor(
        sm.render_state_machine(test_environment()),
        bindings={
            sm.GET_ALL_CHECKPOINTS: lambda_binding(get_all),
            sm.PUT_METRIC_RESOURCE: metric_binding(lambda _ns, _d: None),
        },
        sleep=lambda _s: None,
    )
    result = executor.run({"topic": "orders"})
    assert (result.status, result.final_state) == ("SUCCEEDED", sm.NO_NEW_DATA)  # old: FAILED


# --------------------------------------------------------------------------- the backlog loop


def _run(answers: list[dict[str, Any]]) -> tuple[Any, list[str], list[str]]:
    jobs: list[str] = []
    metrics: list[str] = []
    executor = LocalExecutor(
        sm.render_state_machine(test_environment()),  # max_rounds 3, thresholds 100 / 5
        bindings={
            sm.GET_ALL_CHECKPOINTS: lambda_binding(lambda _p: answers.pop(0)),
            sm.RESOLVE_CURATED_SNAPSHOT: lambda_binding(lambda _p: answers.pop(0)),
            sm.RUN_CURATION_JOB: glue_job_binding(lambda _a: jobs.append("curation")),
            sm.RUN_SEMANTIC_JOB: glue_job_binding(lambda _a: jobs.append("semantic")),
            sm.PUT_METRIC_RESOURCE: metric_binding(lambda _ns, d: metrics.append(d["MetricName"])),
        },
        sleep=lambda _s: None,
    )
    return executor.run({"topic": "orders"}, name="x"), jobs, metrics


def test_a_topic_without_a_semantic_model_still_drains_its_backlog() -> None:
    """After NotifyMissingSchema the execution ended at CurationOnlySuccess whatever the
    backlog: a topic with no semantic model (yet) curated one batch per schedule tick."""
    answers = [
        checkpoints(1, True, 900, 9),
        curation(False, 500, 6),  # no model; 500 records still wait
        checkpoints(2, True, 500, 6),
        curation(False, 0, 0),
    ]
    result, jobs, metrics = _run(answers)
    assert result.status == "SUCCEEDED" and result.final_state == sm.CURATION_ONLY_SUCCESS
    assert jobs == ["curation", "curation"]  # old: ["curation"]
    assert answers == []
    assert metrics == ["MissingSemanticSchema", "MissingSemanticSchema"]


def test_the_missing_schema_loop_stops_at_max_rounds() -> None:
    always_behind = [a for r in (1, 2, 3) for a in (checkpoints(r, True, 900, 9), curation(False, 900, 9))]
    result, jobs, _ = _run(always_behind)
    assert result.status == "SUCCEEDED" and result.final_state == sm.CURATION_ONLY_SUCCESS
    assert result.path.count(sm.GET_ALL_CHECKPOINTS) == 3 and jobs == ["curation"] * 3
