"""``lean-ops curate``: run curation for a topic (raw -> curated + quarantine)."""

from __future__ import annotations

import argparse
from typing import Any

from lean_ops_spark.cli.context import CliContext, positive_int
from lean_ops_spark.cli.output import format_table, print_json
from lean_ops_spark.curation.pipeline import CurationOptions, CurationResult, run_curation
from lean_ops_spark.metrics import build_sink

HELP = "curate the next raw batch of a topic: parse, type, rescue, quarantine, dedupe, MERGE"


def register(
    subparsers: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser
) -> None:
    parser = subparsers.add_parser(
        "curate",
        parents=[common],
        help=HELP,
        description=HELP + ". Reads raw incrementally from the checkpoint committed in curated, "
        "commits data and checkpoint together, and prints the record ledger "
        "(read = upserted + superseded + stale + quarantined). --all-batches repeats until the "
        "backlog is drained.",
    )
    parser.add_argument("--topic", required=True, help="a configured topic")
    parser.add_argument(
        "--max-snapshots",
        type=positive_int,
        help="raw snapshots per run, at least 1 (default: the contract's)",
    )
    parser.add_argument(
        "--max-records",
        type=positive_int,
        help="about this many records per run, at least 1 (default: the contract's)",
    )
    parser.add_argument("--run-id", help="run id to record in the curated snapshot (default: generated)")
    parser.add_argument("--all-batches", action="store_true", help="run again until no raw data is pending")
    parser.set_defaults(handler=run)


def _print(result: CurationResult) -> None:
    if result.status == "no_new_data":
        print(f"{result.topic}: no new raw data (curated snapshot {result.curated_snapshot_id})")
        return
    ledger = result.ledger
    assert ledger is not None
    print(
        f"{result.topic}: run {result.run_id} committed curated snapshot {result.curated_snapshot_id} "
        f"(raw up to {result.raw_end_snapshot_id}) in {result.duration_seconds:.1f}s"
    )
    rows: list[list[Any]] = [
        ["read", ledger.read],
        ["upserted (inserted / updated)", f"{ledger.upserted} ({ledger.inserted} / {ledger.updated})"],
        ["superseded in batch", ledger.superseded_in_batch],
        ["stale (curated had newer)", ledger.stale],
        *[[f"quarantined {cls}", n] for cls, n in sorted(ledger.quarantined_by_class.items())],
        ["records with rescued data", ledger.rescued_records],
    ]
    print(format_table(["ledger", "records"], rows))
    if ledger.quarantined_by_reason:
        print(
            "quarantine reasons: "
            + ", ".join(f"{k}={v}" for k, v in sorted(ledger.quarantined_by_reason.items()))
        )
    if ledger.rescued_fields:
        print("rescued fields: " + ", ".join(f"{k}={v}" for k, v in ledger.rescued_fields.items()))
    print(
        f"error rate {result.error_rate:.2%}; backlog {result.backlog_snapshots} snapshots / "
        f"{result.backlog_records} records"
    )


def run(ctx: CliContext) -> int:
    args = ctx.args
    ctx.config.topic(args.topic)
    options = CurationOptions(
        max_snapshots=args.max_snapshots, max_records=args.max_records, run_id=args.run_id
    )
    sink = build_sink(ctx.config.profile.metrics, region=ctx.config.profile.region)
    results: list[CurationResult] = []
    try:
        while True:
            result = run_curation(ctx.spark(), ctx.config, args.topic, options=options, metrics=sink)
            results.append(result)
            if not ctx.json:
                _print(result)
            if not args.all_batches or result.status != "committed" or result.backlog_snapshots == 0:
                break
            options = CurationOptions(max_snapshots=args.max_snapshots, max_records=args.max_records)
    except BaseException:
        # The batches committed before the failing one stay committed: the --json error says so.
        if results:
            ctx.partial_result = {"runs": [r.as_dict() for r in results]}
        raise
    if ctx.json:
        print_json({"ok": True, "runs": [r.as_dict() for r in results]})
    return 0
