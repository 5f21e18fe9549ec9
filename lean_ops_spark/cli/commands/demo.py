"""``lean-ops demo``: the main job on the embedded default, end to end."""

from __future__ import annotations

import argparse
from typing import Any

from lean_ops_spark.cli.context import CliContext
from lean_ops_spark.cli.output import format_table, print_json
from lean_ops_spark.errors import ConfigError
from lean_ops_spark.orchestration.demo import run_demo
from lean_ops_spark.orchestration.local_runner import ExecutionEvent

HELP = "run everything locally: bootstrap, seed both topics with faults, pipeline, maintenance, report"


def register(
    subparsers: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser
) -> None:
    parser = subparsers.add_parser(
        "demo",
        parents=[common],
        help=HELP,
        description=HELP + ". Uses the local profile's home (./.lean-ops by default): the SQLite "
        "catalog and warehouse stay there to explore afterwards (lean-ops tables, health, curate ...). "
        "A small per-run cap makes the pipeline loop over the backlog.",
    )
    parser.add_argument("--events", type=int, default=2000, help="events per topic (default 2000)")
    parser.add_argument("--appends", type=int, default=6, help="raw commits per topic (default 6)")
    parser.add_argument(
        "--max-snapshots-per-run",
        type=int,
        default=2,
        help="curation cap per run, to show the backlog loop (default 2)",
    )
    parser.add_argument(
        "--seed",
        type=int,
        default=None,
        help="the generator's seed (default: a new one, printed, so a second demo adds new events)",
    )
    parser.set_defaults(handler=run)


def _states(ctx: CliContext) -> Any:
    def on_event(topic: str, event: ExecutionEvent) -> None:
        if event.kind == "entered":
            ctx.progress(f"  [{topic}] {event.state}")

    return on_event


def run(ctx: CliContext) -> int:
    args = ctx.args
    if ctx.config.profile.kind != "local":
        raise ConfigError("the demo runs on the local profile only (--profile local)")
    if min(args.events, args.appends, args.max_snapshots_per_run) < 1:
        raise ConfigError("--events, --appends and --max-snapshots-per-run must be at least 1")
    report = run_demo(
        ctx.config,
        ctx.home,
        ctx.spark,
        events=args.events,
        appends=args.appends,
        max_snapshots_per_run=args.max_snapshots_per_run,
        seed=args.seed,
        say=ctx.progress,
        on_event=_states(ctx),
    )
    if ctx.json:
        print_json(report.as_dict())
        return 0 if report.pipeline.ok else 1
    rows = []
    for topic_run in report.pipeline.topics:
        summary = topic_run.as_dict()
        curation = [j["summary"] for j in topic_run.jobs if j["job"] == "curation"]
        ledgers = [c["ledger"] for c in curation if c.get("ledger")]
        rows.append(
            [
                topic_run.topic,
                summary["status"],
                summary["outcome"],
                summary["rounds"],
                sum(ledger["read"] for ledger in ledgers),
                sum(ledger["upserted"] for ledger in ledgers),
                sum(ledger["quarantined"] for ledger in ledgers),
                sum(ledger["superseded_in_batch"] + ledger["stale"] for ledger in ledgers),
                sum(ledger["rescued_records"] for ledger in ledgers),
            ]
        )
    print(
        format_table(
            ["topic", "status", "path", "rounds", "read", "upserted", "quarantined", "superseded", "rescued"],
            rows,
        )
    )
    for topic_run in report.pipeline.topics:
        if not topic_run.ok:
            print(f"{topic_run.topic}: {topic_run.as_dict()['cause']}")
    done = [
        op
        for table in report.maintenance.get("tables", [])
        for op in table.get("operations", [])
        if op.get("status") not in (None, "skipped")
    ]
    print(
        f"maintenance: {len(done)} operation(s) run over {len(report.maintenance.get('tables', []))} tables"
    )
    print(f"health report: {report.health_report}")
    print(f"done in {report.duration_seconds:.0f}s; explore with `lean-ops tables --home {ctx.home.root}`")
    return 0 if report.pipeline.ok else 1
