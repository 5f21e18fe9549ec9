"""``lean-ops iam --env <name>``: the least-privilege IAM policy document of every role."""

from __future__ import annotations

import argparse
import json

from lean_ops_spark.cli.context import CliContext, add_env_option
from lean_ops_spark.cli.output import check_output_dir, print_json
from lean_ops_spark.governance.context import load_governance_context
from lean_ops_spark.governance.iam import INLINE_POLICY_LIMIT, role_policies

HELP = "print the generated least-privilege IAM policy of each role (and why each remaining * is there)"


def register(
    subparsers: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser
) -> None:
    parser = subparsers.add_parser(
        "iam",
        parents=[common],
        help=HELP,
        description=HELP + ". Glue jobs, the checkpoints Lambda, the state machine, the scheduler and "
        "the Snowflake role: only their buckets/prefixes, tables, jobs, metrics namespace and KMS key. "
        "Roles shared by several jobs get the union. `lean-ops deploy` attaches them inline when "
        "iam.attach_policies is true in the environment file.",
    )
    add_env_option(parser)
    parser.add_argument("--out", metavar="DIR", help="also write <role name>.json per role into DIR")
    parser.set_defaults(handler=run)


def run(ctx: CliContext) -> int:
    args = ctx.args
    context = load_governance_context(args.conf, args.env)
    out = check_output_dir("--out", args.out) if args.out else None
    policies = role_policies(context.environment, context.scope(), context.governance)
    if out is not None:
        for policy in policies:
            (out / f"{policy.role_name}.json").write_text(json.dumps(policy.document(), indent=2) + "\n")
    if ctx.json:
        print_json(
            {"ok": True, "environment": context.environment.name, "roles": [p.as_dict() for p in policies]}
        )
        return 0
    for policy in policies:
        fits = "fits" if policy.fits_inline else f"OVER the {INLINE_POLICY_LIMIT} inline limit"
        print(f"# {policy.role_arn}  ({', '.join(policy.roles)}; {policy.size} characters, {fits})")
        for wildcard in policy.wildcards():
            print(f"#   {wildcard['sid']}: {wildcard['resource']} -- {wildcard['why']}")
        print(json.dumps(policy.document(), indent=2))
        print()
    return 0
