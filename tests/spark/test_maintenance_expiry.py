"""Checkpoint-safe snapshot expiry: an aggressive expiry never takes what a consumer still needs."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta, timezone

from lean_ops_spark.catalog.bootstrap import bootstrap_tables
from lean_ops_spark.catalog.checkpoints import RAW_CHECKPOINT_KEY, read_checkpoint
from lean_ops_spark.catalog.naming import topic_tables
from lean_ops_spark.config import parse_maintenance
from lean_ops_spark.maintenance.procedures import ExpireSnapshotsResult
from lean_ops_spark.maintenance.runner import MaintenanceRequest, maintain
from lean_ops_spark.metrics import MemorySink
from tests.spark.conftest_maintenance import snapshot_ids

#: Expire everything older than "now" except the newest snapshot, unless something protects it.
AGGRESSIVE = parse_maintenance(
    {"operations": {"expire_snapshots": {"options": {"retain_last": 1, "older_than_days": 0}}}},
    "aggressive.yaml",
)


def _append_raw(spark, raw, batch: int) -> int:
    ts = datetime(2026, 11, 20, 10, 0, tzinfo=timezone.utc)
    rows = [(f"m{batch}-{i}", "orders", "{}", ts, "shop", 1) for i in range(3)]
    spark.createDataFrame(rows, spark.table(raw.sql).schema).writeTo(raw.sql).append()
    return snapshot_ids(spark, raw)[-1]


def _commit_curated(spark, curated, raw_snapshot_id: int | None) -> None:
    schema = spark.table(curated.sql).schema
    writer = spark.createDataFrame([tuple(None for _ in schema)], schema).writeTo(curated.sql)
    if raw_snapshot_id is not None:
        writer = writer.option(f"snapshot-property.{RAW_CHECKPOINT_KEY}", str(raw_snapshot_id))
    writer.append()


def test_aggressive_expiry_keeps_the_checkpoint_and_incremental_reads_still_work(spark, fresh_config) -> None:
    config = replace(fresh_config, maintenance=AGGRESSIVE)
    bootstrap_tables(spark, config, ["orders"])
    tables = topic_tables(config.profile, "orders")
    raw, curated = tables.raw, tables.curated

    s = [_append_raw(spark, raw, b) for b in range(1, 5)]  # s1..s4
    _commit_curated(spark, curated, s[2])  # curation consumed up to s3
    s += [_append_raw(spark, raw, 5)]  # s5 arrives later
    assert snapshot_ids(spark, raw) == s

    sink = MemorySink()
    request = MaintenanceRequest(
        ops=frozenset({"expire_snapshots"}), now=datetime.now(timezone.utc) + timedelta(minutes=1)
    )
    report = maintain(spark, config, request, sink=sink, tables=[raw])

    expire = report.table(raw.sql).operation("expire_snapshots")
    assert expire.status == "succeeded", expire.outcome
    assert "older_than clamped to" in expire.plan.reason
    assert f"keeps snapshot {s[2]}, the checkpoint of {curated.sql}" in expire.plan.reason
    assert expire.outcome is not None and isinstance(expire.outcome.result, ExpireSnapshotsResult)
    assert expire.outcome.result.snapshots_expired == 2
    assert sink.values("SnapshotsExpired", Table=raw.identifier, Operation="expire_snapshots") == [2.0]
    # s1 and s2 went (the expiry was real), the checkpoint and everything after it stayed
    assert snapshot_ids(spark, raw) == s[2:]

    # curation's next incremental read starts after its checkpoint and sees exactly s4 and s5
    incremental = spark.read.format("iceberg").option("start-snapshot-id", str(s[2])).load(raw.sql)
    expected = {f"m{b}-{i}" for b in (4, 5) for i in range(3)}
    assert {r["message_id"] for r in incremental.select("message_id").collect()} == expected


def test_a_table_keeps_the_snapshot_carrying_its_own_checkpoint(spark, fresh_config) -> None:
    config = replace(fresh_config, maintenance=AGGRESSIVE)
    bootstrap_tables(spark, config, ["orders"])
    curated = topic_tables(config.profile, "orders").curated
    _commit_curated(spark, curated, 12345)  # the checkpoint ...
    _commit_curated(spark, curated, None)  # ... then two writes without it (e.g. compaction-like)
    _commit_curated(spark, curated, None)
    before = snapshot_ids(spark, curated)

    request = MaintenanceRequest(
        ops=frozenset({"expire_snapshots"}), now=datetime.now(timezone.utc) + timedelta(minutes=1)
    )
    report = maintain(spark, config, request, tables=[curated])

    expire = report.table(curated.sql).operation("expire_snapshots")
    # retain_last 1 would keep only the newest; the own-checkpoint snapshot holds the floor
    assert expire.status == "skipped"
    assert "carries this table's own lean-ops.raw-snapshot-id" in expire.plan.reason
    assert snapshot_ids(spark, curated) == before
    checkpoint = read_checkpoint(spark, curated, RAW_CHECKPOINT_KEY)
    assert checkpoint is not None and checkpoint.source_snapshot_id == 12345
