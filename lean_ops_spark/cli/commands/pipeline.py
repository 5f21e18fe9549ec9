"""``lean-ops pipeline``: the state machine, run locally for every topic with local bindings."""

from __future__ import annotations

import argparse

from lean_ops_spark.cli.context import CliContext
from lean_ops_spark.cli.output import format_table, print_json
from lean_ops_spark.config.environment import load_environment
from lean_ops_spark.orchestration.local_runner import ExecutionEvent
from lean_ops_spark.orchestration.pipeline import run_pipeline
from lean_ops_spark.orchestration.snapshots import open_snapshot_source

HELP = "run the pipeline locally, end to end, for every topic: the deployed state machine, local tasks"


def register(
    subparsers: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser
) -> None:
    parser = subparsers.add_parser(
        "pipeline",
        parents=[common],
        help=HELP,
        description=HELP + ". Walks the same Step Functions definition that deploy ships (one "
        "execution per topic) with GetAllCheckpoints/ResolveCuratedSnapshot on the local catalog "
        "and the curation/semantic jobs as local Spark calls. Progress per state on stderr.",
    )
    parser.add_argument("--topics", nargs="+", metavar="TOPIC", help="only these topics (default: all)")
    parser.add_argument(
        "--env",
        metavar="NAME",
        help="render with this environment's thresholds; with governance/<env>.yaml's snowflake: section the "
        "semantic job also writes the Snowflake schema refresh SQL under <home>/snowflake/ (default: built-in local)",
    )
    parser.set_defaults(handler=run)


def _describe(event: ExecutionEvent) -> str | None:
    if event.kind == "entered":
        return f"-> {event.state} ({event.detail})"
    if event.kind in ("retry", "caught"):
        return f"   {event.state}: {event.kind}: {event.detail}"
    if event.kind in ("succeeded", "failed"):
        return f"   {event.detail}"
    return None


def run(ctx: CliContext) -> int:
    config = ctx.config
    topics = ctx.args.topics or sorted(config.topics)
    for topic in topics:
        config.topic(topic)
    environment = load_environment(ctx.args.conf, ctx.args.env) if ctx.args.env else None
    # Once, before any topic runs: not a failed GetAllCheckpoints per topic, nor missing jars
    # found only when a topic first needs Spark (after others finished without it).
    ctx.require_local_runtime()

    def progress(topic: str, event: ExecutionEvent) -> None:
        line = _describe(event)
        if line is not None:
            ctx.progress(f"[{topic}] {line}")

    result = run_pipeline(
        config,
        open_snapshot_source(config.profile, ctx.home.catalog_db),
        topics,
        spark=ctx.spark,
        environment=environment,
        job_defaults={"home": str(ctx.home.root)},
        on_event=progress,
    )
    if ctx.json:
        print_json({"ok": result.ok, "topics": [t.as_dict() for t in result.topics]})
        return 0 if result.ok else 1
    rows = []
    for topic_run in result.topics:
        summary = topic_run.as_dict()
        jobs = "; ".join(
            f"{j['job']}: "
            + ", ".join(f"{k}={v}" for k, v in sorted(j["summary"].items()) if not isinstance(v, dict))
            for j in topic_run.jobs
        )
        rows.append([topic_run.topic, summary["status"], summary["outcome"], summary["rounds"], jobs or "-"])
    print(
        format_table(["topic", "status", "path taken", "rounds", "jobs (ledger, snapshots, drift, DQ)"], rows)
    )
    # Why a topic failed, also when jobs before the failing step succeeded.
    for topic_run in result.topics:
        if not topic_run.ok:
            execution = topic_run.execution
            print(f"{topic_run.topic} {execution.status}: {execution.error}: {execution.cause}")
    return 0 if result.ok else 1
