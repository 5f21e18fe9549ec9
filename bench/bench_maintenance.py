"""Maintenance benchmark: a raw staging table built from many small appends, before and after one
health-driven maintenance run, side by side in one process.

    .venv/bin/python bench/bench_maintenance.py [--appends 1000] [--rows 50] [--days 4] [--writers 2]

Builds its own temporary home (SQLite catalog + warehouse) with the local profile, creates the
``orders`` raw staging table (partitioned by day), makes ``--appends`` small commits spread
over ``--days`` recent days (one data file each, like Firehose deliveries), then prints data
files, manifests and the time of a full-scan aggregate before and after ``maintain`` (the
shipped policy for the raw layer), plus what the run did, how long it took and what it rewrote.
Goal: >= 10x fewer data files and a >= 10x faster full scan.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import threading
import time
from dataclasses import replace
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

SCAN = (
    "SELECT date(ingestion_ts) AS day, count(*) AS events, count(DISTINCT producer) AS producers, "
    "sum(length(payload)) AS payload_bytes, max(message_id) AS last_id FROM {table} GROUP BY 1"
)


def _append(spark, table: str, index: int, rows: int, days: int) -> None:
    start = index * rows
    spark.range(start, start + rows, numPartitions=1).selectExpr(
        "concat('m-', id) AS message_id",
        "'orders' AS topic",
        "to_json(named_struct('order_id', concat('o-', id), 'customer_id', concat('c-', id % 97), "
        "'status', 'created', 'total_amount', round(id * 0.37, 2), 'note', sha2(cast(id AS string), 256))) AS payload",
        f"current_timestamp() - make_interval(0, 0, 0, {index % days}, 0, 0, id % 3600) AS ingestion_ts",
        "concat('shop-', id % 5) AS producer",
        "1 AS schema_version",
    ).writeTo(table).append()


def _build(spark, table: str, appends: int, rows: int, days: int, writers: int) -> float:
    started = time.monotonic()
    done = [0]
    lock = threading.Lock()
    errors: list[BaseException] = []

    def work(worker: int) -> None:
        try:
            for index in range(worker, appends, writers):
                _append(spark, table, index, rows, days)
                with lock:
                    done[0] += 1
                    if done[0] % 100 == 0:
                        print(f"  {done[0]} appends ({time.monotonic() - started:.0f}s)", flush=True)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(w,)) for w in range(writers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]
    return time.monotonic() - started


def _scan_seconds(spark, table: str, repeat: int) -> tuple[float, int]:
    query = SCAN.format(table=table)
    spark.sql(query).collect()  # warm-up: JIT, metadata caches
    times, events = [], 0
    for _ in range(repeat):
        started = time.monotonic()
        rows = spark.sql(query).collect()
        times.append(time.monotonic() - started)
        events = sum(r["events"] for r in rows)
    return statistics.median(times), events


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--appends", type=int, default=1000, help="small commits (default 1000)")
    parser.add_argument("--rows", type=int, default=50, help="rows per append (default 50)")
    parser.add_argument("--days", type=int, default=4, help="recent days the appends spread over (default 4)")
    parser.add_argument("--writers", type=int, default=2, help="concurrent appending threads (default 2)")
    parser.add_argument("--repeat", type=int, default=3, help="timed scans per side, median (default 3)")
    parser.add_argument("--home", help="keep the catalog here instead of a temporary folder")
    args = parser.parse_args(argv)

    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    from lean_ops_spark.catalog.bootstrap import bootstrap_tables
    from lean_ops_spark.catalog.naming import topic_tables
    from lean_ops_spark.config import Databases, load_project
    from lean_ops_spark.maintenance.health import measure_health
    from lean_ops_spark.maintenance.procedures import RewriteDataFilesResult, RewriteManifestsResult
    from lean_ops_spark.maintenance.runner import MaintenanceRequest, maintain
    from lean_ops_spark.metrics import MemorySink
    from lean_ops_spark.session import LocalHome, build_session

    home_dir = args.home or tempfile.mkdtemp(prefix="bench-maintenance-")
    config = load_project(
        REPO / "conf", "local", iceberg_version=os.environ.get("LEAN_OPS_ICEBERG_VERSION") or None
    )
    config = replace(
        config,
        profile=replace(config.profile, databases=Databases("bench_raw", "bench_curated", "bench_semantic")),
    )
    spark = build_session(
        config.profile,
        home=LocalHome.at(home_dir),
        app_name="bench-maintenance",
        extra_conf={"spark.sql.shuffle.partitions": "2", "spark.default.parallelism": "2"},
    )
    try:
        bootstrap_tables(spark, config, ["orders"])
        raw = topic_tables(config.profile, "orders").raw
        # Concurrent appends race for the catalog pointer; Iceberg retries the losers.
        spark.sql(f"ALTER TABLE {raw.sql} SET TBLPROPERTIES ('commit.retry.num-retries'='50')")
        print(f"Iceberg {config.profile.iceberg_version}, home {home_dir}")
        print(f"building {raw.sql}: {args.appends} appends x {args.rows} rows over {args.days} days ...")
        build_seconds = _build(spark, raw.sql, args.appends, args.rows, args.days, args.writers)

        policy = config.maintenance.for_table(raw.layer, raw.name)
        before = measure_health(spark, raw, policy.thresholds)
        scan_before, events_before = _scan_seconds(spark, raw.sql, args.repeat)

        sink = MemorySink()
        report = maintain(spark, config, MaintenanceRequest(frequency="daily"), sink=sink, tables=[raw])
        table_report = report.table(raw.sql)

        after = measure_health(spark, raw, policy.thresholds)
        scan_after, events_after = _scan_seconds(spark, raw.sql, args.repeat)
    finally:
        spark.stop()
        if not args.home:
            shutil.rmtree(home_dir, ignore_errors=True)

    if events_before != events_after or events_before != args.appends * args.rows:
        print(f"DATA MISMATCH: {events_before} events before, {events_after} after")
        return 1
    print(
        f"\nbuilt in {build_seconds:.0f}s ({args.appends / build_seconds:.1f} commits/s, {args.writers} writers)"
    )
    print(f"\n{'':28}{'before':>12}{'after':>12}{'ratio':>14}")
    rows = [
        ("data files", before.data_file_count, after.data_file_count),
        ("small data files", before.small_file_count, after.small_file_count),
        ("avg data file KiB", before.avg_data_file_bytes / 1024, after.avg_data_file_bytes / 1024),
        ("manifests", before.manifest_count, after.manifest_count),
        ("snapshots", before.snapshot_count, after.snapshot_count),
        ("full-scan aggregate (s)", scan_before, scan_after),
    ]
    for label, b, a in rows:
        if label.startswith("avg"):
            ratio = f"{a / b:.0f}x larger" if b else "-"
        else:
            ratio = f"{b / a:.1f}x" if a else "-"
        fmt = "{:>12.3f}" if isinstance(b, float) else "{:>12}"
        print(f"{label:28}" + fmt.format(b) + fmt.format(a) + f"{ratio:>14}")
    print(f"rows (full scan)            {events_before:>12}{events_after:>12}")

    print(f"\nmaintenance run: {report.seconds:.1f}s, status {table_report.status}")
    for op in table_report.operations:
        line = f"  {op.plan.name:30} {op.status:10}"
        if op.outcome is not None:
            line += f" {op.outcome.seconds:6.1f}s  {op.outcome.summary()}"
        print(line)
        print(f"  {'':30} why: {op.plan.reason}")
    rewrite = table_report.operation("rewrite_data_files").outcome
    manifests = table_report.operation("rewrite_manifests").outcome
    if rewrite is not None and isinstance(rewrite.result, RewriteDataFilesResult):
        r = rewrite.result
        print(
            f"  files rewritten {r.rewritten_data_files} -> {r.added_data_files}, "
            f"bytes rewritten {r.rewritten_bytes / 1e6:.2f} MB"
        )
    if manifests is not None and isinstance(manifests.result, RewriteManifestsResult):
        print(
            f"  manifests rewritten {manifests.result.rewritten_manifests} -> {manifests.result.added_manifests}"
        )
    print(f"  metrics emitted: {len(sink.metrics)}")

    files_ratio = before.data_file_count / max(after.data_file_count, 1)
    scan_ratio = scan_before / scan_after if scan_after else float("inf")
    print(f"\ngoal >= 10x fewer data files: {files_ratio:.1f}x {'MET' if files_ratio >= 10 else 'NOT MET'}")
    print(f"goal >= 10x faster full scan: {scan_ratio:.1f}x {'MET' if scan_ratio >= 10 else 'NOT MET'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
