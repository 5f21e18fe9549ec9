"""``lean-ops seed``: append synthetic events with injected faults to a raw staging table."""

from __future__ import annotations

import argparse
import math
from datetime import datetime, timezone

from lean_ops_spark.catalog.naming import topic_tables
from lean_ops_spark.cli.context import CliContext
from lean_ops_spark.cli.output import format_table, print_json
from lean_ops_spark.errors import ConfigError
from lean_ops_spark.raw import FaultKind, fault_rates, generate_events, new_seed
from lean_ops_spark.raw.writer import append_raw

HELP = "append synthetic events (with injected faults) to a topic's raw staging table"


def _rate(text: str) -> float:
    """A share of the events: a number from 0 to 1 (argparse names the option)."""
    try:
        rate = float(text)
    except ValueError:
        rate = math.nan
    if not 0.0 <= rate <= 1.0:  # nan too
        raise argparse.ArgumentTypeError(f"expected a share between 0 and 1, e.g. 0.05; got {text!r}")
    return rate


def _fault(text: str) -> tuple[FaultKind, float]:
    name, equals, rate = text.partition("=")
    try:
        kind = FaultKind(name.strip())
    except ValueError:
        kinds = ", ".join(k.value for k in FaultKind)
        raise argparse.ArgumentTypeError(
            f"expected KIND=RATE with KIND one of {kinds}; got {text!r}"
        ) from None
    if not equals:
        raise argparse.ArgumentTypeError(f"expected KIND=RATE, e.g. {kind.value}=0.01; got {text!r}")
    try:
        return kind, _rate(rate)
    except argparse.ArgumentTypeError:
        raise argparse.ArgumentTypeError(
            f"the RATE of {kind.value} must be a share between 0 and 1, e.g. {kind.value}=0.01; got {text!r}"
        ) from None


def _instant(text: str) -> datetime:
    """An ISO 8601 instant; without a UTC offset it is UTC (not the machine's local time)."""
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected an ISO 8601 time, e.g. 2026-11-20T12:00:00Z; got {text!r}"
        ) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def register(
    subparsers: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser
) -> None:
    parser = subparsers.add_parser(
        "seed",
        parents=[common],
        help=HELP,
        description=HELP + ". Writes several small appends, as Firehose's buffering does, and "
        "reports how many records of each fault kind it injected and where each must end up "
        "(curated, rescued, superseded, or quarantined with a reason).",
    )
    parser.add_argument("--topic", required=True, help="a configured topic")
    parser.add_argument("--events", type=int, default=1000, help="logical events to generate (default 1000)")
    parser.add_argument(
        "--error-rate",
        type=_rate,
        default=0.0,
        help="share of events (0 to 1) with an error fault, split evenly over the error kinds (default 0)",
    )
    parser.add_argument(
        "--duplicates",
        type=_rate,
        default=0.0,
        help="share of events (0 to 1) re-delivered or re-sent with a newer version (default 0)",
    )
    parser.add_argument(
        "--late", type=_rate, default=0.0, help="share of events (0 to 1) months late (default 0)"
    )
    parser.add_argument(
        "--fault",
        type=_fault,
        action="append",
        default=[],
        metavar="KIND=RATE",
        help="exact rate for one fault kind (repeatable): " + ", ".join(k.value for k in FaultKind),
    )
    parser.add_argument(
        "--appends", type=int, default=5, help="raw commits to spread the records over (default 5)"
    )
    parser.add_argument(
        "--seed",
        type=int,
        default=None,
        help="random seed: the same seed and --now give the same events (default: a new seed, printed, "
        "so a second run adds new keys and message ids instead of re-sending the first run's)",
    )
    parser.add_argument(
        "--now",
        type=_instant,
        default=None,
        help="the generator's clock, ISO 8601; without an offset it is UTC (default: now)",
    )
    parser.set_defaults(handler=run)


def run(ctx: CliContext) -> int:
    args = ctx.args
    contract = ctx.config.topic(args.topic)
    if args.events < 1 or args.appends < 1:
        raise ConfigError("--events and --appends must be at least 1")
    try:
        rates = fault_rates(args.error_rate, args.duplicates, args.late, dict(args.fault))
        seed = args.seed if args.seed is not None else new_seed()
        batch = generate_events(contract, args.events, rates, seed=seed, now=args.now)
    except ValueError as exc:
        raise ConfigError(str(exc)) from exc
    table = topic_tables(ctx.config.profile, args.topic).raw
    with ctx.tables_required(args.topic, table):
        snapshots = append_raw(ctx.spark(), table, batch.records, args.appends)
    report = {**batch.as_dict(), "seed": seed, "table": table.sql, "snapshot_ids": snapshots}
    if ctx.json:
        print_json({"ok": True, **report})
        return 0
    print(
        f"{table.sql}: {len(batch.records)} records for {batch.events} events in {len(snapshots)} appends "
        f"(seed {seed})"
    )
    print(format_table(["fault", "injected"], [[k, v] for k, v in sorted(batch.injected.items()) if v]))
    expected = batch.expected
    print(
        f"expected after curation: {expected.curated_keys} keys in curated ({expected.rescued} with rescued "
        f"data), {expected.superseded} superseded, quarantined {dict(sorted(expected.quarantined.items()))}"
    )
    return 0
