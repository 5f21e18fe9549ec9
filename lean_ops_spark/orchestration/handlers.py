"""The two Lambda handlers' logic: event in, JSON payload out (no env reads here).

``orchestration/checkpoints_lambda.py`` is the deployed entry point: it reads the Lambda's
environment once into a :class:`LambdaRuntime` and calls these functions. The local
pipeline calls them directly with a runtime on the local home.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lean_ops_spark.catalog.naming import safe_name
from lean_ops_spark.config._reader import check_identifier
from lean_ops_spark.config.models import Profile
from lean_ops_spark.config.sources import ConfigSource, open_config_source, read_named_file
from lean_ops_spark.errors import CatalogError, CheckpointError, ConfigError
from lean_ops_spark.orchestration.checkpoints import (
    SemanticTableNaming,
    get_all_checkpoints,
    model_semantic_tables,
    resolve_curation_run,
)
from lean_ops_spark.orchestration.overlap import older_running_execution
from lean_ops_spark.orchestration.schema_check import SemanticSchemaCheck, check_semantic_schema
from lean_ops_spark.orchestration.snapshots import SnapshotSource, open_snapshot_source

__all__ = [
    "LambdaRuntime",
    "ThrottledError",
    "configured_topics",
    "curation_result",
    "get_all_checkpoints_event",
    "load_profile",
    "mint_run_id",
    "open_runtime",
]

logger = logging.getLogger("lean_ops_spark.orchestration")

#: AWS error codes of a throttled call (Glue, S3, Step Functions; botocore's own list).
THROTTLING_CODES = frozenset(
    {
        "Throttling",
        "ThrottlingException",
        "ThrottledException",
        "RequestThrottledException",
        "TooManyRequestsException",
        "ProvisionedThroughputExceededException",
        "TransactionInProgressException",
        "RequestLimitExceeded",
        "BandwidthLimitExceeded",
        "LimitExceededException",
        "RequestThrottled",
        "SlowDown",
        "PriorRequestNotComplete",
        "EC2ThrottledException",
    }
)


class ThrottledError(CatalogError):
    """A catalog, S3 or Step Functions call the handler made was throttled (after boto3's
    own retries). A Lambda error reaches Step Functions named after its exception class, so
    this name is what the state machine's Lambda tasks retry (``THROTTLE_RETRY``); any other
    error fails the execution at once."""


def _aws_error_code(exc: BaseException) -> str | None:
    response = getattr(exc, "response", None)  # botocore's ClientError, without importing it
    error = response.get("Error") if isinstance(response, Mapping) else None
    code = error.get("Code") if isinstance(error, Mapping) else None
    return code if isinstance(code, str) else None


@contextmanager
def _throttling_as_retryable() -> Iterator[None]:
    try:
        yield
    except Exception as exc:
        code = _aws_error_code(exc)
        if code in THROTTLING_CODES:
            raise ThrottledError(f"throttled ({code}): {exc}") from exc
        raise


def load_profile(source: ConfigSource, name: str) -> Profile:
    """Only ``profiles/<name>.yaml`` (the Lambda needs no topic contract, so it parses none)."""
    import yaml

    from lean_ops_spark.config.loader import parse_profile

    text, where = read_named_file(source, "profiles", name, "profile")
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{where}: not valid YAML: {exc}") from exc
    return parse_profile(data, where, name)


def configured_topics(source: ConfigSource) -> list[str]:
    """Topic names from the file names in ``topics/`` (contracts are not parsed)."""
    return sorted(Path(p).stem for p in source.list_yaml("topics"))


@dataclass(frozen=True)
class LambdaRuntime:
    """What a handler needs, built once per Lambda container."""

    profile: Profile
    config_source: ConfigSource
    snapshots: SnapshotSource
    topics: tuple[str, ...]
    #: a topic's semantic tables (default: its models' tables, read from ``config_source``)
    semantic_tables: SemanticTableNaming | None = None
    schema_check: SemanticSchemaCheck = check_semantic_schema
    #: a boto3 ``stepfunctions`` client for the overlap check (one is made when None)
    executions: Any = None


def open_runtime(
    conf: str,
    profile_name: str,
    *,
    home: str | None = None,
    source_kind: str = "metadata",
    clients: Mapping[str, Any] | None = None,
) -> LambdaRuntime:
    """Open the config root, the profile and the snapshot source.

    Args:
        conf: config root (folder or ``s3://bucket/prefix``).
        profile_name: ``glue`` on AWS, ``local`` on a laptop.
        home: the local profile's home folder (holds ``catalog.db``).
        source_kind: ``metadata`` (fast) or ``pyiceberg``.
        clients: boto3 clients by service name (tests pass moto ones; ``stepfunctions``
            is the one the overlap check asks, made on first use when absent).
    """
    config_source = open_config_source(conf, (clients or {}).get("s3"))
    profile = load_profile(config_source, profile_name)
    catalog_db = Path(home).expanduser().resolve() / "catalog.db" if home else None
    return LambdaRuntime(
        profile=profile,
        config_source=config_source,
        snapshots=open_snapshot_source(profile, catalog_db, kind=source_kind, clients=clients),
        topics=tuple(configured_topics(config_source)),
        executions=(clients or {}).get("stepfunctions"),
    )


def _requested_topics(event: Mapping[str, Any], runtime: LambdaRuntime) -> list[str]:
    if event.get("topic"):
        requested: Sequence[Any] = [event["topic"]]
    elif event.get("topics"):
        requested = event["topics"]
    else:
        return list(runtime.topics)
    topics = [check_identifier(t, "event topic") for t in requested]
    unknown = sorted(set(topics) - set(runtime.topics))
    if unknown:
        raise ConfigError(f"unknown topic(s) {', '.join(unknown)} (configured: {', '.join(runtime.topics)})")
    return topics


def get_all_checkpoints_event(event: Mapping[str, Any], runtime: LambdaRuntime) -> dict[str, Any]:
    """GetAllCheckpoints: ``{"topic": t}``, ``{"topics": [...]}`` or ``{}`` (every topic).

    The state machine sends ``{"topic", "execution_name", "execution_arn",
    "state_machine_arn", "state"}`` where ``state`` is the execution's state. The answer
    carries ``round``, one more than the round of the ``checkpoints`` the state brings back
    from the previous loop (the loop counter), and ``run_id``, ``<execution_name>:r<round>``:
    the id the curation run commits with (``lean-ops.run-id``) and ResolveCuratedSnapshot
    looks for (:func:`mint_run_id`: characters the jobs refuse are replaced). In round 1 of
    an execution on AWS, when an older execution of the state machine is running for the
    topic (:mod:`~lean_ops_spark.orchestration.overlap`), the topic's ``has_new_raw_data`` is
    false and ``deferred_to`` names that execution.

    Raises:
        CheckpointError: a requested topic's checkpoint cannot be read (all of them named),
            unless the event sets ``tolerate_errors``.
        ThrottledError: a catalog, S3 or Step Functions call was throttled (retried by the
            state machine).
    """
    topics = _requested_topics(event, runtime)
    with _throttling_as_retryable():
        report = get_all_checkpoints(
            runtime.snapshots,
            runtime.profile,
            topics,
            semantic_tables=runtime.semantic_tables or model_semantic_tables(runtime.config_source),
        )
    if report.errors and not event.get("tolerate_errors"):
        raise CheckpointError(
            "; ".join(f"{topic}: {error}" for topic, error in sorted(report.errors.items()))
        )
    given = event.get("state")
    state: Mapping[str, Any] = given if isinstance(given, Mapping) else event
    previous = state.get("checkpoints")
    round_number = int(previous.get("round", 0) if isinstance(previous, Mapping) else 0) + 1
    execution = event.get("execution_name")
    run_id = mint_run_id(execution, round_number) if isinstance(execution, str) and execution else None
    payload = report.as_payload()
    with _throttling_as_retryable():
        older = _older_execution(event, runtime, topics) if round_number == 1 else None
    if older is not None:
        logger.info("topic %s: execution %s is still running; this one ends at NoNewData", topics[0], older)
        payload["topics"][0].update(has_new_raw_data=False, semantic_behind=False, deferred_to=older)
        payload.update(has_new_raw_data=False, topics_with_new_raw_data=[])
    return {**payload, "round": round_number, "run_id": run_id}


#: What the jobs refuse in a run id besides the ``:r<round>`` suffix (``check_run_id``:
#: ``[A-Za-z0-9_.:-]``, at most 128); ``:`` is refused too, Step Functions names never hold it.
_RUN_ID_UNSAFE = r"[^A-Za-z0-9_.-]"


def mint_run_id(execution_name: str, round_number: int) -> str:
    """``<execution name>:r<round>``, the id the curation run commits with.

    Step Functions accepts execution names with characters the jobs refuse in a run id (``+``,
    ``=``, ``@``, ``!``, parentheses, non-ASCII letters: anything but white space, brackets,
    wildcards, ``"#%\\^|~`$&,;:/`` and control characters). Such a name is kept readable with
    every other character replaced by ``_`` and made unique again with a short hash of the
    name as given (``a+b`` and ``a=b`` must not share run ids).
    """
    return f"{safe_name(execution_name, _RUN_ID_UNSAFE, separator='-', digits=10)}:r{round_number}"


def _older_execution(event: Mapping[str, Any], runtime: LambdaRuntime, topics: list[str]) -> str | None:
    """An older running execution of this one's state machine for its topic (AWS only: the
    local runner's ids are not ARNs), or None."""
    state_machine, execution = event.get("state_machine_arn"), event.get("execution_arn")
    if len(topics) != 1 or not isinstance(state_machine, str) or not isinstance(execution, str):
        return None
    if not (state_machine.startswith("arn:") and execution.startswith("arn:")):
        return None
    client = runtime.executions if runtime.executions is not None else _stepfunctions_client()
    return older_running_execution(client, state_machine, execution, topics[0])


@functools.cache
def _stepfunctions_client() -> Any:
    """The Lambda's Step Functions client, made once per container."""
    import boto3

    return boto3.client("stepfunctions")


def curation_result(event: Mapping[str, Any], runtime: LambdaRuntime) -> dict[str, Any]:
    """ResolveCuratedSnapshot: ``{"topic": t, "run_id": r}`` → the curated snapshot token.

    Logs a warning when the topic has no usable semantic schema (the state machine then
    emits the MissingSemanticSchema metric and, unless the raw backlog calls for another
    round, ends with CurationOnlySuccess).

    Raises:
        ThrottledError: a catalog or S3 call was throttled (retried by the state machine).
    """
    topic = _requested_topics({"topic": event.get("topic")}, runtime)[0]
    run_id = event.get("run_id")
    if not isinstance(run_id, str) or not run_id:
        raise ConfigError("curation result: the event needs a non-empty run_id")
    with _throttling_as_retryable():
        result = resolve_curation_run(
            runtime.snapshots,
            runtime.profile,
            topic,
            run_id,
            runtime.config_source,
            schema_check=runtime.schema_check,
        )
    if not result.schema_exists:
        logger.warning("topic %s: semantic step skipped: %s", topic, result.schema_reason)
    if not result.run_committed:
        logger.warning(
            "topic %s: no curated snapshot carries run id %s; using the current one", topic, run_id
        )
    return result.as_payload()
