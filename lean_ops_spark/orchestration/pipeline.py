"""The local pipeline: the deployed state machine definition, walked with local bindings.

``run_pipeline`` renders the definition from an environment, binds its tasks to local
calls and runs one execution per topic through :class:`LocalExecutor`:

=======================  =====================================================
GetAllCheckpoints        :func:`handlers.get_all_checkpoints_event` (SQLite catalog)
ResolveCuratedSnapshot   :func:`handlers.curation_result`
RunCurationJob           the registered ``curation`` job runner
RunSemanticJob           the registered ``semantic`` job runner
putMetricData            the ``emit_metric`` callback (logged by the CLI)
=======================  =====================================================

A job runner is ``runner(spark, config, arguments) -> summary``: ``arguments`` are the Glue
arguments the state machine passes, without the ``--`` (``topic``, ``run_id`` and, for
semantic, ``curated_snapshot_id``); ``summary`` is a JSON-able mapping (ledger, snapshots,
drift, data quality) that ends up in the per-topic result. Runners are found by dotted
path in :data:`JOB_RUNNERS`; one that does not exist yet fails that task with
:class:`TaskNotAvailable`, which the execution reports as its cause.
"""

from __future__ import annotations

import importlib
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Protocol

from lean_ops_spark.config.environment import Environment, parse_environment
from lean_ops_spark.config.models import ProjectConfig
from lean_ops_spark.config.sources import open_config_source
from lean_ops_spark.orchestration import state_machine as sm
from lean_ops_spark.orchestration.handlers import LambdaRuntime, curation_result, get_all_checkpoints_event
from lean_ops_spark.orchestration.local_runner import (
    ExecutionEvent,
    ExecutionResult,
    LocalExecutor,
    TaskBinding,
    TaskNotAvailable,
    glue_job_binding,
    lambda_binding,
    metric_binding,
)
from lean_ops_spark.orchestration.snapshots import SnapshotSource

__all__ = [
    "JOB_RUNNERS",
    "JobRunner",
    "PipelineResult",
    "TopicRun",
    "local_environment",
    "resolve_job_runner",
    "run_pipeline",
]

#: Where ``lean-ops pipeline`` finds the job runners (``module:function``).
JOB_RUNNERS: dict[str, str] = {
    "curation": "lean_ops_spark.curation.job:run_curation_job",
    "semantic": "lean_ops_spark.semantic.job:run_semantic_job",
}


class JobRunner(Protocol):
    """The local twin of a Glue job: same arguments, returns a JSON-able summary.

    Raises a :class:`~lean_ops_spark.errors.LeanOpsError` when the run fails (the state
    machine then takes the failure path with the error in the cause).
    """

    def __call__(
        self, spark: Any, config: ProjectConfig, arguments: Mapping[str, str]
    ) -> Mapping[str, Any]: ...


def resolve_job_runner(role: str, registry: Mapping[str, str | JobRunner] | None = None) -> JobRunner:
    """The runner registered for ``role`` (a callable, or a ``module:function`` path).

    Raises:
        TaskNotAvailable: nothing is registered, or the path does not import (yet).
    """
    target = (registry if registry is not None else JOB_RUNNERS).get(role)
    if target is None:
        raise TaskNotAvailable(f"no {role} job runner is registered")
    if not isinstance(target, str):
        return target
    module_name, _, attribute = target.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name is not None and module_name.startswith(exc.name):
            raise TaskNotAvailable(f"the {role} job is not available yet: {target} does not exist") from exc
        raise
    runner = getattr(module, attribute, None)
    if runner is None:
        raise TaskNotAvailable(f"the {role} job is not available yet: {target} does not exist")
    return runner  # type: ignore[no-any-return]


def local_environment(config: ProjectConfig) -> Environment:
    """The environment ``lean-ops pipeline`` renders with when no ``--env`` is given.

    Only the thresholds matter locally (names and ARNs are placeholders the bindings ignore).
    """
    placeholder_role = "arn:aws:iam::000000000000:role/local"
    doc = {
        "account_id": "000000000000",
        "region": "us-east-1",
        "profile": config.profile.name,
        "artifacts": {"bucket": "local-artifacts"},
        "glue": {
            "role_arn": placeholder_role,
            "retry": {"max_attempts": 0},
            "jobs": {
                "curation": {"name": "local-curation"},
                "semantic": {"name": "local-semantic"},
                "maintenance": {"name": "local-maintenance"},
            },
        },
        "lambda": {
            "role_arn": placeholder_role,
            "functions": {"checkpoints": "local-checkpoints", "curation_result": "local-curation-result"},
        },
        "state_machine": {"name": "local-pipeline", "role_arn": placeholder_role},
        "schedules": {"role_arn": placeholder_role},
    }
    return parse_environment(doc, "(built-in local environment)", "local")


@dataclass
class TopicRun:
    """One topic's execution: the path taken and what its jobs reported."""

    topic: str
    execution: ExecutionResult
    jobs: list[dict[str, Any]] = field(default_factory=list)
    metrics: list[dict[str, Any]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.execution.status == "SUCCEEDED"

    def as_dict(self) -> dict[str, Any]:
        return {
            "topic": self.topic,
            "status": self.execution.status,
            "outcome": self.execution.final_state,
            "path": list(self.execution.path),
            "rounds": self.execution.path.count(sm.GET_ALL_CHECKPOINTS),
            "error": self.execution.error,
            "cause": self.execution.cause,
            "jobs": self.jobs,
            "metrics": self.metrics,
        }


@dataclass(frozen=True)
class PipelineResult:
    topics: tuple[TopicRun, ...]

    @property
    def ok(self) -> bool:
        return all(t.ok for t in self.topics)


def run_pipeline(
    config: ProjectConfig,
    snapshots: SnapshotSource,
    topics: Sequence[str],
    *,
    spark: Callable[[], Any],
    environment: Environment | None = None,
    runners: Mapping[str, str | JobRunner] | None = None,
    job_defaults: Mapping[str, str] | None = None,
    on_event: Callable[[str, ExecutionEvent], None] = lambda _topic, _event: None,
) -> PipelineResult:
    """Run the state machine once per topic with local bindings (sequentially).

    Args:
        config: the project config (local profile).
        snapshots: the JVM-free snapshot source on the same catalog.
        topics: the topics to run, in order.
        spark: returns the SparkSession; called only when a job runs.
        environment: thresholds and names to render with (default :func:`local_environment`).
        runners: overrides of :data:`JOB_RUNNERS` (tests, or a runner not yet registered).
        job_defaults: arguments every job gets under the state machine's own, like a Glue
            job's DefaultArguments (``home``); ``lean_ops_env`` is the environment's name
            (what ``lean-ops deploy`` sets), so an environment with a Snowflake section
            gets its refresh locally too.
        on_event: progress per state, with the topic.

    Raises:
        RuntimeSetupError: Spark cannot start locally (e.g. the jars were never fetched):
            no topic could run a job, so the run stops instead of failing each topic.
    """
    env = environment or local_environment(config)
    definition = sm.render_state_machine(env)
    # A round enters each state at most once, so this lets every one of max_rounds rounds
    # run (the executor's own guard is for definitions that never end).
    max_transitions = len(definition["States"]) * (env.max_rounds + 1)
    runtime = LambdaRuntime(
        profile=config.profile,
        config_source=open_config_source(config.root) if config.root else open_config_source("conf"),
        snapshots=snapshots,
        topics=tuple(sorted(config.topics)),
    )
    # execution names become run ids (<name>:r<round>), which ResolveCuratedSnapshot looks for
    # in curated: two pipelines started in the same second must not share them
    stamp = f"{datetime.now(timezone.utc).strftime('%Y%m%dT%H%M%S')}-{uuid.uuid4().hex[:6]}"
    defaults = {"lean_ops_env": env.name, **(job_defaults or {})}
    runs: list[TopicRun] = []
    for topic in topics:
        config.topic(topic)  # unknown topic: ConfigError before anything runs
        run = TopicRun(topic, ExecutionResult("", "RUNNING"))

        def job(role: str, run: TopicRun = run) -> TaskBinding:
            def call(arguments: Mapping[str, str]) -> None:
                runner = resolve_job_runner(role, runners)
                plain = {
                    **defaults,
                    **{k.removeprefix("--"): v for k, v in arguments.items()},
                }
                summary = runner(spark(), config, plain)
                run.jobs.append({"job": role, "arguments": plain, "summary": dict(summary)})

            return glue_job_binding(call)

        def metric(namespace: str, datum: Mapping[str, Any], run: TopicRun = run) -> None:
            run.metrics.append(
                {"namespace": namespace, "name": datum.get("MetricName"), "value": datum.get("Value")}
            )

        bindings: dict[str, TaskBinding] = {
            sm.GET_ALL_CHECKPOINTS: lambda_binding(
                lambda payload: get_all_checkpoints_event(payload, runtime)
            ),
            sm.RESOLVE_CURATED_SNAPSHOT: lambda_binding(lambda payload: curation_result(payload, runtime)),
            sm.RUN_CURATION_JOB: job("curation"),
            sm.RUN_SEMANTIC_JOB: job("semantic"),
            sm.task_resource(sm.PUT_METRIC_RESOURCE, env.partition): metric_binding(metric),
        }
        executor = LocalExecutor(
            definition,
            bindings,
            on_event=lambda event, topic=topic: on_event(topic, event),  # type: ignore[misc]
            state_machine_name=env.state_machine_name,
            max_transitions=max_transitions,
        )
        run.execution = executor.run({"topic": topic}, name=f"local-{stamp}-{topic}")
        runs.append(run)
    return PipelineResult(tuple(runs))
