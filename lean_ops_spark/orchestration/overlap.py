"""One execution per topic at a time: GetAllCheckpoints defers to an older running one.

The schedules start one execution per topic on a fixed rate, and an execution loops while
the topic has a backlog, so a long execution can still be running when the next one starts.
The jobs are safe when two runs of a topic overlap (curation's MERGEs are keyed, each
semantic run audits and publishes on a branch of its own), but the newer run duplicates
work and may fail on the older one's commits (semantic: its branch dropped, or main moved),
which pages someone for nothing. So in its first round GetAllCheckpoints asks Step
Functions for the running executions of the same state machine, and when one of them
started earlier for the same topic, it answers "no new data" for this one: the execution
ends at NoNewData and the older one keeps draining the backlog.
"""

from __future__ import annotations

import json
from typing import Any

__all__ = ["older_running_execution"]


def older_running_execution(
    client: Any, state_machine_arn: str, execution_arn: str, topic: str
) -> str | None:
    """The ARN of a running execution of ``state_machine_arn`` for ``topic`` that started
    before ``execution_arn`` (ties broken by ARN, so of two that start together exactly one
    defers), or None.

    ``client`` is a boto3 ``stepfunctions`` client (``states:ListExecutions`` on the state
    machine, ``states:DescribeExecution`` on its executions).
    """
    running: list[dict[str, Any]] = []
    for page in client.get_paginator("list_executions").paginate(
        stateMachineArn=state_machine_arn, statusFilter="RUNNING"
    ):
        running.extend(page.get("executions") or ())
    mine = next((e for e in running if e["executionArn"] == execution_arn), None)
    started = (mine or client.describe_execution(executionArn=execution_arn))["startDate"]
    for execution in sorted(running, key=lambda e: (e["startDate"], e["executionArn"])):
        if (execution["startDate"], execution["executionArn"]) >= (started, execution_arn):
            break
        described = client.describe_execution(executionArn=execution["executionArn"])
        try:
            other = json.loads(described.get("input") or "{}")
        except ValueError:
            continue
        if isinstance(other, dict) and other.get("topic") == topic:
            return str(execution["executionArn"])
    return None
