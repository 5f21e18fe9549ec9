"""``lean-ops semantic``: run a topic's semantic models (curated -> audited semantic tables)."""

from __future__ import annotations

import argparse

from lean_ops_spark.cli.context import CliContext
from lean_ops_spark.cli.output import format_table, print_json
from lean_ops_spark.metrics import build_sink
from lean_ops_spark.semantic.job import SemanticResult, run_semantic

HELP = "run a topic's semantic models: changed curated rows -> audit branch -> suite -> publish"


def register(
    subparsers: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser
) -> None:
    parser = subparsers.add_parser(
        "semantic",
        parents=[common],
        help=HELP,
        description=HELP + ". Reads curated pinned to --curated-snapshot-id (default: its current "
        "snapshot), processes only row versions written since each table's checkpoint, writes to "
        "the table's audit branch, runs its data-quality suite there and fast-forwards main only "
        "if it passes. Exit 1 when a suite fails (main unchanged, branch kept).",
    )
    parser.add_argument("--topic", required=True, help="a configured topic")
    parser.add_argument("--curated-snapshot-id", type=int, help="curated snapshot to read (default: current)")
    parser.add_argument("--run-id", help="run id to record in the semantic snapshots (default: generated)")
    parser.set_defaults(handler=run)


def _print(result: SemanticResult) -> None:
    print(
        f"{result.topic}: {result.status} (curated {result.curated_table} "
        f"snapshot {result.curated_snapshot_id}) in {result.duration_seconds:.1f}s"
    )
    if result.reason:
        print(result.reason)
    if result.models:
        print(
            format_table(
                ["table", "kind", "status", "window", "rows merged", "data quality", "snapshot"],
                [
                    [
                        m.table,
                        m.kind,
                        m.status,
                        m.window,
                        m.rows_merged,
                        "-" if m.dq is None else m.dq.summary(),
                        m.semantic_snapshot_id or "",
                    ]
                    for m in result.models
                ],
            )
        )
    for model in result.models:
        if model.status == "audit_failed" and model.dq is not None:
            print(f"{model.table}: main unchanged; branch {model.branch} kept for inspection")
            for failed in model.dq.failed:
                print(f"  failed: {failed.describe()}")


def run(ctx: CliContext) -> int:
    args = ctx.args
    ctx.config.topic(args.topic)
    sink = build_sink(ctx.config.profile.metrics, region=ctx.config.profile.region)
    try:
        result = run_semantic(
            ctx.spark(),
            ctx.config,
            args.topic,
            curated_snapshot_id=args.curated_snapshot_id,
            run_id=args.run_id,
            metrics=sink,
        )
    finally:
        sink.flush()
    if ctx.json:
        print_json({"ok": result.ok, **result.as_dict()})
    else:
        _print(result)
    return 0 if result.ok else 1
