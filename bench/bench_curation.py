"""Curation benchmarks, measured side by side in one run on the same data (prints ratios).

1. Curation vs the plain Spark limit: the same raw rows read, parsed with ``from_json`` and
   the contract's schema (flattened as the contract says) and appended to an Iceberg table
   with no classification, rescue, dedupe or MERGE. Goal: curation <= 1.5x the limit.
   Also measured, for reference: the same append with lean-ops's parse (a map of the
   payload's keys, each value cast from its text: what rescue needs; the limit until
   session 16), a straightforward hand-written read-parse-dedupe-MERGE with the plain parse
   (the issue quotes ~1.85x for one; no rescue, classification, quarantine, drift or ledger), and
   the floor of curation's design: the batch parsed, typed, rescued, classified and pinned as
   a run does it, counted once (what the circuit breaker needs, and the batch's partition
   days) and MERGEd with the partition predicate; no drift profile, quarantine, audit,
   checkpoint or ledger. What a run spends above the floor is its per-run features.
   Each path is timed ``--repeat`` times after one warm-up; best and median are printed, and
   the ratios of each repeat (paths side by side) with a 95 % bootstrap interval of their median.
   By default every path writes into new, empty tables; ``--history N`` gives each path a
   curated table holding N rows over a year instead (built once, rolled back before each run).
2. The same 100k-version batch MERGEd into curated tables of growing size (history over a
   year, batch in recent days): our MERGE (partition predicate from the batch in the ON
   clause) should stay flat (<= 1.3x from smallest to largest) while a naive key-only
   MERGE grows. Each MERGE is rolled back afterwards so every one starts from the same table.
3. The same for the quarantine: one batch of 5,000 bad records (ingested today) MERGEd into
   quarantine tables of growing size (ingested over a year), with the batch's ingestion days
   in the ON clause (what a run does) and keyed by message id alone.
4. With ``--cold N``: the limit and curation each run in a fresh process, alternating, N times
   (what a Glue job pays: a cold JVM, JIT and planner for every run). The run is timed apart
   from starting the session; ratios are printed with and without the session start.

    .venv/bin/python bench/bench_curation.py [--events 100000] [--sizes 100000,1000000,5000000] [--with-20m]
        [--quarantine-sizes 100000,1000000] [--skip 2,3] [--cold N] [--history N]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime, timezone
from functools import partial
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from lean_ops_spark.catalog.bootstrap import bootstrap_tables
from lean_ops_spark.catalog.metadata import load_table_snapshots
from lean_ops_spark.catalog.naming import topic_tables
from lean_ops_spark.config import Databases, load_project
from lean_ops_spark.curation.merge import (
    batch_partition_days,
    curated_merge_sql,
    partition_predicate,
    quarantine_merge_sql,
)
from lean_ops_spark.curation.pipeline import merge_into_curated, pinned_batch, run_curation
from lean_ops_spark.curation.transform import (
    ERROR_COLUMN,
    RESCUED_DATA_COLUMN,
    add_audit_columns,
    dedupe_latest,
    parse_payload,
)
from lean_ops_spark.raw import fault_rates, generate_events
from lean_ops_spark.raw.writer import append_raw
from lean_ops_spark.session import LocalHome, build_session, release

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=timezone.utc)
TOPIC = "orders"
LIMIT = "plain read+parse+append"
CURATION = "lean-ops curation"


def paired_ratio(num: list[float], den: list[float], resamples: int = 4000) -> tuple[float, float, float]:
    """Median of the per-repeat ratios ``num[i] / den[i]`` (the paths run side by side in each
    repeat, so a slow spell of the machine hits both) and a 95 % bootstrap interval of that
    median (resampling the repeats; fixed seed, so a rerun on the same numbers prints the same)."""
    import random

    ratios = [a / b for a, b in zip(num, den, strict=True)]
    rng = random.Random(0)
    medians = sorted(statistics.median(rng.choices(ratios, k=len(ratios))) for _ in range(resamples))
    return statistics.median(ratios), medians[int(0.025 * resamples)], medians[int(0.975 * resamples) - 1]


def plain_parse(df, contract):  # type: ignore[no-untyped-def]
    """The raw batch with the payload parsed as a plain Spark job parses it: ``from_json`` with
    the contract's schema (native JSON types, no rescue), flattened structs as columns."""
    from pyspark.sql import functions as F

    schema = ", ".join(f"`{field.name}` {field.type.spark_ddl()}" for field in contract.fields)
    parsed = df.withColumn("_payload", F.from_json("payload", schema))
    return parsed.select(
        *df.columns,
        *[
            F.col("_payload." + ".".join(f"`{part}`" for part in path)).alias(name)
            for name, path, _ in contract.flattened_fields()
        ],
    )


def timed(fn):  # type: ignore[no-untyped-def]
    start = time.perf_counter()
    value = fn()
    return time.perf_counter() - start, value


def with_databases(config, prefix: str):  # type: ignore[no-untyped-def]
    databases = Databases(raw=f"{prefix}_raw", curated=f"{prefix}_curated", semantic=f"{prefix}_semantic")
    return replace(config, profile=replace(config.profile, databases=databases))


def build_raw(spark, config, prefix: str, events: int):  # type: ignore[no-untyped-def]
    """Part 1's raw table (``events`` orders with faults, in 10 appends) in databases ``prefix``."""
    raw_config = with_databases(config, prefix)
    bootstrap_tables(spark, raw_config, [TOPIC])
    raw = topic_tables(raw_config.profile, TOPIC).raw
    batch = generate_events(config.topic(TOPIC), events, fault_rates(0.05, 0.05, 0.02), seed=1, now=NOW)
    append_raw(spark, raw, batch.records, appends=10)
    return len(batch.records)


def part1_paths(spark, config, prefix: str, history: int = 0):  # type: ignore[no-untyped-def]
    """Part 1's paths over the raw table of databases ``prefix`` (built by :func:`build_raw`):
    name -> a function of the run number that creates new, empty target tables and returns
    the path's work, to be timed (creating tables is no part of either job: ~0.2 s each).

    ``history`` > 0: each path has one curated table holding ``history`` rows over a year
    (:func:`build_curated`, the curated table a run meets in steady state), built once and
    rolled back to that before each run (its quarantine emptied), outside the timed work."""
    contract = config.topic(TOPIC)
    raw_config = with_databases(config, prefix)
    raw = topic_tables(raw_config.profile, TOPIC).raw
    snapshots = load_table_snapshots(spark, raw)
    snapshot = snapshots.current_snapshot_id
    # from metadata, not a count: a cold run's process must not run a Spark job before its path
    records = int(snapshots.by_id()[snapshot].summary["total-records"])

    bases: dict[str, int | None] = {}

    def reset(target) -> None:  # type: ignore[no-untyped-def]
        """``target``'s curated table with ``history`` rows (built at the first call, rolled
        back to them after) and an empty quarantine."""
        tables = topic_tables(target.profile, TOPIC)
        if tables.curated.sql not in bases:
            bootstrap_tables(spark, target, [TOPIC])
            build_curated(spark, tables.curated.sql, history)
            bases[tables.curated.sql] = load_table_snapshots(spark, tables.curated).current_snapshot_id
        else:
            rollback(spark, config, tables.curated.identifier, bases[tables.curated.sql])
            spark.sql(f"DELETE FROM {tables.quarantine.sql}")

    def empty_curated(path: str, run: int) -> str:
        """A new, empty curated table for one timed run of a path (with ``history``: the path's
        table, reset to its history rows)."""
        target = with_databases(config, f"{prefix}{path}" if history else f"{prefix}{path}{run + 1}")
        if history:
            reset(target)
        else:
            bootstrap_tables(spark, target, [TOPIC])
        return topic_tables(target.profile, TOPIC).curated.sql

    def read_raw(with_snapshot_id: bool = True):  # type: ignore[no-untyped-def]
        from pyspark.sql import functions as F

        df = spark.read.format("iceberg").option("snapshot-id", str(snapshot)).load(raw.sql)
        return df.withColumn("_raw_snapshot_id", F.lit(snapshot)) if with_snapshot_id else df

    columns = [name for name, _, _ in contract.flattened_fields()]

    def append_parsed(table: str, parsed) -> None:  # type: ignore[no-untyped-def]
        from pyspark.sql import functions as F

        full = spark.table(table).columns
        parsed.select(*[F.col(c) if c in columns else F.lit(None).alias(c) for c in full]).writeTo(
            table
        ).append()

    def plain(run: int) -> Callable[[], None]:
        table = empty_curated("p", run)
        return lambda: append_parsed(
            table, plain_parse(read_raw(with_snapshot_id=False), contract).select(*columns)
        )

    def lean_ops_parse(run: int) -> Callable[[], None]:
        table = empty_curated("l", run)
        return lambda: append_parsed(
            table, parse_payload(read_raw(with_snapshot_id=False), contract).select(*columns)
        )

    def hand_written(run: int) -> Callable[[], None]:
        return partial(hand_written_into, empty_curated("h", run), run)

    def hand_written_into(table: str, run: int) -> None:
        from pyspark.sql import functions as F

        parsed = plain_parse(read_raw(), contract).withColumn(RESCUED_DATA_COLUMN, F.lit(None).cast("string"))
        keyed = parsed.where(" AND ".join(f"{key} IS NOT NULL" for key in contract.key))
        newest = dedupe_latest(keyed, contract, "_rank").where("_rank = 1")
        add_audit_columns(newest, contract, f"hand-{run + 1}").createOrReplaceTempView("bench_hand_written")
        spark.sql(curated_merge_sql(table, "bench_hand_written", contract, None))  # key-only ON

    def floor(run: int) -> Callable[[], None]:
        return partial(floor_into, empty_curated("f", run), run)

    def floor_into(table: str, run: int) -> None:
        from pyspark.sql import functions as F

        pinned = pinned_batch(read_raw(), contract, records)  # as a run builds it
        try:
            valid = F.col(ERROR_COLUMN).isNull()
            row = pinned.agg(
                F.count("*"),
                F.count(F.col(ERROR_COLUMN)),
                F.collect_set(F.to_date(F.when(valid, F.col(contract.partition.column)))),
            ).first()
            assert row is not None and row[0] == records
            newest = dedupe_latest(pinned.where(valid), contract, "_rank").where("_rank = 1")
            add_audit_columns(newest, contract, f"floor-{run + 1}").createOrReplaceTempView("bench_floor")
            predicate = partition_predicate(contract, sorted(row[2]))
            spark.sql(curated_merge_sql(table, "bench_floor", contract, predicate))
        finally:
            release(pinned)

    def ours(run: int) -> Callable[[], None]:
        target = replace(
            with_databases(config, f"{prefix}c" if history else f"{prefix}c{run + 1}"),
            topics={**config.topics, TOPIC: replace(contract, error_rate_threshold=1.0)},
        )
        target = replace(
            target,
            profile=replace(
                target.profile,
                databases=replace(target.profile.databases, raw=raw_config.profile.databases.raw),
            ),
        )
        if history:
            reset(target)
        else:
            bootstrap_tables(spark, target, [TOPIC])

        def curate() -> None:
            result = run_curation(spark, target, TOPIC)
            assert result.ledger is not None and result.ledger.balanced

        return curate

    return {
        LIMIT: plain,
        "read+lean-ops parse+append": lean_ops_parse,
        "hand-written parse+dedupe+MERGE": hand_written,
        "floor: classify+pin+MERGE": floor,
        CURATION: ours,
    }


def part1(spark, config, events: int, repeat: int, history: int = 0) -> None:  # type: ignore[no-untyped-def]
    records = build_raw(spark, config, "b1", events)
    into = f"curated tables of {history:,d} rows (a year of history)" if history else "empty curated tables"
    print(f"\n[1] curation vs the plain limit: {records} raw records in 10 appends, into {into}")
    paths = part1_paths(spark, config, "b1", history)
    for path in paths.values():  # warm-up of every path (JIT, class loading), not measured
        path(-1)()
    times: dict[str, list[float]] = {name: [] for name in paths}
    for run in range(repeat):  # interleaved, so a slow spell of the machine hits every path
        for name, path in paths.items():
            times[name].append(timed(path(run))[0])
    best = {name: min(runs) for name, runs in times.items()}
    median = {name: statistics.median(runs) for name, runs in times.items()}
    print(f"{'':32s} {'best':>8s} {'median':>8s}")
    for name, runs in times.items():
        print(
            f"{name:32s} {best[name]:8.2f} {median[name]:8.2f} s   (runs: {', '.join(f'{t:.2f}' for t in runs)})"
        )
    limit = LIMIT
    for label, name, note in (
        ("curation", "lean-ops curation", "goal <= 1.5x"),
        ("lean-ops parse", "read+lean-ops parse+append", "reference: the limit until session 16"),
        ("hand-written", "hand-written parse+dedupe+MERGE", "reference"),
        ("floor", "floor: classify+pin+MERGE", "reference: the design's floor"),
    ):
        print(
            f"ratio {label} / limit: best {best[name] / best[limit]:.2f}x, "
            f"median {median[name] / median[limit]:.2f}x   ({note})"
        )
    print("per-repeat ratios (median, 95 % bootstrap interval of the median):")
    for label, num, den in (
        ("curation / limit", "lean-ops curation", limit),
        ("curation / lean-ops parse", "lean-ops curation", "read+lean-ops parse+append"),
        ("curation / floor", "lean-ops curation", "floor: classify+pin+MERGE"),
        ("curation / hand-written", "lean-ops curation", "hand-written parse+dedupe+MERGE"),
        ("floor / limit", "floor: classify+pin+MERGE", limit),
    ):
        mid, low, high = paired_ratio(times[num], times[den])
        print(f"    {label:26s} {mid:.2f}x   [{low:.2f}x, {high:.2f}x]")


def cold_runs(spark, config, home: Path, events: int, repeat: int) -> None:  # type: ignore[no-untyped-def]
    """Part 4: the limit and curation, each run in a fresh process (what a Glue job pays:
    a cold JVM, JIT and planner), alternating; the run is timed apart from the session start."""
    import json
    import subprocess

    records = build_raw(spark, config, "b4", events)
    print(f"\n[4] cold runs, one process each: {records} raw records in 10 appends", flush=True)
    times: dict[str, list[float]] = {LIMIT: [], CURATION: []}
    starts: dict[str, list[float]] = {LIMIT: [], CURATION: []}
    for run in range(repeat):
        for name, runs in times.items():
            command = [sys.executable, __file__, "--cold-run", name, "--home", str(home), "--run", str(run)]
            done = subprocess.run(command, capture_output=True, text=True, check=False)
            lines = [line for line in done.stdout.splitlines() if line.startswith("COLD ")]
            if done.returncode or not lines:
                raise RuntimeError(f"cold run {name!r} #{run + 1} failed:\n{done.stderr[-3000:]}")
            result = json.loads(lines[-1][5:])
            runs.append(result["run"])
            starts[name].append(result["session"])
            print(
                f"    {name:32s} run {result['run']:6.2f} s   session start {result['session']:5.2f} s",
                flush=True,
            )
    for name, runs in times.items():
        print(
            f"{name:32s} median {statistics.median(runs):6.2f} s, session start "
            f"{statistics.median(starts[name]):5.2f} s   (runs: {', '.join(f'{t:.2f}' for t in runs)})"
        )
    mid, low, high = paired_ratio(times[CURATION], times[LIMIT])
    print(f"cold curation / limit, per repeat: {mid:.2f}x   [{low:.2f}x, {high:.2f}x]")
    with_start = [a + b for a, b in zip(times[CURATION], starts[CURATION], strict=True)]
    limit_start = [a + b for a, b in zip(times[LIMIT], starts[LIMIT], strict=True)]
    mid, low, high = paired_ratio(with_start, limit_start)
    print(f"    with the session start:        {mid:.2f}x   [{low:.2f}x, {high:.2f}x]")


def cold_run(config, home: Path, name: str, run: int) -> None:  # type: ignore[no-untyped-def]
    """One path of part 4 in this (fresh) process; prints ``COLD {"session": s, "run": s}``."""
    import json

    seconds, spark = timed(
        lambda: build_session(
            config.profile,
            home=LocalHome.at(home),
            app_name=f"lean-ops bench cold {name}",
            extra_conf={"spark.driver.memory": "6g"},
        )
    )
    try:
        work = part1_paths(spark, config, "b4")[name](run)
        run_seconds, _ = timed(work)
    finally:
        spark.stop()
    print("COLD " + json.dumps({"session": seconds, "run": run_seconds}), flush=True)


def build_curated(spark, table: str, rows: int) -> None:  # type: ignore[no-untyped-def]
    base = int(NOW.timestamp())
    spark.sql(f"""
        INSERT INTO {table}
        SELECT concat('o-', id), concat('c-', id % 100000),
               element_at(array('created','paid','shipped','delivered'), CAST(id % 4 + 1 AS INT)),
               timestamp_seconds({base} - (id % 365) * 86400 - (id % 86000) - 300),
               timestamp_seconds({base} - (id % 365) * 86400 - (id % 86000)),
               'EUR', CAST((id % 100000) / 100 AS DECIMAL(12,2)),
               'Main 1', 'Oslo', '0150', 'NO',
               array(named_struct('sku', 'sku-1', 'quantity', 1, 'unit_price', CAST(9.99 AS DECIMAL(10,2)))),
               CAST(NULL AS STRING), CAST(NULL AS STRING), 0L, concat('m-', id),
               timestamp_seconds({base}), 'history', timestamp_seconds({base})
        FROM range({rows})
    """)


def batch_versions(spark, versions: int):  # type: ignore[no-untyped-def]
    """The same batch for every size: updates of existing recent keys (ids < 100k whose
    day offset is 0..2) plus new keys, all with event times in the last three days."""
    base = int(NOW.timestamp())
    return spark.sql(f"""
        WITH ids AS (
          SELECT id, CASE WHEN id < 100000 AND id % 365 < 3 THEN concat('o-', id) ELSE concat('n-', id) END AS key
          FROM range({versions})
        )
        SELECT key AS order_id, concat('c-', id % 100000) AS customer_id, 'paid' AS status,
               timestamp_seconds({base} - (id % 3) * 86400 - (id % 86000) - 300) AS order_ts,
               timestamp_seconds({base} + 60) AS updated_at, 'EUR' AS currency,
               CAST(12.5 AS DECIMAL(12,2)) AS total_amount, 'Main 2' AS shipping_address_street,
               'Oslo' AS shipping_address_city, '0150' AS shipping_address_postcode,
               'NO' AS shipping_address_country,
               array(named_struct('sku', 'sku-2', 'quantity', 2, 'unit_price', CAST(6.25 AS DECIMAL(10,2)))) AS items,
               CAST(NULL AS STRING) AS coupon_code, CAST(NULL AS STRING) AS _rescued_data,
               1L AS _raw_snapshot_id, concat('b-', id) AS _message_id,
               timestamp_seconds({base} + 60) AS _ingestion_ts, 'bench' AS _run_id,
               timestamp_seconds({base} + 60) AS _curated_at
        FROM ids
    """)


def part2(spark, config, sizes: list[int], versions: int) -> None:  # type: ignore[no-untyped-def]
    from pyspark import StorageLevel

    contract = config.topic(TOPIC)
    batch = batch_versions(spark, versions).persist(StorageLevel.MEMORY_AND_DISK)
    days = batch_partition_days(batch, contract)
    print(f"\n[2] one {versions}-version batch ({len(days)} days) merged into curated tables of growing size")
    print(f"{'curated rows':>14s} {'build s':>9s} {'ours s':>9s} {'naive s':>9s} {'naive/ours':>11s}")
    results = []
    for size in sizes:
        curated, build, base = sized_table(spark, config, f"b2s{size}", "curated", build_curated, size)

        def merge(pruned: bool, curated=curated, base=base) -> None:  # type: ignore[no-untyped-def]
            merge_into_curated(
                spark,
                contract=contract,
                curated=curated,
                versions=batch,
                partition_days=days if pruned else [],
                run_id=f"bench-{'ours' if pruned else 'naive'}",
                properties={"lean-ops.bench": "1"},
            )
            rollback(spark, config, curated.identifier, base)

        ours, naive = pruned_and_unpruned(merge)
        results.append((size, ours, naive))
        print(f"{size:>14,d} {build:9.1f} {ours:9.2f} {naive:9.2f} {naive / ours:10.2f}x", flush=True)
    print_growth(results, "naive", "   (goal <= 1.3x)")


def sized_table(spark, config, prefix: str, layer: str, build, rows: int):  # type: ignore[no-untyped-def]
    """A new ``layer`` table (``curated`` or ``quarantine``) in databases named ``prefix``,
    filled by ``build(spark, table_sql, rows)``: the table, the build's seconds, and the
    snapshot to roll back to after each timed MERGE."""
    target = with_databases(config, prefix)
    bootstrap_tables(spark, target, [TOPIC])
    table = getattr(topic_tables(target.profile, TOPIC), layer)
    seconds, _ = timed(lambda: build(spark, table.sql, rows))
    return table, seconds, load_table_snapshots(spark, table).current_snapshot_id


def rollback(spark, config, identifier: str, snapshot: int | None) -> None:  # type: ignore[no-untyped-def]
    spark.sql(f"CALL {config.profile.catalog}.system.rollback_to_snapshot('{identifier}', {snapshot})")


def pruned_and_unpruned(merge, repeat: int = 3) -> tuple[float, float]:  # type: ignore[no-untyped-def]
    """Best of ``repeat`` timed ``merge(True)`` (pruned) and of ``repeat`` ``merge(False)``,
    alternating, after a warm-up of both statements on the table (not measured). (Best of two
    moved a ~1 s pruned MERGE by up to 0.3 s from run to run.)"""
    merge(True)
    merge(False)
    pruned, unpruned = [], []
    for _ in range(repeat):
        pruned.append(timed(lambda: merge(True))[0])
        unpruned.append(timed(lambda: merge(False))[0])
    return min(pruned), min(unpruned)


def print_growth(results: list[tuple[int, float, float]], other: str, goal: str = "") -> None:
    """Largest over smallest table: the pruned MERGE's time and the ``other``'s."""
    (small, ours_small, other_small), (large, ours_large, other_large) = results[0], results[-1]
    print(f"ours  {large:,d} / {small:,d} rows: {ours_large / ours_small:.2f}x{goal}")
    print(f"{other:5s} {large:,d} / {small:,d} rows: {other_large / other_small:.2f}x")


def build_quarantine(spark, table: str, rows: int, *, today: bool = False) -> None:  # type: ignore[no-untyped-def]
    """``rows`` quarantined records, ingested over the past year (``today``: in the last hour,
    with message ids of their own)."""
    base = int(NOW.timestamp())
    ingested = (
        f"timestamp_seconds({base} - id % 3600)"
        if today
        else f"timestamp_seconds({base} - (id % 365) * 86400 - (id % 86000))"
    )
    spark.sql(f"""
        INSERT INTO {table}
        SELECT concat('{"n" if today else "q"}-', id), 'orders', 1L, {ingested},
               concat('{{"order_id": "o-', id, '", "total_amount": "not a number"}}'), 'bench', 1,
               'DROP', 'WRONG_TYPE', 'total_amount', 'not a decimal(12,2)', 1, 'history',
               {ingested}, {ingested}, CAST(NULL AS STRING)
        FROM range({rows})
    """)


def part3(spark, config, sizes: list[int], records: int = 5_000) -> None:  # type: ignore[no-untyped-def]
    print(f"\n[3] {records} quarantined records (ingested today) merged into quarantines of growing size")
    print(f"{'quarantine rows':>16s} {'build s':>9s} {'ours s':>9s} {'keyed s':>9s} {'keyed/ours':>11s}")
    results = []
    for size in sizes:
        quarantine, build, base = sized_table(
            spark, config, f"b3s{size}", "quarantine", build_quarantine, size
        )
        batch_table = f"{quarantine.sql}_batch"  # the batch, in the quarantine's shape
        spark.sql(f"CREATE TABLE {batch_table} USING iceberg AS SELECT * FROM {quarantine.sql} LIMIT 0")
        build_quarantine(spark, batch_table, records, today=True)
        spark.table(batch_table).createOrReplaceTempView("bench_quarantine_batch")
        days = sorted(
            r["d"]
            for r in spark.sql(f"SELECT DISTINCT to_date(ingestion_ts) AS d FROM {batch_table}").collect()
        )

        def merge(pruned: bool, quarantine=quarantine, base=base, days=days) -> None:  # type: ignore[no-untyped-def]
            spark.sql(quarantine_merge_sql(quarantine.sql, "bench_quarantine_batch", days if pruned else ()))
            rollback(spark, config, quarantine.identifier, base)

        ours, keyed = pruned_and_unpruned(merge)
        results.append((size, ours, keyed))
        print(f"{size:>16,d} {build:9.1f} {ours:9.2f} {keyed:9.2f} {keyed / ours:10.2f}x", flush=True)
    print_growth(results, "keyed")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--sizes", default="100000,1000000,5000000")
    parser.add_argument(
        "--with-20m", action="store_true", help="add a 20M-row table (takes minutes to build)"
    )
    parser.add_argument("--quarantine-sizes", default="100000,1000000", help="quarantine rows for part 3")
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument(
        "--history",
        type=int,
        default=0,
        metavar="N",
        help="part 1: every path writes into a curated table holding N rows over a year (default: empty)",
    )
    parser.add_argument("--skip", default="", help="parts to skip, e.g. 2 or 2,3")
    parser.add_argument(
        "--cold",
        type=int,
        default=0,
        metavar="N",
        help="part 4: N repeats of the limit and curation, each in a fresh process (~1-2 min a repeat)",
    )
    parser.add_argument("--cold-run", help=argparse.SUPPRESS)  # one path of part 4, in a child process
    parser.add_argument("--home", help=argparse.SUPPRESS)
    parser.add_argument("--run", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    config = load_project(Path(__file__).resolve().parents[1] / "conf", "local")
    if args.cold_run:
        cold_run(config, Path(args.home), args.cold_run, args.run)
        return 0
    skip = {part for part in args.skip.split(",") if part}
    if not skip <= {"1", "2", "3"}:
        parser.error(f"--skip takes parts 1, 2 and 3, got {args.skip!r}")
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    sizes = [int(s) for s in args.sizes.split(",")] + ([20_000_000] if args.with_20m else [])
    home_dir = Path(tempfile.mkdtemp(prefix="lean-ops-bench-"))
    spark = build_session(
        config.profile,
        home=LocalHome.at(home_dir),
        app_name="lean-ops bench",
        extra_conf={"spark.driver.memory": "6g"},
    )
    print(
        f"Spark {spark.version}, {os.cpu_count()} cores, shuffle partitions "
        f"{spark.conf.get('spark.sql.shuffle.partitions')}, home {home_dir}"
    )
    try:
        if "1" not in skip:
            part1(spark, config, args.events, args.repeat, args.history)
        if "2" not in skip:
            part2(spark, config, sizes, args.events)
        if "3" not in skip:
            part3(spark, config, [int(s) for s in args.quarantine_sizes.split(",")])
        if args.cold:
            cold_runs(spark, config, home_dir, args.events, args.cold)
    finally:
        spark.stop()
        shutil.rmtree(home_dir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
