"""The ancestor walk that reads a checkpoint from snapshot summaries (pure)."""

from __future__ import annotations

import pytest

from lean_ops_spark.catalog.checkpoints import RAW_CHECKPOINT_KEY, SnapshotRecord, find_checkpoint
from lean_ops_spark.errors import CheckpointError


def chain(*summaries: dict[str, str]) -> list[SnapshotRecord]:
    """Snapshots 1..n, each the parent of the next."""
    return [
        SnapshotRecord(snapshot_id=i, parent_id=i - 1 if i > 1 else None, summary=s)
        for i, s in enumerate(summaries, start=1)
    ]


def test_newest_ancestor_with_the_key_wins_over_later_compaction() -> None:
    records = chain(
        {RAW_CHECKPOINT_KEY: "100"},
        {RAW_CHECKPOINT_KEY: "200", "lean-ops.run-id": "r2"},
        {"operation": "replace"},  # compaction commits without the key
    )
    checkpoint = find_checkpoint(records, 3, RAW_CHECKPOINT_KEY)
    assert checkpoint is not None
    assert (checkpoint.source_snapshot_id, checkpoint.recorded_in_snapshot_id, checkpoint.run_id) == (
        200,
        2,
        "r2",
    )


def test_only_ancestors_count_not_other_branches() -> None:
    records = [
        *chain({RAW_CHECKPOINT_KEY: "100"}),
        SnapshotRecord(
            snapshot_id=9, parent_id=1, summary={RAW_CHECKPOINT_KEY: "999"}
        ),  # e.g. a WAP branch head
        SnapshotRecord(snapshot_id=2, parent_id=1, summary={}),
    ]
    checkpoint = find_checkpoint(records, 2, RAW_CHECKPOINT_KEY)
    assert checkpoint is not None and checkpoint.source_snapshot_id == 100


def test_no_snapshot_or_no_key_in_full_history_means_start_from_the_beginning() -> None:
    assert find_checkpoint([], None, RAW_CHECKPOINT_KEY) is None
    assert find_checkpoint(chain({}, {}), 2, RAW_CHECKPOINT_KEY) is None


def test_expired_ancestor_before_the_key_is_an_error_not_a_restart() -> None:
    records = [SnapshotRecord(snapshot_id=5, parent_id=4, summary={})]  # 4 was expired
    with pytest.raises(CheckpointError, match=r"lake\.curated\.orders: snapshot 4 .* is expired"):
        find_checkpoint(records, 5, RAW_CHECKPOINT_KEY, "lake.curated.orders")


def test_garbage_checkpoint_value_is_an_error() -> None:
    with pytest.raises(CheckpointError, match="not an id"):
        find_checkpoint(chain({RAW_CHECKPOINT_KEY: "abc"}), 1, RAW_CHECKPOINT_KEY)


def test_ancestors_run_newest_first_to_the_stop_or_the_oldest_listed() -> None:
    from lean_ops_spark.catalog.metadata import TableSnapshots

    records = (
        *chain({}, {}, {}, {}),
        SnapshotRecord(snapshot_id=9, parent_id=2, summary={}),
    )  # 9: another branch
    table = TableSnapshots("t", True, 4, records)
    assert [r.snapshot_id for r in table.ancestors()] == [4, 3, 2, 1]
    assert [r.snapshot_id for r in table.ancestors(stop=2)] == [4, 3]
    expired = TableSnapshots("t", True, 4, records[2:])  # 2 and 1 expired
    assert [r.snapshot_id for r in expired.ancestors()] == [4, 3]
    assert list(TableSnapshots("t", True, None, ()).ancestors()) == []


def test_semantic_is_behind_when_a_run_committed_to_curated_after_its_checkpoint() -> None:
    from lean_ops_spark.catalog.checkpoints import CURATED_CHECKPOINT_KEY, RUN_ID_KEY, Checkpoint
    from lean_ops_spark.catalog.metadata import TableSnapshots
    from lean_ops_spark.orchestration.checkpoints import semantic_behind

    run = {RUN_ID_KEY: "r"}
    # 1, 2: curation runs; 3: compaction (no run id); 4: a replay
    records = chain(run, run, {"operation": "replace"}, run)

    def consumed(snapshot_id: int) -> Checkpoint:
        return Checkpoint(CURATED_CHECKPOINT_KEY, snapshot_id, 100)

    assert (
        semantic_behind(TableSnapshots("c", True, 3, records), consumed(2)) is False
    )  # only compaction since
    assert semantic_behind(TableSnapshots("c", True, 4, records), consumed(2)) is True  # the replay
    assert semantic_behind(TableSnapshots("c", True, 2, records), consumed(1)) is True
    assert semantic_behind(TableSnapshots("c", True, 2, records), None) is True  # never published
    assert semantic_behind(TableSnapshots("c", True, 1, chain({})), None) is False  # nothing curated
    assert semantic_behind(TableSnapshots("c", True, None, ()), None) is False  # an empty table
