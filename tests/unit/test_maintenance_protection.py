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


class _FailingCatalog:
    def tableExists(self, name: str) -> bool:
        raise RuntimeError("ThrottlingException: Rate exceeded")


class _FailingSpark:
    """A session whose catalog calls fail (throttling, access denied, a busy SQLite file)."""

    catalog = _FailingCatalog()

    def __init__(self, error: str = "ThrottlingException: Rate exceeded") -> None:
        self.error = error

    def sql(self, query: str) -> None:
        raise RuntimeError(self.error)


def test_a_catalog_error_reading_consumers_blocks_expiry_instead_of_dropping_the_protection() -> None:
    from dataclasses import replace

    from lean_ops_spark.config import load_project
    from lean_ops_spark.config.models import Databases
    from lean_ops_spark.maintenance.protection import (
        CheckpointConsumer,
        checkpoint_consumers,
        read_consumer_checkpoints,
    )
    from lean_ops_spark.maintenance.runner import _protection
    from tests.conftest import CONF

    curated = TableRef("lake", "curated", "orders", "curated", "orders")
    # the consumer table's existence cannot be checked: an error entry, which blocks expiry
    (entry,) = read_consumer_checkpoints(_FailingSpark(), [CheckpointConsumer(curated, RAW_CHECKPOINT_KEY)])  # type: ignore[arg-type]
    assert entry.error is not None and "ThrottlingException" in entry.error
    assert expiry_protection(chain(1, 2, 3), [entry]).blocked

    # listing a curated table's consumers fails: raised, and the runner blocks expiry on it
    config = load_project(CONF, "local")
    profile = replace(config.profile, databases=Databases(raw="r", curated="curated", semantic="semantic"))
    config = replace(config, profile=profile)
    try:
        checkpoint_consumers(_FailingSpark(), profile, curated)  # type: ignore[arg-type]
    except RuntimeError as exc:
        assert "ThrottlingException" in str(exc)
    else:
        raise AssertionError("a failed SHOW TABLES must not read as no consumers")
    blocked = _protection(_FailingSpark(), config, curated, checkpoint_consumers)  # type: ignore[arg-type]
    assert (
        blocked.blocked is not None
        and "cannot be read" in blocked.blocked
        and "not expiring" in blocked.blocked
    )
    # only a missing semantic namespace means no consumer
    missing = _FailingSpark(
        "org.apache.iceberg.exceptions.NoSuchNamespaceException: Namespace does not exist: semantic"
    )
    assert checkpoint_consumers(missing, profile, curated) == ()  # type: ignore[arg-type]


def test_a_descendant_committed_before_the_checkpoint_by_a_skewed_clock_is_kept() -> None:
    # Iceberg accepts a child committed up to a minute before its parent (writers' clocks
    # differ); the consumer's next read walks through 13, so the floor must keep it too.
    records = chain(11, 12, 13, 14)
    records[2] = SnapshotRecord(13, 12, {}, committed_at_ms=1_500)  # 12 was committed at 2_000
    protection = expiry_protection(records, [cp(12)])
    assert protection.floor_ms == 1_500
    assert protection.protected[0].snapshot_id == 12
