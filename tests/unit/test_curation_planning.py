"""Pure parts of curation: batch planning over snapshot metadata, MERGE text, the ledger."""

from __future__ import annotations

from dataclasses import replace
from datetime import date
from pathlib import Path

import pytest

from lean_ops_spark.catalog.checkpoints import SnapshotRecord
from lean_ops_spark.config import load_project
from lean_ops_spark.curation.batch import plan_batch
from lean_ops_spark.curation.ledger import Ledger
from lean_ops_spark.curation.merge import (
    curated_merge_sql,
    day_ranges,
    partition_predicate,
    quarantine_merge_sql,
)
from lean_ops_spark.curation.pipeline import check_run_id
from lean_ops_spark.errors import CheckpointError, ConfigError

CONF = Path(__file__).resolve().parents[2] / "conf"


def history(*operations: str, records: int = 10) -> list[SnapshotRecord]:
    """Snapshots 1..n in a line; appends add ``records`` each; totals accumulate."""
    out, total = [], 0
    for i, op in enumerate(operations, start=1):
        total += records if op == "append" else 0
        summary = {"added-records": str(records if op == "append" else 0), "total-records": str(total)}
        out.append(
            SnapshotRecord(i, i - 1 if i > 1 else None, summary, committed_at_ms=i * 1000, operation=op)
        )
    return out


def test_plan_takes_appends_after_the_checkpoint_up_to_the_cap() -> None:
    plan = plan_batch(history("append", "append", "append", "append"), 4, 1, max_snapshots=2)
    assert plan.append_snapshots == (2, 3)
    assert (plan.start_snapshot_id, plan.end_snapshot_id, plan.expected_records) == (1, 3, 20)
    assert (plan.backlog_snapshots, plan.backlog_records) == (1, 10)
    assert plan.oldest_pending_commit_ms == 2000


def test_replace_snapshots_add_nothing_and_trail_behind_the_checkpoint() -> None:
    plan = plan_batch(history("append", "append", "replace"), 3, 1, max_snapshots=10)
    assert plan.append_snapshots == (2,)
    assert plan.end_snapshot_id == 3  # the trailing compaction is behind the new checkpoint
    assert plan.expected_records == 10
    assert not plan_batch(history("append", "replace"), 2, 1, max_snapshots=10).has_new_data


def test_record_cap_always_takes_at_least_one_snapshot() -> None:
    plan = plan_batch(
        history("append", "append", "append", records=100), 3, None, max_snapshots=10, max_records=150
    )
    assert plan.append_snapshots == (1,)
    tiny = plan_batch(history("append", "append", records=100), 2, None, max_snapshots=10, max_records=1)
    assert tiny.append_snapshots == (1,)


def test_from_the_beginning_counts_total_records_even_if_early_history_expired() -> None:
    records = history("append", "append", "append")[1:]  # snapshot 1 expired
    plan = plan_batch(records, 3, None, max_snapshots=10)
    assert plan.start_snapshot_id is None and plan.end_snapshot_id == 3
    assert plan.expected_records == 30  # read as of snapshot 3 returns every row


def with_summary(record: SnapshotRecord, **summary: str) -> SnapshotRecord:
    """``record`` with its summary replaced (keys with ``_`` for ``-``)."""
    return replace(record, summary={k.replace("_", "-"): v for k, v in summary.items()})


def test_first_run_reads_as_of_a_compaction_when_history_expired_down_to_it() -> None:
    records = history("append", "append", "replace")[2:]  # expired down to the compaction
    plan = plan_batch(records, 3, None, max_snapshots=10)
    assert plan.has_new_data and plan.append_snapshots == (3,)  # the snapshot read as of
    assert (plan.start_snapshot_id, plan.end_snapshot_id, plan.expected_records) == (None, 3, 20)
    assert (plan.backlog_snapshots, plan.backlog_records, plan.oldest_pending_commit_ms) == (0, 0, 3000)
    # a compaction followed by a delete: the read returns the current snapshot's rows
    records = history("append", "append", "replace", "delete")[2:]
    records[-1] = with_summary(records[-1], deleted_records="5", total_records="15")
    plan = plan_batch(records, 4, None, max_snapshots=1)
    assert plan.has_new_data and plan.append_snapshots == (4,)
    assert (plan.end_snapshot_id, plan.expected_records, plan.oldest_pending_commit_ms) == (4, 15, 3000)


def test_first_run_over_an_empty_compaction_has_no_new_data() -> None:
    records = history("append", "replace")[1:]
    emptied = [with_summary(records[0], total_records="0")]
    assert not plan_batch(emptied, 2, None, max_snapshots=10).has_new_data
    unknown = [with_summary(records[0], added_records="0")]  # no total-records in the summary
    assert not plan_batch(unknown, 2, None, max_snapshots=10).has_new_data
    # with a checkpoint nothing changes: a compaction alone is still no new data
    assert not plan_batch(history("append", "append", "replace")[1:], 3, 2, max_snapshots=10).has_new_data


def test_first_run_expects_the_row_count_of_the_snapshot_it_reads_as_of() -> None:
    records = history("append", "append", "delete")
    records[-1] = with_summary(records[-1], deleted_records="5", total_records="15")
    plan = plan_batch(records, 3, None, max_snapshots=10)
    assert plan.append_snapshots == (1, 2) and plan.end_snapshot_id == 3
    assert plan.expected_records == 15  # as of snapshot 3, not the last append's 20
    # a backlog left: the read ends at the last append taken and counts its rows
    capped = plan_batch(records, 3, None, max_snapshots=1)
    assert (capped.end_snapshot_id, capped.expected_records) == (1, 10)
    # no total-records on the snapshot read: the records the taken appends added
    records[-1] = with_summary(records[-1], deleted_records="5")
    assert plan_batch(records, 3, None, max_snapshots=10).expected_records == 20


def test_checkpoint_snapshot_may_be_expired_if_its_child_exists() -> None:
    records = history("append", "append", "append")[1:]  # checkpoint 1 expired, child 2 exists
    assert plan_batch(records, 3, 1, max_snapshots=10).append_snapshots == (2, 3)


def test_expired_pending_snapshot_or_foreign_checkpoint_is_an_error() -> None:
    records = [r for r in history("append", "append", "append", "append") if r.snapshot_id != 3]
    with pytest.raises(CheckpointError, match="snapshot 3 between the checkpoint 1"):
        plan_batch(records, 4, 1, max_snapshots=10)
    with pytest.raises(CheckpointError, match="checkpoint snapshot 99 is not an ancestor"):
        plan_batch(history("append", "append"), 2, 99, max_snapshots=10)


def test_nothing_new_when_current_is_the_checkpoint() -> None:
    assert not plan_batch(history("append"), 1, 1, max_snapshots=5).has_new_data
    assert not plan_batch([], None, None, max_snapshots=5).has_new_data


def test_day_ranges_merge_consecutive_days() -> None:
    days = [date(2026, 1, 3), date(2026, 1, 1), date(2026, 1, 2), date(2026, 1, 9), date(2026, 1, 9)]
    assert day_ranges(days) == [(date(2026, 1, 1), date(2026, 1, 3)), (date(2026, 1, 9), date(2026, 1, 9))]


def test_merge_prunes_by_the_batch_partitions_and_never_overwrites_newer() -> None:
    contract = load_project(CONF).topic("orders")
    predicate = partition_predicate(contract, [date(2026, 11, 19), date(2026, 11, 20), date(2026, 6, 1)])
    assert predicate == (
        "((t.order_ts >= TIMESTAMP '2026-06-01 00:00:00' AND t.order_ts < TIMESTAMP '2026-06-02 00:00:00') OR "
        "(t.order_ts >= TIMESTAMP '2026-11-19 00:00:00' AND t.order_ts < TIMESTAMP '2026-11-21 00:00:00'))"
    )
    sql = curated_merge_sql("lake.curated.orders", "src", contract, predicate)
    assert "ON t.order_id = s.order_id AND ((t.order_ts >=" in sql
    assert (
        "WHEN MATCHED AND struct(s.updated_at, s._ingestion_ts, s._message_id) > "
        "struct(t.updated_at, t._ingestion_ts, t._message_id) AND NOT (s._message_id <=> t._message_id) "
        "THEN UPDATE SET *"
    ) in sql
    assert "WHEN NOT MATCHED THEN INSERT *" in sql
    assert partition_predicate(contract, []) is None


@pytest.mark.parametrize(
    ("transform", "expected"),
    [
        ("month", [("2024-02-01", "2024-03-01"), ("2026-12-01", "2027-01-01")]),
        ("year", [("2024-01-01", "2025-01-01"), ("2026-01-01", "2027-01-01")]),
        ("hour", [("2024-02-09", "2024-02-10"), ("2026-12-05", "2026-12-06")]),
    ],
)
def test_the_merge_covers_the_whole_partition_of_each_batch_day(
    transform: str, expected: list[tuple[str, str]]
) -> None:
    # a month-partitioned key whose date moved within its month is in the same partition: the
    # MERGE must find its row there, not only on the day of the new version
    contract = load_project(CONF).topic("orders")
    contract = replace(contract, partition=replace(contract.partition, transform=transform))
    predicate = partition_predicate(contract, [date(2026, 12, 5), date(2024, 2, 9)])
    assert (
        predicate
        == "("
        + " OR ".join(
            f"(t.order_ts >= TIMESTAMP '{a} 00:00:00' AND t.order_ts < TIMESTAMP '{b} 00:00:00')"
            for a, b in expected
        )
        + ")"
    )


def test_many_scattered_days_collapse_into_one_bounded_range() -> None:
    contract = load_project(CONF).topic("orders")
    days = [date(2026, 1, 1).fromordinal(date(2026, 1, 1).toordinal() + 2 * i) for i in range(100)]
    predicate = partition_predicate(contract, days)
    assert predicate is not None and predicate.count(" OR ") == 0
    assert "TIMESTAMP '2026-01-01 00:00:00'" in predicate


def test_quarantine_merge_reads_only_the_ingestion_days_of_its_rows() -> None:
    sql = quarantine_merge_sql(
        "lake.curated.orders_quarantine", "q", [date(2026, 11, 20), date(2026, 11, 19)]
    )
    assert (
        "ON t.message_id = s.message_id AND (t.ingestion_ts IS NULL OR "
        "((t.ingestion_ts >= TIMESTAMP '2026-11-19 00:00:00' AND t.ingestion_ts < TIMESTAMP '2026-11-21 00:00:00')))"
    ) in sql
    assert sql.endswith("WHEN NOT MATCHED THEN INSERT *") and "WHEN MATCHED" not in sql
    # no days known (every bad record without ingestion_ts): keyed by message id alone
    assert "ON t.message_id = s.message_id\n" in quarantine_merge_sql("lake.curated.orders_quarantine", "q")


def test_ledger_balances_only_when_every_record_is_accounted_for() -> None:
    ok = Ledger(
        read=10,
        expected_read=10,
        valid=8,
        kept=6,
        upserted=5,
        inserted=4,
        updated=1,
        quarantined_by_reason={"MALFORMED_JSON": 2},
        quarantined_by_class={"DROP": 2},
    )
    assert ok.balanced and (ok.superseded_in_batch, ok.stale) == (2, 1)
    lost = Ledger(
        read=10,
        expected_read=11,
        valid=8,
        kept=6,
        upserted=5,
        inserted=None,
        updated=None,
        quarantined_by_reason={"MALFORMED_JSON": 2},
        quarantined_by_class={"DROP": 2},
    )
    assert lost.problems() == ["read 10 rows but the raw snapshots added 11"]
    too_many = Ledger(
        read=10,
        expected_read=10,
        valid=8,
        kept=6,
        upserted=7,
        inserted=None,
        updated=None,
        quarantined_by_reason={"MALFORMED_JSON": 2},
        quarantined_by_class={"DROP": 2},
    )
    assert "upserted 7 rows out of 6 kept versions" in too_many.problems()


@pytest.mark.parametrize("run_id", ["x'; DROP TABLE t; --", "", "a b"])
def test_run_ids_are_safe_for_sql_literals(run_id: str) -> None:
    with pytest.raises(ConfigError, match="run id"):
        check_run_id(run_id)
    assert check_run_id("exec-1:r2") == "exec-1:r2"
