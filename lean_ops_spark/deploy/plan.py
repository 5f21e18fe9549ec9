"""Plan and apply a deployment: desired state from config, current state from AWS, the difference.

Each resource is compared on the fields we own and gets one action: ``create``,
``update`` (naming the fields that differ), ``unchanged``, ``delete`` (what this
environment deployed before and no longer wants: a schedule of a removed topic or of a
renamed state machine, the renamed state machine itself, a ``conf/`` file deleted from the
checkout, a wheel older than the previous one) or ``stale`` (reported, left alone: a renamed
state machine with running executions). The previous wheel stays, planned ``unchanged`` with
the reason: a job run that started before the jobs moved to the new wheel still installs it.
:func:`apply_plan` runs the ``create``/``update``/``delete`` actions in dependency order (S3
uploads, the Glue security configuration and VPC connection, Glue jobs, Lambdas, the state
machine, schedules, old state machines, IAM inline policies, S3 deletions), so a second
deploy of the same config changes nothing.

What belongs to an environment: the state machine carries the tag
``lean-ops:environment`` and every schedule the description ``lean-ops-spark environment
<name>`` (EventBridge Scheduler schedules have no tags), so a rename of
``state_machine.name`` finds the previous machine and its schedules.

Governance settings of the environment file are applied here too: ``encryption`` (the
jobs' S3FileIO writes SSE-KMS, a Glue security configuration encrypts logs and bookmarks),
``network`` (a Glue NETWORK connection on every job), per-job ``role_arn``, and with
``iam.attach_policies`` the generated least-privilege policy inline on each role.

The plan also carries ``warnings``, which change nothing: a curation or semantic job whose
``max_concurrent_runs`` is below the number of deployed topics (every topic's execution runs
both jobs, so the topics beyond it fail on ``Glue.ConcurrentRunsExceededException`` once
``glue.retry`` runs out). Without the setting the job gets one run per deployed topic.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lean_ops_spark.config.environment import Environment, GlueJobSettings, RetryPolicy
from lean_ops_spark.config.models import Profile
from lean_ops_spark.deploy.artifacts import (
    JOB_SCRIPTS,
    Artifact,
    conf_artifacts,
    job_script_artifacts,
    lambda_package,
)
from lean_ops_spark.errors import ConfigError, LeanOpsError
from lean_ops_spark.orchestration.state_machine import render_state_machine, task_resource
from lean_ops_spark.session import ICEBERG_EXTENSIONS, catalog_conf

__all__ = [
    "GREAT_EXPECTATIONS_REQUIREMENT",
    "AwsClients",
    "DeployError",
    "DeployPlan",
    "DeploymentInputs",
    "PlannedChange",
    "apply_plan",
    "concurrency_warnings",
    "glue_default_arguments",
    "glue_security_configuration",
    "job_max_concurrent_runs",
    "plan_deployment",
    "s3fileio_encryption_conf",
]

SHA_METADATA_KEY = "lean-ops-sha256"
LAMBDA_HANDLERS = {
    "checkpoints": "checkpoints_lambda.handler",
    "curation_result": "checkpoints_lambda.curation_result_handler",
}
#: EventBridge Scheduler's universal target for Glue StartJobRun (``aws`` partition; see
#: :func:`_glue_start_job_target`).
GLUE_START_JOB_TARGET = "arn:aws:scheduler:::aws-sdk:glue:startJobRun"
#: Great Expectations for the semantic job's data-quality suites (the ``dq`` extra), pinned to
#: the version the extra resolves to in the tested environment. Glue splits
#: ``--additional-python-modules`` on commas, so a range like ``>=1.3,<2`` cannot be written.
GREAT_EXPECTATIONS_REQUIREMENT = "great-expectations==1.24.1"
#: What each job pip-installs besides our wheel. Only the semantic job runs suites; the others
#: stay small because Glue installs these at every job start.
JOB_PYTHON_MODULES: Mapping[str, tuple[str, ...]] = {
    "curation": (),
    "semantic": (GREAT_EXPECTATIONS_REQUIREMENT,),
    "maintenance": (),
}
#: Job fields deploy manages only when configured: compared even when absent, so removing
#: ``encryption:`` or ``network:`` from the environment detaches the jobs.
OPTIONAL_JOB_FIELDS = ("SecurityConfiguration", "Connections")
#: State machine tag naming the environment that deployed it.
ENVIRONMENT_TAG = "lean-ops:environment"
#: What this deployment owns under the environment's prefix: a key there that is not in the
#: deployment is deleted (``jobs/`` holds fixed names, so it cannot go stale).
OWNED_PREFIXES = ("conf", "wheels")
#: The jobs every topic's execution runs (RunCurationJob, RunSemanticJob). A topic runs one
#: execution at a time (GetAllCheckpoints defers an overlapping one), so the deployed topics
#: are as many runs as these jobs can be asked for at once.
PER_TOPIC_JOBS = ("curation", "semantic")


class DeployError(LeanOpsError):
    """An AWS call of the deployment failed (the resource and the call are named)."""


@dataclass(frozen=True)
class AwsClients:
    """The boto3 clients a deployment uses (tests pass moto-backed ones)."""

    s3: Any
    glue: Any
    lambda_: Any
    stepfunctions: Any
    scheduler: Any
    #: Only used with ``iam.attach_policies``.
    iam: Any = None

    @classmethod
    def for_region(cls, region: str) -> AwsClients:
        import boto3

        def client(name: str) -> Any:
            return boto3.client(name, region_name=region)

        return cls(
            client("s3"),
            client("glue"),
            client("lambda"),
            client("stepfunctions"),
            client("scheduler"),
            client("iam"),
        )


@dataclass(frozen=True)
class DeploymentInputs:
    """Everything a plan is computed from."""

    environment: Environment
    profile: Profile
    topics: tuple[str, ...]
    project_root: Path
    conf_root: Path
    wheel: Path


@dataclass(frozen=True)
class PlannedChange:
    """One resource's action; ``run`` performs it (absent for ``unchanged``)."""

    kind: str
    name: str
    action: str
    changed: tuple[str, ...] = ()
    run: Callable[[], None] | None = field(default=None, compare=False, repr=False)

    def as_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "name": self.name, "action": self.action, "changed": list(self.changed)}


@dataclass(frozen=True)
class DeployPlan:
    environment: str
    changes: tuple[PlannedChange, ...]
    #: What the deployment will run into although nothing is wrong with the resources
    #: (:func:`concurrency_warnings`); applying the plan does not depend on them.
    warnings: tuple[str, ...] = ()

    @property
    def pending(self) -> tuple[PlannedChange, ...]:
        """The changes :func:`apply_plan` runs (not ``unchanged``, not the reported ``stale``)."""
        return tuple(c for c in self.changes if c.action not in ("unchanged", "stale"))

    def counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for change in self.changes:
            out[change.action] = out.get(change.action, 0) + 1
        return out


def _compare(
    kind: str,
    name: str,
    current: Mapping[str, Any] | None,
    desired: Mapping[str, Any],
    *,
    create: Callable[[], None],
    update: Callable[[], None],
) -> PlannedChange:
    if current is None:
        return PlannedChange(kind, name, "create", tuple(sorted(desired)), create)
    changed = tuple(sorted(k for k, v in desired.items() if current.get(k) != v))
    if not changed:
        return PlannedChange(kind, name, "unchanged")
    return PlannedChange(kind, name, "update", changed, update)


def _guard(what: str, call: Callable[[], Any]) -> Callable[[], None]:
    def run() -> None:
        try:
            call()
        except Exception as exc:
            raise DeployError(f"{what}: {type(exc).__name__}: {exc}") from exc

    return run


# --------------------------------------------------------------------------- S3 objects


def _plan_object(clients: AwsClients, env: Environment, artifact: Artifact) -> PlannedChange:
    key = env.s3_key(artifact.key)
    try:
        head = clients.s3.head_object(Bucket=env.bucket, Key=key)
        current: dict[str, Any] | None = {"sha256": (head.get("Metadata") or {}).get(SHA_METADATA_KEY)}
    except clients.s3.exceptions.ClientError as exc:
        if exc.response.get("Error", {}).get("Code") not in ("404", "NoSuchKey", "NotFound"):
            raise
        current = None
    put = _guard(
        f"s3://{env.bucket}/{key}",
        lambda: clients.s3.put_object(
            Bucket=env.bucket, Key=key, Body=artifact.body, Metadata={SHA_METADATA_KEY: artifact.sha256}
        ),
    )
    return _compare(
        "s3_object", f"s3://{env.bucket}/{key}", current, {"sha256": artifact.sha256}, create=put, update=put
    )


def _wheels_installed_by_jobs(clients: AwsClients, env: Environment) -> dict[str, list[str]]:
    """The keys of our wheels that the deployed Glue jobs install now → those jobs' names."""
    prefix = env.s3_uri("wheels") + "/"
    installed: dict[str, list[str]] = {}
    for job in (env.curation_job, env.semantic_job, env.maintenance_job):
        try:
            arguments = clients.glue.get_job(JobName=job.name)["Job"].get("DefaultArguments") or {}
        except clients.glue.exceptions.EntityNotFoundException:
            continue
        for entry in arguments.get("--additional-python-modules", "").split(","):
            if entry.strip().startswith(prefix):
                key = entry.strip().removeprefix(f"s3://{env.bucket}/")
                installed.setdefault(key, []).append(job.name)
    return installed


def _kept_wheels(
    clients: AwsClients, env: Environment, previous: Mapping[str, Any]
) -> dict[str, tuple[str, ...]]:
    """Which of the earlier deployments' wheels stay, and why (key → reasons).

    ``previous`` maps the other keys under ``wheels/`` to their LastModified. A Glue job run
    that started just before the deploy updated the job installs the wheel of the definition
    it started with, by its S3 path, while it starts up: that wheel has to outlive the deploy.
    It is the newest of the others, or the one the deployed jobs install now, which differs
    after a deploy that uploaded its wheel and failed before it updated the jobs, or after a
    rollback to a wheel that was already there; both are kept. A later deploy of another
    wheel deletes them.
    """
    if not previous:
        return {}
    # ListObjectsV2 gives LastModified to the second: the key breaks a tie
    newest = max(previous, key=lambda key: (previous[key], key))
    reasons: dict[str, list[str]] = {newest: ["the newest previous wheel"]}
    for key, jobs in _wheels_installed_by_jobs(clients, env).items():
        if key in previous:
            reasons.setdefault(key, []).append(f"installed by {' and '.join(jobs)} now")
    kept = "kept: job runs started before this deploy may still install it"
    return {key: (kept, *why) for key, why in reasons.items()}


def _plan_stale_objects(clients: AwsClients, env: Environment, desired_keys: set[str]) -> list[PlannedChange]:
    """A delete for every key under ``conf/`` and ``wheels/`` that this deployment does not ship,
    except the previous wheel (:func:`_kept_wheels`), planned ``unchanged`` with the reason.

    A ``conf/`` file deleted from the checkout would otherwise stay live for the Lambdas and
    jobs (they read the deployed ``conf/``); an older wheel is no job's any more once the
    jobs are updated, which is why these run last.
    """
    changes = []
    for folder in OWNED_PREFIXES:
        prefix = env.s3_key(folder) + "/"
        pages = clients.s3.get_paginator("list_objects_v2").paginate(Bucket=env.bucket, Prefix=prefix)
        listed = {o["Key"]: o["LastModified"] for page in pages for o in page.get("Contents", [])}
        stale = {key: modified for key, modified in listed.items() if key not in desired_keys}
        kept = _kept_wheels(clients, env, stale) if folder == "wheels" else {}
        reason = "not in the config folder" if folder == "conf" else "older than the previous wheel"
        for key in sorted(stale):
            name = f"s3://{env.bucket}/{key}"
            if key in kept:
                changes.append(PlannedChange("s3_object", name, "unchanged", kept[key]))
                continue

            def delete(key: str = key) -> None:
                _guard(
                    f"s3://{env.bucket}/{key}", lambda: clients.s3.delete_object(Bucket=env.bucket, Key=key)
                )()

            changes.append(PlannedChange("s3_object", name, "delete", (reason,), delete))
    return changes


# --------------------------------------------------------------------------- Glue jobs


def s3fileio_encryption_conf(env: Environment, profile: Profile) -> dict[str, str]:
    """Iceberg S3FileIO SSE-KMS catalog properties (``s3.sse.type``/``s3.sse.key``), or none.

    Property names as in ``org.apache.iceberg.aws.s3.S3FileIOProperties`` (``SSE_TYPE``,
    ``SSE_KEY``; ``kms`` = SSE-KMS, key = KMS key id or ARN).
    """
    if env.encryption is None:
        return {}
    prefix = f"spark.sql.catalog.{profile.catalog}"
    return {f"{prefix}.s3.sse.type": "kms", f"{prefix}.s3.sse.key": env.encryption.kms_key_arn}


def glue_security_configuration(env: Environment) -> dict[str, Any]:
    """The ``EncryptionConfiguration`` of the jobs' Glue security configuration (SSE-KMS throughout)."""
    assert env.encryption is not None
    key = env.encryption.kms_key_arn
    return {
        "S3Encryption": [{"S3EncryptionMode": "SSE-KMS", "KmsKeyArn": key}],
        "CloudWatchEncryption": {"CloudWatchEncryptionMode": "SSE-KMS", "KmsKeyArn": key},
        "JobBookmarksEncryption": {"JobBookmarksEncryptionMode": "CSE-KMS", "KmsKeyArn": key},
    }


def glue_default_arguments(
    env: Environment, profile: Profile, wheel_uri: str, job: GlueJobSettings
) -> dict[str, str]:
    """A Glue job's DefaultArguments: Iceberg on, the catalog ``--conf``, our wheel, our config.

    ``--conf`` is Glue's Spark-conf argument, so the config root goes in
    ``--lean_ops_conf`` (the profile in ``--lean_ops_profile``, the environment in
    ``--lean_ops_env``: the semantic job's Snowflake refresh reads its governance file).
    The semantic job also installs Great Expectations (:data:`JOB_PYTHON_MODULES`).

    The job's own ``arguments`` are added: a ``--conf`` is chained after ours (Glue takes one
    ``--conf`` key, more settings go inside its value as `` --conf k=v``), an
    ``--additional-python-modules`` list is appended to ours (a package we pin, such as
    ``great-expectations``, then takes the job's version), anything else is passed as given.

    Raises:
        ConfigError: the job's ``--conf`` sets a key we set, or its arguments replace one
            that deploy owns (``--datalake-formats``, ``--job-language``, ``--lean_ops_*``).
    """
    role = _job_role(env, job)
    where = f"{env.source}: glue.jobs.{role}.arguments"
    catalog = {k: v for k, v in catalog_conf(profile).items() if not k.endswith(".client.region")}
    catalog.update(s3fileio_encryption_conf(env, profile))
    spark_conf = {"spark.sql.extensions": ICEBERG_EXTENSIONS, **catalog}
    user = dict(job.arguments)
    extra_conf = _user_spark_conf(user.pop("--conf", ""), set(spark_conf), f"{where}.--conf")
    modules = _python_modules(
        wheel_uri, JOB_PYTHON_MODULES[role], user.pop("--additional-python-modules", "")
    )
    ours = {
        "--datalake-formats": "iceberg",
        "--conf": " --conf ".join([*(f"{k}={v}" for k, v in spark_conf.items()), *extra_conf]),
        "--additional-python-modules": modules,
        "--job-language": "python",
        "--lean_ops_conf": env.conf_uri,
        "--lean_ops_profile": env.profile,
        "--lean_ops_env": env.name,
    }
    for key in user:
        if key in ours:  # parse_environment refuses these already; an Environment built in code may not
            raise ConfigError(f"{where}.{key}: set by lean-ops deploy and not overridable")
    return {**ours, **user}


def _job_role(env: Environment, job: GlueJobSettings) -> str:
    for role, candidate in (
        ("curation", env.curation_job),
        ("semantic", env.semantic_job),
        ("maintenance", env.maintenance_job),
    ):
        if job == candidate:
            return role
    raise ValueError(f"{job.name} is not one of the environment's Glue jobs")


def _user_spark_conf(value: str, ours: set[str], where: str) -> list[str]:
    """``k=v`` settings of a job's own ``--conf`` (``a=1 --conf b=2``, a leading ``--conf`` allowed)."""
    settings = [part for part in re.split(r"(?:^|\s+)--conf\s+", value.strip()) if part.strip()]
    for setting in settings:
        key = setting.split("=", 1)[0].strip()
        if "=" not in setting or not key:
            raise ConfigError(f"{where}: {setting!r} is not key=value")
        if key in ours:
            raise ConfigError(
                f"{where}: {key} is set by lean-ops deploy (the Iceberg catalog of the profile); "
                "change the profile or the environment instead"
            )
    return [setting.strip() for setting in settings]


def _requirement_name(entry: str) -> str | None:
    """The normalised distribution name of a pip requirement or wheel file; None for another path."""
    if entry.endswith(".whl"):  # <name>-<version>-<tags>.whl
        name = entry.rsplit("/", 1)[-1].split("-", 1)[0]
    elif "/" in entry:
        return None
    else:
        name = re.split(r"[\s\[<>=!~;@]", entry, maxsplit=1)[0]
    return re.sub(r"[-_.]+", "-", name).lower()


def _python_modules(wheel_uri: str, ours: Sequence[str], user: str) -> str:
    entries = [entry.strip() for entry in user.split(",") if entry.strip()]
    replaced = {_requirement_name(entry) for entry in entries} - {None}
    kept = [module for module in ours if _requirement_name(module) not in replaced]
    return ",".join([wheel_uri, *kept, *entries])


def job_max_concurrent_runs(role: str, job: GlueJobSettings, topic_count: int) -> int:
    """A job's Glue MaxConcurrentRuns: its ``max_concurrent_runs``, else one run per deployed
    topic for the jobs every topic's execution runs (:data:`PER_TOPIC_JOBS`; at least 1), else 1.
    """
    if job.max_concurrent_runs is not None:
        return job.max_concurrent_runs
    return max(1, topic_count) if role in PER_TOPIC_JOBS else 1


def _retry_wait(retry: RetryPolicy) -> str:
    """How long Step Functions retries a ConcurrentRunsExceeded start, as ``about N minutes``."""
    seconds = sum(
        retry.interval_seconds * retry.backoff_rate**attempt for attempt in range(retry.max_attempts)
    )
    if seconds < 90:
        return f"about {round(seconds)} second{'s' * (round(seconds) != 1)}"
    return f"about {round(seconds / 60)} minutes"


def concurrency_warnings(env: Environment, topics: Sequence[str]) -> tuple[str, ...]:
    """One warning per curation or semantic job whose ``max_concurrent_runs`` is below the topic count.

    Every deployed topic has its own execution (one at a time per topic) and each runs both
    jobs, so with more topics than runs the ones beyond get Glue.ConcurrentRunsExceededException
    at StartJobRun; the state machine retries that per ``glue.retry`` and then fails the execution.
    """
    warnings = []
    for role, job in (("curation", env.curation_job), ("semantic", env.semantic_job)):
        runs = job_max_concurrent_runs(role, job, len(topics))
        if runs >= len(topics):
            continue
        if env.glue_retry.max_attempts > 0:
            outcome = (
                f"wait through Glue.ConcurrentRunsExceededException retries for {_retry_wait(env.glue_retry)} "
                "(glue.retry) and then fail their execution, unless a run of the job ended meanwhile"
            )
        else:
            outcome = (
                "fail their execution on Glue.ConcurrentRunsExceededException (glue.retry.max_attempts is 0)"
            )
        warnings.append(
            f"{env.source}: glue job {job.name} has max_concurrent_runs {runs} but {len(topics)} topics are "
            f"deployed, each with its own execution running it: when more than {runs} need it at once, "
            f"the topics beyond {runs} {outcome}. Raise glue.jobs.{role}.max_concurrent_runs to at least "
            f"{len(topics)} (or remove it: the default is one run per deployed topic)."
        )
    return tuple(warnings)


def _glue_job_spec(
    env: Environment, profile: Profile, role: str, job: GlueJobSettings, wheel_uri: str, *, topic_count: int
) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "Role": env.job_role_arn(job),
        "Command": {
            "Name": "glueetl",
            "ScriptLocation": env.s3_uri("jobs", JOB_SCRIPTS[role]),
            "PythonVersion": "3",
        },
        "GlueVersion": env.glue_version,
        "DefaultArguments": glue_default_arguments(env, profile, wheel_uri, job),
        "WorkerType": job.worker_type,
        "NumberOfWorkers": job.number_of_workers,
        "Timeout": job.timeout_minutes,
        "ExecutionProperty": {"MaxConcurrentRuns": job_max_concurrent_runs(role, job, topic_count)},
        "MaxRetries": 0,
    }
    # Only when configured (see OPTIONAL_JOB_FIELDS for how their removal is noticed).
    if env.encryption is not None:
        spec["SecurityConfiguration"] = env.encryption.security_configuration
    if env.network is not None:
        spec["Connections"] = {"Connections": [env.network.connection_name]}
    return spec


def _plan_glue_job(clients: AwsClients, name: str, spec: dict[str, Any]) -> PlannedChange:
    # UpdateJob replaces the whole definition, so an optional field left out of the spec is
    # removed; comparing it as None (with an empty connection list as none) notices it.
    desired = {**dict.fromkeys(OPTIONAL_JOB_FIELDS), **spec}
    try:
        job = clients.glue.get_job(JobName=name)["Job"]
        got = {k: job.get(k) for k in desired}
        for key in OPTIONAL_JOB_FIELDS:  # an empty value or an empty connection list is none
            value = got[key]
            if not value or (key == "Connections" and not value.get("Connections")):
                got[key] = None
        current: dict[str, Any] | None = got
    except clients.glue.exceptions.EntityNotFoundException:
        current = None
    create = _guard(f"glue job {name}", lambda: clients.glue.create_job(Name=name, **spec))
    update = _guard(f"glue job {name}", lambda: clients.glue.update_job(JobName=name, JobUpdate=spec))
    change = _compare("glue_job", name, current, desired, create=create, update=update)
    if change.action == "create":  # name the fields that are created, not the absent ones
        return PlannedChange(change.kind, name, "create", tuple(sorted(spec)), change.run)
    return change


def _plan_security_configuration(clients: AwsClients, env: Environment) -> PlannedChange:
    """Glue security configurations cannot be updated: a changed one is deleted and re-created."""
    assert env.encryption is not None
    name = env.encryption.security_configuration
    desired = {"EncryptionConfiguration": glue_security_configuration(env)}
    try:
        got = clients.glue.get_security_configuration(Name=name)["SecurityConfiguration"]
        current: dict[str, Any] | None = {"EncryptionConfiguration": got.get("EncryptionConfiguration")}
    except clients.glue.exceptions.EntityNotFoundException:
        current = None

    def create() -> None:
        clients.glue.create_security_configuration(Name=name, **desired)

    def replace() -> None:
        clients.glue.delete_security_configuration(Name=name)
        create()

    return _compare(
        "glue_security_configuration",
        name,
        current,
        desired,
        create=_guard(f"glue security configuration {name}", create),
        update=_guard(f"glue security configuration {name}", replace),
    )


def _plan_network_connection(clients: AwsClients, env: Environment) -> PlannedChange:
    assert env.network is not None
    net = env.network
    desired = {
        "PhysicalConnectionRequirements": {
            "SubnetId": net.subnet_id,
            "SecurityGroupIdList": list(net.security_group_ids),
            "AvailabilityZone": net.availability_zone,
        },
    }
    connection_input = {
        "Name": net.connection_name,
        "ConnectionType": "NETWORK",
        "ConnectionProperties": {},
        **desired,
    }
    try:
        got = clients.glue.get_connection(Name=net.connection_name)["Connection"]
        requirements = got.get("PhysicalConnectionRequirements") or {}
        current: dict[str, Any] | None = {
            "PhysicalConnectionRequirements": {
                k: requirements.get(k) for k in ("SubnetId", "SecurityGroupIdList", "AvailabilityZone")
            },
        }
    except clients.glue.exceptions.EntityNotFoundException:
        current = None
        got = {}
    if got.get("ConnectionType") not in (None, "NETWORK"):  # (moto 5.2.5 does not return the type)
        raise DeployError(
            f"glue connection {net.connection_name} exists as {got['ConnectionType']}, not NETWORK: "
            "choose another network.connection name"
        )
    what = f"glue connection {net.connection_name}"
    return _compare(
        "glue_connection",
        net.connection_name,
        current,
        desired,
        create=_guard(what, lambda: clients.glue.create_connection(ConnectionInput=connection_input)),
        update=_guard(
            what,
            lambda: clients.glue.update_connection(
                Name=net.connection_name, ConnectionInput=connection_input
            ),
        ),
    )


# --------------------------------------------------------------------------- IAM (opt-in)


def _plan_role_policies(clients: AwsClients, inputs: DeploymentInputs) -> list[PlannedChange]:
    """The generated least-privilege policy inline on each role (``iam.attach_policies``)."""
    # governance imports deploy.artifacts: imported here, not at the top, to keep imports acyclic
    from lean_ops_spark.config.sources import LocalConfigSource
    from lean_ops_spark.governance.config import load_governance
    from lean_ops_spark.governance.iam import INLINE_POLICY_LIMIT, role_policies
    from lean_ops_spark.governance.layers import GovernedScope
    from lean_ops_spark.governance.semantic_tables import discover_semantic_tables

    env = inputs.environment
    source = LocalConfigSource(inputs.conf_root)
    governance = load_governance(inputs.conf_root, env.name, source=source, required=False)
    explicit = governance.semantic_tables if governance else ()
    scope = GovernedScope(inputs.profile, inputs.topics, discover_semantic_tables(source, explicit))
    changes = []
    for policy in role_policies(env, scope, governance):
        if not policy.fits_inline:
            raise ConfigError(
                f"{env.source}: the generated policy of {policy.role_arn} ({', '.join(policy.roles)}) has "
                f"{policy.size} characters, over IAM's {INLINE_POLICY_LIMIT} for a role's inline policies: "
                "give each job its own glue.jobs.<job>.role_arn or set iam.resource_scope: database"
            )
        document = policy.document()
        try:
            got = clients.iam.get_role_policy(RoleName=policy.role_name, PolicyName=env.iam.policy_name)
            current: dict[str, Any] | None = {"PolicyDocument": _policy_document(got["PolicyDocument"])}
        except clients.iam.exceptions.NoSuchEntityException:
            current = None

        def put(role: str = policy.role_name, text: str = policy.text()) -> None:
            _guard(
                f"iam role {role} policy {env.iam.policy_name}",
                lambda: clients.iam.put_role_policy(
                    RoleName=role, PolicyName=env.iam.policy_name, PolicyDocument=text
                ),
            )()

        changes.append(
            _compare(
                "iam_role_policy",
                f"{policy.role_name}/{env.iam.policy_name}",
                current,
                {"PolicyDocument": document},
                create=put,
                update=put,
            )
        )
    return changes


def _policy_document(value: Any) -> Any:
    """IAM returns the document URL-encoded (real IAM) or parsed (boto3 decodes it)."""
    if isinstance(value, str):
        from urllib.parse import unquote

        return json.loads(unquote(value))
    return value


# --------------------------------------------------------------------------- Lambda


def _plan_lambda(
    clients: AwsClients, env: Environment, name: str, handler: str, package: tuple[bytes, str]
) -> PlannedChange:
    code, code_sha = package
    config = {
        "Runtime": env.lambda_runtime,
        "Role": env.lambda_role_arn,
        "Handler": handler,
        "Timeout": env.lambda_timeout_seconds,
        "MemorySize": env.lambda_memory_mb,
        "Environment": {"Variables": {"LEAN_OPS_CONF": env.conf_uri, "LEAN_OPS_PROFILE": env.profile}},
        "Layers": list(env.lambda_layers),
    }
    desired = {**config, "CodeSha256": code_sha}
    try:
        current_config = clients.lambda_.get_function(FunctionName=name)["Configuration"]
        current: dict[str, Any] | None = {
            **{k: current_config.get(k) for k in config if k not in ("Layers", "Environment")},
            "Environment": {"Variables": (current_config.get("Environment") or {}).get("Variables", {})},
            "Layers": [layer["Arn"] for layer in current_config.get("Layers", [])],
            "CodeSha256": current_config.get("CodeSha256"),
        }
    except clients.lambda_.exceptions.ResourceNotFoundException:
        current = None
    create = _guard(
        f"lambda {name}",
        lambda: clients.lambda_.create_function(
            FunctionName=name, Code={"ZipFile": code}, Publish=False, **config
        ),
    )

    def update() -> None:
        assert current is not None
        if current["CodeSha256"] != code_sha:
            _guard(
                f"lambda {name} code",
                lambda: clients.lambda_.update_function_code(FunctionName=name, ZipFile=code),
            )()
            # a configuration update while the code update is in progress fails with
            # ResourceConflictException: wait for LastUpdateStatus Successful
            _guard(
                f"lambda {name} code (waiting for the update)",
                lambda: clients.lambda_.get_waiter("function_updated").wait(FunctionName=name),
            )()
        if any(current.get(k) != v for k, v in config.items()):
            _guard(
                f"lambda {name} configuration",
                lambda: clients.lambda_.update_function_configuration(FunctionName=name, **config),
            )()

    return _compare("lambda_function", name, current, desired, create=create, update=update)


# --------------------------------------------------------------------------- state machine


def _plan_state_machine(clients: AwsClients, env: Environment) -> PlannedChange:
    definition = render_state_machine(env)
    text = json.dumps(definition, sort_keys=True)
    tags = {ENVIRONMENT_TAG: env.name}
    desired = {"definition": definition, "roleArn": env.state_machine_role_arn, "tags": tags}
    arn = env.state_machine_arn
    try:
        described = clients.stepfunctions.describe_state_machine(stateMachineArn=arn)
        listed = clients.stepfunctions.list_tags_for_resource(resourceArn=arn).get("tags", [])
        current: dict[str, Any] | None = {
            "definition": json.loads(described["definition"]),
            "roleArn": described["roleArn"],
            "tags": {t["key"]: t["value"] for t in listed if t["key"] in tags},
        }
    except clients.stepfunctions.exceptions.StateMachineDoesNotExist:
        current = None
    what = f"state machine {env.state_machine_name}"
    create = _guard(
        what,
        lambda: clients.stepfunctions.create_state_machine(
            name=env.state_machine_name,
            definition=text,
            roleArn=env.state_machine_role_arn,
            type="STANDARD",
            tags=[{"key": k, "value": v} for k, v in tags.items()],
        ),
    )

    def update() -> None:
        assert current is not None
        if current["definition"] != definition or current["roleArn"] != env.state_machine_role_arn:
            clients.stepfunctions.update_state_machine(
                stateMachineArn=arn, definition=text, roleArn=env.state_machine_role_arn
            )
        if current["tags"] != tags:  # deployed before the tag existed
            clients.stepfunctions.tag_resource(
                resourceArn=arn, tags=[{"key": k, "value": v} for k, v in tags.items()]
            )

    return _compare(
        "state_machine", env.state_machine_name, current, desired, create=create, update=_guard(what, update)
    )


def _plan_previous_state_machines(clients: AwsClients, env: Environment) -> list[PlannedChange]:
    """This environment's state machines under another name (``state_machine.name`` was renamed).

    Found by their :data:`ENVIRONMENT_TAG`. One without running executions is deleted
    (after its schedules, which come first in the plan); deleting one with running
    executions would stop them at their next transition, so it is reported as ``stale``
    and the next deploy deletes it.
    """
    changes = []
    pages = clients.stepfunctions.get_paginator("list_state_machines").paginate()
    for machine in (m for page in pages for m in page.get("stateMachines", [])):
        arn, name = machine["stateMachineArn"], machine["name"]
        if arn == env.state_machine_arn:
            continue
        tags = clients.stepfunctions.list_tags_for_resource(resourceArn=arn).get("tags", [])
        if {"key": ENVIRONMENT_TAG, "value": env.name} not in tags:
            continue
        reason = f"state_machine.name is now {env.state_machine_name}"
        running = clients.stepfunctions.list_executions(
            stateMachineArn=arn, statusFilter="RUNNING", maxResults=1
        ).get("executions")
        if running:
            changes.append(
                PlannedChange(
                    "state_machine",
                    name,
                    "stale",
                    (reason, "has running executions: deploy again once they finish to delete it"),
                )
            )
            continue

        def delete(arn: str = arn, name: str = name) -> None:
            _guard(
                f"state machine {name}",
                lambda: clients.stepfunctions.delete_state_machine(stateMachineArn=arn),
            )()

        changes.append(PlannedChange("state_machine", name, "delete", (reason,), delete))
    return changes


# --------------------------------------------------------------------------- schedules


def schedule_description(env: Environment) -> str:
    """What marks a schedule as this environment's (EventBridge Scheduler has no tags on schedules)."""
    return f"lean-ops-spark environment {env.name}"


def _glue_start_job_target(env: Environment) -> str:
    return task_resource(GLUE_START_JOB_TARGET, env.partition)


def _schedules(env: Environment, topics: Sequence[str]) -> dict[str, dict[str, Any]]:
    """Desired EventBridge Scheduler schedules: maintenance + one pipeline schedule per topic."""
    base = env.state_machine_name
    description = schedule_description(env)
    out = {
        f"{base}-maintenance": {
            "Description": description,
            "ScheduleExpression": env.maintenance_schedule,
            "Target": {
                "Arn": _glue_start_job_target(env),
                "RoleArn": env.scheduler_role_arn,
                "Input": json.dumps({"JobName": env.maintenance_job.name}, sort_keys=True),
            },
        }
    }
    if env.pipeline_schedule:
        for topic in topics:
            out[f"{base}-topic-{topic}"] = {
                "Description": description,
                "ScheduleExpression": env.pipeline_schedule,
                "Target": {
                    "Arn": env.state_machine_arn,
                    "RoleArn": env.scheduler_role_arn,
                    "Input": json.dumps({"topic": topic}, sort_keys=True),
                },
            }
    for name in out:
        if len(name) > 64:
            raise ConfigError(
                f"{env.source}: schedule name {name!r} is longer than 64 characters: shorten state_machine.name"
            )
    return out


def _listed_schedules(clients: AwsClients) -> Iterator[dict[str, Any]]:
    """Every schedule of the default group (the one deploy uses), page by page."""
    for page in clients.scheduler.get_paginator("list_schedules").paginate(GroupName="default"):
        for schedule in page.get("Schedules", []):
            if schedule.get("GroupName", "default") == "default":
                yield schedule


def _stale_schedule_reason(clients: AwsClients, env: Environment, schedule: Mapping[str, Any]) -> str | None:
    """Why a listed schedule outside the desired set is this environment's to delete, or None.

    Ours: named like our topic schedules (what deploy has always created), or marked with
    :func:`schedule_description` (a schedule of a removed topic or of a previous
    ``state_machine.name``). Only schedules that start a state machine or a Glue job can be
    ours, so the others are not read further.
    """
    name, target = schedule["Name"], (schedule.get("Target") or {}).get("Arn", "")
    if name.startswith(f"{env.state_machine_name}-topic-"):
        return "topic no longer configured"
    if ":stateMachine:" not in target and target != _glue_start_job_target(env):
        return None
    if clients.scheduler.get_schedule(Name=name).get("Description") != schedule_description(env):
        return None
    if target == env.state_machine_arn:
        return "topic no longer configured"
    if ":stateMachine:" in target:
        return f"targets state machine {target.rsplit(':', 1)[-1]}, not {env.state_machine_name}"
    return f"schedule of a previous state_machine.name (now {env.state_machine_name})"


def _plan_schedules(clients: AwsClients, env: Environment, topics: Sequence[str]) -> list[PlannedChange]:
    desired_all = _schedules(env, topics)
    changes = []
    for name, desired in desired_all.items():
        try:
            got = clients.scheduler.get_schedule(Name=name)
            current: dict[str, Any] | None = {
                "Description": got.get("Description"),
                "ScheduleExpression": got.get("ScheduleExpression"),
                "Target": {k: got.get("Target", {}).get(k) for k in ("Arn", "RoleArn", "Input")},
                "State": got.get("State"),
            }
        except clients.scheduler.exceptions.ResourceNotFoundException:
            current = None
        spec = {**desired, "State": "ENABLED", "FlexibleTimeWindow": {"Mode": "OFF"}}

        def create(name: str = name, spec: dict[str, Any] = spec) -> None:
            _guard(f"schedule {name}", lambda: clients.scheduler.create_schedule(Name=name, **spec))()

        def update(name: str = name, spec: dict[str, Any] = spec) -> None:
            _guard(f"schedule {name}", lambda: clients.scheduler.update_schedule(Name=name, **spec))()

        changes.append(
            _compare("schedule", name, current, {**desired, "State": "ENABLED"}, create=create, update=update)
        )
    stale: dict[str, str] = {}
    for schedule in _listed_schedules(clients):
        reason = None if schedule["Name"] in desired_all else _stale_schedule_reason(clients, env, schedule)
        if reason is not None:
            stale[schedule["Name"]] = reason
    for name, reason in sorted(stale.items()):

        def delete(name: str = name) -> None:
            _guard(f"schedule {name}", lambda: clients.scheduler.delete_schedule(Name=name))()

        changes.append(PlannedChange("schedule", name, "delete", (reason,), delete))
    return changes


# --------------------------------------------------------------------------- plan / apply


def plan_deployment(inputs: DeploymentInputs, clients: AwsClients) -> DeployPlan:
    """Compare the desired deployment with what exists; nothing is changed.

    Raises:
        ConfigError: an artifact is missing or the environment is inconsistent.
        DeployError: reading the current state failed.
    """
    env = inputs.environment
    if inputs.profile.kind != "glue":
        raise ConfigError(
            f"{env.source}: profile {inputs.profile.name!r} is {inputs.profile.kind!r}; deploy needs a glue profile"
        )
    wheel_key = f"wheels/{inputs.wheel.name}"
    artifacts = [
        Artifact(wheel_key, inputs.wheel.read_bytes()),
        *job_script_artifacts(inputs.project_root),
        *conf_artifacts(inputs.conf_root),
    ]
    package = lambda_package(inputs.project_root)
    try:
        changes: list[PlannedChange] = [_plan_object(clients, env, a) for a in artifacts]
        stale_objects = _plan_stale_objects(clients, env, {env.s3_key(a.key) for a in artifacts})
        if env.encryption is not None:
            changes.append(_plan_security_configuration(clients, env))
        if env.network is not None:
            changes.append(_plan_network_connection(clients, env))
        wheel_uri = env.s3_uri(wheel_key)
        for role, job in (
            ("curation", env.curation_job),
            ("semantic", env.semantic_job),
            ("maintenance", env.maintenance_job),
        ):
            spec = _glue_job_spec(env, inputs.profile, role, job, wheel_uri, topic_count=len(inputs.topics))
            changes.append(_plan_glue_job(clients, job.name, spec))
        for fn_role, fn_name in (
            ("checkpoints", env.checkpoints_function),
            ("curation_result", env.curation_result_function),
        ):
            changes.append(_plan_lambda(clients, env, fn_name, LAMBDA_HANDLERS[fn_role], package))
        changes.append(_plan_state_machine(clients, env))
        changes.extend(_plan_schedules(clients, env, inputs.topics))
        changes.extend(_plan_previous_state_machines(clients, env))
        if env.iam.attach_policies:
            changes.extend(_plan_role_policies(clients, inputs))
        changes.extend(stale_objects)
    except LeanOpsError:
        raise
    except Exception as exc:
        raise DeployError(
            f"reading the current state of {env.name} failed: {type(exc).__name__}: {exc}"
        ) from exc
    return DeployPlan(env.name, tuple(changes), concurrency_warnings(env, inputs.topics))


def apply_plan(plan: DeployPlan, on_change: Callable[[PlannedChange], None] = lambda _c: None) -> DeployPlan:
    """Run every pending action in plan order; returns the plan.

    Raises:
        DeployError: the first failing call, naming the resource (earlier ones stay applied;
            running deploy again continues from there).
    """
    for change in plan.pending:
        assert change.run is not None
        change.run()
        on_change(change)
    return plan
