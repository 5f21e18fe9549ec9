"""``lean-ops deploy --env <name>``: ship the wheel, scripts, config, Lambdas, state machine, schedules."""

from __future__ import annotations

import argparse
from pathlib import Path

from lean_ops_spark.cli.context import CliContext
from lean_ops_spark.cli.output import format_table, print_json
from lean_ops_spark.config import load_project
from lean_ops_spark.config.environment import load_environment
from lean_ops_spark.deploy import AwsClients, DeploymentInputs, apply_plan, build_wheel, plan_deployment

HELP = "deploy an environment to AWS: only what changed is created or updated (idempotent)"


def register(
    subparsers: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser
) -> None:
    parser = subparsers.add_parser(
        "deploy",
        parents=[common],
        help=HELP,
        description=HELP + ". Reads <conf>/environments/<env>.yaml, builds the wheel, uploads it with "
        "jobs/*.py and conf/ to S3 (compared by content hash), and creates or updates the Glue jobs "
        "(Glue 5.x, --datalake-formats iceberg), the two Lambdas, the state machine and the "
        "EventBridge Scheduler schedules. What the environment deployed before and no longer has is "
        "deleted: conf/ files removed from the checkout, wheels older than the previous one (kept for job "
        "runs started before the deploy), schedules of removed topics, "
        "and after a rename of state_machine.name the old state machine and its schedules (one with "
        "running executions is reported as stale and left for the next deploy). "
        "Warnings (a curation or semantic job with max_concurrent_runs below the number of deployed "
        'topics) are printed after the plan and listed under "warnings" with --json; they stop nothing. '
        "--dry-run prints the plan and changes nothing.",
    )
    parser.add_argument(
        "--env", required=True, metavar="NAME", help="environment file under <conf>/environments/"
    )
    parser.add_argument("--dry-run", action="store_true", help="compute and print the plan only")
    parser.add_argument(
        "--wheel", metavar="PATH", help="a prebuilt lean_ops_spark wheel (default: build one)"
    )
    parser.add_argument(
        "--project-root", default=".", metavar="DIR", help="the checkout holding jobs/ and orchestration/"
    )
    parser.set_defaults(handler=run)


def run(ctx: CliContext) -> int:
    args = ctx.args
    environment = load_environment(args.conf, args.env)
    project = load_project(args.conf, environment.profile)
    topics = environment.selected_topics(list(project.topics))
    root = Path(args.project_root).expanduser().resolve()
    if args.wheel:
        wheel = Path(args.wheel).expanduser().resolve()
    else:
        ctx.progress("building the wheel ...")
        wheel = build_wheel(root)
    inputs = DeploymentInputs(
        environment=environment,
        profile=project.profile,
        topics=tuple(topics),
        project_root=root,
        conf_root=Path(args.conf).expanduser().resolve(),
        wheel=wheel,
    )
    plan = plan_deployment(inputs, AwsClients.for_region(environment.region))
    if not args.dry_run:
        apply_plan(plan, on_change=lambda c: ctx.progress(f"{c.action:9} {c.kind:16} {c.name}"))
    if ctx.json:
        print_json(
            {
                "ok": True,
                "environment": environment.name,
                "dry_run": bool(args.dry_run),
                "counts": plan.counts(),
                "changes": [c.as_dict() for c in plan.changes],
                "warnings": list(plan.warnings),
            }
        )
        return 0
    print(
        format_table(
            ["kind", "name", "action", "changed"],
            [[c.kind, c.name, c.action, ", ".join(c.changed)] for c in plan.changes],
        )
    )
    for warning in plan.warnings:
        print(f"warning: {warning}")
    summary = ", ".join(f"{n} {action}" for action, n in sorted(plan.counts().items()))
    print(f"{environment.name}: {summary}" + (" (dry run: nothing changed)" if args.dry_run else ""))
    return 0
