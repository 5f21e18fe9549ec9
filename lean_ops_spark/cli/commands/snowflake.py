"""``lean-ops snowflake ddl|refresh --env <name>``: Snowflake SQL for the semantic tables."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from lean_ops_spark.cli.context import CliContext, add_env_option
from lean_ops_spark.cli.output import check_output_file, print_json
from lean_ops_spark.governance.context import load_governance_context
from lean_ops_spark.governance.errors import SnowflakeError
from lean_ops_spark.governance.iam import snowflake_locations
from lean_ops_spark.governance.schema_state import RefreshStateStore, open_schema_source
from lean_ops_spark.governance.snowflake import ddl_statements, render_script
from lean_ops_spark.governance.snowflake_refresh import (
    DbApiConnection,
    SnowflakeRefreshResult,
    connect_snowflake,
    execute_snowflake_refresh,
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
    target = context.snowflake()
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


def run_refresh(ctx: CliContext) -> int:
    args = ctx.args
    context = load_governance_context(args.conf, args.env)
    target = context.snowflake()
    default_sql, default_state = snowflake_locations(context.environment, context.governance)
    sql_dir, state_location = args.sql_dir or default_sql, args.state or default_state
    connection: DbApiConnection | None = None
    if target.settings.connection is not None and not args.no_connect and not args.dry_run:
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
