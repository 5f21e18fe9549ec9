"""``lean-ops maintain``: health-driven Iceberg maintenance, with what ran, why, and health before/after."""

from __future__ import annotations

import argparse
from pathlib import Path

from lean_ops_spark.cli.context import CliContext
from lean_ops_spark.cli.output import check_output_file, format_table, print_json
from lean_ops_spark.maintenance.policy import FREQUENCIES, OPERATION_ORDER
from lean_ops_spark.maintenance.report_html import render_health_html
from lean_ops_spark.maintenance.runner import MaintenanceReport, MaintenanceRequest, maintain, resolve_tables
from lean_ops_spark.metrics import MetricSink, NullSink, build_sink

HELP = "run the maintenance procedures each table's measured health calls for"


def register(
    subparsers: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser
) -> None:
    parser = subparsers.add_parser(
        "maintain",
        parents=[common],
        help=HELP,
        description=HELP + " (compaction of hot partitions, position-delete rewrites, manifest "
        "rewrites, checkpoint-safe snapshot expiry, orphan removal), and report each decision. "
        "Exit 1 if an operation failed; a commit conflict with a concurrent writer is reported "
        "and retried at the next run.",
    )
    which = parser.add_mutually_exclusive_group()
    which.add_argument(
        "--table", nargs="+", metavar="T", help="database.table (default: every configured table)"
    )
    which.add_argument("--all", action="store_true", help="every configured table (the default)")
    parser.add_argument(
        "--dry-run", action="store_true", help="measure and plan only; orphan removal lists what would go"
    )
    parser.add_argument(
        "--ops", nargs="+", choices=OPERATION_ORDER, metavar="OP", help="only these operations"
    )
    parser.add_argument(
        "--frequency",
        choices=FREQUENCIES,
        help="the schedule this run serves: daily runs hourly+daily operations, weekly runs all "
        "(default: every enabled operation)",
    )
    parser.add_argument("--html", metavar="PATH", help="also write an HTML report (health after + decisions)")
    parser.add_argument("--no-metrics", action="store_true", help="do not emit metrics")
    parser.set_defaults(handler=run)


def _print_text(report: MaintenanceReport) -> None:
    for table in report.tables:
        print(f"== {table.table.sql} [{table.status}]" + (f": {table.error}" if table.error else ""))
        for change in table.properties:
            print(f"   property {change.describe()}")
        if table.protection is not None and (table.protection.protected or table.protection.blocked):
            print(f"   checkpoints: {table.protection.describe()}")
        if table.operations:
            print(
                format_table(
                    ["operation", "status", "why", "result"],
                    [
                        [o.plan.name, o.status, o.plan.reason, o.outcome.summary() if o.outcome else ""]
                        for o in table.operations
                    ],
                )
            )
        before, after = table.health_before, table.health_after
        if before is not None and after is not None:
            print(
                f"   data files {before.data_file_count} -> {after.data_file_count}, "
                f"small {before.small_file_count} -> {after.small_file_count}, "
                f"delete files {before.delete_file_count} -> {after.delete_file_count}, "
                f"manifests {before.manifest_count} -> {after.manifest_count}, "
                f"snapshots {before.snapshot_count} -> {after.snapshot_count}"
            )
    mode = "dry run, nothing changed" if report.dry_run else "done"
    print(f"{len(report.tables)} table(s), {report.seconds:.1f}s, {report.conflicts} conflict(s): {mode}")


def run(ctx: CliContext) -> int:
    config = ctx.config
    request = MaintenanceRequest(
        tables=tuple(ctx.args.table or ()),
        ops=frozenset(ctx.args.ops) if ctx.args.ops else None,
        dry_run=ctx.args.dry_run,
        frequency=ctx.args.frequency,
    )
    resolve_tables(config, request.tables)  # unknown names fail before Spark starts
    if ctx.args.html:
        check_output_file("--html", ctx.args.html)
    profile = config.profile
    sink: MetricSink = (
        NullSink() if ctx.args.no_metrics else build_sink(profile.metrics, region=profile.region)
    )
    report = maintain(ctx.spark(), config, request, sink=sink)
    if ctx.args.html:
        healths = [h for t in report.tables if (h := t.health_after or t.health_before) is not None]
        html = render_health_html(healths, title="Iceberg maintenance run", maintenance=report)
        Path(ctx.args.html).write_text(html, encoding="utf-8")
    if ctx.json:
        print_json({**report.as_dict(), **({"html": ctx.args.html} if ctx.args.html else {})})
    else:
        _print_text(report)
    return 0 if report.ok else 1
