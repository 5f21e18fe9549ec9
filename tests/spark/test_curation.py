"""Curation on the real local runtime: where every fault goes, the ledger, checkpoints,
crash safety, ordering, late events, compaction, backlog, breaker and replay."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import datetime, timedelta, timezone

import pytest
from chispa import assert_df_equality

from lean_ops_spark.catalog.bootstrap import bootstrap_tables
from lean_ops_spark.catalog.checkpoints import (
    RAW_CHECKPOINT_KEY,
    RUN_ID_KEY,
    current_snapshot_id,
    read_checkpoint,
    snapshot_records,
)
from lean_ops_spark.catalog.naming import topic_tables
from lean_ops_spark.config.models import FieldSpec, FieldType, PartitionSpec
from lean_ops_spark.curation import pipeline
from lean_ops_spark.curation.pipeline import (
    STEP_MERGED,
    STEP_QUARANTINE_WRITTEN,
    CurationOptions,
    run_curation,
)
from lean_ops_spark.curation.replay import STEP_REPLAY_MERGED, run_replay
from lean_ops_spark.drift.audit import AUDIT_TABLE_NAME
from lean_ops_spark.errors import CheckpointError, CircuitBreakerError, ConcurrentRunError
from lean_ops_spark.quality.check import check_table
from lean_ops_spark.raw import FaultKind, RawRecord, fault_rates, generate_events
from lean_ops_spark.raw.writer import append_raw
from lean_ops_spark.session import session_conf
from tests.conftest import Crash, crash_at
from tests.conftest import order_payload as order

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=timezone.utc)
VOLATILE = ["_run_id", "_curated_at", "run_id", "quarantined_at", "last_attempt_at"]


def rows(spark, table, raw, order_by: str):
    """The table without per-run values; raw snapshot ids as their position in raw's history
    (two environments fed the same records have different ids but the same positions)."""
    from pyspark.sql import functions as F

    ids = [
        r["snapshot_id"]
        for r in spark.sql(
            f"SELECT snapshot_id FROM {raw.metadata_table('snapshots')} ORDER BY committed_at"
        ).collect()
    ]
    ordinal = F.create_map(*[F.lit(x) for i, sid in enumerate(ids) for x in (sid, i)])
    df = spark.table(table)
    column = "_raw_snapshot_id" if "_raw_snapshot_id" in df.columns else "raw_snapshot_id"
    return (
        df.withColumn(column, ordinal[F.col(column)])
        .drop(*[c for c in VOLATILE if c in df.columns])
        .orderBy(order_by)
    )


def raw_record(message_id: str, payload: str, minute: int = 0) -> RawRecord:
    return RawRecord(message_id, "orders", payload, NOW + timedelta(minutes=minute), "test", 1)


def orders_with(config, **changes):  # type: ignore[no-untyped-def]
    """``config`` with the orders contract changed as ``changes`` say."""
    return replace(config, topics={**config.topics, "orders": replace(config.topic("orders"), **changes)})


@pytest.fixture
def orders_env(spark, fresh_config):
    bootstrap_tables(spark, fresh_config, ["orders"])
    return fresh_config, topic_tables(fresh_config.profile, "orders")


def test_every_fault_kind_lands_where_expected_and_the_ledger_balances(spark, orders_env) -> None:
    config, tables = orders_env
    contract = config.topic("orders")
    batch = generate_events(contract, 10_000, fault_rates(0.09, 0.1, 0.05), seed=11, now=NOW)
    append_raw(spark, tables.raw, batch.records, appends=5)
    assert set(batch.injected) == {k.value for k in FaultKind} and all(batch.injected.values())

    result = run_curation(spark, config, "orders")

    ledger = result.ledger
    assert result.status == "committed" and ledger is not None and ledger.balanced
    expected = batch.expected
    assert ledger.read == len(batch.records) == ledger.expected_read
    assert ledger.quarantined_by_reason == dict(expected.quarantined)
    assert ledger.quarantined_by_class == {
        "DROP": ledger.quarantined - batch.injected["unknown_version"],
        "RETRY": batch.injected["unknown_version"],
    }
    assert ledger.upserted == expected.curated_keys
    assert ledger.superseded_in_batch + ledger.stale == expected.superseded
    assert ledger.rescued_records == expected.rescued
    assert ledger.rescued_fields["promo_channel"] == batch.injected["unknown_fields"]
    assert ledger.rescued_fields["items"] == batch.injected["wrong_type"]  # optional field, value kept

    curated = spark.table(tables.curated.sql)
    assert curated.count() == expected.curated_keys
    assert curated.select("order_id").distinct().count() == expected.curated_keys
    quarantine = {
        r["reason_code"]: r["n"]
        for r in spark.table(tables.quarantine.sql)
        .groupBy("reason_code")
        .count()
        .withColumnRenamed("count", "n")
        .collect()
    }
    assert quarantine == dict(expected.quarantined)
    retry = spark.table(tables.quarantine.sql).where("error_class = 'RETRY'")
    assert {r["replay_status"] for r in retry.collect()} == {"pending"}
    # rescued values are kept as JSON text, nothing dropped
    rescued = curated.where("_rescued_data LIKE '%promo_channel%'").first()
    assert rescued is not None and "experiment" in json.loads(rescued["_rescued_data"])
    # the checkpoint committed with the data
    checkpoint = read_checkpoint(spark, tables.curated, RAW_CHECKPOINT_KEY)
    assert checkpoint is not None
    assert checkpoint.source_snapshot_id == current_snapshot_id(spark, tables.raw)
    assert (
        checkpoint.recorded_in_snapshot_id
        == result.curated_snapshot_id
        == current_snapshot_id(spark, tables.curated)
    )
    assert checkpoint.run_id == result.run_id

    again = run_curation(spark, config, "orders")
    assert again.status == "no_new_data"


def new_env(spark, project_config):
    """The shipped config with namespaces of its own and the orders tables in them."""
    from lean_ops_spark.config import Databases
    from tests.conftest import _namespace_counter

    n = next(_namespace_counter)
    cfg = replace(
        project_config,
        profile=replace(
            project_config.profile,
            databases=Databases(raw=f"t{n}_raw", curated=f"t{n}_curated", semantic=f"t{n}_semantic"),
        ),
    )
    bootstrap_tables(spark, cfg, ["orders"])
    return cfg, topic_tables(cfg.profile, "orders")


@pytest.mark.parametrize("step", [STEP_QUARANTINE_WRITTEN, STEP_MERGED])
def test_rerun_after_a_crash_gives_the_same_tables(spark, project_config, step) -> None:
    batch = generate_events(
        project_config.topic("orders"), 300, fault_rates(0.09, 0.2, 0.05), seed=5, now=NOW
    )
    (clean_cfg, clean), (crash_cfg, crashed) = new_env(spark, project_config), new_env(spark, project_config)
    for tables in (clean, crashed):
        append_raw(spark, tables.raw, batch.records, appends=3)
    # several runs over a backlog; the crash happens in the middle one
    for _ in range(3):
        run_curation(spark, clean_cfg, "orders", options=CurationOptions(max_snapshots=1))
    run_curation(spark, crash_cfg, "orders", options=CurationOptions(max_snapshots=1))
    with pytest.raises(Crash):
        run_curation(
            spark, crash_cfg, "orders", options=CurationOptions(max_snapshots=1), after_step=crash_at(step)
        )
    while (
        run_curation(spark, crash_cfg, "orders", options=CurationOptions(max_snapshots=1)).status
        == "committed"
    ):
        pass

    assert_df_equality(
        rows(spark, crashed.curated.sql, crashed.raw, "order_id"),
        rows(spark, clean.curated.sql, clean.raw, "order_id"),
        ignore_row_order=True,
    )
    assert_df_equality(
        rows(spark, crashed.quarantine.sql, crashed.raw, "message_id"),
        rows(spark, clean.quarantine.sql, clean.raw, "message_id"),
        ignore_row_order=True,
    )
    curated = spark.table(crashed.curated.sql)
    assert curated.count() == curated.select("order_id").distinct().count() == batch.expected.curated_keys


def test_a_run_overlapping_another_of_its_topic_gives_the_same_tables(spark, project_config) -> None:
    """Two runs of one topic at once (a manual run beside the scheduled one, or overlapping
    executions): run B starts after run A has read its checkpoint and written its quarantine,
    reads a longer range, and commits all of it before A's curated MERGE. A then commits its
    older checkpoint, so the checkpoint moves back, and the next runs read B's range again.
    Nothing is duplicated or lost: the tables equal those of runs that never overlapped."""
    batch = generate_events(
        project_config.topic("orders"), 300, fault_rates(0.09, 0.2, 0.05), seed=7, now=NOW
    )
    (clean_cfg, clean), (cfg, overlapped) = new_env(spark, project_config), new_env(spark, project_config)
    for tables in (clean, overlapped):
        append_raw(spark, tables.raw, batch.records, appends=3)
    while run_curation(spark, clean_cfg, "orders").status == "committed":
        pass

    inner = []

    def run_b_now(step: str) -> None:
        if step == STEP_QUARANTINE_WRITTEN and not inner:
            inner.append(run_curation(spark, cfg, "orders"))  # uncapped: all three appends

    outer = run_curation(spark, cfg, "orders", options=CurationOptions(max_snapshots=1), after_step=run_b_now)
    (b,) = inner
    assert b.status == outer.status == "committed"
    assert b.ledger is not None and outer.ledger is not None
    assert b.ledger.balanced and outer.ledger.balanced  # A's versions are stale: B wrote them
    assert outer.ledger.upserted == 0 and outer.ledger.stale == outer.ledger.kept > 0
    assert b.raw_end_snapshot_id == current_snapshot_id(spark, overlapped.raw)
    checkpoint = read_checkpoint(spark, overlapped.curated, RAW_CHECKPOINT_KEY)
    assert checkpoint is not None and checkpoint.source_snapshot_id == outer.raw_end_snapshot_id  # moved back
    while run_curation(spark, cfg, "orders").status == "committed":  # reads B's last two appends again
        pass

    # Which batch wrote a row (its run id and the raw snapshot its batch ended at) depends on
    # how the runs split the backlog: everything else must be equal.
    for table, key, lineage in (
        ("curated", "order_id", "_raw_snapshot_id"),
        ("quarantine", "message_id", "raw_snapshot_id"),
    ):
        assert_df_equality(
            rows(spark, getattr(overlapped, table).sql, overlapped.raw, key).drop(lineage),
            rows(spark, getattr(clean, table).sql, clean.raw, key).drop(lineage),
            ignore_row_order=True,
        )
    curated = spark.table(overlapped.curated.sql)
    assert curated.count() == curated.select("order_id").distinct().count() == batch.expected.curated_keys


def test_a_run_keeping_payloads_only_for_the_profile_sample_writes_what_a_full_run_writes(
    spark, project_config, monkeypatch, pin_spy
) -> None:
    """From 20k records a run keeps ``payload`` only where it reads it again (quarantined,
    rescued, partly parsed, the drift profile's sample: ``keep_profiled_payloads``). With the
    sample made small, a 2,000-record batch takes that path: same ledger, same curated and
    quarantine tables as the full path. The batch is stored on the executors while the run
    writes and released when it is done."""
    from lean_ops_spark.drift import handler, observe

    batch = generate_events(
        project_config.topic("orders"), 2_000, fault_rates(0.09, 0.1, 0.05), seed=17, now=NOW
    )
    (full_cfg, full), (slim_cfg, slim) = new_env(spark, project_config), new_env(spark, project_config)
    for tables in (full, slim):
        append_raw(spark, tables.raw, batch.records, appends=2)
    full_result = run_curation(spark, full_cfg, "orders")

    kept = []

    def keep_few(df, records_hint):
        kept.append(observe.keep_profiled_payloads(df, records_hint, sample_clean=100))
        return kept[-1]

    profile = handler.profile_batch
    monkeypatch.setattr(pipeline, "keep_profiled_payloads", keep_few)
    monkeypatch.setattr(handler, "profile_batch", lambda *a, **k: profile(*a, sample_clean=100, **k))
    pin_spy.watch(pipeline)
    stored_during = []
    slim_result = run_curation(
        spark, slim_cfg, "orders", after_step=lambda _step: stored_during.append(pin_spy.stored())
    )

    assert kept[0].where("payload IS NULL").count() > len(batch.records) // 2  # the slim path ran
    assert slim_result.ledger == full_result.ledger and slim_result.ledger.balanced
    for name, key in (("curated", "order_id"), ("quarantine", "message_id")):
        assert_df_equality(
            rows(spark, getattr(slim, name).sql, slim.raw, key),
            rows(spark, getattr(full, name).sql, full.raw, key),
            ignore_row_order=True,
        )
    assert len(pin_spy.pinned) == 1  # the run's parsed batch (the spy sees the pipeline's pins only)
    assert stored_during == [[0], [0]]  # stored while the run writes
    assert pin_spy.stored() == []  # and released once it is done


def with_merge_mode(spark, config, merge_mode: str):  # type: ignore[no-untyped-def]
    """``config`` with the orders tables bootstrapped in ``merge_mode``, and those tables."""
    contract = config.topic("orders")
    modes = {f"write.{op}.mode": merge_mode for op in ("merge", "update", "delete")}
    contract = replace(contract, table_properties={**contract.table_properties, **modes})
    config = replace(config, topics={**config.topics, "orders": contract})
    bootstrap_tables(spark, config, ["orders"])
    tables = topic_tables(config.profile, "orders")
    properties = {
        r["key"]: r["value"] for r in spark.sql(f"SHOW TBLPROPERTIES {tables.curated.sql}").collect()
    }
    assert properties["write.merge.mode"] == merge_mode
    return config, tables


def delete_files_of_partition(spark, table, column: str, day) -> None:  # type: ignore[no-untyped-def]
    """Remove ``table``'s data files of one day from storage: a query that opens them fails."""
    from pathlib import Path
    from urllib.parse import urlparse

    files = [
        r["file_path"]
        for r in spark.sql(f"SELECT file_path, partition FROM {table.metadata_table('files')}").collect()
        if r["partition"][f"{column}_day"] == day
    ]
    assert files
    for path in files:
        Path(urlparse(path).path).unlink()


@pytest.mark.parametrize("merge_mode", ["merge-on-read", "copy-on-write"])
def test_newest_version_wins_whatever_the_arrival_order_and_late_events_land_in_their_partition(
    spark, fresh_config, merge_mode
) -> None:
    # copy-on-write: the ledger counts the run's rows (in the partitions it wrote) instead of
    # reading the snapshot summary, whose added records include the rewritten ones
    config, tables = with_merge_mode(spark, fresh_config, merge_mode)
    t0 = NOW - timedelta(days=1)
    late = NOW - timedelta(days=200)
    # run 1: the newest version of A arrives first; B has two versions in one batch, older last
    append_raw(
        spark,
        tables.raw,
        [
            raw_record("a-v3", order("A", t0, t0 + timedelta(hours=3), "shipped")),
            raw_record("b-v2", order("B", t0, t0 + timedelta(hours=2), "paid"), 1),
            raw_record("b-v1", order("B", t0, t0 + timedelta(hours=1), "created"), 2),
        ],
    )
    run_curation(spark, config, "orders")
    # run 2: an older version of A arrives late; a late event for an old partition
    append_raw(
        spark,
        tables.raw,
        [
            raw_record("a-v1", order("A", t0, t0 + timedelta(hours=1), "created"), 3),
            raw_record("late-1", order("L", late, late + timedelta(minutes=5)), 4),
        ],
    )
    second = run_curation(spark, config, "orders")
    assert second.ledger is not None and second.ledger.balanced
    assert (second.ledger.stale, second.ledger.upserted) == (1, 1)
    # run 3: a newer version of B (an update: copy-on-write rewrites B's file, A's row included)
    append_raw(spark, tables.raw, [raw_record("b-v3", order("B", t0, t0 + timedelta(hours=4), "paid"), 5)])
    third = run_curation(spark, config, "orders")
    assert third.ledger is not None and third.ledger.balanced and third.ledger.upserted == 1

    state = {r["order_id"]: r for r in spark.table(tables.curated.sql).collect()}
    assert state["A"]["status"] == "shipped" and state["A"]["_message_id"] == "a-v3"
    assert state["B"]["status"] == "paid" and state["B"]["_message_id"] == "b-v3"
    assert spark.table(tables.curated.sql).count() == 3
    partitions = {
        r["order_ts_day"]
        for r in spark.sql(
            f"SELECT partition.order_ts_day FROM {tables.curated.metadata_table('files')}"
        ).collect()
    }
    assert late.date() in partitions and t0.date() in partitions


@pytest.mark.parametrize("ordering_required", [True, False], ids=["tie", "null-ordering"])
def test_equal_or_missing_ordering_values_resolve_the_same_in_one_batch_or_several(
    spark, project_config, ordering_required
) -> None:
    # A's two versions: the same updated_at (a tie, broken by ingestion time), or the first
    # without one (an optional ordering column: a null is the oldest version).
    t0 = NOW - timedelta(days=1)
    first = json.loads(order("A", t0, t0, "created"))
    if not ordering_required:
        del first["updated_at"]
    records = [
        raw_record("a-1", json.dumps(first)),
        raw_record("a-2", order("A", t0, t0, "paid"), 1),
    ]
    results = []
    for caps in (None, 1):  # one run reads both appends; two runs read one each
        config, tables = new_env(spark, project_config)
        if not ordering_required:
            fields = config.topic("orders").fields
            config = orders_with(
                config,
                fields=tuple(replace(f, required=False) if f.name == "updated_at" else f for f in fields),
            )
        for record in records:
            append_raw(spark, tables.raw, [record])
        runs = []
        while (
            run := run_curation(spark, config, "orders", options=CurationOptions(max_snapshots=caps))
        ).ledger:
            runs.append(run.ledger)
        assert len(runs) == (1 if caps is None else 2) and all(ledger.balanced for ledger in runs)
        results.append([(r["status"], r["_message_id"]) for r in spark.table(tables.curated.sql).collect()])
    assert results == [[("paid", "a-2")], [("paid", "a-2")]]


def test_a_redelivered_message_in_a_later_batch_leaves_its_row_alone(spark, orders_env) -> None:
    config, tables = orders_env
    t0 = NOW - timedelta(days=1)
    payload = order("A", t0, t0, "paid")
    append_raw(spark, tables.raw, [raw_record("a-1", payload)])
    first = run_curation(spark, config, "orders")
    append_raw(spark, tables.raw, [raw_record("a-1", payload, 30)])  # Firehose delivers it again
    second = run_curation(spark, config, "orders")
    assert second.ledger is not None and second.ledger.balanced
    assert (second.ledger.upserted, second.ledger.stale) == (0, 1)
    (row,) = spark.table(tables.curated.sql).collect()
    assert (row["_message_id"], row["_run_id"]) == ("a-1", first.run_id)


def test_allowed_values_with_format_characters_quarantine_a_bad_value_instead_of_failing(
    spark, fresh_config
) -> None:
    # the allowed values go into the quarantine detail's format_string template: a "%" there
    # used to fail the whole run (MissingFormatArgumentException) on the first bad value
    allowed = ("created", "paid", "10%off", "50%", "o'k\\d")
    fields = tuple(
        replace(f, allowed=allowed) if f.name == "status" else f for f in fresh_config.topic("orders").fields
    )
    config = orders_with(fresh_config, fields=fields, error_rate_threshold=1.0)
    bootstrap_tables(spark, config, ["orders"])
    tables = topic_tables(config.profile, "orders")
    t0 = NOW - timedelta(days=1)
    append_raw(
        spark,
        tables.raw,
        [raw_record("a-1", order("A", t0, t0, "10%off")), raw_record("b-1", order("B", t0, t0, "bogus"), 1)],
    )
    result = run_curation(spark, config, "orders")
    assert result.ledger is not None and result.ledger.balanced
    assert result.ledger.quarantined_by_reason == {"INVALID_VALUE": 1}
    (bad,) = spark.table(tables.quarantine.sql).collect()
    assert (bad["message_id"], bad["error_field"]) == ("b-1", "status")
    assert bad["error_detail"] == "status=bogus is not one of created, paid, 10%off, 50%, o'k\\d"
    assert [r["status"] for r in spark.table(tables.curated.sql).collect()] == ["10%off"]


def test_records_without_a_message_id_are_quarantined_once_each_even_after_a_crash(spark, orders_env) -> None:
    config, tables = orders_env
    t0 = NOW - timedelta(days=1)
    records = [
        RawRecord(None, "orders", "not json", NOW, "test", 1),  # type: ignore[arg-type]
        RawRecord(None, "orders", "{bad", NOW, "test", 1),  # type: ignore[arg-type]
        RawRecord("  ", "orders", order("A", t0, t0), NOW, "test", 1),
        raw_record("b-1", order("B", t0, t0), 1),
    ]
    append_raw(spark, tables.raw, records)
    config = orders_with(config, error_rate_threshold=1.0)
    with pytest.raises(Crash):
        run_curation(spark, config, "orders", after_step=crash_at(STEP_QUARANTINE_WRITTEN))
    result = run_curation(spark, config, "orders")  # the re-run after the crash
    assert result.ledger is not None and result.ledger.balanced
    assert result.ledger.quarantined_by_reason == {"MISSING_MESSAGE_ID": 3}

    quarantined = spark.table(tables.quarantine.sql).collect()
    assert sorted(r["payload"][:8] for r in quarantined) == ["not json", '{"order_', "{bad"]
    assert {r["reason_code"] for r in quarantined} == {"MISSING_MESSAGE_ID"}
    ids = {r["message_id"] for r in quarantined}
    assert len(ids) == 3 and all(i.startswith("lean-ops:sha256:") for i in ids)
    assert [r["order_id"] for r in spark.table(tables.curated.sql).collect()] == ["B"]


def test_a_version_whose_partition_day_changed_is_a_second_row_that_the_curated_suite_reports(
    spark, orders_env
) -> None:
    # The MERGE finds a key's row within the batch's partition days (README, curation step 7):
    # a producer that moves an order's order_ts to another day breaks the contract's promise,
    # and the safety net is the curated suite's unique check, which must name the key.
    config, tables = orders_env
    day1, day2 = NOW - timedelta(days=3), NOW - timedelta(days=1)
    append_raw(spark, tables.raw, [raw_record("a-v1", order("A", day1, day1 + timedelta(hours=1)))])
    run_curation(spark, config, "orders")
    append_raw(spark, tables.raw, [raw_record("a-v2", order("A", day2, day2 + timedelta(hours=1)), 1)])
    second = run_curation(spark, config, "orders")
    assert second.ledger is not None and second.ledger.balanced

    versions = spark.table(tables.curated.sql).where("order_id = 'A'").collect()
    assert sorted(r["_message_id"] for r in versions) == ["a-v1", "a-v2"]
    result = check_table(spark, config, "curated.orders")
    assert not result.success
    (failed,) = result.failed
    assert (failed.expectation.kind, failed.expectation.columns) == ("unique", ("order_id",))
    assert failed.sample_values == ("A", "A") and failed.unexpected_count == 2


def test_a_copy_on_write_run_reads_only_the_partitions_of_its_batch(spark, fresh_config) -> None:
    """The MERGE and the ledger's count of the run's rows: a file of an older day is never
    opened, even one whose ``_run_id`` range (rows of two runs) contains the run's id."""
    config, tables = with_merge_mode(spark, fresh_config, "copy-on-write")
    t0, late = NOW - timedelta(days=1), NOW - timedelta(days=200)
    runs = iter(["cur-a", "cur-z", "cur-m"])

    def curate():  # type: ignore[no-untyped-def]
        return run_curation(spark, config, "orders", options=CurationOptions(run_id=next(runs)))

    append_raw(
        spark,
        tables.raw,
        [raw_record("l-v1", order("L", late, late)), raw_record("k-v1", order("K", late, late), 1)],
    )
    curate()
    append_raw(
        spark, tables.raw, [raw_record("k-v2", order("K", late, late + timedelta(hours=1), "paid"), 2)]
    )
    curate()  # rewrites the late day's file: rows of cur-a and cur-z
    delete_files_of_partition(spark, tables.curated, "order_ts", late.date())

    append_raw(spark, tables.raw, [raw_record("a-v1", order("A", t0, t0), 3)])
    result = curate()

    assert result.ledger is not None and result.ledger.balanced and result.ledger.upserted == 1
    (row,) = (
        spark.table(tables.curated.sql).where(f"order_ts >= TIMESTAMP '{t0:%Y-%m-%d} 00:00:00'").collect()
    )
    assert (row["order_id"], row["_run_id"]) == ("A", "cur-m")


def test_a_copy_on_write_topic_partitioned_by_identity_balances_its_ledger(spark, fresh_config) -> None:
    """No day predicate then: the run's rows are counted in the whole table."""
    contract = fresh_config.topic("orders")
    contract = replace(
        contract, partition=replace(contract.partition, column="currency", transform="identity")
    )
    config, tables = with_merge_mode(
        spark, replace(fresh_config, topics={**fresh_config.topics, "orders": contract}), "copy-on-write"
    )
    t0 = NOW - timedelta(days=1)
    append_raw(
        spark, tables.raw, [raw_record("a-v1", order("A", t0, t0)), raw_record("b-v1", order("B", t0, t0), 1)]
    )
    run_curation(spark, config, "orders")
    append_raw(spark, tables.raw, [raw_record("a-v2", order("A", t0, t0 + timedelta(hours=1), "paid"), 2)])
    result = run_curation(spark, config, "orders")
    assert result.ledger is not None and result.ledger.balanced and result.ledger.upserted == 1


def test_compaction_of_raw_between_runs_neither_rereads_nor_skips(spark, orders_env) -> None:
    config, tables = orders_env
    contract = config.topic("orders")
    first = generate_events(contract, 300, seed=21, now=NOW)
    append_raw(spark, tables.raw, first.records, appends=3)
    run_curation(spark, config, "orders")
    second = generate_events(contract, 200, seed=22, now=NOW)
    append_raw(spark, tables.raw, second.records, appends=2)
    spark.sql(
        f"CALL {config.profile.catalog}.system.rewrite_data_files(table => '{tables.raw.identifier}', "
        "options => map('rewrite-all', 'true'))"
    )
    operations = [
        r["operation"]
        for r in spark.sql(
            f"SELECT operation FROM {tables.raw.metadata_table('snapshots')} ORDER BY committed_at"
        ).collect()
    ]
    assert operations[-1] == "replace"

    result = run_curation(spark, config, "orders")
    assert result.ledger is not None and result.ledger.read == 200
    assert spark.table(tables.curated.sql).count() == 500
    assert run_curation(spark, config, "orders").status == "no_new_data"


def test_backlog_is_drained_exactly_by_capped_runs(spark, orders_env) -> None:
    config, tables = orders_env
    batch = generate_events(config.topic("orders"), 60, seed=31, now=NOW)
    append_raw(spark, tables.raw, batch.records, appends=6)
    results = [
        run_curation(spark, config, "orders", options=CurationOptions(max_snapshots=2)) for _ in range(4)
    ]
    assert [r.status for r in results] == ["committed"] * 3 + ["no_new_data"]
    assert [r.backlog_snapshots for r in results[:3]] == [4, 2, 0]
    assert [r.ledger.read for r in results[:3] if r.ledger] == [20, 20, 20]
    assert results[0].backlog_records == 40
    assert spark.table(tables.curated.sql).count() == 60


def test_circuit_breaker_fails_before_any_write(spark, orders_env) -> None:
    config, tables = orders_env
    # the batch also drifts (unknown fields): its audit rows are not written either
    faults = {FaultKind.MALFORMED_JSON: 0.3, FaultKind.UNKNOWN_FIELDS: 0.2}
    batch = generate_events(config.topic("orders"), 200, faults, seed=41, now=NOW)
    assert batch.injected[FaultKind.UNKNOWN_FIELDS.value] > 0
    append_raw(spark, tables.raw, batch.records)
    malformed = batch.injected[FaultKind.MALFORMED_JSON.value]
    rate = f"{100 * malformed / len(batch.records):.1f}".replace(".", "\\.")
    with pytest.raises(
        CircuitBreakerError,
        match=rf"error rate {rate}% .* above the threshold 10\.0% \(dominant: MALFORMED_JSON={malformed}\)",
    ):
        run_curation(spark, config, "orders")
    assert current_snapshot_id(spark, tables.curated) is None
    assert current_snapshot_id(spark, tables.quarantine) is None
    assert read_checkpoint(spark, tables.curated, RAW_CHECKPOINT_KEY) is None
    audit = f"{tables.curated.catalog}.{tables.curated.database}.{AUDIT_TABLE_NAME}"
    assert not spark.catalog.tableExists(audit) or spark.table(audit).count() == 0


def test_a_session_in_ansi_mode_still_classifies_bad_values_and_keeps_its_setting(spark, orders_env) -> None:
    """Glue jobs may run with spark.sql.ansi.enabled=true, where a value that does not cast
    fails the query: a run classifies it as usual and leaves the session as it found it."""
    config, tables = orders_env
    config = orders_with(config, error_rate_threshold=1.0)
    batch = generate_events(config.topic("orders"), 300, fault_rates(0.3, 0.05, 0.02), seed=61, now=NOW)
    append_raw(spark, tables.raw, batch.records)
    with session_conf(spark, "spark.sql.ansi.enabled", "true"):
        result = run_curation(spark, config, "orders")
        assert spark.conf.get("spark.sql.ansi.enabled") == "true"
    assert result.ledger is not None and result.ledger.balanced
    assert result.ledger.quarantined_by_reason == dict(batch.expected.quarantined)
    assert result.ledger.upserted == batch.expected.curated_keys


def test_a_batch_with_nothing_to_merge_still_advances_the_checkpoint(spark, orders_env) -> None:
    config, tables = orders_env
    config = orders_with(config, error_rate_threshold=1.0)
    append_raw(spark, tables.raw, [raw_record("bad-1", "{not json"), raw_record("bad-2", "[]", 1)])
    result = run_curation(spark, config, "orders")
    assert result.ledger is not None and result.ledger.quarantined == 2 and result.ledger.upserted == 0
    assert (
        read_checkpoint(spark, tables.curated, RAW_CHECKPOINT_KEY).source_snapshot_id
        == result.raw_end_snapshot_id
    )
    assert run_curation(spark, config, "orders").status == "no_new_data"


def test_the_quarantine_merge_reads_only_the_ingestion_days_of_the_batch(spark, orders_env) -> None:
    """Its cost follows the batch, not the quarantine's history: a file of an earlier day
    that is gone from storage is never opened (a MERGE keyed by message id alone reads it)."""
    config, tables = orders_env
    config = orders_with(config, error_rate_threshold=1.0)
    old = NOW - timedelta(days=30)
    append_raw(spark, tables.raw, [RawRecord("old-bad", "orders", "{not json", old, "test", 1)])
    assert run_curation(spark, config, "orders").ledger.quarantined == 1
    delete_files_of_partition(spark, tables.quarantine, "ingestion_ts", old.date())

    append_raw(spark, tables.raw, [raw_record("new-bad", "[]"), raw_record("new-bad", "[]")])
    result = run_curation(spark, config, "orders")

    assert result.ledger is not None and result.ledger.balanced and result.ledger.quarantined == 2
    today = spark.table(tables.quarantine.sql).where(f"ingestion_ts >= TIMESTAMP '{NOW:%Y-%m-%d} 00:00:00'")
    assert [r["message_id"] for r in today.collect()] == ["new-bad"]  # one row per message id


def test_a_commit_without_the_checkpoint_key_fails_loudly(spark, orders_env, monkeypatch) -> None:
    config, tables = orders_env
    append_raw(spark, tables.raw, generate_events(config.topic("orders"), 10, seed=51, now=NOW).records)
    # what happens with PYSPARK_PIN_THREAD=false: the write commits, the properties are lost
    monkeypatch.setattr(pipeline, "with_commit_properties", lambda _spark, _props, write: write())
    with pytest.raises(CheckpointError, match=r"without lean-ops\.raw-snapshot-id"):
        run_curation(spark, config, "orders")


@pytest.mark.parametrize("all_bad", [False, True], ids=["merge-commits", "merge-changes-nothing"])
def test_another_run_committing_right_after_the_merge_is_not_taken_for_this_one(
    spark, orders_env, monkeypatch, all_bad
) -> None:
    """Another run of the topic commits between this run's MERGE and its check of the
    commit: the run finds its own snapshot by its properties (or, when its MERGE changed
    nothing, still records its checkpoint) instead of failing on the other run's snapshot."""
    config, tables = orders_env
    config = orders_with(config, error_rate_threshold=1.0)
    records = (
        [raw_record("bad-1", "{not json"), raw_record("bad-2", "[]", 1)]
        if all_bad
        else [raw_record(f"m-{i}", order(f"K{i}", NOW, NOW), i) for i in range(3)]
    )
    append_raw(spark, tables.raw, records)
    raw_end = current_snapshot_id(spark, tables.raw)
    real = pipeline.with_commit_properties

    def merge_then_another_run_commits(session, properties, write):  # type: ignore[no-untyped-def]
        real(session, properties, write)
        other = {RAW_CHECKPOINT_KEY: str(raw_end), RUN_ID_KEY: "cur-other"}
        writer = session.table(tables.curated.sql).limit(0).writeTo(tables.curated.sql)
        for key, value in other.items():
            writer = writer.option(f"snapshot-property.{key}", value)
        writer.append()

    monkeypatch.setattr(pipeline, "with_commit_properties", merge_then_another_run_commits)
    result = run_curation(spark, config, "orders")

    assert result.status == "committed" and result.ledger is not None and result.ledger.balanced
    assert result.ledger.upserted == (0 if all_bad else 3)  # from this run's snapshot, not the other's
    summary = {r.snapshot_id: r.summary for r in snapshot_records(spark, tables.curated)}[
        result.curated_snapshot_id
    ]
    assert summary[RUN_ID_KEY] == result.run_id and summary[RAW_CHECKPOINT_KEY] == str(raw_end)
    assert spark.table(tables.curated.sql).count() == (0 if all_bad else 3)


def test_a_failed_quarantine_write_fails_the_run_before_the_curated_merge(
    spark, orders_env, monkeypatch
) -> None:
    config, tables = orders_env
    batch = generate_events(config.topic("orders"), 40, {FaultKind.MALFORMED_JSON: 0.05}, seed=53, now=NOW)
    append_raw(spark, tables.raw, batch.records)

    def broken(*_args) -> None:  # runs in its own thread, beside the drift audit
        raise OSError("quarantine storage unavailable")

    monkeypatch.setattr(pipeline, "_write_quarantine", broken)
    with pytest.raises(OSError, match="quarantine storage unavailable"):
        run_curation(spark, config, "orders")
    assert current_snapshot_id(spark, tables.curated) is None
    assert read_checkpoint(spark, tables.curated, RAW_CHECKPOINT_KEY) is None
    monkeypatch.undo()
    result = run_curation(spark, config, "orders")
    assert result.ledger is not None and result.ledger.balanced
    assert spark.table(tables.quarantine.sql).count() == batch.injected[FaultKind.MALFORMED_JSON.value] > 0


def test_replay_moves_retry_rows_to_curated_once_after_a_contract_fix(spark, orders_env) -> None:
    config, tables = orders_env
    batch = generate_events(config.topic("orders"), 100, {FaultKind.UNKNOWN_VERSION: 0.05}, seed=61, now=NOW)
    append_raw(spark, tables.raw, batch.records)
    run_curation(spark, config, "orders")
    assert spark.table(tables.curated.sql).count() == 95

    nothing_yet = run_replay(spark, config, "orders")  # contract unchanged: still RETRY
    assert (nothing_yet.pending, nothing_yet.still_pending, nothing_yet.replayed) == (5, 5, 0)

    fixed = orders_with(config, schema_versions=(1, 2))
    with pytest.raises(Crash):
        run_replay(spark, fixed, "orders", after_step=crash_at(STEP_REPLAY_MERGED))
    result = run_replay(spark, fixed, "orders")
    assert (result.pending, result.replayed) == (5, 5)
    assert spark.table(tables.curated.sql).count() == 100
    statuses = spark.table(tables.quarantine.sql).select("replay_status", "attempt_count").collect()
    assert {(r["replay_status"], r["attempt_count"]) for r in statuses} == {("replayed", 3)}
    assert run_replay(spark, fixed, "orders").pending == 0


def test_a_retry_message_delivered_again_on_another_day_replays_both_of_its_rows(spark, orders_env) -> None:
    # the quarantine MERGE finds a message id within the ingestion days of its batch, so a
    # delivery on another day has a row of its own; replay must update each row once
    config, tables = orders_env
    config = orders_with(config, error_rate_threshold=1.0)
    t0 = NOW - timedelta(days=3)
    payload = order("A", t0, t0)
    for ingested in (NOW - timedelta(days=2), NOW):
        append_raw(spark, tables.raw, [RawRecord("a-1", "orders", payload, ingested, "test", 2)])
        run_curation(spark, config, "orders")
    assert spark.table(tables.quarantine.sql).where("message_id = 'a-1'").count() == 2

    fixed = orders_with(config, schema_versions=(1, 2))
    result = run_replay(spark, fixed, "orders")
    assert (result.pending, result.replayed) == (2, 2)
    statuses = spark.table(tables.quarantine.sql).select("replay_status", "attempt_count").collect()
    assert sorted((r["replay_status"], r["attempt_count"]) for r in statuses) == [("replayed", 2)] * 2
    assert [r["order_id"] for r in spark.table(tables.curated.sql).collect()] == ["A"]
    assert run_replay(spark, fixed, "orders").pending == 0


def test_a_replayed_record_keeps_a_partly_parsed_value_as_a_curation_run_keeps_it(spark, orders_env) -> None:
    # total_amount is decimal(12,2): 10.555 is stored rounded, and its text is kept in
    # _rescued_data, whether the record is curated directly or replayed from the quarantine
    config, tables = orders_env
    config = orders_with(config, error_rate_threshold=1.0)
    t0 = NOW - timedelta(days=1)
    append_raw(
        spark,
        tables.raw,
        [
            RawRecord("direct", "orders", order("C", t0, t0, total_amount=10.555), NOW, "test", 1),
            RawRecord("retried", "orders", order("R", t0, t0, total_amount=10.555), NOW, "test", 2),
        ],
    )
    run_curation(spark, config, "orders")
    assert run_replay(spark, orders_with(config, schema_versions=(1, 2)), "orders").replayed == 1
    rows = {
        r["order_id"]: (str(r["total_amount"]), r["_rescued_data"])
        for r in spark.table(tables.curated.sql).collect()
    }
    assert rows["C"] == ("10.56", '{"total_amount":"10.555"}')
    assert rows["R"] == rows["C"]


@pytest.mark.parametrize("contract_fixed", [False, True], ids=["still-retry", "fixed"])
def test_overlapping_replays_count_each_attempt_once(spark, orders_env, contract_fixed) -> None:
    """Replay B runs in full while replay A is between its curated MERGE and its quarantine
    update: A changes no row B has counted, and fails saying so instead of reporting counts."""
    config, tables = orders_env
    batch = generate_events(config.topic("orders"), 100, {FaultKind.UNKNOWN_VERSION: 0.05}, seed=61, now=NOW)
    append_raw(spark, tables.raw, batch.records)
    run_curation(spark, config, "orders")
    if contract_fixed:
        config = orders_with(config, schema_versions=(1, 2))
    inner: list = []

    def replay_b(step: str) -> None:
        if step == STEP_REPLAY_MERGED:
            inner.append(run_replay(spark, config, "orders"))

    with pytest.raises(ConcurrentRunError, match="another replay updated 5 of the 5 pending"):
        run_replay(spark, config, "orders", after_step=replay_b)
    assert (inner[0].pending, inner[0].replayed) == (5, 5 if contract_fixed else 0)
    status = "replayed" if contract_fixed else "pending"
    rows = spark.table(tables.quarantine.sql).select("replay_status", "attempt_count", "run_id").collect()
    assert {(r["replay_status"], r["attempt_count"], r["run_id"]) for r in rows} == {
        (status, 2, inner[0].run_id)
    }
    assert spark.table(tables.curated.sql).count() == (100 if contract_fixed else 95)
    again = run_replay(spark, config, "orders")
    assert again.pending == (0 if contract_fixed else 5)


def test_a_composite_numeric_key_nested_ordering_and_month_partitions_account_for_every_fault(
    spark, fresh_config, payments_contract
) -> None:
    """The shipped topics have one top-level string key and day partitions of a timestamp;
    the payments contract (tests/conftest.py) has none of that: the same guarantees hold."""
    from pyspark.sql import functions as F

    config = replace(fresh_config, topics={**fresh_config.topics, "payments": payments_contract})
    bootstrap_tables(spark, config, ["payments"])
    tables = topic_tables(config.profile, "payments")
    batch = generate_events(payments_contract, 1_000, fault_rates(0.2, 0.1, 0.05), seed=13, now=NOW)
    append_raw(spark, tables.raw, batch.records, appends=2)
    assert all(batch.injected.values())

    ledger = run_curation(spark, config, "payments").ledger

    expected = batch.expected
    assert ledger is not None and ledger.balanced and ledger.read == len(batch.records)
    assert ledger.quarantined_by_reason == dict(expected.quarantined)
    assert ledger.upserted == expected.curated_keys and ledger.rescued_records == expected.rescued
    assert ledger.superseded_in_batch + ledger.stale == expected.superseded
    curated = spark.table(tables.curated.sql)
    assert (
        curated.select("account_id", "payment_no").distinct().count()
        == curated.count()
        == expected.curated_keys
    )
    # each row sits in the month of its paid_on (late events included), the newest meta_seq won
    months = spark.sql(
        f"SELECT partition.paid_on_month AS m, record_count AS n FROM {tables.curated.metadata_table('partitions')}"
    ).collect()
    by_month = curated.groupBy(F.expr("(year(paid_on) - 1970) * 12 + month(paid_on) - 1").alias("m")).count()
    by_month = by_month.collect()
    assert len(months) > 1 and {(r["m"], r["n"]) for r in months} == {(r["m"], r["count"]) for r in by_month}
    resent = [r for r in batch.records if r.message_id.endswith("-v2")]
    newest = {
        (p["account"]["id"], p["payment_no"]): p["meta"]["seq"]
        for p in (json.loads(r.payload) for r in resent)
    }
    rows = curated.where(F.col("_message_id").endswith("-v2")).collect()
    assert {(r["account_id"], r["payment_no"]): r["meta_seq"] for r in rows} == newest
    assert run_curation(spark, config, "payments").status == "no_new_data"


def test_a_topic_partitioned_by_identity_of_an_int_column_curates_replays_and_feeds_semantic(
    spark, fresh_config
) -> None:
    """An identity partition column has no days to prune by, and an int (or a string) one is no
    date: no step asks it for one (curation's counts, replay, the semantic job's read of the
    previous versions). In an ANSI session such a cast fails the job instead of giving null."""
    from lean_ops_spark.semantic.job import run_semantic

    shard = FieldSpec("shard", FieldType("int"), required=True, minimum=0, maximum=3)
    contract = replace(
        fresh_config.topic("orders"),
        fields=(*fresh_config.topic("orders").fields, shard),
        partition=PartitionSpec("shard", "identity"),
    )
    config = replace(fresh_config, topics={**fresh_config.topics, "orders": contract})
    bootstrap_tables(spark, config, ["orders"])
    tables = topic_tables(config.profile, "orders")
    batch = generate_events(contract, 60, {FaultKind.UNKNOWN_VERSION: 0.05}, seed=62, now=NOW)
    append_raw(spark, tables.raw, batch.records)

    with session_conf(spark, "spark.sql.ansi.enabled", "true"):
        result = run_curation(spark, config, "orders")
        assert result.ledger is not None and result.ledger.balanced and result.ledger.upserted == 57
        assert run_semantic(spark, config, "orders", suites={}).status == "published"

        fixed = replace(config, topics={**config.topics, "orders": replace(contract, schema_versions=(1, 2))})
        assert run_replay(spark, fixed, "orders").replayed == 3
        semantic = run_semantic(spark, fixed, "orders", suites={})
        assert semantic.status == "published" and {m.window for m in semantic.models} == {"incremental"}
    assert spark.table(tables.curated.sql).count() == 60
    shards = spark.sql(f"SELECT partition.shard AS s FROM {tables.curated.metadata_table('partitions')}")
    assert {r["s"] for r in shards.collect()} <= {0, 1, 2, 3}


def test_run_metrics_reach_cloudwatch_with_low_cardinality_dimensions(spark, orders_env) -> None:
    import boto3
    from moto import mock_aws

    from lean_ops_spark.metrics import CloudWatchSink

    config, tables = orders_env
    batch = generate_events(config.topic("orders"), 50, {FaultKind.MISSING_KEY: 0.04}, seed=71, now=NOW)
    append_raw(spark, tables.raw, batch.records)
    with mock_aws():
        cloudwatch = boto3.client("cloudwatch", region_name="us-east-1")
        run_curation(spark, config, "orders", metrics=CloudWatchSink("LeanOps", client=cloudwatch))
        listed = cloudwatch.list_metrics(Namespace="LeanOps")["Metrics"]
        names = {m["MetricName"] for m in listed}
        assert {
            "RecordsRead",
            "RecordsUpserted",
            "RecordsQuarantined",
            "ErrorRate",
            "DurationSeconds",
            "LagSeconds",
            "BacklogSnapshots",
        } <= names
        dimension_names = {d["Name"] for m in listed for d in m["Dimensions"]}
        assert dimension_names <= {"Topic", "Layer", "ErrorClass"}  # no run ids: they would bill per run

        def total(name: str, **dims: str) -> float:
            stats = cloudwatch.get_metric_statistics(
                Namespace="LeanOps",
                MetricName=name,
                Statistics=["Sum"],
                Period=60,
                StartTime=datetime.now(timezone.utc) - timedelta(hours=1),
                EndTime=datetime.now(timezone.utc) + timedelta(hours=1),
                Dimensions=[
                    {"Name": k, "Value": v}
                    for k, v in {"Topic": "orders", "Layer": "curated", **dims}.items()
                ],
            )
            return sum(p["Sum"] for p in stats["Datapoints"])

        assert total("RecordsRead") == 50
        assert total("RecordsQuarantined", ErrorClass="DROP") == 2
        assert total("RecordsUpserted") == 48
