"""``lean-ops snowflake ddl|refresh --env <name>``: Snowflake SQL for the semantic tables."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from lean_ops_spark.cli.context import CliContext, add_env_option
from lean_ops_spark.cli.output import check_output_file, print_json
from lean_ops_spark.errors import ConfigError, RuntimeSetupError
from lean_ops_spark.governance.context import GovernanceContext, load_governance_context
from lean_ops_spark.governance.errors import SnowflakeError
from lean_ops_spark.governance.iam import snowflake_locations
from lean_ops_spark.governance.schema_state import RefreshStateStore, open_schema_source
from lean_ops_spark.governance.snowflake import SnowflakeTarget, ddl_statements, render_script
from lean_ops_spark.governance.snowflake_refresh import (
    DbApiConnection,
    SnowflakeRefreshResult,
    connect_snowflake,
    execute_snowflake_refresh,
    missing_credential_variables,
    observe_semantic_schemas,
    plan_snowflake_refresh,
    refresh_snowflake,
)

HELP = "Snowflake SQL for the semantic tables: ddl (catalog integration + tables) or refresh"


def register(
    subparsers: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser
) -> None:
    parser = subparsers.add_parser(
        "snowflake",
        parents=[common],  # `lean-ops snowflake --json ddl ...` as well as `... ddl --json`
        help=HELP,
        description=HELP + ". Snowflake reads the semantic Iceberg tables through the Glue Data "
        "Catalog: CREATE CATALOG INTEGRATION (GLUE or the Glue Iceberg REST endpoint) and CREATE "
        "ICEBERG TABLE ... CATALOG = ... CATALOG_TABLE_NAME = ... (not CREATE EXTERNAL ICEBERG TABLE "
        "... CATALOG_SYNC, which Snowflake does not have).",
    )
    commands = parser.add_subparsers(dest="snowflake_command", metavar="<ddl|refresh>", required=True)
    ddl = commands.add_parser(
        "ddl",
        parents=[common],
        help="print the DDL",
        description="Print the Snowflake DDL of an environment: the catalog integration on the Glue "
        "Data Catalog and one CREATE ICEBERG TABLE per semantic table (conf/semantic/), from "
        "governance/<env>.yaml's snowflake: section. Reads config only: no AWS or Snowflake call.",
    )
    add_env_option(ddl)
    ddl.add_argument("--out", metavar="FILE", help="also write the script to FILE")
    ddl.set_defaults(handler=run_ddl)
    refresh = commands.add_parser(
        "refresh",
        parents=[common],
        help="ALTER ICEBERG TABLE ... REFRESH for semantic tables whose schema changed",
        description="Compare each semantic table's schema fingerprint (metadata.json) with the state "
        "file and refresh exactly the changed ones: through the connector when snowflake.connection is "
        "configured, else into a SQL file (reported). --tables refreshes the named tables regardless.",
    )
    add_env_option(refresh)
    refresh.add_argument(
        "--tables", nargs="+", metavar="TABLE", help="refresh these tables regardless of state"
    )
    refresh.add_argument("--dry-run", action="store_true", help="print the plan; execute and record nothing")
    refresh.add_argument(
        "--no-connect", action="store_true", help="write the SQL file even with a connection"
    )
    refresh.add_argument(
        "--state", metavar="LOCATION", help="state file (path or s3://); default from config"
    )
    refresh.add_argument(
        "--sql-dir", metavar="LOCATION", help="SQL folder (path or s3://); default from config"
    )
    refresh.set_defaults(handler=run_refresh)


def run_ddl(ctx: CliContext) -> int:
    if ctx.args.out:
        check_output_file("--out", ctx.args.out)
    context = load_governance_context(ctx.args.conf, ctx.args.env)
    target = _snowflake_target(context)
    statements = ddl_statements(target, [t.name for t in context.semantic_tables])
    header = [
        f"lean-ops Snowflake DDL for environment {target.environment} (generated: edit the config, not this file)",
        f"Prerequisites: the external volume {target.settings.external_volume or '(vended credentials: none)'} "
        "exists, and the IAM role of the catalog integration trusts Snowflake",
        "(DESC CATALOG INTEGRATION shows GLUE_AWS_IAM_USER_ARN / GLUE_AWS_EXTERNAL_ID for its trust policy).",
    ]
    script = render_script(statements, header)
    if ctx.args.out:
        Path(ctx.args.out).write_text(script, encoding="utf-8")
    if ctx.json:
        print_json(
            {"ok": True, "environment": target.environment, "statements": [s.as_dict() for s in statements]}
        )
    else:
        print(script, end="")
    return 0


#: The message of a missing Snowflake credential: what each ``*_env`` setting's variable holds.
_CREDENTIAL_VALUES = {
    "password_env": "the user's password",
    "private_key_file_env": "the path of the private key file (.p8)",
    "private_key_password_env": "the private key's passphrase",
}

#: How to give AWS credentials (boto3's chain), for the message of a refresh that has none.
_AWS_CREDENTIALS_HELP = (
    "set AWS_PROFILE to a profile of ~/.aws/config (after `aws sso login` for an SSO profile), "
    "or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (and AWS_SESSION_TOKEN for temporary credentials)"
)


def _snowflake_target(context: GovernanceContext) -> SnowflakeTarget:
    """The environment's Snowflake target.

    Raises:
        ConfigError: the governance file has no ``snowflake:`` section.
    """
    if context.governance.snowflake is None:
        raise ConfigError(
            f"{context.governance.source}: no snowflake: section; add one with database, schema, "
            "external_volume and catalog_integration (name, role_arn), as in conf/governance/dev.yaml"
        )
    return context.snowflake()


def _check_snowflake_credentials(target: SnowflakeTarget, source: str) -> None:
    """Every environment variable ``snowflake.connection`` names for the connector is set.

    Raises:
        ConfigError: naming each missing variable, what it holds, and the other ways to run.
    """
    settings = target.settings.connection
    if settings is None:
        return
    missing = missing_credential_variables(settings, os.environ)
    if not missing:
        return
    names = "; ".join(
        f"{variable} ({_CREDENTIAL_VALUES[key]}; named by snowflake.connection.{key})"
        for key, variable in missing
    )
    raise ConfigError(
        f"{source}: snowflake.connection ({settings.authenticator}, user {settings.user}) reads its "
        f"credentials from environment variables that are not set: {names}. Export them "
        f"(`export {missing[0][1]}=...`), or name an AWS Secrets Manager secret with "
        "snowflake.connection.secret_id instead; --no-connect writes the SQL to a file and "
        "--dry-run only prints the plan, neither needs them"
    )


def _aws_uses(
    args: argparse.Namespace,
    context: GovernanceContext,
    target: SnowflakeTarget,
    locations: tuple[str, str],
    *,
    connecting: bool,
) -> list[str]:
    """What this refresh would read or write on AWS: nothing with local ``locations`` (SQL
    folder, state file) on the local profile, nor for ``--tables ... --dry-run`` (a plan only)."""
    sql_dir, state = locations
    connection = target.settings.connection
    uses = []
    if not args.tables:  # the current schemas are read and compared with the state file
        if context.profile.kind == "glue":
            uses.append(
                f"the semantic tables' schemas in the Glue Data Catalog ({context.profile.name} profile)"
            )
        if state.startswith("s3://"):
            uses.append(f"the state file {state}")
    if not connecting and not args.dry_run and sql_dir.startswith("s3://"):
        uses.append(f"the SQL folder {sql_dir}")
    if connecting and connection is not None and connection.secret_id:
        uses.append(f"the Secrets Manager secret {connection.secret_id}")
    return uses


def _require_aws_credentials(uses: list[str]) -> None:
    """boto3 finds credentials, when the refresh calls AWS (``uses``, for the message).

    Raises:
        RuntimeSetupError: boto3 is not installed.
        ConfigError: no credentials (or a broken AWS profile), naming what needs them and how to give them.
    """
    if not uses:
        return
    needed = f"needed for {'; '.join(uses)}"
    local = "; --state and --sql-dir also take local paths" if any("s3://" in u for u in uses) else ""
    try:
        import boto3
        from botocore.exceptions import BotoCoreError
    except ImportError as exc:
        raise RuntimeSetupError(
            f"boto3 is not installed ({needed}): pip install 'lean-ops-spark[aws]'"
        ) from exc
    try:
        credentials = boto3.Session().get_credentials()
    except BotoCoreError as exc:  # an AWS_PROFILE that does not exist, half a key pair
        raise ConfigError(f"AWS credentials ({needed}): {exc}; {_AWS_CREDENTIALS_HELP}{local}") from exc
    if credentials is None:
        raise ConfigError(f"no AWS credentials found ({needed}): {_AWS_CREDENTIALS_HELP}{local}")


def run_refresh(ctx: CliContext) -> int:
    args = ctx.args
    context = load_governance_context(args.conf, args.env)
    target = _snowflake_target(context)
    default_sql, default_state = snowflake_locations(context.environment, context.governance)
    sql_dir, state_location = args.sql_dir or default_sql, args.state or default_state
    connecting = target.settings.connection is not None and not args.no_connect and not args.dry_run
    # Credentials are checked before any call, so a missing one is named as such (exit 2)
    # instead of surfacing as boto3's or the connector's error halfway through.
    if connecting:
        _check_snowflake_credentials(target, context.governance.source)
    locations = (sql_dir, state_location)
    _require_aws_credentials(_aws_uses(args, context, target, locations, connecting=connecting))
    connection: DbApiConnection | None = None
    if connecting:
        connection = connect_snowflake(target, environ=dict(os.environ))
    try:
        if args.tables:
            plan = plan_snowflake_refresh(args.tables, target, reason="requested")
            outcome = (
                None
                if args.dry_run
                else execute_snowflake_refresh(plan, connection=connection, sql_dir=sql_dir)
            )
            if outcome is not None and outcome.failed is not None:
                table, error = outcome.failed
                raise SnowflakeError(f"ALTER ICEBERG TABLE ... REFRESH for {table}: {error}")
            result = SnowflakeRefreshResult(plan, None, outcome, state_location)
        else:
            catalog_db = ctx.home.catalog_db if context.profile.kind == "local" else None
            source = open_schema_source(context.profile, catalog_db=catalog_db)
            names = [t.name for t in context.semantic_tables]
            observed = observe_semantic_schemas(names, target, context.profile, source)
            result = refresh_snowflake(
                observed,
                target,
                state=RefreshStateStore(state_location),
                connection=connection,
                sql_dir=sql_dir,
                dry_run=args.dry_run,
            )
    finally:
        close = getattr(connection, "close", None)
        if callable(close):
            close()
    if ctx.json:
        print_json({"ok": True, "dry_run": bool(args.dry_run), **result.as_dict()})
        return 0
    if result.changes is not None:
        c = result.changes
        print(
            f"schema: {len(c.changed)} changed, {len(c.new)} new, {len(c.unchanged)} unchanged, "
            f"{len(c.missing)} not in the catalog yet"
        )
    for table, why in result.plan.skipped:
        print(f"skipped {table}: {why}")
    if not result.plan.actions:
        print("nothing to refresh")
        return 0
    print(result.plan.script(), end="")
    outcome = result.outcome
    if outcome is None:
        print("(dry run: nothing executed or recorded)")
    elif outcome.mode == "written":
        print(f"no Snowflake connection configured: SQL written to {outcome.sql_file} (run it in Snowflake)")
    else:
        print(f"executed in Snowflake: {', '.join(outcome.done)}")
    return 0
