"""Policy decisions, without Spark: each operation runs or not, and the reason says why."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, datetime, timedelta, timezone

import pytest

from lean_ops_spark.catalog.naming import TableRef
from lean_ops_spark.config import parse_maintenance
from lean_ops_spark.config.models import MaintenancePolicy
from lean_ops_spark.maintenance.health import (
    PartitionField,
    PartitionHealth,
    SnapshotPoint,
    TableHealth,
    partition_specs_from_metadata,
)
from lean_ops_spark.maintenance.policy import OPERATION_ORDER, PlanContext, PlannedOperation, plan_maintenance
from lean_ops_spark.maintenance.procedures import (
    ExpireSnapshotsCall,
    RemoveOrphanFilesCall,
    RewriteDataFilesCall,
    RewritePositionDeletesCall,
)
from lean_ops_spark.maintenance.protection import ExpiryProtection, ProtectedSnapshot

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=timezone.utc)
NOW_MS = int(NOW.timestamp() * 1000)
HOUR = 3_600_000
DAY = 24 * HOUR
MB = 1024 * 1024
TABLE = TableRef("lake", "raw", "orders_staging", "raw", "orders")
DAY_FIELD = PartitionField("ingestion_ts_day", "day", "ingestion_ts", "timestamp")


def partition(
    day: date, files: int, small: int, *, updated_days_ago: float = 0, deletes: int = 0
) -> PartitionHealth:
    return PartitionHealth(
        values=(("ingestion_ts_day", day),),
        data_file_count=files,
        small_file_count=small,
        data_bytes=files * MB,
        record_count=files * 100,
        position_delete_file_count=deletes,
        last_updated_ms=NOW_MS - int(updated_days_ago * DAY),
    )


def snapshots(count: int, *, oldest_days: float) -> tuple[SnapshotPoint, ...]:
    """``count`` snapshots evenly spread from ``oldest_days`` ago to now."""
    step = int(oldest_days * DAY / max(count - 1, 1))
    start = NOW_MS - int(oldest_days * DAY)
    return tuple(
        SnapshotPoint(i + 1, i or None, start + i * step, "append", total_data_files=i + 1)
        for i in range(count)
    )


def health(*parts: PartitionHealth, **overrides: object) -> TableHealth:
    base = TableHealth(
        table=TABLE,
        measured_at_ms=NOW_MS,
        current_snapshot_id=5,
        target_file_size_bytes=256 * MB,
        small_file_threshold_bytes=192 * MB,
        data_file_count=sum(p.data_file_count for p in parts),
        small_file_count=sum(p.small_file_count for p in parts),
        data_bytes=sum(p.data_bytes for p in parts),
        record_count=sum(p.record_count for p in parts),
        position_delete_file_count=sum(p.position_delete_file_count for p in parts),
        manifest_count=3,
        manifest_bytes=3 * 8000,
        snapshot_count=5,
        partition_fields=(DAY_FIELD,),
        partitions=parts,
        snapshots=snapshots(5, oldest_days=1),
    )
    return replace(base, **overrides)  # type: ignore[arg-type]


POLICY = parse_maintenance({}, "m.yaml")


def plan(
    h: TableHealth, policy: MaintenancePolicy = POLICY, **context: object
) -> dict[str, PlannedOperation]:
    ctx = PlanContext(now=NOW, **context)  # type: ignore[arg-type]
    planned = plan_maintenance(h, policy, ctx)
    assert tuple(p.name for p in planned) == OPERATION_ORDER
    return {p.name: p for p in planned}


# --------------------------------------------------------------------------- compaction


def test_compaction_runs_on_hot_partitions_with_enough_small_files() -> None:
    hot_a = partition(date(2026, 11, 20), files=12, small=12)
    hot_b = partition(date(2026, 11, 19), files=6, small=6, updated_days_ago=1)
    hot_few = partition(date(2026, 11, 18), files=3, small=3, updated_days_ago=2)  # < min_small_files (5)
    cold = partition(date(2026, 10, 1), files=30, small=30, updated_days_ago=40)  # outside 7 days
    decision = plan(health(hot_a, hot_b, hot_few, cold), iceberg_version=(1, 10, 0))["rewrite_data_files"]
    assert decision.run
    assert "small-file ratio 1.00 (51 of 51 data files below 192.0 MiB) > 0.30" in decision.reason
    assert "2 hot partition(s) hold >= 5 small files" in decision.reason
    assert decision.scope == ("ingestion_ts_day=2026-11-20", "ingestion_ts_day=2026-11-19")
    assert isinstance(decision.call, RewriteDataFilesCall)
    assert decision.call.where == (
        "(ingestion_ts >= TIMESTAMP '2026-11-19 00:00:00.000Z' AND ingestion_ts < TIMESTAMP '2026-11-20 00:00:00.000Z')"
        " OR "
        "(ingestion_ts >= TIMESTAMP '2026-11-20 00:00:00.000Z' AND ingestion_ts < TIMESTAMP '2026-11-21 00:00:00.000Z')"
    )
    options = decision.call.options
    assert options["partial-progress.enabled"] == "true"
    assert options["partial-progress.max-failed-commits"] == "0"
    assert options["min-input-files"] == "5"
    assert options["target-file-size-bytes"] == str(256 * MB)
    assert "delete-file-threshold" not in options and "remove-dangling-deletes" not in options


@pytest.mark.parametrize(
    ("version", "exact"), [((1, 10, 0), True), ((1, 11), True), ((1, 7, 1), False), (None, False)]
)
def test_lost_commit_races_fail_the_call_only_where_iceberg_counts_them_right(
    version: tuple[int, ...] | None, exact: bool
) -> None:
    # 1.7.1 counts (max-commits - successes) as failed commits: max-failed-commits 0 would
    # turn every partial-progress compaction into a failure there.
    decision = plan(health(partition(date(2026, 11, 20), files=12, small=12)), iceberg_version=version)
    call = decision["rewrite_data_files"].call
    assert isinstance(call, RewriteDataFilesCall)
    assert ("partial-progress.max-failed-commits" in call.options) is exact
    if exact:
        assert call.options["partial-progress.max-failed-commits"] == "0"


def test_compaction_does_not_run_when_the_ratio_is_within_threshold() -> None:
    h = health(partition(date(2026, 11, 20), files=20, small=5))
    decision = plan(h)["rewrite_data_files"]
    assert not decision.run
    assert decision.reason.startswith(
        "small-file ratio 0.25 (5 of 20 data files below 192.0 MiB) is within 0.30"
    )
    assert decision.call is None


def test_compaction_does_not_run_when_small_files_are_spread_too_thin() -> None:
    # 100% small, but one small file per daily partition: binpack would have nothing to merge
    parts = [partition(date(2026, 11, 20) - timedelta(days=i), files=1, small=1) for i in range(5)]
    decision = plan(health(*parts))["rewrite_data_files"]
    assert not decision.run
    assert "but no partition written in the last 7 days holds >= 5 small files" in decision.reason


def test_cold_partitions_are_left_alone_unless_hot_days_is_zero() -> None:
    cold = partition(date(2026, 9, 1), files=10, small=10, updated_days_ago=80)
    assert not plan(health(cold))["rewrite_data_files"].run
    all_partitions = parse_maintenance(
        {"operations": {"rewrite_data_files": {"options": {"hot_partition_days": 0}}}}, "m.yaml"
    )
    decision = plan(health(cold), all_partitions)["rewrite_data_files"]
    assert decision.run
    assert "1 partition(s) hold >= 5 small files" in decision.reason


def test_delete_files_above_ratio_make_compaction_apply_deletes_then_drop_the_deletes_it_leaves() -> None:
    with_deletes = partition(date(2026, 11, 20), files=10, small=0, deletes=4)
    clean = partition(date(2026, 11, 19), files=10, small=0)
    decisions = plan(health(with_deletes, clean))  # a run of any schedule: the rewrite completes it
    compaction = decisions["rewrite_data_files"]
    assert compaction.run
    assert "4 delete files for 20 data files (ratio 0.20 > 0.10)" in compaction.reason
    assert isinstance(compaction.call, RewriteDataFilesCall)
    assert compaction.call.options["delete-file-threshold"] == "1"
    assert compaction.call.options["remove-dangling-deletes"] == "true"
    assert compaction.call.options["use-starting-sequence-number"] == "false"
    assert compaction.scope == ("ingestion_ts_day=2026-11-20",)
    # Iceberg keeps the position deletes of the rewritten files while their partition holds other
    # (older) data files: only rewriting the delete files drops them.
    delete_rewrite = decisions["rewrite_position_delete_files"]
    assert delete_rewrite.run
    assert (
        "after the compaction planned above rewrites the data files they delete from" in delete_rewrite.reason
    )
    assert isinstance(delete_rewrite.call, RewritePositionDeletesCall)
    assert delete_rewrite.call.where == compaction.call.where
    assert delete_rewrite.call.options["rewrite-all"] == "true"
    assert delete_rewrite.scope == compaction.scope


def test_the_delete_rewrite_after_compaction_respects_ops_and_disabling_and_skips_vectors() -> None:
    with_deletes = partition(date(2026, 11, 20), files=10, small=0, deletes=4)
    only = plan(health(with_deletes), only=frozenset({"rewrite_data_files"}))
    assert only["rewrite_data_files"].run
    assert only["rewrite_position_delete_files"].reason == "not requested (--ops)"
    disabled = parse_maintenance(
        {"operations": {"rewrite_position_delete_files": {"enabled": False}}}, "m.yaml"
    )
    assert not plan(health(with_deletes), disabled)["rewrite_position_delete_files"].run
    # v3: deletion vectors only; compaction drops those of the files it rewrites
    vectors = replace(with_deletes, deletion_vector_count=4)
    decision = plan(health(vectors, deletion_vector_count=4))["rewrite_position_delete_files"]
    assert not decision.run
    assert decision.reason == (
        "no position delete files (besides 4 deletion vectors, which only compaction merges): "
        "the compaction planned above applies the deletes"
    )


def test_deletion_vectors_do_not_make_a_position_delete_rewrite_run() -> None:
    # rewrite_position_delete_files never rewrites v3 deletion vectors: it would run every time
    # and change nothing
    vectors = partition(date(2026, 11, 20), files=200, small=0, deletes=12)
    decision = plan(health(vectors, deletion_vector_count=12), frequency="weekly")[
        "rewrite_position_delete_files"
    ]
    assert not decision.run
    assert decision.reason == (
        "0 position delete files (besides 12 deletion vectors, which only compaction merges), fewer than 10"
    )
    mixed = plan(health(vectors, deletion_vector_count=2), frequency="weekly")[
        "rewrite_position_delete_files"
    ]
    assert mixed.run and mixed.reason.startswith("10 position delete files (besides 2 deletion vectors")


def test_partitions_written_by_expired_snapshots_are_cold_when_written_before_the_window() -> None:
    # The partitions table has no last update for files whose writing snapshots were expired;
    # they were written before the oldest live ancestor (updated_before_ms).
    expired_long_ago = replace(
        partition(date(2026, 9, 1), files=10, small=10),
        last_updated_ms=None,
        updated_before_ms=NOW_MS - 30 * DAY,
    )
    decision = plan(health(expired_long_ago))["rewrite_data_files"]
    assert not decision.run
    assert "no partition written in the last 7 days holds >= 5 small files" in decision.reason
    # written before a snapshot of two days ago: it may have been written within the window
    maybe_hot = replace(expired_long_ago, updated_before_ms=NOW_MS - 2 * DAY)
    assert plan(health(maybe_hot))["rewrite_data_files"].run
    unknown = replace(expired_long_ago, updated_before_ms=None)
    assert plan(health(unknown))["rewrite_data_files"].run


@pytest.mark.parametrize(("fraction", "small_bytes"), [(0.9, int(0.9 * 256 * MB)), (1.0, 256 * MB - 1)])
def test_compaction_merges_what_health_counted_as_small(fraction: float, small_bytes: int) -> None:
    # binpack's "too small" defaults to 75% of the target: with another small_file_fraction the
    # files that made compaction run (80% of the target, say) would not be rewritten
    policy = parse_maintenance({"thresholds": {"small_file_fraction": fraction}}, "m.yaml")
    h = health(
        partition(date(2026, 11, 20), files=12, small=12),
        small_file_threshold_bytes=int(256 * MB * fraction),
    )
    call = plan(h, policy)["rewrite_data_files"].call
    assert isinstance(call, RewriteDataFilesCall)
    assert call.options["min-file-size-bytes"] == str(small_bytes)


def test_many_position_deletes_below_the_ratio_get_a_delete_rewrite() -> None:
    big = partition(date(2026, 11, 20), files=200, small=0, deletes=12)
    decisions = plan(health(big), frequency="weekly")
    assert not decisions["rewrite_data_files"].run  # ratio 0.06 <= 0.10
    rewrite = decisions["rewrite_position_delete_files"]
    assert rewrite.run
    assert (
        "12 position delete files, 12 of them in 1 partition(s) holding more than one, >= 10"
        in rewrite.reason
    )
    assert isinstance(rewrite.call, RewritePositionDeletesCall)
    assert rewrite.call.options["min-input-files"] == "2"


def test_position_deletes_spread_one_per_partition_are_not_rewritten() -> None:
    # binpack merges delete files within a partition: 12 partitions of one delete file each
    # would make a rewrite that changes nothing, every run
    parts = [
        partition(date(2026, 11, 20) - timedelta(days=i), files=20, small=0, deletes=1 if i else 2)
        for i in range(11)
    ]
    decision = plan(health(*parts), frequency="weekly")["rewrite_position_delete_files"]
    assert not decision.run
    assert decision.reason == (
        "12 position delete files, but only 2 in partitions holding more than one (delete files are "
        "merged within their partition): fewer than 10"
    )


def test_few_position_deletes_are_left_alone() -> None:
    decision = plan(health(partition(date(2026, 11, 20), files=200, small=0, deletes=3)))[
        "rewrite_position_delete_files"
    ]
    assert not decision.run
    assert decision.reason == "3 position delete files, fewer than 10"


def test_unexpressible_partitions_compact_the_whole_table() -> None:
    bucket = PartitionField("id_bucket", "bucket", "id", "bigint")
    part = PartitionHealth((("id_bucket", 3),), 10, 10, 10 * MB, 1000, last_updated_ms=NOW_MS)
    decision = plan(health(part, partition_fields=(bucket,)))["rewrite_data_files"]
    assert decision.run
    assert isinstance(decision.call, RewriteDataFilesCall)
    assert decision.call.where is None
    assert "whole table" in decision.reason


def _evolved_metadata(first_spec_fields: list[dict[str, object]]) -> dict[str, object]:
    """A ``metadata.json`` of a table first partitioned by ``first_spec_fields``, then also by day."""
    day = {"name": "ingestion_ts_day", "transform": "day", "source-id": 2, "field-id": 1001}
    columns = [(1, "id", "long"), (2, "ingestion_ts", "timestamptz"), (3, "cat", "string")]
    return {
        "format-version": 2,
        "default-spec-id": 1,
        "current-schema-id": 0,
        "schemas": [
            {
                "schema-id": 0,
                "type": "struct",
                "fields": [{"id": i, "name": n, "required": False, "type": t} for i, n, t in columns],
            }
        ],
        "partition-specs": [
            {"spec-id": 0, "fields": first_spec_fields},
            {"spec-id": 1, "fields": [*first_spec_fields, day]},
        ],
    }


def _evolved_health(first_spec_fields: list[dict[str, object]], *parts: PartitionHealth) -> TableHealth:
    struct = [str(f["name"]) for f in first_spec_fields] + ["ingestion_ts_day"]
    current, specs = partition_specs_from_metadata(
        _evolved_metadata(first_spec_fields), struct, {"ingestion_ts": "timestamp", "cat": "string"}
    )
    assert current == 1
    return health(*parts, partition_fields=specs[1], partition_spec_id=1, partition_specs=specs)


def test_files_of_a_table_that_was_unpartitioned_before_are_compacted_with_the_whole_table() -> None:
    # Spark's `files` table shows them as ingestion_ts_day=null; `ingestion_ts IS NULL` would
    # select none of them, and every run would "succeed" having rewritten nothing.
    old = PartitionHealth((), 10, 10, 10 * MB, 1000, last_updated_ms=NOW_MS, spec_id=0, current_spec=False)
    new = partition(date(2026, 11, 20), files=6, small=6)
    h = _evolved_health([], old, new)
    assert h.partition_fields == (DAY_FIELD,) and h.partition_specs[0] == ()
    decision = plan(h)["rewrite_data_files"]
    assert decision.run
    assert decision.scope == ("(unpartitioned, older spec 0)", "ingestion_ts_day=2026-11-20")
    assert isinstance(decision.call, RewriteDataFilesCall)
    assert decision.call.where is None
    assert (
        "1 partition(s) hold files written with an older partition spec (0), before the partitioning "
        "evolved: (unpartitioned, older spec 0); whole table (no column filter selects "
        "(unpartitioned, older spec 0); one on the current spec's fields would miss those files)"
    ) in decision.reason


def test_files_of_an_older_spec_are_selected_by_that_specs_own_fields() -> None:
    cat = {"name": "cat", "transform": "identity", "source-id": 3, "field-id": 1000}
    old = PartitionHealth(
        (("cat", "a"),), 10, 10, 10 * MB, 1000, last_updated_ms=NOW_MS, spec_id=0, current_spec=False
    )
    day = partition(date(2026, 11, 20), files=6, small=6)
    new = replace(day, values=(("cat", "b"), *day.values))
    decision = plan(_evolved_health([cat], old, new))["rewrite_data_files"]
    assert decision.run
    assert isinstance(decision.call, RewriteDataFilesCall)
    assert decision.call.where == (
        "(cat = 'a') OR ((cat = 'b') AND (ingestion_ts >= TIMESTAMP '2026-11-20 00:00:00.000Z' AND "
        "ingestion_ts < TIMESTAMP '2026-11-21 00:00:00.000Z'))"
    )
    assert "written with an older partition spec (0)" in decision.reason
    assert "the filter selects those by their own spec's fields" in decision.reason


def test_no_data_files_no_compaction() -> None:
    decision = plan(health())["rewrite_data_files"]
    assert (decision.run, decision.reason) == (False, "no data files")


# --------------------------------------------------------------------------- manifests


def test_many_small_manifests_get_rewritten() -> None:
    h = health(partition(date(2026, 11, 20), files=2, small=0), manifest_count=40, manifest_bytes=40 * 10_000)
    decision = plan(h)["rewrite_manifests"]
    assert decision.run
    assert decision.reason == "40 manifests > 20, averaging 9.8 KiB < 4.0 MiB"


def test_few_or_large_manifests_are_left_alone() -> None:
    few = plan(health(manifest_count=20, manifest_bytes=20 * 1000))["rewrite_manifests"]
    assert (few.run, few.reason) == (False, "20 manifests, not more than 20")
    large = plan(health(manifest_count=50, manifest_bytes=50 * 6 * MB))["rewrite_manifests"]
    assert not large.run
    assert "average 6.0 MiB (>= 4.0 MiB): already well sized" in large.reason


# --------------------------------------------------------------------------- expiry


def test_expiry_runs_for_snapshots_older_than_retention_and_outside_the_last_n() -> None:
    h = health(snapshots=snapshots(30, oldest_days=29), snapshot_count=30)
    decision = plan(h)["expire_snapshots"]
    assert decision.run
    # one snapshot a day: 22 are older than 7 days, and all of those are outside the newest 20
    assert decision.reason == "10 of 30 snapshots are older than 7 days and outside the last 20"
    assert isinstance(decision.call, ExpireSnapshotsCall)
    assert decision.call.retain_last == 20
    assert decision.call.older_than == NOW - timedelta(days=7)


def test_expiry_does_not_run_when_every_old_snapshot_is_among_the_last_n() -> None:
    h = health(snapshots=snapshots(15, oldest_days=30), snapshot_count=15)
    decision = plan(h)["expire_snapshots"]
    assert not decision.run
    assert decision.reason == "15 snapshots, none both older than 7 days and outside the last 20"


def test_expiry_does_not_run_when_snapshots_are_young() -> None:
    h = health(snapshots=snapshots(100, oldest_days=3), snapshot_count=100)
    assert not plan(h)["expire_snapshots"].run


def test_a_checkpoint_clamps_older_than_to_keep_itself_and_everything_after() -> None:
    points = snapshots(30, oldest_days=29)
    checkpoint = points[3]  # 26 days old
    protection = ExpiryProtection(
        floor_ms=checkpoint.committed_at_ms,
        protected=(
            ProtectedSnapshot(4, checkpoint.committed_at_ms, "keeps snapshot 4, the checkpoint of c"),
        ),
    )
    decision = plan(health(snapshots=points, snapshot_count=30), protection=protection)["expire_snapshots"]
    assert decision.run
    assert isinstance(decision.call, ExpireSnapshotsCall)
    assert decision.call.older_than == datetime.fromtimestamp(
        checkpoint.committed_at_ms / 1000, tz=timezone.utc
    )
    assert decision.reason.startswith("3 of 30 snapshots")  # only the 3 before the checkpoint
    assert "older_than clamped to" in decision.reason and "the checkpoint of c" in decision.reason


def test_a_checkpoint_on_the_oldest_snapshot_stops_expiry() -> None:
    points = snapshots(30, oldest_days=29)
    protection = ExpiryProtection(floor_ms=points[0].committed_at_ms, protected=())
    decision = plan(health(snapshots=points, snapshot_count=30), protection=protection)["expire_snapshots"]
    assert not decision.run
    assert "none both older than 7 days and outside the last 20; older_than clamped" in decision.reason


def test_an_unlocatable_checkpoint_blocks_expiry() -> None:
    blocked = ExpiryProtection(blocked="c checkpoints snapshot 99, which this table no longer has")
    decision = plan(health(snapshots=snapshots(30, oldest_days=29)), protection=blocked)["expire_snapshots"]
    assert (decision.run, decision.reason) == (False, blocked.blocked)


# --------------------------------------------------------------------------- orphans and gates


def test_orphan_removal_runs_when_due_with_the_72h_floor_and_dry_run() -> None:
    decision = plan(health(), frequency="weekly", dry_run=True)["remove_orphan_files"]
    assert decision.run
    assert isinstance(decision.call, RemoveOrphanFilesCall)
    assert decision.call.older_than == NOW - timedelta(hours=72)
    assert decision.call.dry_run is True
    assert "dry run, lists only" in decision.reason


def test_weekly_operations_wait_for_the_weekly_run() -> None:
    decisions = plan(health(partition(date(2026, 11, 20), files=200, small=0, deletes=12)), frequency="daily")
    assert decisions["remove_orphan_files"].reason == "runs weekly; this is a daily run"
    assert decisions["rewrite_position_delete_files"].reason == "runs weekly; this is a daily run"
    hourly = plan(health(), frequency="hourly")
    assert hourly["expire_snapshots"].reason == "runs daily; this is a hourly run"


def test_only_requested_operations_are_considered() -> None:
    decisions = plan(
        health(partition(date(2026, 11, 20), files=12, small=12)), only=frozenset({"expire_snapshots"})
    )
    assert decisions["rewrite_data_files"].reason == "not requested (--ops)"
    assert not decisions["remove_orphan_files"].run


def test_disabled_operations_say_where_they_were_disabled() -> None:
    policy = parse_maintenance(
        {"layers": {"raw": {"operations": {"rewrite_data_files": {"enabled": False}}}}}, "m.yaml"
    ).for_table("raw", "orders_staging")
    decision = plan(health(partition(date(2026, 11, 20), files=12, small=12)), policy)["rewrite_data_files"]
    assert decision.reason == "disabled by policy (m.yaml layers.raw)"


def test_plan_context_refuses_naive_times_and_unknown_frequencies() -> None:
    with pytest.raises(ValueError, match="time-zone aware"):
        PlanContext(now=datetime(2026, 1, 1))
    with pytest.raises(ValueError, match="frequency"):
        PlanContext(now=NOW, frequency="monthly")
