"""One execution per topic at a time: GetAllCheckpoints defers to an older running execution
of the topic (moto's Step Functions; its executions stay RUNNING until stopped)."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from lean_ops_spark.catalog.metadata import SnapshotRecord, TableSnapshots
from lean_ops_spark.catalog.naming import TableRef
from lean_ops_spark.config.sources import open_config_source
from lean_ops_spark.orchestration.handlers import LambdaRuntime, get_all_checkpoints_event, load_profile
from lean_ops_spark.orchestration.overlap import older_running_execution

CONF = str(Path(__file__).resolve().parents[2] / "conf")


@pytest.fixture
def states(fake_aws_env: str) -> Iterator[Any]:
    with mock_aws():
        yield boto3.client("stepfunctions", region_name=fake_aws_env)


def machine(client: Any) -> str:
    definition = {"StartAt": "Wait", "States": {"Wait": {"Type": "Wait", "Seconds": 3600, "End": True}}}
    return client.create_state_machine(
        name="lean-ops-test-pipeline",
        definition=json.dumps(definition),
        roleArn="arn:aws:iam::123456789012:role/lean-ops-test-states",
    )["stateMachineArn"]


def start(client: Any, state_machine: str, name: str, topic: str) -> str:
    return client.start_execution(
        stateMachineArn=state_machine, name=name, input=json.dumps({"topic": topic})
    )["executionArn"]


def test_a_newer_execution_defers_to_an_older_running_one_of_its_topic_only(states: Any) -> None:
    sm = machine(states)
    first = start(states, sm, "a-first", "orders")
    clicks = start(states, sm, "b-clicks", "clickstream")
    second = start(states, sm, "c-second", "orders")
    assert states.describe_execution(executionArn=first)["status"] == "RUNNING"

    assert older_running_execution(states, sm, second, "orders") == first
    assert older_running_execution(states, sm, first, "orders") is None  # the older one goes on
    assert older_running_execution(states, sm, clicks, "clickstream") is None  # other topics do not count
    states.stop_execution(executionArn=first)
    assert older_running_execution(states, sm, second, "orders") is None  # once it ended, the next runs


class OneAppendPending:
    """Raw has one append snapshot that curated has not consumed (new data for every topic)."""

    def load(self, tables: Sequence[TableRef]) -> dict[str, TableSnapshots]:
        out = {}
        for table in tables:
            records: tuple[SnapshotRecord, ...] = ()
            if table.layer == "raw":
                records = (SnapshotRecord(1, None, {"added-records": "5"}, operation="append"),)
            out[table.identifier] = TableSnapshots(
                table.identifier, True, records[0].snapshot_id if records else None, records
            )
        return out


def test_get_all_checkpoints_answers_no_new_data_while_an_older_execution_runs(states: Any) -> None:
    source = open_config_source(CONF)
    runtime = LambdaRuntime(
        profile=load_profile(source, "glue"),
        config_source=source,
        snapshots=OneAppendPending(),
        topics=("orders", "clickstream"),
        executions=states,
    )
    sm = machine(states)
    first = start(states, sm, "a-first", "orders")
    second = start(states, sm, "c-second", "orders")

    def event(execution: str, **extra: Any) -> dict[str, Any]:
        return {
            "topic": "orders",
            "execution_name": execution.rsplit(":", 1)[1],
            "execution_arn": execution,
            "state_machine_arn": sm,
            "state": {"topic": "orders", **extra},
        }

    older = get_all_checkpoints_event(event(first), runtime)
    assert older["topics"][0]["has_new_raw_data"] is True and "deferred_to" not in older["topics"][0]
    newer = get_all_checkpoints_event(event(second), runtime)
    assert newer["topics"][0]["has_new_raw_data"] is False and newer["topics"][0]["deferred_to"] == first
    assert newer["has_new_raw_data"] is False and newer["run_id"] == "c-second:r1"
    # a looping execution (round 2 and on) never defers: it started first, or it would have stopped
    looping = get_all_checkpoints_event(event(second, checkpoints={"round": 1}), runtime)
    assert looping["topics"][0]["has_new_raw_data"] is True and looping["round"] == 2
    # the local runner's ids are not ARNs: no AWS call
    local = {**event(second), "execution_arn": "local:p:x", "state_machine_arn": "local:p"}
    assert get_all_checkpoints_event(local, runtime)["topics"][0]["has_new_raw_data"] is True
