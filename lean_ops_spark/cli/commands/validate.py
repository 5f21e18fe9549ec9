"""``lean-ops validate``: load and check the configuration without starting Spark."""

from __future__ import annotations

import argparse
from typing import Any

from lean_ops_spark.cli.context import CliContext
from lean_ops_spark.cli.output import format_table, print_json

HELP = "load and validate conf/ (profile, topic contracts, maintenance policy); no Spark"


def register(
    subparsers: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser
) -> None:
    parser = subparsers.add_parser("validate", parents=[common], help=HELP, description=HELP)
    parser.set_defaults(handler=run)


def run(ctx: CliContext) -> int:
    config = ctx.config
    topics: list[dict[str, Any]] = [
        {
            "topic": c.topic,
            "key": list(c.key),
            "ordering_column": c.ordering_column,
            "partition": c.partition.spark_ddl(),
            "columns": len(c.curated_columns()),
            "drift_mode": c.drift_mode.value,
            "error_rate_threshold": c.error_rate_threshold,
            "source": c.source,
        }
        for c in config.topics.values()
    ]
    if ctx.json:
        print_json(
            {"ok": True, "profile": config.profile.name, "catalog": config.profile.catalog, "topics": topics}
        )
        return 0
    print(f"profile {config.profile.name} ({config.profile.kind}), catalog {config.profile.catalog}: OK")
    print(
        format_table(
            ["topic", "key", "ordering", "partition", "columns", "drift", "max error rate"],
            [
                [
                    t["topic"],
                    ",".join(t["key"]),
                    t["ordering_column"],
                    t["partition"],
                    t["columns"],
                    t["drift_mode"],
                    t["error_rate_threshold"],
                ]
                for t in topics
            ],
        )
    )
    return 0
