"""``lean-ops init``: create namespaces and the raw/curated/quarantine tables."""

from __future__ import annotations

import argparse
from dataclasses import asdict

from lean_ops_spark.catalog.bootstrap import bootstrap_tables
from lean_ops_spark.cli.context import CliContext
from lean_ops_spark.cli.output import format_table, print_json

HELP = "create the namespaces and the raw staging, curated and quarantine tables (idempotent)"


def register(
    subparsers: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser
) -> None:
    parser = subparsers.add_parser(
        "init",
        parents=[common],
        help=HELP,
        description=HELP + ". Existing tables keep their data; drifted table properties are "
        "set back to the configured values and reported.",
    )
    parser.add_argument("--topics", nargs="+", metavar="TOPIC", help="only these topics (default: all)")
    parser.set_defaults(handler=run)


def run(ctx: CliContext) -> int:
    topics = ctx.args.topics
    if topics:
        for topic in topics:
            ctx.config.topic(topic)  # unknown topic -> ConfigError before Spark starts
    result = bootstrap_tables(ctx.spark(), ctx.config, topics)
    if ctx.json:
        print_json(
            {
                "ok": True,
                "namespaces": list(result.namespaces),
                "tables": [asdict(t) for t in result.tables],
                "changed": result.changed,
            }
        )
        return 0
    print(
        format_table(
            ["table", "layer", "action", "note"],
            [
                [
                    t.table,
                    t.layer,
                    t.action,
                    "; ".join(
                        filter(
                            None,
                            [
                                f"properties reset: {', '.join(sorted(t.changed_properties))}"
                                if t.changed_properties
                                else "",
                                f"columns missing (drift handles these): {', '.join(t.missing_columns)}"
                                if t.missing_columns
                                else "",
                                f"partitioned by {t.partitioning_differs}, not as configured (left as it is)"
                                if t.partitioning_differs
                                else "",
                            ],
                        )
                    ),
                ]
                for t in result.tables
            ],
        )
    )
    print(f"{result.created} created, {len(result.tables) - result.created} already there")
    return 0
