"""``lean-ops drift``: the drift between a topic's latest raw data and its contract (reads only)."""

from __future__ import annotations

import argparse

from lean_ops_spark.cli.context import CliContext
from lean_ops_spark.cli.output import format_table, print_json
from lean_ops_spark.drift.handler import DriftReport, detect_drift

HELP = "report schema drift between a topic's latest raw data and its contract; writes nothing"


def register(
    subparsers: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser
) -> None:
    parser = subparsers.add_parser(
        "drift",
        parents=[common],
        help=HELP,
        description=HELP + ". Reads what the next curation run would read (else the newest raw "
        "append), compares the payloads (nested fields included) with the contract and the curated "
        "table, and says what the topic's drift_mode would do (evolve | rescue | fail). Exit 0 "
        "without drift, 1 with drift.",
    )
    parser.add_argument("--topic", required=True, help="a configured topic")
    parser.set_defaults(handler=run)


def _print(report: DriftReport) -> None:
    print(
        f"{report.topic} (drift_mode {report.drift_mode}): {report.records_read} raw records read, "
        f"{report.observed.records} observed; {report.raw_range}"
    )
    if not report.plan.decisions:
        print("no drift: the payloads match the contract and the curated table")
    else:
        print(
            format_table(
                ["field", "kind", "contract", "observed", "records", "source", "would", "note"],
                [
                    [
                        d.drift.field_path,
                        d.drift.kind.value,
                        d.drift.old_type or "-",
                        d.drift.new_type or "-",
                        f"{d.drift.records}/{d.drift.observed}" if d.drift.observed else "",
                        d.drift.source.value,
                        d.action.value,
                        d.note,
                    ]
                    for d in report.plan.decisions
                ],
            )
        )
    for statement in report.statements:
        print(f"would run: {statement}")
    for column, records in sorted(report.observed.lossy_records.items()):
        print(f"{column}: {records} record(s) parse only partly (kept in _rescued_data by curation)")


def run(ctx: CliContext) -> int:
    ctx.config.topic(ctx.args.topic)  # unknown topic -> ConfigError before Spark starts
    report = detect_drift(ctx.spark(), ctx.config, ctx.args.topic)
    if ctx.json:
        print_json({"ok": True, **report.as_dict()})
    else:
        _print(report)
    return 1 if report.drifted else 0
