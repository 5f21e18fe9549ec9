"""The branches of the pipeline as data, shared by the local-runner and moto tests.

Each scenario scripts what the two Lambdas answer (in call order) and whether the curation
Glue job fails, and says which states the execution must walk through.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from lean_ops_spark.config.environment import Environment, parse_environment
from lean_ops_spark.orchestration import state_machine as sm

ENV_DOC: dict[str, Any] = {
    "account_id": "123456789012",
    "region": "us-east-1",
    "artifacts": {"bucket": "lean-ops-test-artifacts", "prefix": "lean-ops/test"},
    "glue": {
        "version": "5.1",
        "role_arn": "arn:aws:iam::123456789012:role/glue",
        "retry": {"interval_seconds": 1, "max_attempts": 1, "backoff_rate": 1.0},
        "jobs": {
            "curation": {"name": "lean-ops-test-curation", "max_concurrent_runs": 1},
            "semantic": {"name": "lean-ops-test-semantic"},
            "maintenance": {"name": "lean-ops-test-maintenance"},
        },
    },
    "lambda": {
        "role_arn": "arn:aws:iam::123456789012:role/lambda",
        "functions": {
            "checkpoints": "lean-ops-test-checkpoints",
            "curation_result": "lean-ops-test-curation-result",
        },
    },
    "state_machine": {
        "name": "lean-ops-test-pipeline",
        "role_arn": "arn:aws:iam::123456789012:role/states",
        "backlog_threshold_records": 100,
        "backlog_threshold_snapshots": 5,
        "max_rounds": 3,
    },
    "schedules": {"role_arn": "arn:aws:iam::123456789012:role/scheduler"},
}


def test_environment() -> Environment:
    return parse_environment(ENV_DOC, "test.yaml", "test")


test_environment.__test__ = False  # type: ignore[attr-defined]  # a helper, not a test


def checkpoints(
    round_: int, has_new: bool, records: int = 0, snapshots: int = 0, *, semantic_behind: bool = False
) -> dict[str, Any]:
    topic = {
        "topic": "orders",
        "raw_current_snapshot_id": "111",
        "raw_snapshot_consumed": "100",
        "has_new_raw_data": has_new,
        "semantic_behind": semantic_behind,
        "pending_raw_records": records,
        "pending_raw_snapshots": snapshots,
        "error": None,
    }
    return {
        "topics": [topic],
        "has_new_raw_data": has_new,
        "round": round_,
        "run_id": f"exec:r{round_}",
        "errors": {},
    }


def curation(
    schema_exists: bool,
    records: int = 0,
    snapshots: int = 0,
    snapshot: str = "9001",
    *,
    committed: bool = True,
) -> dict[str, Any]:
    return {
        "topic": "orders",
        "curated_snapshot_id": snapshot,
        "run_committed": committed,
        "schema_exists": schema_exists,
        "schema_reason": "semantic model semantic/orders.yaml" if schema_exists else "no semantic model",
        "pending_raw_snapshots": snapshots,
        "pending_raw_records": records,
    }


@dataclass(frozen=True)
class Scenario:
    name: str
    lambda_answers: list[dict[str, Any]]
    path: list[str]
    status: str = "SUCCEEDED"
    curation_fails: bool = False
    metrics: list[str] = field(default_factory=list)


HEAD = [sm.GET_ALL_CHECKPOINTS, sm.CHECK_FOR_NEW_RAW_DATA]
CURATE = [sm.RUN_CURATION_JOB, sm.RESOLVE_CURATED_SNAPSHOT, sm.CHECK_SCHEMA_EXISTS]
SEMANTIC = [sm.RUN_SEMANTIC_JOB, sm.CHECK_BACKLOG_THRESHOLD]
MISSING_SCHEMA_ROUND = [*HEAD, *CURATE, sm.NOTIFY_MISSING_SCHEMA, sm.CHECK_CURATION_BACKLOG]

SCENARIOS = [
    Scenario("no_new_data", [checkpoints(1, False)], [*HEAD, sm.NO_NEW_DATA]),
    Scenario(
        "missing_schema",
        [checkpoints(1, True, 10, 1), curation(False)],
        [*HEAD, *CURATE, sm.NOTIFY_MISSING_SCHEMA, sm.CHECK_CURATION_BACKLOG, sm.CURATION_ONLY_SUCCESS],
        metrics=["MissingSemanticSchema"],
    ),
    Scenario(
        "full_success",
        [checkpoints(1, True, 10, 1), curation(True)],
        [*HEAD, *CURATE, *SEMANTIC, sm.FULL_PIPELINE_SUCCESS],
    ),
    Scenario(
        "backlog_loop",
        [
            checkpoints(1, True, 900, 9),
            curation(True, 500, 6),
            checkpoints(2, True, 500, 6),
            curation(True, 0, 0),
        ],
        [*HEAD, *CURATE, *SEMANTIC, *HEAD, *CURATE, *SEMANTIC, sm.FULL_PIPELINE_SUCCESS],
    ),
    Scenario(
        "missing_schema_backlog_loop",  # no semantic model: the raw backlog still loops
        [
            checkpoints(1, True, 900, 9),
            curation(False, 500, 6),
            checkpoints(2, True, 500, 6),
            curation(False, 0, 0),
        ],
        [*MISSING_SCHEMA_ROUND, *MISSING_SCHEMA_ROUND, sm.CURATION_ONLY_SUCCESS],
        metrics=["MissingSemanticSchema", "MissingSemanticSchema"],
    ),
    Scenario(
        "semantic_catch_up",  # no raw, but semantic behind curated (e.g. after a failed audit)
        [checkpoints(1, False, semantic_behind=True), curation(True, committed=False)],
        [*HEAD, sm.RESOLVE_CURATED_SNAPSHOT, sm.CHECK_SCHEMA_EXISTS, *SEMANTIC, sm.FULL_PIPELINE_SUCCESS],
    ),
    Scenario(
        "job_failure",
        [checkpoints(1, True, 10, 1)],
        [*HEAD, sm.RUN_CURATION_JOB, "RunCurationJobFailed", sm.RECORD_FAILURE, sm.PIPELINE_FAILED],
        status="FAILED",
        curation_fails=True,
        metrics=["PipelineFailures"],
    ),
]
