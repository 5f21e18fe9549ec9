"""``lean-ops tables``: list the configured tables with snapshot, rows and files (PyIceberg)."""

from __future__ import annotations

import argparse

from lean_ops_spark.catalog.inventory import describe_tables
from lean_ops_spark.catalog.pyiceberg_catalog import open_pyiceberg_catalog
from lean_ops_spark.cli.context import CliContext
from lean_ops_spark.cli.output import format_table, print_json

HELP = (
    "list each topic's raw, curated and quarantine table: current snapshot id, rows, data/delete files, size"
)


def register(
    subparsers: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser
) -> None:
    parser = subparsers.add_parser(
        "tables",
        parents=[common],
        help=HELP,
        description=HELP + ". Read from snapshot summaries through PyIceberg: no Spark, no data scan.",
    )
    parser.add_argument("--topics", nargs="+", metavar="TOPIC", help="only these topics (default: all)")
    parser.set_defaults(handler=run)


def run(ctx: CliContext) -> int:
    config = ctx.config
    for topic in ctx.args.topics or []:
        config.topic(topic)
    ctx.require_catalog()  # names the init of this home (``--home``), not of the default one
    catalog = open_pyiceberg_catalog(config.profile, ctx.home)
    infos = describe_tables(catalog, config, ctx.args.topics)
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
    missing = [i.table for i in infos if not i.exists]
    if missing:
        print(f"{len(missing)} table(s) missing: run `{ctx.init_command()}`")
    return 0
