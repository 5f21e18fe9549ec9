"""``lean-ops replay``: re-process RETRY-class quarantine rows through curation."""

from __future__ import annotations

import argparse

from lean_ops_spark.catalog.naming import topic_tables
from lean_ops_spark.cli.context import CliContext, positive_int
from lean_ops_spark.cli.output import format_table, print_json
from lean_ops_spark.curation.replay import DEFAULT_MAX_ATTEMPTS, run_replay
from lean_ops_spark.metrics import build_sink

HELP = "replay a topic's pending RETRY quarantine rows (e.g. after a contract fix)"


def register(
    subparsers: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser
) -> None:
    parser = subparsers.add_parser(
        "replay",
        parents=[common],
        help=HELP,
        description=HELP + ". Rows that now pass are merged into curated (newest version wins) and "
        "marked replayed; the rest get an attempt count, and are exhausted after --max-attempts. "
        "The counts go to the profile's metrics sink. On Glue, run the curation job with "
        "--replay true (and --topic).",
    )
    parser.add_argument("--topic", required=True, help="a configured topic")
    parser.add_argument(
        "--max-attempts",
        type=positive_int,
        default=DEFAULT_MAX_ATTEMPTS,
        help=f"attempts before a row is exhausted, at least 1 (default {DEFAULT_MAX_ATTEMPTS})",
    )
    parser.set_defaults(handler=run)


def run(ctx: CliContext) -> int:
    ctx.config.topic(ctx.args.topic)
    tables = topic_tables(ctx.config.profile, ctx.args.topic)
    with ctx.tables_required(ctx.args.topic, tables.curated, tables.quarantine):
        result = run_replay(
            ctx.spark(),
            ctx.config,
            ctx.args.topic,
            max_attempts=ctx.args.max_attempts,
            metrics=build_sink(ctx.config.profile.metrics, region=ctx.config.profile.region),
        )
    if ctx.json:
        print_json({"ok": True, **result.as_dict()})
        return 0
    print(
        format_table(
            ["pending", "replayed", "still pending", "exhausted", "dropped"],
            [[result.pending, result.replayed, result.still_pending, result.exhausted, result.dropped]],
        )
    )
    if result.curated_snapshot_id:
        print(f"curated snapshot {result.curated_snapshot_id}")
    return 0
