"""Which snapshots consumers' checkpoints protect from expiry (pure)."""

from __future__ import annotations

from lean_ops_spark.catalog.checkpoints import RAW_CHECKPOINT_KEY, Checkpoint, SnapshotRecord
from lean_ops_spark.catalog.naming import TableRef
from lean_ops_spark.maintenance.protection import ConsumerCheckpoint, expiry_protection, own_checkpoint_key


def chain(*ids: int, start_ms: int = 1_000) -> list[SnapshotRecord]:
    """Snapshots ``ids`` in order, each the parent of the next, one second apart."""
    return [
        SnapshotRecord(
            snapshot_id=s,
            parent_id=ids[i - 1] if i else None,
            summary={},
            committed_at_ms=start_ms + i * 1000,
        )
        for i, s in enumerate(ids)
    ]


def cp(
    snapshot_id: int | None, consumer: str = "lake.curated.orders", *, designated: bool = True
) -> ConsumerCheckpoint:
    return ConsumerCheckpoint(consumer, RAW_CHECKPOINT_KEY, snapshot_id, designated)


def test_no_consumer_no_floor() -> None:
    protection = expiry_protection(chain(1, 2, 3), [])
    assert protection.floor_ms is None and protection.blocked is None
    assert protection.describe() == "no consumer checkpoint to keep"


def test_the_checkpoint_snapshot_sets_the_floor() -> None:
    protection = expiry_protection(chain(11, 12, 13, 14), [cp(12)])
    assert protection.floor_ms == 2_000  # snapshot 12's commit time: 12 and everything after stay
    assert protection.protected[0].snapshot_id == 12
    assert "the checkpoint of lake.curated.orders" in protection.describe()


def test_the_oldest_of_several_checkpoints_wins() -> None:
    protection = expiry_protection(chain(11, 12, 13, 14), [cp(13, "a"), cp(12, "b"), cp(None, "c")])
    assert protection.floor_ms == 2_000
    assert "c holds no checkpoint yet" in protection.notes


def test_an_expired_checkpoint_with_a_live_child_protects_the_child() -> None:
    records = chain(12, 13, 14)[1:]  # 12 already expired; 13 (its child) still there
    records[0] = SnapshotRecord(13, 12, {}, committed_at_ms=2_000)
    protection = expiry_protection(records, [cp(12)])
    assert protection.floor_ms == 2_000
    assert protection.protected[0].snapshot_id == 13
    assert "the child of lake.curated.orders's checkpoint 12" in protection.describe()


def test_a_designated_checkpoint_the_table_lost_blocks_expiry() -> None:
    protection = expiry_protection(chain(20, 21), [cp(99)])
    assert protection.blocked is not None
    assert "checkpoints snapshot 99, which this table no longer has" in protection.blocked


def test_a_shared_consumer_naming_another_tables_snapshot_is_ignored() -> None:
    protection = expiry_protection(chain(20, 21), [cp(99, "lake.semantic.revenue", designated=False)])
    assert protection.blocked is None and protection.floor_ms is None
    assert "is not a snapshot of this table" in protection.notes[0]


def test_an_unreadable_checkpoint_blocks_expiry() -> None:
    broken = ConsumerCheckpoint(
        "lake.curated.orders", RAW_CHECKPOINT_KEY, None, True, "snapshot 4 is expired"
    )
    protection = expiry_protection(chain(1, 2), [broken])
    assert protection.blocked is not None and "cannot be read" in protection.blocked


def test_the_tables_own_checkpoint_is_kept_for_its_ancestor_walk() -> None:
    own = Checkpoint(RAW_CHECKPOINT_KEY, source_snapshot_id=555, recorded_in_snapshot_id=32)
    protection = expiry_protection(chain(31, 32, 33, 34), [], own)
    assert protection.floor_ms == 2_000
    assert "carries this table's own lean-ops.raw-snapshot-id" in protection.describe()


def test_own_checkpoint_keys_by_layer() -> None:
    assert own_checkpoint_key(TableRef("lake", "curated", "orders", "curated")) == "lean-ops.raw-snapshot-id"
    assert (
        own_checkpoint_key(TableRef("lake", "semantic", "revenue", "semantic"))
        == "lean-ops.curated-snapshot-id"
    )
    assert own_checkpoint_key(TableRef("lake", "raw", "orders_staging", "raw")) is None
