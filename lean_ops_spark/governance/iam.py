"""Least-privilege IAM policy documents for every role the pipeline runs as, from the config.

What each role may touch follows from what the code does, not from a template:

| role | reads | writes |
|---|---|---|
| curation job | raw tables | curated + quarantine tables, the drift audit table (created on the first drift) |
| semantic job | curated tables (not quarantine) | semantic tables |
| maintenance job | every topic, semantic and drift audit table | the same (rewrites, expiry, orphan removal) |
| Lambda (both functions) | *metadata* (``metadata/`` only) of raw, curated and semantic tables | nothing |
| state machine | — | invokes the two Lambdas, runs the curation/semantic jobs, puts metrics |
| scheduler | — | starts the state machine and the maintenance job |
| snowflake (catalog integration role) | semantic tables | nothing |

No action is a wildcard (no ``s3:*``, ``glue:*``). Resources name buckets/prefixes, Glue
catalog/database/table ARNs, job, function and state-machine ARNs and the KMS key. Every
resource that still contains ``*`` or ``?`` carries the reason in the statement's
``why_wildcard`` (``lean-ops iam`` prints them; the tests assert each one):

* ``"*"`` only where the action has no resource-level permissions: ``cloudwatch:PutMetricData``
  (scoped by the ``cloudwatch:namespace`` condition instead), ``lakeformation:GetDataAccess``
  (Lake Formation's grants decide), ``ec2:Describe*`` calls Glue makes for a VPC connection;
* ``<table location>/*``: object keys under a table's own prefix cannot be enumerated;
* ``wheels/*``, ``conf/*``: the wheel's versioned file name, the config tree;
* log groups/streams Glue and Lambda name per run;
* ``network-interface/*``: ENIs Glue creates per run in the configured subnet;
* ``secret:<name>-??????``: the random suffix Secrets Manager appends to a secret name;
* with ``iam.resource_scope: database``, ``table/<db>/*`` and ``<db>.db/*`` per layer.

Documents are sized like IAM counts them (no whitespace): inline policies of one role may
hold 10,240 characters in total; use ``resource_scope: database`` when many topics exceed it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from lean_ops_spark.catalog.naming import TableRef
from lean_ops_spark.config.environment import Environment
from lean_ops_spark.deploy.artifacts import JOB_SCRIPTS
from lean_ops_spark.governance.config import GovernanceConfig
from lean_ops_spark.governance.layers import GovernedScope, S3Location

__all__ = [
    "INLINE_POLICY_LIMIT",
    "PolicyStatement",
    "RolePolicy",
    "role_policies",
]

#: IAM's limit for the inline policies of one role, whitespace excluded.
INLINE_POLICY_LIMIT = 10_240
_SID = re.compile(r"^[A-Za-z0-9]+$")

NO_RESOURCE_LEVEL = "the action has no resource-level permissions"


@dataclass(frozen=True)
class PolicyStatement:
    """One ``Allow`` statement; ``why_wildcard`` explains any ``*``/``?`` left in its resources."""

    sid: str
    actions: tuple[str, ...]
    resources: tuple[str, ...]
    condition: Mapping[str, Mapping[str, Any]] | None = None
    why_wildcard: str = ""

    def __post_init__(self) -> None:
        if not _SID.fullmatch(self.sid):
            raise ValueError(f"statement id {self.sid!r} must be alphanumeric")
        if any("*" in a or "?" in a for a in self.actions):
            raise ValueError(f"{self.sid}: wildcard actions are not allowed ({', '.join(self.actions)})")
        if self.wildcard_resources() and not self.why_wildcard:
            raise ValueError(f"{self.sid}: a wildcard resource needs a reason")

    def wildcard_resources(self) -> tuple[str, ...]:
        return tuple(r for r in self.resources if "*" in r or "?" in r)

    def document(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "Sid": self.sid,
            "Effect": "Allow",
            "Action": sorted(self.actions),
            "Resource": list(self.resources) if len(self.resources) > 1 else self.resources[0],
        }
        if self.condition:
            out["Condition"] = {k: dict(v) for k, v in self.condition.items()}
        return out


@dataclass(frozen=True)
class RolePolicy:
    """The generated policy of one IAM role (several logical roles may share it)."""

    role_arn: str
    roles: tuple[str, ...]
    statements: tuple[PolicyStatement, ...] = field(default_factory=tuple)

    @property
    def role_name(self) -> str:
        return self.role_arn.rsplit("/", 1)[-1]

    def document(self) -> dict[str, Any]:
        return {"Version": "2012-10-17", "Statement": [s.document() for s in self.statements]}

    def text(self) -> str:
        """The document as IAM stores it here: compact, keys in a fixed order."""
        return json.dumps(self.document(), separators=(",", ":"))

    @property
    def size(self) -> int:
        return len(self.text())

    @property
    def fits_inline(self) -> bool:
        return self.size <= INLINE_POLICY_LIMIT

    def wildcards(self) -> list[dict[str, str]]:
        return [
            {"sid": s.sid, "resource": r, "why": s.why_wildcard}
            for s in self.statements
            for r in s.wildcard_resources()
        ]

    def as_dict(self) -> dict[str, Any]:
        return {
            "role_arn": self.role_arn,
            "roles": list(self.roles),
            "size": self.size,
            "fits_inline": self.fits_inline,
            "document": self.document(),
            "wildcards": self.wildcards(),
        }


# --------------------------------------------------------------------------- ARNs


@dataclass(frozen=True)
class _Arns:
    env: Environment
    scope: GovernedScope
    resource_scope: str

    @property
    def p(self) -> str:
        return self.env.partition

    @property
    def glue_catalog(self) -> str:
        return f"arn:{self.p}:glue:{self.env.region}:{self.env.account_id}:catalog"

    def glue_database(self, database: str) -> str:
        return f"arn:{self.p}:glue:{self.env.region}:{self.env.account_id}:database/{database}"

    def glue_tables(self, tables: Sequence[TableRef]) -> list[str]:
        prefix = f"arn:{self.p}:glue:{self.env.region}:{self.env.account_id}:table"
        if self.resource_scope == "database":
            return sorted({f"{prefix}/{t.database}/*" for t in tables})
        return [f"{prefix}/{t.database}/{t.name}" for t in tables]

    def glue_catalog_resources(self, tables: Sequence[TableRef]) -> tuple[str, ...]:
        databases = sorted({t.database for t in tables})
        return (self.glue_catalog, *(self.glue_database(d) for d in databases), *self.glue_tables(tables))

    def locations(self, tables: Sequence[TableRef], suffix: str = "") -> list[S3Location]:
        if self.resource_scope == "database":  # <db>.db/* already covers every table's metadata/
            return sorted({self.scope.database_location(t.database) for t in tables}, key=lambda x: x.uri)
        found = {self.scope.table_location(t) for t in tables}
        return sorted((loc.child(suffix) if suffix else loc for loc in found), key=lambda x: x.uri)

    def objects(self, locations: Iterable[S3Location]) -> list[str]:
        return [f"{loc.arn(self.p)}/*" for loc in locations]

    def bucket(self, name: str) -> str:
        return f"arn:{self.p}:s3:::{name}"

    def logs(self, group: str) -> tuple[str, str]:
        base = f"arn:{self.p}:logs:{self.env.region}:{self.env.account_id}:log-group:{group}"
        return base, f"{base}:log-stream:*"

    def ec2(self, kind: str, ident: str) -> str:
        return f"arn:{self.p}:ec2:{self.env.region}:{self.env.account_id}:{kind}/{ident}"


def _camel(name: str) -> str:
    return "".join(part.capitalize() for part in name.split("_"))


# --------------------------------------------------------------------------- shared statement builders


def _list_statement(sid: str, arns: _Arns, locations: Sequence[S3Location]) -> list[PolicyStatement]:
    """``s3:ListBucket`` on the bucket ARN, limited to the prefixes by an ``s3:prefix`` condition."""
    by_bucket: dict[str, list[str]] = {}
    for loc in locations:
        by_bucket.setdefault(loc.bucket, []).extend([loc.key, f"{loc.key}/*"])
    return [
        PolicyStatement(
            f"{sid}{i}" if len(by_bucket) > 1 else sid,
            ("s3:ListBucket",),
            (arns.bucket(bucket),),
            {"StringLike": {"s3:prefix": sorted(set(prefixes))}},
        )
        for i, (bucket, prefixes) in enumerate(sorted(by_bucket.items()))
    ]


def _metrics(sid: str, namespaces: Iterable[str]) -> PolicyStatement:
    return PolicyStatement(
        sid,
        ("cloudwatch:PutMetricData",),
        ("*",),
        {"StringEquals": {"cloudwatch:namespace": sorted(set(namespaces))}},
        why_wildcard=f"cloudwatch:PutMetricData: {NO_RESOURCE_LEVEL}; the cloudwatch:namespace condition scopes it",
    )


def _kms(
    sid: str, env: Environment, actions: tuple[str, ...], via_s3_only: bool = False
) -> list[PolicyStatement]:
    if env.encryption is None:
        return []
    condition = (
        {"StringEquals": {"kms:ViaService": [f"s3.{env.region}.amazonaws.com"]}} if via_s3_only else None
    )
    return [PolicyStatement(sid, actions, (env.encryption.kms_key_arn,), condition)]


def _artifact_statements(prefix: str, arns: _Arns, keys: Sequence[str]) -> list[PolicyStatement]:
    env = arns.env
    resources = tuple(f"{arns.bucket(env.bucket)}/{env.s3_key(k)}" for k in keys)
    conf = S3Location(env.bucket, env.s3_key("conf"))
    statements = [
        PolicyStatement(
            f"{prefix}ArtifactsRead",
            ("s3:GetObject",),
            resources,
            why_wildcard="the wheel's file name carries its version; conf/ is a folder tree read at start",
        )
    ]
    statements += _list_statement(f"{prefix}ConfList", arns, [conf])
    return statements


# --------------------------------------------------------------------------- per role


def _glue_job(
    role: str,
    arns: _Arns,
    *,
    reads: Sequence[TableRef],
    writes: Sequence[TableRef],
    create_tables: bool,
    namespace: str,
    extra: Sequence[PolicyStatement] = (),
) -> list[PolicyStatement]:
    env, sid = arns.env, _camel(role)
    touched = [*reads, *[t for t in writes if t not in reads]]
    statements = [
        PolicyStatement(
            f"{sid}GlueCatalogRead",
            ("glue:GetDatabase", "glue:GetTable", "glue:GetTables"),
            arns.glue_catalog_resources(touched),
            why_wildcard="iam.resource_scope: database (one table/<db>/* per layer)",
        )
    ]
    if writes:
        actions = ("glue:CreateTable", "glue:UpdateTable") if create_tables else ("glue:UpdateTable",)
        statements.append(
            PolicyStatement(
                f"{sid}GlueCatalogWrite",
                actions,
                arns.glue_catalog_resources(writes),
                why_wildcard="iam.resource_scope: database (one table/<db>/* per layer)",
            )
        )
    table_why = "object keys under a table's own location (data/, metadata/) are written per commit"
    statements.append(
        PolicyStatement(
            f"{sid}TableFilesRead",
            ("s3:GetObject",),
            tuple(arns.objects(arns.locations(touched))),
            why_wildcard=table_why,
        )
    )
    if writes:
        statements.append(
            PolicyStatement(
                f"{sid}TableFilesWrite",
                ("s3:PutObject", "s3:DeleteObject", "s3:AbortMultipartUpload"),
                tuple(arns.objects(arns.locations(writes))),
                why_wildcard=table_why,
            )
        )
    statements += _list_statement(f"{sid}TableFilesList", arns, arns.locations(touched))
    statements += _artifact_statements(
        sid, arns, [f"jobs/{JOB_SCRIPTS[role.removesuffix('_job')]}", "wheels/*", "conf/*"]
    )
    statements += _kms(f"{sid}Kms", env, ("kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey"))
    statements.append(_metrics(f"{sid}Metrics", [namespace]))
    group, stream = arns.logs("/aws-glue/jobs*")
    log_why = (
        "Glue names the job log groups (/aws-glue/jobs/output|error|logs-v2, or "
        "/aws-glue/jobs-<role>-<security configuration>/... when logs are encrypted) and one stream per run"
    )
    group_actions = (
        ("logs:CreateLogGroup", "logs:AssociateKmsKey") if env.encryption else ("logs:CreateLogGroup",)
    )
    statements.append(PolicyStatement(f"{sid}LogGroups", group_actions, (group,), why_wildcard=log_why))
    statements.append(
        PolicyStatement(
            f"{sid}LogStreams", ("logs:CreateLogStream", "logs:PutLogEvents"), (stream,), why_wildcard=log_why
        )
    )
    statements.append(
        PolicyStatement(
            f"{sid}LakeFormation",
            ("lakeformation:GetDataAccess",),
            ("*",),
            why_wildcard=f"lakeformation:GetDataAccess: {NO_RESOURCE_LEVEL}; the Lake Formation grants decide",
        )
    )
    statements += _network(sid, arns)
    statements += extra
    return statements


def _network(sid: str, arns: _Arns) -> list[PolicyStatement]:
    net = arns.env.network
    if net is None:
        return []
    eni = arns.ec2("network-interface", "*")
    eni_why = "Glue creates one elastic network interface per run in the configured subnet; its id is not known before"
    connection = f"arn:{arns.p}:glue:{arns.env.region}:{arns.env.account_id}:connection/{net.connection_name}"
    return [
        PolicyStatement(f"{sid}GlueConnection", ("glue:GetConnection",), (arns.glue_catalog, connection)),
        PolicyStatement(
            f"{sid}VpcDescribe",
            (
                "ec2:DescribeNetworkInterfaces",
                "ec2:DescribeRouteTables",
                "ec2:DescribeSecurityGroups",
                "ec2:DescribeSubnets",
                "ec2:DescribeVpcAttribute",
                "ec2:DescribeVpcEndpoints",
            ),
            ("*",),
            why_wildcard=f"ec2:Describe*: {NO_RESOURCE_LEVEL}",
        ),
        PolicyStatement(
            f"{sid}VpcCreateEni",
            ("ec2:CreateNetworkInterface",),
            (
                arns.ec2("subnet", net.subnet_id),
                *(arns.ec2("security-group", g) for g in net.security_group_ids),
                eni,
            ),
            why_wildcard=eni_why,
        ),
        PolicyStatement(f"{sid}VpcDeleteEni", ("ec2:DeleteNetworkInterface",), (eni,), why_wildcard=eni_why),
        PolicyStatement(
            f"{sid}VpcTagEni",
            ("ec2:CreateTags", "ec2:DeleteTags"),
            (eni,),
            {"ForAllValues:StringEquals": {"aws:TagKeys": ["aws-glue-service-resource"]}},
            why_wildcard=eni_why,
        ),
    ]


def _s3_location(uri: str) -> S3Location | None:
    if not uri.startswith("s3://"):
        return None
    bucket, _, key = uri[len("s3://") :].partition("/")
    return S3Location(bucket, key.strip("/"))


def snowflake_locations(env: Environment, governance: GovernanceConfig | None) -> tuple[str, str]:
    """(refresh SQL folder, schema-state file): the configured ones or the artifacts-prefix defaults."""
    settings = governance.snowflake if governance else None
    sql_dir = (settings.sql_dir if settings else None) or env.s3_uri("snowflake", "sql")
    state = (settings.state if settings else None) or env.s3_uri("state", "snowflake-schemas.json")
    return sql_dir, state


def _semantic_snowflake_extras(arns: _Arns, governance: GovernanceConfig | None) -> list[PolicyStatement]:
    """What the semantic job needs to refresh Snowflake after it commits (when configured)."""
    if governance is None or governance.snowflake is None:
        return []
    env = arns.env
    sql_dir, state = snowflake_locations(env, governance)
    resources = []
    sql_location, state_location = _s3_location(sql_dir), _s3_location(state)
    if sql_location is not None:
        resources.append(f"{sql_location.arn(arns.p)}/*")
    if state_location is not None:
        resources.append(state_location.arn(arns.p))
    out = []
    if resources:
        out.append(
            PolicyStatement(
                "SemanticJobSnowflakeRefreshFiles",
                ("s3:GetObject", "s3:PutObject"),
                tuple(resources),
                why_wildcard="one refresh SQL file per run under the configured folder",
            )
        )
    if state_location is not None:
        # Before the first refresh the state file does not exist, and without s3:ListBucket S3
        # answers GetObject on a missing key with 403 AccessDenied, not 404 NoSuchKey. Listing
        # is limited to exactly that key (RefreshStateStore.load lists it to tell the two apart).
        out.append(
            PolicyStatement(
                "SemanticJobSnowflakeStateList",
                ("s3:ListBucket",),
                (arns.bucket(state_location.bucket),),
                {"StringEquals": {"s3:prefix": [state_location.key]}},
            )
        )
    connection = governance.snowflake.connection
    if connection is not None and connection.secret_id:
        secret = connection.secret_id
        if not secret.startswith("arn:"):
            secret = f"arn:{arns.p}:secretsmanager:{env.region}:{env.account_id}:secret:{secret}-??????"
        out.append(
            PolicyStatement(
                "SemanticJobSnowflakeSecret",
                ("secretsmanager:GetSecretValue",),
                (secret,),
                why_wildcard="Secrets Manager appends a random 6-character suffix to a secret's name",
            )
        )
    return out


def _checkpoint_tables(scope: GovernedScope) -> list[TableRef]:
    """The tables GetAllCheckpoints reads (``GetTables`` per database, then each table's
    current ``metadata.json``): per topic raw, curated and its models' semantic tables, whose
    snapshot summaries hold the curated checkpoint (``semantic_behind``). ResolveCuratedSnapshot
    reads raw and curated only."""
    return [*scope.tables("raw"), *scope.tables("curated"), *scope.tables("semantic")]


def _lambda(arns: _Arns) -> list[PolicyStatement]:
    env = arns.env
    tables = _checkpoint_tables(arns.scope)
    metadata_why = "metadata.json files under each table's metadata/ prefix are named per commit"
    statements = [
        PolicyStatement(
            "LambdaGlueCatalogRead",
            ("glue:GetDatabase", "glue:GetTable", "glue:GetTables"),
            arns.glue_catalog_resources(tables),
            why_wildcard="iam.resource_scope: database (one table/<db>/* per layer)",
        ),
        PolicyStatement(
            "LambdaTableMetadataRead",
            ("s3:GetObject",),
            tuple(arns.objects(arns.locations(tables, "metadata"))),
            why_wildcard=metadata_why,
        ),
        *_artifact_statements("Lambda", arns, ["conf/*"]),
        *_kms("LambdaKms", env, ("kms:Decrypt",), via_s3_only=True),
        # GetAllCheckpoints defers to an older running execution of the topic (orchestration.overlap)
        PolicyStatement("LambdaListExecutions", ("states:ListExecutions",), (env.state_machine_arn,)),
        PolicyStatement(
            "LambdaDescribeExecutions",
            ("states:DescribeExecution",),
            (env.state_machine_arn.replace(":stateMachine:", ":execution:") + ":*",),
            why_wildcard="an execution is named when it starts",
        ),
    ]
    groups = [
        arns.logs(f"/aws/lambda/{fn}") for fn in (env.checkpoints_function, env.curation_result_function)
    ]
    statements.append(
        PolicyStatement("LambdaLogGroups", ("logs:CreateLogGroup",), tuple(g for g, _ in groups))
    )
    statements.append(
        PolicyStatement(
            "LambdaLogStreams",
            ("logs:CreateLogStream", "logs:PutLogEvents"),
            tuple(s for _, s in groups),
            why_wildcard="Lambda opens one log stream per execution environment",
        )
    )
    return statements


def _state_machine(arns: _Arns) -> list[PolicyStatement]:
    env = arns.env
    return [
        PolicyStatement(
            "StateMachineInvokeLambdas",
            ("lambda:InvokeFunction",),
            tuple(env.lambda_arn(fn) for fn in (env.checkpoints_function, env.curation_result_function)),
        ),
        PolicyStatement(
            "StateMachineRunGlueJobs",
            ("glue:StartJobRun", "glue:GetJobRun", "glue:GetJobRuns", "glue:BatchStopJobRun"),
            tuple(env.glue_job_arn(j) for j in (env.curation_job, env.semantic_job)),
        ),
        _metrics("StateMachineMetrics", [env.metric_namespace]),
    ]


def _scheduler(arns: _Arns) -> list[PolicyStatement]:
    env = arns.env
    return [
        PolicyStatement("SchedulerStartPipeline", ("states:StartExecution",), (env.state_machine_arn,)),
        PolicyStatement(
            "SchedulerStartMaintenance", ("glue:StartJobRun",), (env.glue_job_arn(env.maintenance_job),)
        ),
    ]


def _snowflake(arns: _Arns, governance: GovernanceConfig) -> list[PolicyStatement]:
    assert governance.snowflake is not None
    tables = list(arns.scope.tables("semantic"))
    statements = [
        PolicyStatement(
            "SnowflakeGlueCatalogRead",
            ("glue:GetCatalog", "glue:GetDatabase", "glue:GetDatabases", "glue:GetTable", "glue:GetTables"),
            arns.glue_catalog_resources(tables)
            if tables
            else (arns.glue_catalog, arns.glue_database(arns.scope.database("semantic"))),
            why_wildcard="iam.resource_scope: database (one table/<db>/* per layer)",
        )
    ]
    if tables:
        statements.append(
            PolicyStatement(
                "SnowflakeTableFilesRead",
                ("s3:GetObject", "s3:GetObjectVersion"),
                tuple(arns.objects(arns.locations(tables))),
                why_wildcard="object keys under a table's own location (data/, metadata/) are written per commit",
            )
        )
        statements += _list_statement("SnowflakeTableFilesList", arns, arns.locations(tables))
    statements.append(
        PolicyStatement(
            "SnowflakeBucketLocation", ("s3:GetBucketLocation",), (arns.bucket(arns.scope.warehouse.bucket),)
        )
    )
    statements += _kms("SnowflakeKms", arns.env, ("kms:Decrypt",), via_s3_only=True)
    if governance.snowflake.catalog_integration.access_delegation == "vended_credentials":
        statements.append(
            PolicyStatement(
                "SnowflakeLakeFormation",
                ("lakeformation:GetDataAccess",),
                ("*",),
                why_wildcard=f"lakeformation:GetDataAccess: {NO_RESOURCE_LEVEL}; the Lake Formation grants decide",
            )
        )
    return statements


def _merge(parts: Sequence[tuple[str, list[PolicyStatement]]]) -> tuple[PolicyStatement, ...]:
    """One role's statements; when logical roles share the ARN, like statements become one.

    "Like" = the same kind (the Sid without the role's prefix, e.g. ``TableFilesRead``), actions
    and condition; their resources are unioned in order and the Sid becomes the kind. The
    document then lists every resource once, which keeps a shared Glue role within IAM's size
    limit. Each logical role's own statements are never merged with each other.
    """
    if len(parts) == 1:
        return tuple(parts[0][1])
    merged: dict[str, tuple[PolicyStatement, set[str]]] = {}
    for role, statements in parts:
        prefix = _camel(role)
        for statement in statements:
            kind = statement.sid.removeprefix(prefix) or statement.sid
            key = json.dumps(
                [kind, sorted(statement.actions), statement.condition], sort_keys=True, default=dict
            )
            if key not in merged:
                merged[key] = (statement, {role})
                continue
            first, roles = merged[key]
            resources = tuple(dict.fromkeys((*first.resources, *statement.resources)))
            merged[key] = (replace(first, sid=kind, resources=resources), roles | {role})
    return tuple(statement for statement, _roles in merged.values())


def role_policies(
    env: Environment, scope: GovernedScope, governance: GovernanceConfig | None = None
) -> tuple[RolePolicy, ...]:
    """One :class:`RolePolicy` per IAM role ARN (logical roles sharing an ARN are merged).

    Args:
        env: the deployment environment (roles, names, KMS key, VPC, resource scope).
        scope: the governed tables and their warehouse locations.
        governance: adds the Snowflake role and the semantic job's Snowflake refresh needs.
    """
    arns = _Arns(env, scope, env.iam.resource_scope)
    namespace = scope.profile.metrics.namespace
    raw, curated, quarantine, semantic, audit = (
        scope.tables(layer) for layer in ("raw", "curated", "quarantine", "semantic", "audit")
    )
    # what maintenance resolves by default (maintenance.runner.resolve_tables)
    every = [*raw, *curated, *quarantine, *semantic, *audit]
    logical: list[tuple[str, str, list[PolicyStatement]]] = [
        (
            "curation_job",
            env.job_role_arn(env.curation_job),
            _glue_job(
                "curation_job",
                arns,
                reads=raw,
                # the drift audit table: CREATE TABLE IF NOT EXISTS + append on any drift (drift.audit)
                writes=[*curated, *quarantine, *audit],
                create_tables=True,
                namespace=namespace,
            ),
        ),
        (
            "semantic_job",
            env.job_role_arn(env.semantic_job),
            _glue_job(
                "semantic_job",
                arns,
                reads=curated,
                writes=semantic,
                create_tables=True,
                namespace=namespace,
                extra=_semantic_snowflake_extras(arns, governance),
            ),
        ),
        (
            "maintenance_job",
            env.job_role_arn(env.maintenance_job),
            _glue_job(
                "maintenance_job",
                arns,
                reads=[],
                writes=every,
                create_tables=False,
                namespace=namespace,
            ),
        ),
        ("lambda", env.lambda_role_arn, _lambda(arns)),
        ("state_machine", env.state_machine_role_arn, _state_machine(arns)),
        ("scheduler", env.scheduler_role_arn, _scheduler(arns)),
    ]
    if governance is not None and governance.snowflake is not None:
        logical.append(
            ("snowflake", governance.snowflake.catalog_integration.role_arn, _snowflake(arns, governance))
        )
    by_arn: dict[str, list[tuple[str, list[PolicyStatement]]]] = {}
    for name, arn, statements in logical:
        # a role with nothing of a kind (e.g. no semantic tables yet) gets no statement for it
        by_arn.setdefault(arn, []).append((name, [s for s in statements if s.resources]))
    return tuple(
        RolePolicy(arn, tuple(name for name, _ in parts), _merge(parts)) for arn, parts in by_arn.items()
    )
