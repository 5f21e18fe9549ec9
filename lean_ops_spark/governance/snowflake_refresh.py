"""Schema refresh automation: ``ALTER ICEBERG TABLE … REFRESH`` for exactly the affected tables.

Two entry points, both safe to call after every semantic commit:

* :func:`plan_snowflake_refresh` — the caller already knows which semantic tables changed
  schema (e.g. the semantic job applied a drift *evolve*). Pure: returns the statements.
* :func:`refresh_after_commit` — the semantic job passes the tables it just committed;
  their current schema fingerprints (from ``metadata.json``) are compared with the state
  file, and only those that differ (or were never refreshed) are refreshed.

Execution (:func:`execute_snowflake_refresh`) goes through any DB-API-like connection —
``connection.cursor().execute(sql)`` — when ``snowflake.connection`` is configured (the
real connector is imported lazily, only then), and otherwise writes the SQL to a file
(``snowflake.refresh.sql_dir``, local or ``s3://``) and reports its location. Tables with
``AUTO_REFRESH = TRUE`` are skipped: Snowflake already polls the catalog for them.

Use from the semantic job (after the publish commit)::

    from lean_ops_spark.governance.snowflake_refresh import refresh_after_commit
    result = refresh_after_commit(["customer_orders"], governance=gov, environment=env,
                                  profile=config.profile, environ=os.environ)
    log.info("snowflake refresh: %s", result.as_dict())
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlparse

from lean_ops_spark.catalog.naming import TableRef
from lean_ops_spark.config.environment import Environment
from lean_ops_spark.config.models import Profile
from lean_ops_spark.errors import RuntimeSetupError
from lean_ops_spark.governance.config import GovernanceConfig, SnowflakeConnectionSettings
from lean_ops_spark.governance.errors import SnowflakeError
from lean_ops_spark.governance.iam import snowflake_locations
from lean_ops_spark.governance.schema_state import (
    RefreshStateStore,
    SchemaChanges,
    SchemaSource,
    detect_schema_changes,
    open_schema_source,
)
from lean_ops_spark.governance.snowflake import (
    SnowflakeStatement,
    SnowflakeTarget,
    create_table_sql,
    refresh_table_sql,
    render_script,
)

__all__ = [
    "DbApiConnection",
    "DbApiCursor",
    "RefreshAction",
    "RefreshOutcome",
    "SnowflakeRefreshPlan",
    "SnowflakeRefreshResult",
    "connect_snowflake",
    "execute_snowflake_refresh",
    "missing_credential_variables",
    "observe_semantic_schemas",
    "plan_snowflake_refresh",
    "refresh_after_commit",
    "refresh_snowflake",
]


class DbApiCursor(Protocol):
    def execute(self, command: str) -> object: ...


class DbApiConnection(Protocol):
    """What the executor needs from a connection (``snowflake.connector`` satisfies it)."""

    def cursor(self) -> DbApiCursor: ...


@dataclass(frozen=True)
class RefreshAction:
    """The statements for one semantic table and why it is affected."""

    table: str
    reason: str  # schema changed | new table | requested
    statements: tuple[SnowflakeStatement, ...]


@dataclass(frozen=True)
class SnowflakeRefreshPlan:
    environment: str
    actions: tuple[RefreshAction, ...] = ()
    #: (table, reason) of affected tables that get no statement (AUTO_REFRESH = TRUE).
    skipped: tuple[tuple[str, str], ...] = ()

    @property
    def statements(self) -> tuple[SnowflakeStatement, ...]:
        return tuple(s for a in self.actions for s in a.statements)

    def script(self) -> str:
        header = [
            f"lean-ops Snowflake schema refresh for environment {self.environment}",
            *(f"{a.table}: {a.reason}" for a in self.actions),
            *(f"{table}: skipped ({why})" for table, why in self.skipped),
        ]
        return render_script(self.statements, header)

    def as_dict(self) -> dict[str, Any]:
        return {
            "actions": [
                {"table": a.table, "reason": a.reason, "sql": [s.sql for s in a.statements]}
                for a in self.actions
            ],
            "skipped": [{"table": t, "reason": r} for t, r in self.skipped],
        }


def plan_snowflake_refresh(
    changed_tables: Iterable[str],
    target: SnowflakeTarget,
    *,
    new_tables: Iterable[str] = (),
    reason: str = "",
) -> SnowflakeRefreshPlan:
    """The statements that bring Snowflake up to date for the given semantic tables (pure).

    Args:
        changed_tables: semantic tables whose schema changed (``name`` or ``<semantic_db>.name``).
        target: the Snowflake settings and the AWS side.
        new_tables: tables Snowflake may not have yet: ``CREATE ICEBERG TABLE IF NOT EXISTS``
            first, then the refresh (so the refresh never fails on a missing table).
        reason: overrides the recorded reason (``requested`` for a manual refresh).

    Raises:
        SnowflakeError: a table is not in the semantic database.
    """
    new = {target.semantic_table(t) for t in new_tables}
    affected = sorted({target.semantic_table(t) for t in changed_tables} | new)
    actions, skipped = [], []
    for table in affected:
        why = reason or ("new table" if table in new else "schema changed")
        if target.settings.auto_refresh_for(table):
            interval = target.settings.catalog_integration.refresh_interval_seconds
            skipped.append(
                (table, f"{why}; AUTO_REFRESH = TRUE: Snowflake polls the catalog (every {interval or 30} s)")
            )
            continue
        statements = []
        if table in new:
            statements.append(SnowflakeStatement("create_table", create_table_sql(target, table), table))
        statements.append(SnowflakeStatement("refresh", refresh_table_sql(target, table), table))
        actions.append(RefreshAction(table, why, tuple(statements)))
    return SnowflakeRefreshPlan(target.environment, tuple(actions), tuple(skipped))


# --------------------------------------------------------------------------- execution


@dataclass(frozen=True)
class RefreshOutcome:
    """What happened: ``executed`` (connector), ``written`` (SQL file), or ``nothing``."""

    mode: str
    done: tuple[str, ...] = ()
    sql_file: str | None = None
    failed: tuple[str, str] | None = None  # (table, error)

    def as_dict(self) -> dict[str, Any]:
        return {
            "mode": self.mode,
            "done": list(self.done),
            "sql_file": self.sql_file,
            "failed": None if self.failed is None else {"table": self.failed[0], "error": self.failed[1]},
        }


def _write_sql(text: str, folder: str, name: str, s3_client: Any) -> str:
    if folder.startswith("s3://"):
        parsed = urlparse(folder)
        key = "/".join(p for p in (parsed.path.strip("/"), name) if p)
        if s3_client is None:
            import boto3

            s3_client = boto3.client("s3")
        s3_client.put_object(Bucket=parsed.netloc, Key=key, Body=text.encode(), ContentType="application/sql")
        return f"s3://{parsed.netloc}/{key}"
    path = Path(folder) / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return str(path)


def execute_snowflake_refresh(
    plan: SnowflakeRefreshPlan,
    *,
    connection: DbApiConnection | None,
    sql_dir: str,
    s3_client: Any = None,
    now: datetime | None = None,
) -> RefreshOutcome:
    """Run the plan through ``connection``, or write it to ``<sql_dir>/snowflake-refresh-<env>-<UTC>.sql``.

    With a connection, tables run in order and the first failing statement stops the run:
    the outcome lists the tables done before it and the failure (nothing is raised here, so
    the caller can record the done ones first).

    Raises:
        SnowflakeError: the SQL file could not be written.
    """
    if not plan.actions:
        return RefreshOutcome("nothing")
    if connection is None:
        stamp = (now or datetime.now(UTC)).strftime("%Y%m%dT%H%M%SZ")
        name = f"snowflake-refresh-{plan.environment}-{stamp}.sql"
        try:
            location = _write_sql(plan.script(), sql_dir, name, s3_client)
        except Exception as exc:
            raise SnowflakeError(
                f"writing the refresh SQL to {sql_dir}: {type(exc).__name__}: {exc}"
            ) from exc
        return RefreshOutcome("written", tuple(a.table for a in plan.actions), location)
    cursor = connection.cursor()
    done: list[str] = []
    try:
        for action in plan.actions:
            for statement in action.statements:
                try:
                    cursor.execute(statement.sql)
                except Exception as exc:
                    return RefreshOutcome(
                        "executed", tuple(done), failed=(action.table, f"{type(exc).__name__}: {exc}")
                    )
            done.append(action.table)
    finally:
        close = getattr(cursor, "close", None)
        if callable(close):
            close()
    return RefreshOutcome("executed", tuple(done))


def _credential(
    env_key: str | None, secret_key: str, secret: Mapping[str, Any], environ: Mapping[str, str]
) -> str | None:
    """From the named environment variable if one is configured, else from the secret's JSON."""
    if env_key is not None:
        value = environ.get(env_key)
        if not value:
            raise SnowflakeError(f"snowflake.connection: environment variable {env_key} is not set")
        return value
    value = secret.get(secret_key)
    return None if value is None else str(value)


def missing_credential_variables(
    settings: SnowflakeConnectionSettings, environ: Mapping[str, str]
) -> tuple[tuple[str, str], ...]:
    """The environment variables :func:`connect_snowflake` would read for ``settings`` that
    ``environ`` does not set (or sets empty), each as ``(setting, variable)``, e.g.
    ``("private_key_file_env", "SNOWFLAKE_PRIVATE_KEY_FILE")``. Pure: a caller checks this
    before any other work, so a missing credential is not found only after the schemas were read.
    """
    keys = (
        ("password_env",)
        if settings.authenticator == "password"
        else ("private_key_file_env", "private_key_password_env")
    )
    missing = []
    for key in keys:
        variable = getattr(settings, key)
        if variable is not None and not environ.get(variable):
            missing.append((key, variable))
    return tuple(missing)


def connect_snowflake(
    target: SnowflakeTarget,
    *,
    environ: Mapping[str, str],
    secrets_client: Any = None,
    connect: Callable[..., DbApiConnection] | None = None,
) -> DbApiConnection:
    """Open a connection with the configured settings; credentials from ``environ`` or Secrets Manager.

    Args:
        target: its ``settings.connection`` must be set.
        environ: where ``*_env`` variables are looked up (the caller passes ``os.environ``).
        secrets_client: a boto3 ``secretsmanager`` client for ``secret_id`` (made when absent).
        connect: the connector's ``connect`` (tests pass a fake); default
            ``snowflake.connector.connect``, imported only here.

    Raises:
        RuntimeSetupError: snowflake-connector-python is not installed.
        SnowflakeError: no connection configured, a credential is missing, or connecting failed.
    """
    settings = target.settings.connection
    if settings is None:
        raise SnowflakeError(
            "snowflake.connection is not configured (the refresh SQL is written to a file instead)"
        )
    secret: Mapping[str, Any] = {}
    if settings.secret_id:
        try:
            client = secrets_client
            if client is None:
                import boto3

                client = boto3.client("secretsmanager", region_name=target.region)
            secret = json.loads(client.get_secret_value(SecretId=settings.secret_id)["SecretString"])
        except Exception as exc:
            raise SnowflakeError(f"reading secret {settings.secret_id}: {type(exc).__name__}: {exc}") from exc
    kwargs: dict[str, Any] = {
        "account": settings.account,
        "user": settings.user,
        "database": target.settings.database,
        "schema": target.settings.schema,
    }
    if settings.role:
        kwargs["role"] = settings.role
    if settings.warehouse:
        kwargs["warehouse"] = settings.warehouse
    if settings.authenticator == "password":
        password = _credential(settings.password_env, "password", secret, environ)
        if not password:
            raise SnowflakeError(f"secret {settings.secret_id} has no 'password'")
        kwargs["password"] = password
    else:
        key_file = _credential(settings.private_key_file_env, "private_key_file", secret, environ)
        if not key_file:
            raise SnowflakeError(f"secret {settings.secret_id} has no 'private_key_file'")
        kwargs["authenticator"] = "SNOWFLAKE_JWT"
        kwargs["private_key_file"] = key_file
        passphrase = _credential(settings.private_key_password_env, "private_key_file_pwd", secret, environ)
        if passphrase:
            kwargs["private_key_file_pwd"] = passphrase
    if connect is None:
        try:
            import snowflake.connector  # type: ignore[import-not-found]
        except ImportError as exc:
            raise RuntimeSetupError(
                "snowflake.connection is configured but snowflake-connector-python is not installed: "
                "pip install snowflake-connector-python (or remove snowflake.connection to write SQL files)"
            ) from exc
        connect = snowflake.connector.connect
    try:
        return connect(**kwargs)
    except Exception as exc:
        raise SnowflakeError(
            f"connecting to Snowflake account {settings.account}: {type(exc).__name__}: {exc}"
        ) from exc


# --------------------------------------------------------------------------- the whole step


@dataclass(frozen=True)
class SnowflakeRefreshResult:
    plan: SnowflakeRefreshPlan
    changes: SchemaChanges | None
    outcome: RefreshOutcome | None  # None: dry run
    state: str

    def as_dict(self) -> dict[str, Any]:
        return {
            "environment": self.plan.environment,
            "changes": None if self.changes is None else self.changes.as_dict(),
            "plan": self.plan.as_dict(),
            "outcome": None if self.outcome is None else self.outcome.as_dict(),
            "state": self.state,
        }


def refresh_snowflake(
    observed: Mapping[str, str | None],
    target: SnowflakeTarget,
    *,
    state: RefreshStateStore,
    connection: DbApiConnection | None,
    sql_dir: str,
    s3_client: Any = None,
    dry_run: bool = False,
    now: datetime | None = None,
) -> SnowflakeRefreshResult:
    """Detect → plan → execute (or write) → record, for the observed semantic tables.

    The state advances only for tables whose statements ran or were written (and for
    AUTO_REFRESH tables, which Snowflake refreshes itself), so a failed refresh is retried
    on the next call.

    Args:
        observed: semantic table → current schema fingerprint (None: not in the catalog yet).

    Raises:
        SnowflakeError: a statement failed (after the tables done before it were recorded).
    """
    refreshed = state.load()
    changes = detect_schema_changes(observed, refreshed)
    plan = plan_snowflake_refresh(changes.changed, target, new_tables=changes.new)
    if dry_run:
        return SnowflakeRefreshResult(plan, changes, None, state.location)
    moment = now or datetime.now(UTC)
    outcome = execute_snowflake_refresh(
        plan, connection=connection, sql_dir=sql_dir, s3_client=s3_client, now=moment
    )
    how = "sql-file" if outcome.mode == "written" else "connector"
    updates: dict[str, tuple[str, str]] = {}
    for table in outcome.done:
        fingerprint = observed[table]
        assert fingerprint is not None
        updates[table] = (fingerprint, how)
    for table, _why in plan.skipped:
        fingerprint = observed[table]
        assert fingerprint is not None
        updates[table] = (fingerprint, "auto-refresh")
    if updates:  # tables not observed this time (another caller's) keep their entries
        state.save(updates, now=moment, keep=list(refreshed))
    if outcome.failed is not None:
        table, error = outcome.failed
        raise SnowflakeError(
            f"ALTER ICEBERG TABLE … REFRESH for {table} failed: {error}"
            + (f" (done before it: {', '.join(outcome.done)})" if outcome.done else "")
        )
    return SnowflakeRefreshResult(plan, changes, outcome, state.location)


def observe_semantic_schemas(
    tables: Sequence[str], target: SnowflakeTarget, profile: Profile, source: SchemaSource
) -> dict[str, str | None]:
    """Current fingerprints of semantic tables by name."""
    refs = [
        TableRef(profile.catalog, target.semantic_database, target.semantic_table(t), "semantic")
        for t in tables
    ]
    found = source.observe(refs)
    return {ref.name: found.get(ref.identifier) for ref in refs}


def refresh_after_commit(
    tables: Sequence[str],
    *,
    governance: GovernanceConfig,
    environment: Environment,
    profile: Profile,
    environ: Mapping[str, str],
    clients: Mapping[str, Any] | None = None,
    connect: Callable[..., DbApiConnection] | None = None,
    now: datetime | None = None,
    source: SchemaSource | None = None,
    locations: tuple[str, str] | None = None,
) -> SnowflakeRefreshResult | None:
    """What the semantic job calls after it commits ``tables``: refresh the ones whose schema changed.

    Fingerprints come from ``source`` (default: the Glue catalog + ``metadata.json`` on S3);
    the state file and the SQL folder default to the environment's artifacts prefix. Returns
    None (and does nothing) when the governance file has no ``snowflake:`` section.

    Args:
        clients: boto3 clients by service name (``glue``, ``s3``, ``secretsmanager``).
        source: where the current schemas are read (the job passes its Spark session's).
        locations: (SQL folder, state file) instead of the configured ones (local runs).

    Raises:
        SnowflakeError: a refresh statement failed or the connection could not be opened.
    """
    if governance.snowflake is None:
        return None
    target = SnowflakeTarget.of(governance, environment, profile)
    given = dict(clients or {})
    if source is None:
        source = open_schema_source(profile, clients=given)
    observed = observe_semantic_schemas(tables, target, profile, source)
    sql_dir, state_location = locations or snowflake_locations(environment, governance)
    connection = (
        connect_snowflake(
            target, environ=environ, secrets_client=given.get("secretsmanager"), connect=connect
        )
        if target.settings.connection is not None
        else None
    )
    try:
        return refresh_snowflake(
            observed,
            target,
            state=RefreshStateStore(state_location, given.get("s3")),
            connection=connection,
            sql_dir=sql_dir,
            s3_client=given.get("s3"),
            now=now,
        )
    finally:
        close = getattr(connection, "close", None)
        if callable(close):
            close()
