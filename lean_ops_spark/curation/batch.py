"""Which raw snapshots one curation run consumes: pure planning over snapshot metadata."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from lean_ops_spark.catalog.checkpoints import SnapshotRecord
from lean_ops_spark.errors import CheckpointError, ConfigError

__all__ = ["BatchPlan", "plan_batch"]


@dataclass(frozen=True)
class BatchPlan:
    """A run's raw range: ``(start, end]`` on the current ancestry of the raw table.

    ``start`` is None when curation never ran (read everything as of ``end``). Only
    ``append`` snapshots carry new rows; ``replace`` (compaction) snapshots in the range
    are skipped by incremental reads and add nothing.

    ``append_snapshots`` are the snapshots whose rows the run takes: the append snapshots
    in the range, except on a first run over a history expired down to non-append
    snapshots (e.g. to a compaction), where it is the one snapshot read as of, ``end``
    (its rows were never curated, yet no live append snapshot carries them).
    ``expected_records`` is what the read returns: the records the appends added, or, on a
    first run, the ``total-records`` of the snapshot read as of.
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
        """The run has snapshots to take (see ``append_snapshots``)."""
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


def _total_records(record: SnapshotRecord) -> int | None:
    """The table's row count as of ``record``, when its summary says."""
    total = record.summary.get("total-records")
    return None if total is None else int(total)


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

    With no checkpoint (``start_snapshot_id`` None) the run reads the table as of the
    plan's end, so it expects that snapshot's ``total-records``; when no live snapshot is
    an append (history expired down to a compaction) but that count is above zero, the
    run reads as of the current snapshot.

    Raises:
        ConfigError: ``max_snapshots`` or ``max_records`` is below 1.
        CheckpointError: the checkpoint is not on the current ancestry, or a pending
            snapshot was expired.
    """
    for name, cap in (("max_snapshots", max_snapshots), ("max_records", max_records)):
        if cap is not None and cap < 1:
            raise ConfigError(f"{table}: {name} per run must be at least 1, got {cap}")
    if current_snapshot_id is None or current_snapshot_id == start_snapshot_id:
        return BatchPlan(table, start_snapshot_id, None, current_snapshot_id, (), 0, 0, 0, None)
    by_id = {r.snapshot_id: r for r in records}
    chain = _pending_chain(by_id, current_snapshot_id, start_snapshot_id, table)
    appends = [r for r in chain if r.operation == "append"]
    if not appends:
        current = by_id.get(current_snapshot_id)
        rows = _total_records(current) if start_snapshot_id is None and current is not None else None
        if not rows:
            return BatchPlan(table, start_snapshot_id, None, current_snapshot_id, (), 0, 0, 0, None)
        # First run, history expired down to non-append snapshots that still hold rows:
        # read as of the current snapshot (the chain holds it, so it is not empty).
        return BatchPlan(
            table=table,
            start_snapshot_id=None,
            end_snapshot_id=current_snapshot_id,
            current_snapshot_id=current_snapshot_id,
            append_snapshots=(current_snapshot_id,),
            expected_records=rows,
            backlog_snapshots=0,
            backlog_records=0,
            oldest_pending_commit_ms=chain[0].committed_at_ms or None,
        )

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
    # End at the current snapshot when everything is taken, so trailing replace snapshots
    # (compaction) are behind the checkpoint too.
    end = current_snapshot_id if not rest else taken[-1].snapshot_id
    if start_snapshot_id is None:
        # Read as of the end snapshot: every row up to it, also rows of expired snapshots,
        # less rows that trailing delete/overwrite snapshots removed.
        as_of = _total_records(by_id[end])
        total = total if as_of is None else as_of
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
