"""Which maintenance procedures a table needs, and why: pure decisions, no Spark.

:func:`plan_maintenance` takes a measured :class:`TableHealth`, the table's resolved
:class:`MaintenancePolicy` and a :class:`PlanContext` (time, schedule, requested
operations, checkpoint protection) and returns one :class:`PlannedOperation` per
operation, each saying whether it runs and the measured reason. Gates, in order: not
requested (``--ops``), disabled by policy, not due on this schedule, then health.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from types import MappingProxyType
from typing import Any

from lean_ops_spark.config.models import MaintenancePolicy
from lean_ops_spark.maintenance.health import PartitionHealth, TableHealth
from lean_ops_spark.maintenance.procedures import (
    MAX_WHERE_PARTITIONS,
    ExpireSnapshotsCall,
    ProcedureCall,
    RemoveOrphanFilesCall,
    RewriteDataFilesCall,
    RewriteManifestsCall,
    RewritePositionDeletesCall,
    partition_predicate,
    partitions_predicate,
)
from lean_ops_spark.maintenance.protection import ExpiryProtection

__all__ = [
    "FREQUENCIES",
    "OPERATION_ORDER",
    "PlanContext",
    "PlannedOperation",
    "operation_gate",
    "plan_maintenance",
]

#: Execution order: compaction first (it adds snapshots and obsoletes files), manifests
#: after it, expiry after that, orphan listing last.
OPERATION_ORDER = (
    "rewrite_data_files",
    "rewrite_position_delete_files",
    "rewrite_manifests",
    "expire_snapshots",
    "remove_orphan_files",
)
#: A run on schedule F includes every operation whose frequency is at least as frequent.
FREQUENCIES = ("hourly", "daily", "weekly")


@dataclass(frozen=True)
class PlanContext:
    """The circumstances of one maintenance run.

    Attributes:
        now: the run's time (UTC); cut-offs are relative to it.
        frequency: the schedule this run serves (``daily`` runs hourly+daily operations,
            ``weekly`` runs all); None runs every enabled operation.
        only: operations asked for (``--ops``); None for all.
        dry_run: plan only (orphan listing still runs, as a dry run).
        protection: checkpoint bound on snapshot expiry (None: no consumer was looked up).
        iceberg_version: the runtime's Iceberg version (None: unknown). From 1.10 a file
            group whose commit loses a race fails the call (an exact, reported conflict);
            1.7.1 miscounts failed partial-progress commits, so there it cannot be asked for.
    """

    now: datetime
    frequency: str | None = None
    only: frozenset[str] | None = None
    dry_run: bool = False
    protection: ExpiryProtection | None = None
    iceberg_version: tuple[int, ...] | None = None

    def __post_init__(self) -> None:
        if self.now.tzinfo is None:
            raise ValueError("PlanContext.now must be time-zone aware")
        if self.frequency is not None and self.frequency not in FREQUENCIES:
            raise ValueError(f"frequency must be one of {', '.join(FREQUENCIES)}")

    @property
    def now_ms(self) -> int:
        return int(self.now.timestamp() * 1000)


@dataclass(frozen=True)
class PlannedOperation:
    """One operation's decision: run it (with ``call``) or not, and the measured reason."""

    name: str
    run: bool
    reason: str
    call: ProcedureCall | None = None
    #: Partitions the call is scoped to (labels), for the report.
    scope: tuple[str, ...] = field(default=())

    def as_dict(self) -> dict[str, Any]:
        return {"operation": self.name, "run": self.run, "reason": self.reason, "scope": list(self.scope)}


def _mb(n: float) -> str:
    return f"{n / 1024 / 1024:.1f} MiB" if n >= 1024 * 1024 else f"{n / 1024:.1f} KiB"


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


def operation_gate(
    name: str, policy: MaintenancePolicy, ctx: PlanContext, *, on_schedule: bool = True
) -> str | None:
    """Why ``name`` cannot run regardless of health (None: it may). ``on_schedule`` False: work
    that completes another operation, not held to ``name``'s own frequency."""
    if ctx.only is not None and name not in ctx.only:
        return "not requested (--ops)"
    op = policy.operation(name)
    if not op.enabled:
        return f"disabled by policy ({policy.source or 'maintenance config'})"
    if (
        on_schedule
        and ctx.frequency is not None
        and FREQUENCIES.index(op.frequency) > FREQUENCIES.index(ctx.frequency)
    ):
        return f"runs {op.frequency}; this is a {ctx.frequency} run"
    return None


def _labels(partitions: Sequence[PartitionHealth], limit: int = 5) -> str:
    labels = [p.label for p in partitions[:limit]]
    more = len(partitions) - len(labels)
    return ", ".join(labels) + (f" and {more} more" if more > 0 else "")


def _is_hot(p: PartitionHealth, hot_days: int, cutoff_ms: int) -> bool:
    """Whether ``p`` was written after ``cutoff_ms`` (every partition is, with ``hot_days`` 0).

    A partition whose writing snapshots were expired has no last update, only a bound (it was
    written before ``updated_before_ms``): cold when that bound is not after the cut-off,
    else it may be hot and is taken as hot.
    """
    if hot_days == 0:
        return True
    if p.last_updated_ms is not None:
        return p.last_updated_ms >= cutoff_ms
    return p.updated_before_ms is None or p.updated_before_ms > cutoff_ms


def _compaction_filter(health: TableHealth, scope: Sequence[PartitionHealth]) -> tuple[str | None, str]:
    """The compaction's ``where`` (None: whole table) and what the reason should add about it.

    A partition written with an older spec (before the partitioning evolved) is filtered by
    that spec's own fields, or not at all: a filter on the current spec's fields would miss
    its files (it reads the fields their spec lacks as null), and the rewrite would succeed
    having rewritten nothing.
    """
    older = [p for p in scope if not p.current_spec]
    notes = []
    if older:
        specs = ", ".join(sorted({str(p.spec_id) for p in older}))
        notes.append(
            f"{len(older)} partition(s) hold files written with an older partition spec ({specs}), "
            f"before the partitioning evolved: {_labels(older)}"
        )
    if not health.partitioned:
        if older:
            notes.append("whole table (it is unpartitioned now)")
        return None, "; ".join(notes)
    where = partitions_predicate(health.partition_fields, scope, specs=health.partition_specs)
    if where is not None:
        if older:
            notes.append("the filter selects those by their own spec's fields")
        return where, "; ".join(notes)
    unmatched = [
        p
        for p in older
        if p.spec_id is None or partition_predicate(health.partition_specs.get(p.spec_id, ()), p) is None
    ]
    if unmatched:
        notes.append(
            f"whole table (no column filter selects {_labels(unmatched)}; one on the current spec's "
            "fields would miss those files)"
        )
    else:
        notes.append(
            f"whole table (more than {MAX_WHERE_PARTITIONS} partitions, or a partition transform "
            "without a column filter)"
        )
    return None, "; ".join(notes)


def _plan_rewrite_data_files(
    health: TableHealth, policy: MaintenancePolicy, ctx: PlanContext
) -> tuple[PlannedOperation, bool]:
    """The compaction decision, and whether it applies deletes (then position-delete rewrites wait)."""
    name = "rewrite_data_files"
    gate = operation_gate(name, policy, ctx)
    th = policy.thresholds
    delete_trigger = health.delete_file_count > 0 and health.delete_file_ratio > th.delete_file_ratio
    if gate:
        return PlannedOperation(name, False, gate), False
    if health.data_file_count == 0:
        return PlannedOperation(name, False, "no data files"), False
    op = policy.operation(name)
    hot_days = op.int_option("hot_partition_days", 7)
    cutoff = ctx.now_ms - hot_days * 86_400_000
    hot = [
        p
        for p in health.partitions
        if p.small_file_count >= th.min_small_files and _is_hot(p, hot_days, cutoff)
    ]
    hot.sort(key=lambda p: (-p.small_file_count, p.label))
    ratio_text = (
        f"small-file ratio {health.small_file_ratio:.2f} ({health.small_file_count} of "
        f"{health.data_file_count} data files below {_mb(health.small_file_threshold_bytes)})"
    )
    small_trigger = health.small_file_ratio > th.small_file_ratio and bool(hot)
    if not small_trigger and not delete_trigger:
        window = "partition" if hot_days == 0 else f"partition written in the last {hot_days} days"
        if health.small_file_ratio <= th.small_file_ratio:
            why = f"{ratio_text} is within {th.small_file_ratio:.2f}"
        else:
            why = (
                f"{ratio_text} is above {th.small_file_ratio:.2f}, but no {window} holds "
                f">= {th.min_small_files} small files (nothing binpack would merge)"
            )
        deletes = (
            f"delete-file ratio {health.delete_file_ratio:.2f} is within {th.delete_file_ratio:.2f}"
            if health.delete_file_count
            else "no delete files"
        )
        return PlannedOperation(name, False, f"{why}; {deletes}"), False

    reasons = []
    scope: list[PartitionHealth] = []
    if small_trigger:
        reasons.append(
            f"{ratio_text} > {th.small_file_ratio:.2f}; {len(hot)} "
            f"{'hot ' if hot_days else ''}partition(s) hold >= {th.min_small_files} small files: {_labels(hot)}"
        )
        scope.extend(hot)
    options = {
        "partial-progress.enabled": "true",
        "partial-progress.max-commits": str(op.int_option("partial_progress_max_commits", 10)),
        "max-concurrent-file-group-rewrites": str(op.int_option("max_concurrent_file_group_rewrites", 2)),
        "min-input-files": str(th.min_small_files),
        "target-file-size-bytes": str(health.target_file_size_bytes),
        # What binpack merges is what health counted as small (Iceberg's own default is 75% of
        # the target): with another small_file_fraction the call would rewrite other files, or
        # none of those that made it run. Iceberg requires it below the target.
        "min-file-size-bytes": str(min(health.small_file_threshold_bytes, health.target_file_size_bytes - 1)),
    }
    if ctx.iceberg_version is not None and ctx.iceberg_version >= (1, 10):
        # A group whose commit loses to a concurrent writer fails the call, so the conflict is
        # reported (and retried next run); groups committed before it stay committed. Iceberg
        # 1.7.1 counts max-commits minus successes as failures, so this would always fail there.
        options["partial-progress.max-failed-commits"] = "0"
    if delete_trigger:
        threshold = op.int_option("delete_file_threshold", 1)
        with_deletes = [p for p in health.partitions if p.delete_file_count]
        reasons.append(
            f"{health.delete_file_count} delete files for {health.data_file_count} data files "
            f"(ratio {health.delete_file_ratio:.2f} > {th.delete_file_ratio:.2f}): rewriting data files "
            f"with >= {threshold} delete file(s) in {len(with_deletes)} partition(s)"
        )
        options["delete-file-threshold"] = str(threshold)
        # Rewritten files get a new sequence number, so every delete older than them is dangling
        # and removed; with the starting sequence number the last MERGE's (partition-scoped)
        # deletes would still "apply" to them and stay live forever. The rewrite's commit then
        # also validates against concurrent equality deletes (a conflict, retried next run).
        options["use-starting-sequence-number"] = "false"
        options["remove-dangling-deletes"] = "true"
        scope.extend(p for p in with_deletes if p not in scope)
    where, scope_note = _compaction_filter(health, scope)
    if scope_note:
        reasons.append(scope_note)
    call = RewriteDataFilesCall(where=where, options=MappingProxyType(options))
    labels = tuple(p.label for p in scope)
    return PlannedOperation(name, True, "; ".join(reasons), call, labels), delete_trigger


def _plan_rewrite_position_deletes(
    health: TableHealth, policy: MaintenancePolicy, ctx: PlanContext, compaction: PlannedOperation | None
) -> PlannedOperation:
    """``compaction``: the compaction planned to apply deletes (None: none is).

    Deletion vectors (v3) are left out: ``rewrite_position_delete_files`` never rewrites them
    (a compaction applying deletes drops those of the files it rewrites).
    """
    name = "rewrite_position_delete_files"
    th = policy.thresholds
    vectors = health.deletion_vector_count
    count = health.position_delete_file_count - vectors
    dv_note = f" (besides {vectors} deletion vectors, which only compaction merges)" if vectors else ""
    if compaction is not None:
        # The compaction rewrites the data files with deletes, but Iceberg drops only the deletes
        # older than every data file of their partition: the position deletes of the rewritten
        # files stay live (and keep the delete ratio up) while the partition holds other files.
        # Rewriting every position delete file of its scope drops those that match no live file.
        gate = operation_gate(name, policy, ctx, on_schedule=False)
        if gate:
            return PlannedOperation(name, False, gate)
        if not count:
            return PlannedOperation(
                name,
                False,
                f"no position delete files{dv_note}: the compaction planned above applies the deletes",
            )
        call = compaction.call
        where = call.where if isinstance(call, RewriteDataFilesCall) else None
        return PlannedOperation(
            name,
            True,
            f"{count} position delete files{dv_note}: after the compaction planned above rewrites the data "
            "files they delete from, they no longer apply but stay live unless rewritten (Iceberg only "
            "drops deletes older than every data file of their partition); rewriting all of them in its "
            "scope drops those",
            RewritePositionDeletesCall(
                where=where,
                options=MappingProxyType({"partial-progress.enabled": "true", "rewrite-all": "true"}),
            ),
            compaction.scope,
        )
    gate = operation_gate(name, policy, ctx)
    if gate:
        return PlannedOperation(name, False, gate)
    if count < th.min_position_delete_files:
        return PlannedOperation(
            name, False, f"{count} position delete files{dv_note}, fewer than {th.min_position_delete_files}"
        )
    # Delete files are merged within their partition only, so only partitions holding several
    # count (with min-input-files 2; Iceberg's default 5 would leave partitions of 2-4 alone).
    mergeable = [p for p in health.partitions if p.position_delete_file_count - p.deletion_vector_count >= 2]
    merge_count = sum(p.position_delete_file_count - p.deletion_vector_count for p in mergeable)
    if merge_count < th.min_position_delete_files:
        return PlannedOperation(
            name,
            False,
            f"{count} position delete files{dv_note}, but only {merge_count} in partitions holding more than "
            f"one (delete files are merged within their partition): fewer than {th.min_position_delete_files}",
        )
    return PlannedOperation(
        name,
        True,
        f"{count} position delete files{dv_note}, {merge_count} of them in {len(mergeable)} partition(s) "
        f"holding more than one, >= {th.min_position_delete_files} (delete-file ratio "
        f"{health.delete_file_ratio:.2f} within {th.delete_file_ratio:.2f}): merge them per partition and "
        "drop dangling ones",
        RewritePositionDeletesCall(
            options=MappingProxyType({"partial-progress.enabled": "true", "min-input-files": "2"})
        ),
        tuple(p.label for p in mergeable),
    )


def _plan_rewrite_manifests(
    health: TableHealth, policy: MaintenancePolicy, ctx: PlanContext
) -> PlannedOperation:
    name = "rewrite_manifests"
    gate = operation_gate(name, policy, ctx)
    if gate:
        return PlannedOperation(name, False, gate)
    th = policy.thresholds
    count, avg = health.manifest_count, health.avg_manifest_bytes
    if count <= th.max_manifests:
        return PlannedOperation(name, False, f"{count} manifests, not more than {th.max_manifests}")
    if avg >= th.small_manifest_bytes:
        return PlannedOperation(
            name,
            False,
            f"{count} manifests, but they average {_mb(avg)} (>= {_mb(th.small_manifest_bytes)}): already well sized",
        )
    return PlannedOperation(
        name,
        True,
        f"{count} manifests > {th.max_manifests}, averaging {_mb(avg)} < {_mb(th.small_manifest_bytes)}",
        RewriteManifestsCall(),
    )


def _plan_expire_snapshots(
    health: TableHealth, policy: MaintenancePolicy, ctx: PlanContext
) -> PlannedOperation:
    name = "expire_snapshots"
    gate = operation_gate(name, policy, ctx)
    if gate:
        return PlannedOperation(name, False, gate)
    op = policy.operation(name)
    retain_last = op.int_option("retain_last", 20)
    days = op.float_option("older_than_days", 7)
    cutoff_ms = ctx.now_ms - int(days * 86_400_000)
    protection = ctx.protection or ExpiryProtection()
    if protection.blocked:
        return PlannedOperation(name, False, protection.blocked)
    older_than_ms = cutoff_ms
    clamp = ""
    if protection.floor_ms is not None and protection.floor_ms < cutoff_ms:
        older_than_ms = protection.floor_ms
        clamp = f"; older_than clamped to {_iso(older_than_ms)}: {protection.describe()}"
    newest_first = sorted(health.snapshots, key=lambda s: s.committed_at_ms, reverse=True)
    expirable = [s for s in newest_first[retain_last:] if s.committed_at_ms < older_than_ms]
    days_text = f"{days:g} days"
    if not expirable:
        return PlannedOperation(
            name,
            False,
            f"{health.snapshot_count} snapshots, none both older than {days_text} and outside the last "
            f"{retain_last}{clamp}",
        )
    return PlannedOperation(
        name,
        True,
        f"{len(expirable)} of {health.snapshot_count} snapshots are older than {days_text} and outside the "
        f"last {retain_last}{clamp}",
        ExpireSnapshotsCall(
            older_than=datetime.fromtimestamp(older_than_ms / 1000, tz=timezone.utc), retain_last=retain_last
        ),
    )


def _plan_remove_orphan_files(policy: MaintenancePolicy, ctx: PlanContext) -> PlannedOperation:
    name = "remove_orphan_files"
    gate = operation_gate(name, policy, ctx)
    if gate:
        return PlannedOperation(name, False, gate)
    hours = policy.operation(name).float_option("older_than_hours", 72)
    call = RemoveOrphanFilesCall(
        older_than=ctx.now - timedelta(hours=hours), planned_at=ctx.now, dry_run=ctx.dry_run
    )
    mode = "dry run, lists only" if ctx.dry_run else "deletes them"
    return PlannedOperation(
        name,
        True,
        f"due ({policy.operation(name).frequency}): orphans can only be found by listing; files older than "
        f"{hours:g} h that no snapshot references ({mode}; prefix mismatch stops the run)",
        call,
    )


def plan_maintenance(
    health: TableHealth, policy: MaintenancePolicy, context: PlanContext
) -> tuple[PlannedOperation, ...]:
    """Decide every operation for one table, in execution order (pure).

    Args:
        health: the table measured now.
        policy: the policy resolved for this table (``MaintenancePolicy.for_table``).
        context: time, schedule, requested operations, checkpoint protection.
    """
    compaction, applies_deletes = _plan_rewrite_data_files(health, policy, context)
    planned = {
        "rewrite_data_files": compaction,
        "rewrite_position_delete_files": _plan_rewrite_position_deletes(
            health, policy, context, compaction if applies_deletes and compaction.run else None
        ),
        "rewrite_manifests": _plan_rewrite_manifests(health, policy, context),
        "expire_snapshots": _plan_expire_snapshots(health, policy, context),
        "remove_orphan_files": _plan_remove_orphan_files(policy, context),
    }
    return tuple(planned[name] for name in OPERATION_ORDER)
