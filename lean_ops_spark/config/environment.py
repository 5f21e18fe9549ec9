"""Deployment environments: ``conf/environments/<name>.yaml`` → a frozen :class:`Environment`.

An environment says *where* the pipeline runs on AWS (account, region, artifact bucket),
what the deployed resources are called (Glue jobs, Lambdas, state machine, schedules) and
the orchestration thresholds. The state machine renderer and ``lean-ops deploy`` take one
:class:`Environment`; nothing reads the YAML anywhere else. Parsing is strict like the rest
of ``config/``: unknown keys are refused and every message names the file and key.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

import yaml

from lean_ops_spark.config._reader import MappingReader, check_identifier
from lean_ops_spark.config.sources import ConfigSource, open_config_source, read_named_file
from lean_ops_spark.errors import ConfigError
from lean_ops_spark.runtime.jars import GLUE_ICEBERG_VERSIONS

__all__ = [
    "EncryptionSettings",
    "Environment",
    "GlueJobSettings",
    "IamSettings",
    "NetworkSettings",
    "RetryPolicy",
    "load_environment",
    "parse_environment",
]

#: Glue job, Lambda function, state machine and schedule names (the strictest common subset).
RESOURCE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")
ACCOUNT_ID = re.compile(r"^\d{12}$")
REGION = re.compile(r"^[a-z]{2}(-[a-z]+)+-\d$")
ARN = re.compile(r"^arn:aws[a-z-]*:[a-z0-9-]+:[a-z0-9-]*:\d{0,12}:.+$")
BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
SCHEDULE = re.compile(r"^(rate\(\d+ (minute|minutes|hour|hours|day|days)\)|cron\([^()]+\))$")
KMS_KEY_ARN = re.compile(r"^arn:aws[a-z-]*:kms:[a-z0-9-]+:\d{12}:key/[A-Za-z0-9-]+$")
SUBNET_ID = re.compile(r"^subnet-[0-9a-f]{8,17}$")
SECURITY_GROUP_ID = re.compile(r"^sg-[0-9a-f]{8,17}$")
AVAILABILITY_ZONE = re.compile(r"^[a-z]{2}(-[a-z]+)+-\d[a-z]$")
#: IAM resource granularity of the generated policies (see ``governance/iam.py``).
IAM_RESOURCE_SCOPES = ("table", "database")
WORKER_TYPES = ("G.1X", "G.2X", "G.4X", "G.8X", "G.025X", "Z.2X")
LAMBDA_RUNTIMES = ("python3.11", "python3.12", "python3.13")
#: Glue job arguments that deploy sets and a job's ``arguments`` may not replace (``--conf``
#: and ``--additional-python-modules`` are extended instead, see ``deploy.plan``).
RESERVED_JOB_ARGUMENTS = ("--datalake-formats", "--job-language")
RESERVED_JOB_ARGUMENT_PREFIX = "--lean_ops_"


@dataclass(frozen=True)
class RetryPolicy:
    """Step Functions ``Retry`` of a Glue task on ``Glue.ConcurrentRunsExceededException``."""

    interval_seconds: int = 60
    max_attempts: int = 5
    backoff_rate: float = 2.0


@dataclass(frozen=True)
class GlueJobSettings:
    """One Glue job's name and capacity."""

    name: str
    worker_type: str = "G.1X"
    number_of_workers: int = 2
    timeout_minutes: int = 60
    #: Glue's MaxConcurrentRuns; None (not in the file) = deploy's default: one run per deployed
    #: topic for the curation and semantic jobs (every topic's execution runs them), 1 for the
    #: maintenance job (see ``deploy.plan.job_max_concurrent_runs``).
    max_concurrent_runs: int | None = None
    arguments: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    #: This job's own IAM role; None = the shared ``glue.role_arn``. One role per job is what
    #: makes the generated IAM policies and Lake Formation grants least-privilege.
    role_arn: str | None = None


@dataclass(frozen=True)
class EncryptionSettings:
    """SSE-KMS for what the Glue jobs write.

    The key goes to Iceberg's S3FileIO (``s3.sse.type=kms``, ``s3.sse.key``) in the jobs'
    ``--conf``; the Glue security configuration encrypts what Glue itself writes (CloudWatch
    logs, job bookmarks, S3 output of Glue's own writers). S3FileIO does not read the
    security configuration, which is why both are needed.
    """

    kms_key_arn: str
    security_configuration: str


@dataclass(frozen=True)
class NetworkSettings:
    """A Glue ``NETWORK`` connection that puts the jobs into a VPC subnet."""

    connection_name: str
    subnet_id: str
    security_group_ids: tuple[str, ...]
    availability_zone: str


@dataclass(frozen=True)
class IamSettings:
    """How the generated least-privilege policies are scoped and whether deploy attaches them."""

    #: ``table``: Glue and S3 resources name each table; ``database``: one ``<db>/*`` per layer
    #: (smaller documents for many topics, less precise).
    resource_scope: str = "table"
    #: ``lean-ops deploy`` puts each role's generated policy inline on the role.
    attach_policies: bool = False
    policy_name: str = "lean-ops-least-privilege"


@dataclass(frozen=True)
class Environment:
    """Everything environment-specific that the state machine and the deployment need."""

    name: str
    account_id: str
    region: str
    profile: str
    bucket: str
    prefix: str
    glue_version: str
    glue_role_arn: str
    curation_job: GlueJobSettings
    semantic_job: GlueJobSettings
    maintenance_job: GlueJobSettings
    glue_retry: RetryPolicy
    lambda_role_arn: str
    checkpoints_function: str
    curation_result_function: str
    state_machine_name: str
    state_machine_role_arn: str
    scheduler_role_arn: str
    lambda_runtime: str = "python3.11"
    lambda_memory_mb: int = 1024
    lambda_timeout_seconds: int = 60
    lambda_layers: tuple[str, ...] = ()
    backlog_threshold_records: int = 100_000
    backlog_threshold_snapshots: int = 50
    max_rounds: int = 10
    metric_namespace: str = "LeanOps"
    topics: tuple[str, ...] = ()
    pipeline_schedule: str | None = "rate(15 minutes)"
    maintenance_schedule: str = "cron(0 3 * * ? *)"
    source: str = ""
    encryption: EncryptionSettings | None = None
    network: NetworkSettings | None = None
    iam: IamSettings = field(default_factory=IamSettings)

    def job_role_arn(self, job: GlueJobSettings) -> str:
        """The IAM role a Glue job runs as: its own ``role_arn`` or the shared ``glue.role_arn``."""
        return job.role_arn or self.glue_role_arn

    def glue_job_arn(self, job: GlueJobSettings) -> str:
        return f"arn:{self.partition}:glue:{self.region}:{self.account_id}:job/{job.name}"

    @property
    def partition(self) -> str:
        """``aws`` (or ``aws-cn``, ``aws-us-gov``), taken from the Glue role ARN."""
        return self.glue_role_arn.split(":")[1]

    @property
    def iceberg_version(self) -> str:
        """The Iceberg release ``--datalake-formats iceberg`` brings on this Glue version."""
        return GLUE_ICEBERG_VERSIONS[self.glue_version]

    def s3_uri(self, *parts: str) -> str:
        """``s3://<bucket>/<prefix>/<parts...>``."""
        key = "/".join(p.strip("/") for p in (self.prefix, *parts) if p.strip("/"))
        return f"s3://{self.bucket}/{key}"

    def s3_key(self, *parts: str) -> str:
        return "/".join(p.strip("/") for p in (self.prefix, *parts) if p.strip("/"))

    @property
    def conf_uri(self) -> str:
        """Where ``lean-ops deploy`` uploads ``conf/`` and the jobs and Lambdas read it."""
        return self.s3_uri("conf")

    def lambda_arn(self, function_name: str) -> str:
        return f"arn:{self.partition}:lambda:{self.region}:{self.account_id}:function:{function_name}"

    @property
    def state_machine_arn(self) -> str:
        return f"arn:{self.partition}:states:{self.region}:{self.account_id}:stateMachine:{self.state_machine_name}"

    def selected_topics(self, configured: list[str]) -> list[str]:
        """The topics this environment runs: its ``topics`` list, or every configured topic.

        Raises:
            ConfigError: the environment names a topic that has no contract.
        """
        if not self.topics:
            return sorted(configured)
        unknown = sorted(set(self.topics) - set(configured))
        if unknown:
            raise ConfigError(
                f"{self.source}: topics: no contract for {', '.join(unknown)} "
                f"(configured topics: {', '.join(sorted(configured)) or 'none'})"
            )
        return list(self.topics)


def _match(reader: MappingReader, key: str, pattern: re.Pattern[str], what: str, default: Any = None) -> str:
    value = reader.raw(key, default, required=default is None)
    if not isinstance(value, str) or not pattern.fullmatch(value):
        raise ConfigError(f"{reader.path(key)}: {value!r} is not a valid {what}")
    return value


def _positive(reader: MappingReader, key: str, default: int) -> int:
    value = reader.integer(key, default, minimum=1)
    assert value is not None
    return value


def _parse_job(reader: MappingReader, key: str) -> GlueJobSettings:
    job = reader.child(key, required=True)
    settings = GlueJobSettings(
        name=_match(job, "name", RESOURCE_NAME, "Glue job name"),
        worker_type=job.choice("worker_type", WORKER_TYPES, "G.1X"),
        number_of_workers=_positive(job, "number_of_workers", 2),
        timeout_minutes=_positive(job, "timeout_minutes", 60),
        max_concurrent_runs=job.integer("max_concurrent_runs", minimum=1),
        arguments=MappingProxyType(job.string_map("arguments")),
        role_arn=_match(job, "role_arn", ARN, "IAM role ARN") if job.raw("role_arn") is not None else None,
    )
    for argument in settings.arguments:
        if not argument.startswith("--"):
            raise ConfigError(f"{job.path('arguments')}.{argument}: Glue job arguments start with '--'")
        if argument in RESERVED_JOB_ARGUMENTS or argument.startswith(RESERVED_JOB_ARGUMENT_PREFIX):
            raise ConfigError(
                f"{job.path('arguments')}.{argument}: set by lean-ops deploy and not overridable "
                "(--conf and --additional-python-modules are appended to ours)"
            )
    job.finish()
    return settings


def _parse_encryption(reader: MappingReader) -> EncryptionSettings | None:
    if reader.raw("encryption") is None:  # absent or empty: the feature is off
        return None
    section = reader.child("encryption", required=True)
    settings = EncryptionSettings(
        kms_key_arn=_match(
            section, "kms_key_arn", KMS_KEY_ARN, "KMS key ARN (arn:aws:kms:<region>:<account>:key/<id>)"
        ),
        security_configuration=_match(
            section, "security_configuration", RESOURCE_NAME, "Glue security configuration name"
        ),
    )
    section.finish()
    return settings


def _parse_network(reader: MappingReader) -> NetworkSettings | None:
    if reader.raw("network") is None:  # absent or empty: the feature is off
        return None
    section = reader.child("network", required=True)
    groups = section.sequence("security_group_ids", required=True)
    if not groups:
        raise ConfigError(f"{section.path('security_group_ids')}: at least one security group is needed")
    for i, group in enumerate(groups):
        if not isinstance(group, str) or not SECURITY_GROUP_ID.fullmatch(group):
            raise ConfigError(
                f"{section.path('security_group_ids')}[{i}]: {group!r} is not a security group id"
            )
    settings = NetworkSettings(
        connection_name=_match(section, "connection", RESOURCE_NAME, "Glue connection name"),
        subnet_id=_match(section, "subnet_id", SUBNET_ID, "subnet id (subnet-...)"),
        security_group_ids=tuple(groups),
        availability_zone=_match(section, "availability_zone", AVAILABILITY_ZONE, "availability zone"),
    )
    section.finish()
    return settings


def _parse_iam(reader: MappingReader) -> IamSettings:
    section = reader.child("iam")
    settings = IamSettings(
        resource_scope=section.choice("resource_scope", IAM_RESOURCE_SCOPES, "table"),
        attach_policies=section.boolean("attach_policies", False),
        policy_name=_match(
            section, "policy_name", RESOURCE_NAME, "IAM policy name", "lean-ops-least-privilege"
        ),
    )
    section.finish()
    return settings


def parse_environment(data: object, where: str, name: str) -> Environment:  # noqa: PLR0915 - one flat file layout
    """Parse one ``environments/<name>.yaml``; ``where`` names the file in every error."""
    check_identifier(name, f"{where}: environment name")
    reader = MappingReader(data, f"{where}:")
    artifacts = reader.child("artifacts", required=True)
    bucket = _match(artifacts, "bucket", BUCKET, "S3 bucket name")
    prefix = (artifacts.string("prefix", f"lean-ops/{name}") or "").strip("/")
    artifacts.finish()

    glue = reader.child("glue", required=True)
    glue_version = glue.choice("version", tuple(GLUE_ICEBERG_VERSIONS), "5.1")
    glue_role = _match(glue, "role_arn", ARN, "IAM role ARN")
    retry_reader = glue.child("retry")
    retry = RetryPolicy(
        interval_seconds=_positive(retry_reader, "interval_seconds", 60),
        max_attempts=retry_reader.integer("max_attempts", 5, minimum=0) or 0,
        backoff_rate=retry_reader.number("backoff_rate", 2.0, minimum=1.0) or 1.0,
    )
    retry_reader.finish()
    jobs = glue.child("jobs", required=True)
    curation, semantic, maintenance = (_parse_job(jobs, k) for k in ("curation", "semantic", "maintenance"))
    jobs.finish()
    glue.finish()

    lam = reader.child("lambda", required=True)
    functions = lam.child("functions", required=True)
    checkpoints_fn = _match(functions, "checkpoints", RESOURCE_NAME, "Lambda function name")
    curation_result_fn = _match(functions, "curation_result", RESOURCE_NAME, "Lambda function name")
    functions.finish()
    layers = lam.sequence("layers")
    for i, layer in enumerate(layers):
        if not isinstance(layer, str) or not ARN.fullmatch(layer):
            raise ConfigError(f"{lam.path('layers')}[{i}]: {layer!r} is not a Lambda layer version ARN")
    lambda_role = _match(lam, "role_arn", ARN, "IAM role ARN")
    runtime = lam.choice("runtime", LAMBDA_RUNTIMES, "python3.11")
    memory = _positive(lam, "memory_mb", 1024)
    timeout = _positive(lam, "timeout_seconds", 60)
    lam.finish()

    sm = reader.child("state_machine", required=True)
    sm_name = _match(sm, "name", RESOURCE_NAME, "state machine name")
    sm_role = _match(sm, "role_arn", ARN, "IAM role ARN")
    threshold_records = _positive(sm, "backlog_threshold_records", 100_000)
    threshold_snapshots = _positive(sm, "backlog_threshold_snapshots", 50)
    max_rounds = _positive(sm, "max_rounds", 10)
    namespace = sm.string("metric_namespace", "LeanOps") or "LeanOps"
    if namespace.startswith("AWS/"):
        raise ConfigError(f"{sm.path('metric_namespace')}: CloudWatch namespaces may not start with 'AWS/'")
    sm.finish()

    schedules = reader.child("schedules", required=True)
    scheduler_role = _match(schedules, "role_arn", ARN, "IAM role ARN")
    pipeline_schedule = schedules.string("pipeline", "rate(15 minutes)")
    if pipeline_schedule is not None and not SCHEDULE.fullmatch(pipeline_schedule):
        raise ConfigError(
            f"{schedules.path('pipeline')}: {pipeline_schedule!r} is not rate(...) or cron(...)"
        )
    maintenance_schedule = _match(
        schedules, "maintenance", SCHEDULE, "schedule expression", "cron(0 3 * * ? *)"
    )
    schedules.finish()

    encryption = _parse_encryption(reader)
    network = _parse_network(reader)
    iam = _parse_iam(reader)

    topics = tuple(check_identifier(t, f"{where}: topics") for t in reader.sequence("topics"))
    if len(set(topics)) != len(topics):
        raise ConfigError(f"{where}: topics: a topic is listed twice")
    environment = Environment(
        name=name,
        account_id=_match(reader, "account_id", ACCOUNT_ID, "12-digit AWS account id"),
        region=_match(reader, "region", REGION, "AWS region"),
        profile=reader.identifier("profile", "glue"),
        bucket=bucket,
        prefix=prefix,
        glue_version=glue_version,
        glue_role_arn=glue_role,
        curation_job=curation,
        semantic_job=semantic,
        maintenance_job=maintenance,
        glue_retry=retry,
        lambda_role_arn=lambda_role,
        checkpoints_function=checkpoints_fn,
        curation_result_function=curation_result_fn,
        state_machine_name=sm_name,
        state_machine_role_arn=sm_role,
        scheduler_role_arn=scheduler_role,
        lambda_runtime=runtime,
        lambda_memory_mb=memory,
        lambda_timeout_seconds=timeout,
        lambda_layers=tuple(layers),
        backlog_threshold_records=threshold_records,
        backlog_threshold_snapshots=threshold_snapshots,
        max_rounds=max_rounds,
        metric_namespace=namespace,
        topics=topics,
        pipeline_schedule=pipeline_schedule,
        maintenance_schedule=maintenance_schedule,
        source=where,
        encryption=encryption,
        network=network,
        iam=iam,
    )
    reader.finish()
    names = [curation.name, semantic.name, maintenance.name]
    if len(set(names)) != 3:
        raise ConfigError(f"{where}: glue.jobs: curation, semantic and maintenance need different names")
    if checkpoints_fn == curation_result_fn:
        raise ConfigError(f"{where}: lambda.functions: checkpoints and curation_result need different names")
    return environment


def load_environment(location: str | Path, name: str, *, source: ConfigSource | None = None) -> Environment:
    """Load ``environments/<name>.yaml`` from a config root (folder or ``s3://`` prefix).

    Raises:
        ConfigError: the file is missing (listing the available ones) or invalid.
    """
    src = source or open_config_source(location)
    text, where = read_named_file(src, "environments", name, "environment")
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{where}: not valid YAML: {exc}") from exc
    return parse_environment(data, where, name)
