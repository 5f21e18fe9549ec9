"""Glue / spark-submit entry for health-driven Iceberg maintenance.

Parses arguments, loads config, builds (or adopts) the session, calls
:func:`lean_ops_spark.maintenance.runner.maintain`, prints the report as one JSON line and
exits 0 (ok, conflicts included: they are retried next run) or 1 (an operation failed).

On Glue (``awsglue`` importable) arguments come from ``getResolvedOptions``, which makes
every listed name required: ``--lean_ops_conf`` and ``--lean_ops_profile`` always (the
deploy sets them in DefaultArguments); ``--lean_ops_tables``, ``--lean_ops_ops``,
``--lean_ops_dry_run`` and ``--lean_ops_frequency`` only when present. Elsewhere argparse
takes the same names (or the short aliases below) plus ``--home`` for the local profile.

``frequency`` ``auto`` (the default) makes a run on Sunday (UTC) a weekly run and any other
day a daily run, so one daily schedule also runs the weekly operations once a week.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

REQUIRED = ("lean_ops_conf", "lean_ops_profile")
OPTIONAL = ("lean_ops_tables", "lean_ops_ops", "lean_ops_dry_run", "lean_ops_frequency")
WEEKLY_ON = 6  # Sunday (datetime.weekday)


@dataclass(frozen=True)
class JobArgs:
    conf: str
    profile: str
    tables: tuple[str, ...] = ()
    ops: frozenset[str] | None = None
    dry_run: bool = False
    frequency: str = "auto"
    home: str = ".lean-ops"


def _split(value: str | None) -> tuple[str, ...]:
    if value is None or value.strip().lower() in ("", "all"):
        return ()
    return tuple(v.strip() for v in value.split(",") if v.strip())


def _flag(value: str | None) -> bool:
    return str(value).strip().lower() in ("true", "1", "yes")


def _from_mapping(values: dict[str, Any], home: str = ".lean-ops") -> JobArgs:
    ops = _split(values.get("lean_ops_ops"))
    return JobArgs(
        conf=str(values["lean_ops_conf"]),
        profile=str(values["lean_ops_profile"]),
        tables=_split(values.get("lean_ops_tables")),
        ops=frozenset(ops) if ops else None,
        dry_run=_flag(values.get("lean_ops_dry_run")),
        frequency=str(values.get("lean_ops_frequency") or "auto"),
        home=home,
    )


def parse_glue_args(argv: Sequence[str]) -> JobArgs:
    """Glue: ``getResolvedOptions`` over the required names plus the optional ones present."""
    from awsglue.utils import getResolvedOptions  # type: ignore[import-not-found]

    present = [name for name in OPTIONAL if f"--{name}" in argv]
    return _from_mapping(getResolvedOptions(list(argv), ["JOB_NAME", *REQUIRED, *present]))


def parse_cli_args(argv: Sequence[str]) -> JobArgs:
    """spark-submit / local: the Glue names or short aliases."""
    parser = argparse.ArgumentParser(prog="maintenance_job.py", description=__doc__.splitlines()[0])
    parser.add_argument("--lean_ops_conf", "--conf", dest="lean_ops_conf", default="conf")
    parser.add_argument("--lean_ops_profile", "--profile", dest="lean_ops_profile", default="local")
    parser.add_argument("--lean_ops_tables", "--tables", dest="lean_ops_tables", help="comma list or all")
    parser.add_argument("--lean_ops_ops", "--ops", dest="lean_ops_ops", help="comma list or all")
    parser.add_argument("--lean_ops_dry_run", "--dry-run", dest="lean_ops_dry_run", nargs="?", const="true")
    parser.add_argument("--lean_ops_frequency", "--frequency", dest="lean_ops_frequency", default="auto")
    parser.add_argument("--home", default=os.environ.get("LEAN_OPS_HOME", ".lean-ops"))
    parsed = parser.parse_args(list(argv))
    return _from_mapping(vars(parsed), home=parsed.home)


def parse_args(argv: Sequence[str] | None = None) -> JobArgs:
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        import awsglue.utils  # type: ignore[import-not-found]  # noqa: F401
    except ImportError:
        return parse_cli_args(argv)
    return parse_glue_args([sys.argv[0], *argv])


def resolve_frequency(frequency: str, now: datetime) -> str | None:
    """``auto`` -> weekly on Sundays (UTC), else daily; ``any`` -> None (every operation)."""
    if frequency == "auto":
        return "weekly" if now.astimezone(timezone.utc).weekday() == WEEKLY_ON else "daily"
    return None if frequency == "any" else frequency


def main(argv: Sequence[str] | None = None, *, spark: Any = None) -> int:
    """Run maintenance; ``spark`` lets a caller (tests) pass its session instead of building one."""
    from lean_ops_spark.config import load_project
    from lean_ops_spark.errors import LeanOpsError
    from lean_ops_spark.maintenance.runner import MaintenanceRequest, maintain
    from lean_ops_spark.metrics import build_sink
    from lean_ops_spark.session import LocalHome, build_session

    try:
        args = parse_args(argv)
        config = load_project(
            args.conf, args.profile, iceberg_version=os.environ.get("LEAN_OPS_ICEBERG_VERSION") or None
        )
        now = datetime.now(timezone.utc)
        request = MaintenanceRequest(
            tables=args.tables,
            ops=args.ops,
            dry_run=args.dry_run,
            frequency=resolve_frequency(args.frequency, now),
        )
        session = spark
        if session is None:
            os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
            home = LocalHome.at(args.home) if config.profile.kind == "local" else None
            session = build_session(config.profile, home=home, app_name="lean-ops maintenance")
        sink = build_sink(config.profile.metrics, region=config.profile.region)
        report = maintain(session, config, request, sink=sink)
    except LeanOpsError as exc:
        print(f"maintenance_job: error: {exc}", file=sys.stderr)
        return exc.exit_code
    print(json.dumps(report.as_dict(), sort_keys=True, default=str))
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
