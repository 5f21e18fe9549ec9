"""``lean-ops tables``: list the configured tables with snapshot, rows and files (PyIceberg)."""

from __future__ import annotations

import argparse
import shlex
from pathlib import Path

from lean_ops_spark.catalog.inventory import TableInfo, describe_table, describe_tables
from lean_ops_spark.catalog.pyiceberg_catalog import open_pyiceberg_catalog
from lean_ops_spark.cli.context import CliContext
from lean_ops_spark.cli.output import format_table, print_json
from lean_ops_spark.config.sources import open_config_source
from lean_ops_spark.errors import ConfigError
from lean_ops_spark.semantic.tables import model_tables

HELP = (
    "list each topic's raw, curated and quarantine table and the semantic tables of its models: "
    "current snapshot id, rows, data/delete files, size"
)


def register(
    subparsers: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser
) -> None:
    parser = subparsers.add_parser(
        "tables",
        parents=[common],
        help=HELP,
        description=HELP + ". Read from snapshot summaries through PyIceberg: no Spark, no data scan. "
        "A semantic table (conf/semantic/<topic>.yaml) is created by its topic's first semantic run.",
    )
    parser.add_argument("--topics", nargs="+", metavar="TOPIC", help="only these topics (default: all)")
    parser.set_defaults(handler=run)


def _semantic_command(ctx: CliContext, topic: str) -> str:
    """``lean-ops semantic --topic T``, with ``--home`` as ``init_command`` has it."""
    words = ["lean-ops", "semantic", "--topic", topic]
    if Path(ctx.args.home) != Path(".lean-ops"):
        words += ["--home", ctx.args.home]
    return shlex.join(words)


def run(ctx: CliContext) -> int:
    config = ctx.config
    for topic in ctx.args.topics or []:
        config.topic(topic)
    ctx.require_catalog()  # names the init of this home (``--home``), not of the default one
    catalog = open_pyiceberg_catalog(config.profile, ctx.home)
    source = open_config_source(config.root or "conf")
    infos: list[TableInfo] = []
    listed: set[str] = set()
    for topic in ctx.args.topics or sorted(config.topics):
        infos.extend(describe_tables(catalog, config, [topic]))
        try:
            models = model_tables(source, config.profile, topic)
        except ConfigError as exc:  # the other tables are still worth listing; validate names it
            ctx.progress(f"semantic tables of topic {topic} not listed: {exc}")
            continue
        for ref in models:
            if ref.sql not in listed:  # two topics' models cannot share a table; list it once anyway
                listed.add(ref.sql)
                infos.append(describe_table(catalog, ref))
    if ctx.json:
        print_json({"ok": True, "tables": [i.as_dict() for i in infos]})
        return 0
    print(
        format_table(
            ["table", "layer", "snapshot", "rows", "data files", "delete files", "MB"],
            [
                [
                    i.table,
                    i.layer,
                    i.current_snapshot_id if i.exists else "(missing)",
                    i.records,
                    i.data_files,
                    i.delete_files,
                    f"{i.size_bytes / 1e6:.2f}",
                ]
                for i in infos
            ],
        )
    )
    missing = [i.table for i in infos if not i.exists and i.layer != "semantic"]
    if missing:
        print(f"{len(missing)} table(s) missing: run `{ctx.init_command()}`")
    not_created = [i for i in infos if not i.exists and i.layer == "semantic"]
    if not_created:
        commands = ", ".join(
            f"`{_semantic_command(ctx, topic)}`"
            for topic in sorted({i.topic for i in not_created if i.topic is not None})
        )
        print(
            f"{len(not_created)} semantic table(s) missing: the first semantic run of their topic "
            f"creates them, once its curated table has data ({commands})"
        )
    return 0
