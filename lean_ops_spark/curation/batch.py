"""Which raw snapshots one curation run consumes: pure planning over snapshot metadata."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from lean_ops_spark.catalog.checkpoints import SnapshotRecord
from lean_ops_spark.errors import CheckpointError

__all__ = ["BatchPlan", "plan_batch"]


@dataclass(frozen=True)
class BatchPlan:
    """A run's raw range: ``(start, end]`` on the current ancestry of the raw table.

    ``start`` is None when curation never ran (read everything as of ``end``). Only
    ``append`` snapshots carry new rows; ``replace`` (compaction) snapshots in the range
    are skipped by incremental reads and add nothing.
    """

    table: str
    start_snapshot_id: int | None
    end_snapshot_id: int | None
    current_snapshot_id: int | None
    append_snapshots: tuple[int, ...]
    expected_records: int
    backlog_snapshots: int
    backlog_records: int
    oldest_pending_commit_ms: int | None

    @property
    def has_new_data(self) -> bool:
        return bool(self.append_snapshots)

    def describe(self) -> str:
        """The range in words, for messages: ``raw snapshots (a, b]``."""
        start = "the beginning" if self.start_snapshot_id is None else str(self.start_snapshot_id)
        return f"{self.table} snapshots after {start} up to {self.end_snapshot_id}"


def _pending_chain(
    by_id: dict[int, SnapshotRecord], current: int, start: int | None, table: str
) -> list[SnapshotRecord]:
    """Snapshots after ``start`` up to ``current`` on the current ancestry, oldest first."""
    chain: list[SnapshotRecord] = []
    snapshot_id: int | None = current
    while snapshot_id is not None and snapshot_id != start:
        record = by_id.get(snapshot_id)
        if record is None and start is None:
            break  # history before here was expired; reading from the beginning is still exact
        if record is None:
            raise CheckpointError(
                f"{table}: snapshot {snapshot_id} between the checkpoint {start} and the current snapshot "
                f"{current} was expired; the pending range cannot be read incrementally"
            )
        chain.append(record)
        snapshot_id = record.parent_id
    if start is not None and snapshot_id != start:
        raise CheckpointError(
            f"{table}: checkpoint snapshot {start} is not an ancestor of the current snapshot {current} "
            "(was the table rolled back or replaced?)"
        )
    chain.reverse()
    return chain


def plan_batch(
    records: Iterable[SnapshotRecord],
    current_snapshot_id: int | None,
    start_snapshot_id: int | None,
    *,
    max_snapshots: int,
    max_records: int | None = None,
    table: str = "raw table",
) -> BatchPlan:
    """Plan the next run: at most ``max_snapshots`` append snapshots and, where set, about
    ``max_records`` records (always at least one snapshot, so a big one still drains).

    Raises:
        CheckpointError: the checkpoint is not on the current ancestry, or a pending
            snapshot was expired.
    """
    if current_snapshot_id is None or current_snapshot_id == start_snapshot_id:
        return BatchPlan(table, start_snapshot_id, None, current_snapshot_id, (), 0, 0, 0, None)
    by_id = {r.snapshot_id: r for r in records}
    chain = _pending_chain(by_id, current_snapshot_id, start_snapshot_id, table)
    appends = [r for r in chain if r.operation == "append"]
    if not appends:
        return BatchPlan(table, start_snapshot_id, None, current_snapshot_id, (), 0, 0, 0, None)

    def added(record: SnapshotRecord) -> int:
        return int(record.summary.get("added-records", "0"))

    taken: list[SnapshotRecord] = []
    total = 0
    for record in appends:
        if len(taken) >= max_snapshots:
            break
        if taken and max_records is not None and total + added(record) > max_records:
            break
        taken.append(record)
        total += added(record)
    rest = appends[len(taken) :]
    if start_snapshot_id is None:
        # Read as of the end snapshot: every row up to it, also rows of expired snapshots.
        total = int(taken[-1].summary.get("total-records", total))
    # End at the current snapshot when everything is taken, so trailing replace snapshots
    # (compaction) are behind the checkpoint too.
    end = current_snapshot_id if not rest else taken[-1].snapshot_id
    return BatchPlan(
        table=table,
        start_snapshot_id=start_snapshot_id,
        end_snapshot_id=end,
        current_snapshot_id=current_snapshot_id,
        append_snapshots=tuple(r.snapshot_id for r in taken),
        expected_records=total,
        backlog_snapshots=len(rest),
        backlog_records=sum(added(r) for r in rest),
        oldest_pending_commit_ms=appends[0].committed_at_ms or None,
    )
