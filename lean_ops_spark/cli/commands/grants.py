"""``lean-ops grants --env <name>``: Lake Formation grants from config, only the difference applied."""

from __future__ import annotations

import argparse

from lean_ops_spark.cli.context import CliContext, add_env_option
from lean_ops_spark.cli.output import format_table, print_json
from lean_ops_spark.governance.context import load_governance_context
from lean_ops_spark.governance.grants import GrantChange, apply_grant_plan, plan_grants

HELP = "plan Lake Formation grants from conf/governance/<env>.yaml and apply only the difference"


def register(
    subparsers: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser
) -> None:
    parser = subparsers.add_parser(
        "grants",
        parents=[common],
        help=HELP,
        description=HELP + ". Computes the grants per principal and layer (tables, databases, data "
        "locations, column exclusions), compares them with ListPermissions and grants what is missing. "
        "Extras (what the configured principals hold beyond the file, in this environment's databases "
        "and warehouse) are reported, and revoked with --revoke-extra. A second run changes nothing.",
    )
    add_env_option(parser)
    parser.add_argument("--dry-run", action="store_true", help="print the plan only")
    extra = parser.add_mutually_exclusive_group()
    extra.add_argument(
        "--revoke-extra", dest="revoke_extra", action="store_true", default=None, help="also revoke extras"
    )
    extra.add_argument(
        "--keep-extra", dest="revoke_extra", action="store_false", help="never revoke (overrides the file)"
    )
    parser.set_defaults(handler=run)


def _row(change: GrantChange, applied: str) -> list[str]:
    who = ", ".join(change.principal_names) or change.principal
    return [change.action, who, change.resource.describe(), ", ".join(change.permissions), applied]


def run(ctx: CliContext) -> int:
    import boto3

    args = ctx.args
    context = load_governance_context(args.conf, args.env)
    lf = boto3.client("lakeformation", region_name=context.environment.region)
    plan = plan_grants(
        context.governance, context.environment, context.scope(), lf, revoke_extra=args.revoke_extra
    )
    for warning in plan.warnings:
        ctx.progress(f"warning: {warning}")
    if not args.dry_run:
        apply_grant_plan(plan, lf, on_change=lambda c: ctx.progress(f"{c.action:6} {c.resource.describe()}"))
    if ctx.json:
        print_json({"ok": True, "dry_run": bool(args.dry_run), **plan.as_dict()})
        return 0
    done = "planned" if args.dry_run else "applied"
    rows = [_row(c, done) for c in plan.missing]
    rows += [_row(c, done if plan.revoke_extra else "kept (--revoke-extra to revoke)") for c in plan.extra]
    if rows:
        print(format_table(["action", "principal", "resource", "permissions", "status"], rows))
    print(
        f"{plan.environment}: {len(plan.missing)} to grant, {len(plan.extra)} extra, {plan.unchanged} unchanged"
        + (" (dry run: nothing changed)" if args.dry_run else "")
    )
    return 0
