"""``lean-ops validate``: load and check the configuration without starting Spark."""

from __future__ import annotations

import argparse
from typing import Any

from lean_ops_spark.catalog.naming import topic_tables
from lean_ops_spark.cli.context import CliContext
from lean_ops_spark.cli.output import format_table, print_json
from lean_ops_spark.config.models import ProjectConfig
from lean_ops_spark.config.sources import open_config_source
from lean_ops_spark.quality.suites import check_suite_tables, load_suites
from lean_ops_spark.semantic.loader import check_models_and_suites, load_semantic_models

HELP = (
    "load and validate conf/ (profile, topic contracts, maintenance policy, semantic models, "
    "data-quality suites and the tables they name); no Spark"
)


def register(
    subparsers: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser
) -> None:
    parser = subparsers.add_parser("validate", parents=[common], help=HELP, description=HELP)
    parser.set_defaults(handler=run)


def _models_and_suites(config: ProjectConfig, topic: str) -> tuple[int, int]:
    """How many semantic models and suites ``topic`` has, each file parsed and every suite's
    table checked against what it can name (raises ConfigError)."""
    source = open_config_source(config.root or "conf")
    models = load_semantic_models(source, topic)
    semantic = load_suites(source, "semantic", topic)
    check_models_and_suites(models, semantic, config.topic(topic))
    curated = load_suites(source, "curated", topic)
    check_suite_tables(
        curated, {topic_tables(config.profile, topic).curated.name}, f"topic {topic!r}'s curated table"
    )
    return len(models.models) if models else 0, len(semantic) + len(curated)


def run(ctx: CliContext) -> int:
    config = ctx.config
    counts = {topic: _models_and_suites(config, topic) for topic in config.topics}
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
            "semantic_models": counts[c.topic][0],
            "quality_suites": counts[c.topic][1],
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
            [
                "topic",
                "key",
                "ordering",
                "partition",
                "columns",
                "drift",
                "max error rate",
                "models",
                "suites",
            ],
            [
                [
                    t["topic"],
                    ",".join(t["key"]),
                    t["ordering_column"],
                    t["partition"],
                    t["columns"],
                    t["drift_mode"],
                    t["error_rate_threshold"],
                    t["semantic_models"],
                    t["quality_suites"],
                ]
                for t in topics
            ],
        )
    )
    return 0
