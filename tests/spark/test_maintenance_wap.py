"""Maintenance of the semantic tables while the semantic job writes them (write-audit-publish
on an audit branch): a pending audit branch survives expiry and orphan removal and can still
be published; a run whose main a maintenance commit (compaction) moved while it wrote or
audited its branch still publishes; the scheduled (default) run reaches the semantic tables
and the drift audit table."""

from __future__ import annotations

import os
import time
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

import pytest

from lean_ops_spark.catalog.checkpoints import CURATED_CHECKPOINT_KEY, SnapshotRecord, read_checkpoint
from lean_ops_spark.catalog.naming import TableRef
from lean_ops_spark.config import parse_maintenance
from lean_ops_spark.drift.audit import audit_table, audit_table_definition
from lean_ops_spark.maintenance.runner import MaintenanceRequest, TableReport, maintain
from lean_ops_spark.semantic.publish import branches, fast_forward, read_branch
from tests.spark.conftest_maintenance import live_files
from tests.spark.test_semantic import (
    DAY1,
    DAY2,
    STEP_AUDITED,
    Crash,
    Lake,
    audit_branches,
    crash_at,
    only,
    order,
)

#: Every procedure runs on a table of a few small files: expiry keeps only what protects a
#: checkpoint, compaction merges two small files, any two manifests are rewritten.
AGGRESSIVE = parse_maintenance(
    {
        "operations": {
            "expire_snapshots": {"options": {"retain_last": 1, "older_than_days": 0}},
            "remove_orphan_files": {"options": {"older_than_hours": 24}},
            "rewrite_data_files": {"options": {"hot_partition_days": 0}},
        },
        "thresholds": {
            "min_small_files": 2,
            "small_file_ratio": 0.0,
            "max_manifests": 1,
            "delete_file_ratio": 0.0,
            "min_position_delete_files": 1,
        },
    },
    "aggressive.yaml",
)
TEN_DAYS = 10 * 86400


@pytest.fixture
def lake(spark, fresh_config) -> Lake:
    return Lake(spark, replace(fresh_config, maintenance=AGGRESSIVE))


def _maintain(spark, lake: Lake, table: TableRef, *ops: str, real_clock: bool = False) -> TableReport:
    # a minute ahead, so that expiry's "older than 0 days" covers the snapshots just committed;
    # orphan removal needs the real clock (Iceberg refuses an older_than under 24 h before it)
    now = datetime.now(timezone.utc) + (timedelta(0) if real_clock else timedelta(minutes=1))
    request = MaintenanceRequest(ops=frozenset(ops) if ops else None, now=now)
    return maintain(spark, lake.config, request, tables=[table]).table(table.sql)


def _age(root: Path, seconds: float) -> None:
    stamp = time.time() - seconds
    for path in root.rglob("*"):
        if path.is_file():
            os.utime(path, (stamp, stamp))


def _state(lake: Lake) -> list[tuple[str, str, Decimal]]:
    return sorted((r["order_id"], r["order_status"], r["total_amount"]) for r in lake.entity().collect())


def _three_runs(lake: Lake) -> int:
    """Two published runs (two small files in the table's one partition), then a third
    curation whose snapshot is returned: A paid 5.00, B and C created, D new."""
    models = only("orders")
    lake.land(order("A", DAY1, 1, total="1.00"), order("B", DAY1, 1, total="2.00"))
    lake.semantic(curated_snapshot_id=lake.curate(), models=models)
    lake.land(order("C", DAY1, 1, total="3.00"))
    lake.semantic(curated_snapshot_id=lake.curate(), models=models)
    lake.land(order("A", DAY1, 2, status="paid", total="5.00"), order("D", DAY2, 1, total="4.00"))
    return lake.curate()


EXPECTED = [
    ("A", "paid", Decimal("5.00")),
    ("B", "created", Decimal("2.00")),
    ("C", "created", Decimal("3.00")),
    ("D", "created", Decimal("4.00")),
]


def test_a_pending_audit_branch_survives_expiry_and_orphan_removal_and_still_publishes(
    spark, lake, local_home
) -> None:
    table = lake.table("orders")
    pinned = _three_runs(lake)
    with pytest.raises(Crash):  # written and audited, main not moved yet
        lake.semantic(curated_snapshot_id=pinned, models=only("orders"), after_step=crash_at(STEP_AUDITED))
    [branch] = audit_branches(spark, table)
    heads = branches(spark, table)
    on_branch = sorted(tuple(r) for r in read_branch(spark, table, branch).collect())
    # every file of the table is old enough to be an orphan candidate: only metadata saves it
    _age(local_home.warehouse / table.database / table.name, TEN_DAYS)

    expire = _maintain(spark, lake, table, "expire_snapshots").operation("expire_snapshots")
    assert expire.status == "succeeded", expire.outcome
    orphans = _maintain(spark, lake, table, "remove_orphan_files", real_clock=True)
    assert orphans.operation("remove_orphan_files").status == "succeeded"

    assert branches(spark, table) == heads  # main and the branch where they were
    spark.sql(f"REFRESH TABLE {table.sql}")
    assert sorted(tuple(r) for r in read_branch(spark, table, branch).collect()) == on_branch
    branch_files = {r[0] for r in read_branch(spark, table, branch).selectExpr("input_file_name()").collect()}
    assert branch_files and all(Path(f.removeprefix("file:")).exists() for f in branch_files)
    assert all(p.exists() for p in live_files(spark, table))
    # the audited snapshot can still be published as it is
    assert fast_forward(spark, table, branch, audited=heads[branch]) == heads[branch]
    assert _state(lake) == EXPECTED
    assert read_checkpoint(spark, table, CURATED_CHECKPOINT_KEY).source_snapshot_id == pinned


@pytest.mark.parametrize("moved_at", ["staged", STEP_AUDITED])
def test_a_run_publishes_when_maintenance_moves_main_while_it_writes_or_audits(
    spark, lake, monkeypatch, moved_at
) -> None:
    """Maintenance runs concurrently with the semantic job. A compaction of the semantic table
    commits to main after the run read its checkpoint (before its branch exists: the branch
    grows from the compaction) or while it audits its branch (main is no longer the branch's
    parent, so the fast-forward fails). Either commit changes no row and no checkpoint: the
    run writes its branch again from the new main and publishes, instead of failing."""
    from lean_ops_spark.semantic import job

    table = lake.table("orders")
    pinned = _three_runs(lake)
    compactions: list[TableReport] = []

    def compact() -> None:
        if not compactions:
            compactions.append(_maintain(spark, lake, table, "rewrite_data_files"))

    stage = job._stage

    def stage_then_compact(*args, **kwargs):  # type: ignore[no-untyped-def]
        staged = stage(*args, **kwargs)
        compact()
        return staged

    if moved_at == "staged":
        monkeypatch.setattr(job, "_stage", stage_then_compact)
    result = lake.semantic(
        curated_snapshot_id=pinned,
        models=only("orders"),
        after_step=lambda step: compact() if step == moved_at else None,
    )

    [compaction] = compactions
    assert compaction.operation("rewrite_data_files").status == "succeeded"
    assert result.status == "published"
    assert read_checkpoint(spark, table, CURATED_CHECKPOINT_KEY).source_snapshot_id == pinned
    assert _state(lake) == EXPECTED
    assert not audit_branches(spark, table)
    operations = [
        r["operation"]
        for r in spark.sql(
            f"SELECT operation FROM {table.metadata_table('snapshots')} ORDER BY committed_at"
        ).collect()
    ]
    assert "replace" in operations  # the compaction stayed on main, the run published after it


def _record(snapshot_id: int, parent: int | None, operation: str, **summary: str) -> SnapshotRecord:
    return SnapshotRecord(snapshot_id, parent, summary, snapshot_id, operation)


def test_only_replace_snapshots_without_a_checkpoint_count_as_maintenance_moves() -> None:
    from lean_ops_spark.semantic.publish import moved_by_maintenance

    base = _record(1, None, "overwrite", **{CURATED_CHECKPOINT_KEY: "7", "lean-ops.run-id": "sem-1"})
    compaction = _record(2, 1, "replace")
    manifests = _record(3, 2, "replace")
    publish = _record(4, 3, "overwrite", **{CURATED_CHECKPOINT_KEY: "8", "lean-ops.run-id": "sem-2"})
    records = [base, compaction, manifests, publish]
    assert moved_by_maintenance(records, 1, 3)
    assert not moved_by_maintenance(records, 1, 4)  # another run published
    assert not moved_by_maintenance(records, 1, 1)  # main did not move
    assert not moved_by_maintenance(records, None, 3)  # no base: a first publish made main
    assert not moved_by_maintenance([base, manifests], 1, 3)  # a snapshot on the way is gone
    assert not moved_by_maintenance(records, 2, 1)  # base is not an ancestor of head


def test_a_default_maintenance_run_expires_the_semantic_and_drift_audit_tables_snapshots(spark, lake) -> None:
    """Every semantic run commits to its table (and leaves the snapshot of each audit branch it
    drops), every drifted curation run appends to the drift audit table; a maintenance run on
    the default targets (the scheduled job) must reach them."""
    table = lake.table("orders")
    pinned = _three_runs(lake)
    with pytest.raises(Crash):  # an audit branch the next run drops: its snapshot stays behind
        lake.semantic(curated_snapshot_id=pinned, models=only("orders"), after_step=crash_at(STEP_AUDITED))
    assert lake.semantic(curated_snapshot_id=pinned, models=only("orders")).status == "published"
    before = spark.sql(f"SELECT snapshot_id FROM {table.metadata_table('snapshots')}").count()
    assert before >= 4
    drift = audit_table(lake.config.profile)  # shared by the topics' curation runs, append-only
    spark.sql(audit_table_definition(drift).create_sql())
    for run in range(3):
        spark.sql(
            f"INSERT INTO {drift.sql} SELECT current_timestamp(), 'orders', 'cur-{run}', 'x', 'new_field', "
            "NULL, 'string', 'rescue', 'rescue', 'data', 1, 1, NULL, NULL"
        )

    request = MaintenanceRequest(
        ops=frozenset({"expire_snapshots"}), now=datetime.now(timezone.utc) + timedelta(minutes=1)
    )
    report = maintain(spark, lake.config, request)  # no tables named: the default targets

    expire = report.table(table.sql).operation("expire_snapshots")
    assert expire.status == "succeeded", expire.outcome
    after = spark.sql(f"SELECT snapshot_id FROM {table.metadata_table('snapshots')}").count()
    assert after < before
    assert read_checkpoint(spark, table, CURATED_CHECKPOINT_KEY).source_snapshot_id == pinned
    assert _state(lake) == EXPECTED
    assert report.table(lake.table("orders_daily_revenue").sql).status == "missing"  # never run here
    assert report.table(drift.sql).operation("expire_snapshots").status == "succeeded"
    assert spark.sql(f"SELECT snapshot_id FROM {drift.metadata_table('snapshots')}").count() == 1
    assert spark.table(drift.sql).count() == 3
