"""Curation run edge cases found in review: job retries under one run id, the ledger's
counts on merge-on-read tables whose delete files are rewritten, month partitions, and
raw/curated histories that were rolled back, replaced, expired or hold no appends."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import timedelta

import pytest

from lean_ops_spark.catalog.bootstrap import bootstrap_tables
from lean_ops_spark.catalog.checkpoints import RAW_CHECKPOINT_KEY, read_checkpoint
from lean_ops_spark.catalog.naming import topic_tables
from lean_ops_spark.curation.pipeline import STEP_MERGED, CurationOptions, run_curation
from lean_ops_spark.errors import CheckpointError
from lean_ops_spark.raw import RawRecord
from lean_ops_spark.raw.writer import append_raw
from tests.spark.test_curation import (
    NOW,
    Crash,
    crash_at,
    order,
    raw_record,
    with_merge_mode,
)

T0 = NOW - timedelta(days=1)


@pytest.fixture
def orders_env(spark, fresh_config):  # type: ignore[no-untyped-def]
    bootstrap_tables(spark, fresh_config, ["orders"])
    return fresh_config, topic_tables(fresh_config.profile, "orders")


def snapshot_ids(spark, table) -> list[int]:  # type: ignore[no-untyped-def]
    return [
        r["snapshot_id"]
        for r in spark.sql(
            f"SELECT snapshot_id FROM {table.metadata_table('snapshots')} ORDER BY committed_at"
        ).collect()
    ]


def test_a_job_retried_under_the_same_run_id_after_its_commit_balances_on_copy_on_write(
    spark, fresh_config
) -> None:
    # Step Functions passes the same --run_id to every attempt of RunCurationJob: an attempt
    # that dies after its MERGE committed is retried under that id and reads the next range.
    # Its ledger must count its own rows only, not the first attempt's rows of the same day.
    config, tables = with_merge_mode(spark, fresh_config, "copy-on-write")
    append_raw(spark, tables.raw, [raw_record("a-1", order("A", T0, T0))])
    append_raw(spark, tables.raw, [raw_record("b-1", order("B", T0, T0), 1)])
    options = CurationOptions(max_snapshots=1, run_id="exec-1:r1")
    with pytest.raises(Crash):
        run_curation(spark, config, "orders", options=options, after_step=crash_at(STEP_MERGED))

    retried = run_curation(spark, config, "orders", options=options)

    assert retried.ledger is not None and retried.ledger.balanced
    assert (retried.ledger.upserted, retried.ledger.stale) == (1, 0)
    assert sorted(r["order_id"] for r in spark.table(tables.curated.sql).collect()) == ["A", "B"]


def test_inserted_and_updated_count_only_this_commits_deletes_on_merge_on_read(spark, orders_env) -> None:
    # Iceberg (file-scoped delete granularity, deletion vectors) replaces a data file's
    # delete file with one holding the older positions too: only the difference is this run's.
    config, tables = orders_env
    append_raw(
        spark, tables.raw, [raw_record("a-1", order("A", T0, T0)), raw_record("b-1", order("B", T0, T0), 1)]
    )
    run_curation(spark, config, "orders")
    ledgers = []
    for i, key in enumerate(("A", "B"), start=2):
        newer = order(key, T0, T0 + timedelta(hours=1), "paid")
        append_raw(spark, tables.raw, [raw_record(f"{key.lower()}-2", newer, i)])
        ledgers.append(run_curation(spark, config, "orders").ledger)

    assert [(x.upserted, x.inserted, x.updated) for x in ledgers if x] == [(1, 0, 1), (1, 0, 1)]
    assert {r["status"] for r in spark.table(tables.curated.sql).collect()} == {"paid"}


def test_a_version_moved_within_its_month_partition_replaces_the_row(
    spark, fresh_config, payments_contract
) -> None:
    # payments are partitioned by month of paid_on: a newer version of a payment whose
    # paid_on moved from the 3rd to the 5th is in the same partition and must replace its row
    config = replace(fresh_config, topics={**fresh_config.topics, "payments": payments_contract})
    bootstrap_tables(spark, config, ["payments"])
    tables = topic_tables(config.profile, "payments")

    def payment(message_id: str, seq: int, paid_on: str, minute: int) -> RawRecord:
        payload = {
            "account": {"id": 7},
            "payment_no": 1,
            "meta": {"seq": seq},
            "paid_on": paid_on,
            "amount": 5,
        }
        return RawRecord(
            message_id, "payments", json.dumps(payload), NOW + timedelta(minutes=minute), "test", 1
        )

    append_raw(spark, tables.raw, [payment("p-1", 1, "2026-11-03", 0)])
    run_curation(spark, config, "payments")
    append_raw(spark, tables.raw, [payment("p-2", 2, "2026-11-05", 1)])
    result = run_curation(spark, config, "payments")

    assert result.ledger is not None and result.ledger.balanced and result.ledger.upserted == 1
    rows = spark.table(tables.curated.sql).collect()
    assert [(str(r["paid_on"]), r["meta_seq"], r["_message_id"]) for r in rows] == [("2026-11-05", 2, "p-2")]


def test_an_expired_checkpoint_snapshot_still_reads_the_range_after_it(spark, orders_env) -> None:
    config, tables = orders_env
    append_raw(spark, tables.raw, [raw_record("a-1", order("A", T0, T0))])
    run_curation(spark, config, "orders")
    append_raw(spark, tables.raw, [raw_record("b-1", order("B", T0, T0), 1)])
    checkpoint = snapshot_ids(spark, tables.raw)[0]
    spark.sql(
        f"CALL {config.profile.catalog}.system.expire_snapshots(table => '{tables.raw.identifier}', "
        f"snapshot_ids => array({checkpoint}L))"
    )
    assert checkpoint not in snapshot_ids(spark, tables.raw)

    result = run_curation(spark, config, "orders")

    assert result.raw_start_snapshot_id == checkpoint
    assert result.ledger is not None and result.ledger.balanced and result.ledger.read == 1


def test_delete_snapshots_in_raw_are_skipped_and_hold_the_checkpoint(spark, orders_env) -> None:
    config, tables = orders_env
    append_raw(
        spark, tables.raw, [raw_record("a-1", order("A", T0, T0)), raw_record("x-1", order("X", T0, T0))]
    )
    first = run_curation(spark, config, "orders")
    spark.sql(f"DELETE FROM {tables.raw.sql} WHERE message_id = 'x-1'")
    assert run_curation(spark, config, "orders").status == "no_new_data"

    append_raw(spark, tables.raw, [raw_record("b-1", order("B", T0, T0), 1)])
    spark.sql(f"DELETE FROM {tables.raw.sql} WHERE message_id = 'a-1'")  # after the append
    result = run_curation(spark, config, "orders")

    assert result.raw_start_snapshot_id == first.raw_end_snapshot_id
    assert result.ledger is not None and result.ledger.balanced and result.ledger.read == 1
    assert sorted(r["order_id"] for r in spark.table(tables.curated.sql).collect()) == ["A", "B", "X"]
    assert run_curation(spark, config, "orders").status == "no_new_data"


def test_an_empty_raw_append_commits_an_empty_balanced_run(spark, orders_env) -> None:
    config, tables = orders_env
    spark.table(tables.raw.sql).limit(0).writeTo(tables.raw.sql).append()
    result = run_curation(spark, config, "orders")
    assert result.status == "committed" and result.error_rate == 0.0
    assert result.ledger is not None and result.ledger.balanced and result.ledger.read == 0
    assert read_checkpoint(spark, tables.curated, RAW_CHECKPOINT_KEY).source_snapshot_id == (
        result.raw_end_snapshot_id
    )
    assert run_curation(spark, config, "orders").status == "no_new_data"


def test_a_replaced_raw_table_fails_naming_the_table_and_the_checkpoint(spark, orders_env) -> None:
    config, tables = orders_env
    append_raw(spark, tables.raw, [raw_record("a-1", order("A", T0, T0))])
    first = run_curation(spark, config, "orders")
    spark.sql(
        f"CREATE OR REPLACE TABLE {tables.raw.sql} USING iceberg AS SELECT * FROM {tables.raw.sql} WHERE false"
    )
    append_raw(spark, tables.raw, [raw_record("b-1", order("B", T0, T0), 1)])
    with pytest.raises(
        CheckpointError,
        match=rf"{tables.raw.sql}: checkpoint snapshot {first.raw_end_snapshot_id} is not an ancestor",
    ):
        run_curation(spark, config, "orders")


def test_a_rolled_back_curated_table_reads_its_range_again(spark, orders_env) -> None:
    config, tables = orders_env
    append_raw(spark, tables.raw, [raw_record("a-1", order("A", T0, T0))])
    run_curation(spark, config, "orders")
    rollback_to = snapshot_ids(spark, tables.curated)[-1]
    append_raw(spark, tables.raw, [raw_record("a-2", order("A", T0, T0 + timedelta(hours=1), "paid"), 1)])
    run_curation(spark, config, "orders")
    spark.sql(
        f"CALL {config.profile.catalog}.system.rollback_to_snapshot('{tables.curated.identifier}', {rollback_to})"
    )

    result = run_curation(spark, config, "orders")

    assert result.ledger is not None and result.ledger.balanced and result.ledger.upserted == 1
    assert [(r["status"], r["_message_id"]) for r in spark.table(tables.curated.sql).collect()] == [
        ("paid", "a-2")
    ]


def test_a_session_not_in_pinned_thread_mode_fails_naming_the_curated_table(
    spark, orders_env, monkeypatch
) -> None:
    config, tables = orders_env
    append_raw(spark, tables.raw, [raw_record("a-1", order("A", T0, T0))])

    class JavaGateway:  # what PYSPARK_PIN_THREAD=false gives instead of a ClientServer
        pass

    monkeypatch.setattr(spark.sparkContext, "_gateway", JavaGateway())
    with pytest.raises(
        CheckpointError,
        match=rf"^{tables.curated.sql} \(orders\): cannot commit lean-ops\.raw-snapshot-id, lean-ops\.run-id",
    ):
        run_curation(spark, config, "orders")
    monkeypatch.undo()
    assert read_checkpoint(spark, tables.curated, RAW_CHECKPOINT_KEY) is None
