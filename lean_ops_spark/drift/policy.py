"""What a run does about each drift, by the topic's ``drift_mode`` (pure).

==========================  ============================  ======================  ========
drift (from the data)       evolve                        rescue                  fail
==========================  ============================  ======================  ========
new field                   add column, parse into it     value -> _rescued_data  stop
nested field added          add nested field/column       value -> _rescued_data  stop
type widening               widen column (int->long,      value -> _rescued_data  stop
                            float->double, decimal p+)    (required: quarantine)
type incompatible           never evolves: as rescue      value -> _rescued_data  stop
                                                          (required: quarantine)
missing required field      records -> quarantine         records -> quarantine   stop
nullability change          records -> quarantine         records -> quarantine   stop
==========================  ============================  ======================  ========

Evolution never backfills: rows written before the change hold NULL in an added column,
and the decision says so. Differences between the contract and the curated table are not
data drift and are applied in every mode: columns an earlier ``evolve`` added are kept and
parsed into (update the contract file), fields or widenings a contract edit introduced
are added to the table.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Any

from lean_ops_spark.config.models import RESERVED_COLUMNS, DriftMode, TopicContract
from lean_ops_spark.drift.diff import Drift, DriftKind, DriftSource, Reconciliation, SchemaChange
from lean_ops_spark.drift.schema import (
    ELEMENT,
    contract_paths,
    ddl_path,
    is_identifier,
    replace_type,
    with_field,
)
from lean_ops_spark.errors import ContractError

__all__ = ["DriftAction", "DriftDecision", "DriftPlan", "decide", "plan_drift"]


class DriftAction(str, Enum):
    ADD_COLUMN = "add_column"
    WIDEN_COLUMN = "widen_column"
    USE_CURATED_SCHEMA = "use_curated_schema"
    RESCUE = "rescue"
    QUARANTINE = "quarantine"
    FAIL = "fail"


@dataclass(frozen=True)
class DriftDecision:
    drift: Drift
    action: DriftAction
    note: str

    def as_dict(self) -> dict[str, Any]:
        return {**self.drift.as_dict(), "action": self.action.value, "note": self.note}


_NO_BACKFILL = "rows written before this run stay NULL there (no backfill)"


def _enforced_required(contract: TopicContract, drift: Drift) -> bool:
    info = contract_paths(contract).get(drift.path)
    return bool(info and info.enforced and info.spec is not None and info.spec.required)


def _cannot_evolve(contract: TopicContract, drift: Drift) -> str | None:
    """Why a new field cannot be added as a column (None: it can)."""
    if drift.proposed is None:
        return "no type could be inferred"
    if not is_identifier(drift.path[-1]):
        return f"{drift.path[-1]!r} is not a valid column name"
    if len(drift.path) > 1:
        parent = contract_paths(contract).get(drift.path[:-1])
        if parent is None or parent.type.kind != "struct":
            return "its parent is not a struct of the contract"
        if parent.flattened_parent and not is_identifier(f"{parent.column}_{drift.path[-1]}"):
            return "the flattened column name would not be a valid identifier"
    column, _ddl = ddl_path(contract, drift.path)
    top_level = len(drift.path) == 1 or column != contract_paths(contract)[drift.path[:-1]].column
    if top_level and column in RESERVED_COLUMNS:
        # parsed into, it would replace the raw record's own column in the batch
        return f"column name {column} is reserved (a raw record or curation column)"
    if top_level and column in {name for name, _ in contract.curated_columns()}:
        return f"column {column} already exists (from another field)"
    return None


def decide(drift: Drift, mode: DriftMode, contract: TopicContract) -> DriftDecision:
    """The action for one drift under ``mode`` (see the module table)."""
    if drift.source is DriftSource.CURATED:
        return DriftDecision(
            drift,
            DriftAction.USE_CURATED_SCHEMA,
            f"curated already has it (an earlier evolve): parsed into it; add it to conf/topics/{contract.topic}.yaml",
        )
    if drift.source is DriftSource.CONTRACT:
        if drift.kind is DriftKind.TYPE_WIDENING:
            return DriftDecision(drift, DriftAction.WIDEN_COLUMN, "contract change applied to curated")
        return DriftDecision(
            drift, DriftAction.ADD_COLUMN, f"contract change applied to curated; {_NO_BACKFILL}"
        )
    if mode is DriftMode.FAIL:
        return DriftDecision(drift, DriftAction.FAIL, "drift_mode fail: run stopped before any write")
    record_level = DriftAction.QUARANTINE if _enforced_required(contract, drift) else DriftAction.RESCUE
    record_note = (
        "records quarantined (required field)"
        if record_level is DriftAction.QUARANTINE
        else "values kept in _rescued_data"
    )
    if drift.kind in (DriftKind.NEW_FIELD, DriftKind.NESTED_FIELD_CHANGE):
        if mode is DriftMode.EVOLVE:
            reason = _cannot_evolve(contract, drift)
            if reason is None:
                return DriftDecision(drift, DriftAction.ADD_COLUMN, f"schema evolved; {_NO_BACKFILL}")
            return DriftDecision(
                drift, DriftAction.RESCUE, f"cannot evolve ({reason}): values kept in _rescued_data"
            )
        return DriftDecision(drift, DriftAction.RESCUE, "values kept in _rescued_data")
    if drift.kind is DriftKind.TYPE_WIDENING and mode is DriftMode.EVOLVE and drift.proposed is not None:
        return DriftDecision(drift, DriftAction.WIDEN_COLUMN, "column type widened in place (values kept)")
    if drift.kind is DriftKind.TYPE_INCOMPATIBLE:
        return DriftDecision(drift, record_level, f"incompatible type change never evolves: {record_note}")
    if drift.kind in (DriftKind.MISSING_REQUIRED_FIELD, DriftKind.NULLABILITY_CHANGE):
        return DriftDecision(
            drift,
            DriftAction.QUARANTINE,
            "records quarantined (the contract's required flag is not relaxed automatically)",
        )
    return DriftDecision(drift, record_level, record_note)


@dataclass(frozen=True)
class DriftPlan:
    """Every decision of a run, the contract to parse with, and the table changes to make."""

    mode: DriftMode
    decisions: tuple[DriftDecision, ...]
    contract: TopicContract
    changes: tuple[SchemaChange, ...]

    @property
    def failed(self) -> tuple[DriftDecision, ...]:
        return tuple(d for d in self.decisions if d.action is DriftAction.FAIL)

    @property
    def drifts(self) -> tuple[Drift, ...]:
        return tuple(d.drift for d in self.decisions)

    def as_dict(self) -> dict[str, Any]:
        return {
            "mode": self.mode.value,
            "decisions": [d.as_dict() for d in self.decisions],
            "changes": [c.describe() for c in self.changes],
        }


def plan_drift(reconciliation: Reconciliation, batch_drifts: Sequence[Drift], mode: DriftMode) -> DriftPlan:
    """Decide every drift and evolve the (reconciled) contract where the decision says so.

    ``batch_drifts`` must come from :func:`~lean_ops_spark.drift.diff.diff_batch` against
    ``reconciliation.contract``.
    """
    contract = reconciliation.contract
    decisions = [decide(d, mode, contract) for d in (*reconciliation.drifts, *batch_drifts)]
    changes = list(reconciliation.changes)
    evolved = contract
    for i, decision in enumerate(decisions):
        drift = decision.drift
        if drift.source is not DriftSource.DATA or drift.proposed is None:
            continue
        if decision.action is DriftAction.ADD_COLUMN:
            column, ddl = ddl_path(evolved, drift.path)
            parent = contract_paths(evolved).get(drift.path[:-1])
            top_level = len(drift.path) == 1 or bool(parent and parent.flattened_parent)
            if top_level and column in {name for name, _ in evolved.curated_columns()}:
                # two new fields of this batch map to one column (meta.region of a flattened
                # meta, and meta_region): the first (by path) gets it, the other is rescued
                decisions[i] = DriftDecision(
                    drift,
                    DriftAction.RESCUE,
                    f"cannot evolve (column {column} is the column of another new field): "
                    "values kept in _rescued_data",
                )
                continue
            evolved = with_field(evolved, drift.path, drift.proposed)
            changes.append(SchemaChange("add", drift.path, column, ddl, drift.proposed, top_level=top_level))
        elif decision.action is DriftAction.WIDEN_COLUMN:
            column, ddl = ddl_path(evolved, drift.path)
            evolved = replace_type(evolved, drift.path, drift.proposed)
            changes.append(SchemaChange("widen", drift.path, column, ddl, drift.proposed))
    return DriftPlan(mode, tuple(decisions), evolved, tuple(changes))


def alter_statements(
    table: str, changes: Iterable[SchemaChange], *, after_column: str | None, run_id: str
) -> list[str]:
    """``ALTER TABLE`` text for ``changes`` (pure). New top-level columns go after
    ``after_column`` (the last payload column) and carry their payload path in a comment,
    so a later run maps them back to the payload (see ``reconcile_with_curated``).
    """
    from lean_ops_spark.catalog.schemas import sql_string
    from lean_ops_spark.drift.diff import PATH_COMMENT_PREFIX
    from lean_ops_spark.drift.schema import json_path

    statements = []
    last = after_column
    for change in changes:
        if change.operation == "widen":
            if change.type.kind in ("struct", "array"):
                raise ContractError(f"cannot widen {change.ddl_path} to a nested type")
            statements.append(
                f"ALTER TABLE {table} ALTER COLUMN {change.ddl_path} TYPE {change.type.spark_ddl()}"
            )
            continue
        if ELEMENT in change.path or not change.top_level:
            statements.append(f"ALTER TABLE {table} ADD COLUMN {change.ddl_path} {change.type.spark_ddl()}")
            continue
        comment = sql_string(f"{PATH_COMMENT_PREFIX}{json_path(change.path)} (run {run_id})")
        position = f" AFTER {last}" if last else ""
        statements.append(
            f"ALTER TABLE {table} ADD COLUMN {change.column} {change.type.spark_ddl()} COMMENT {comment}{position}"
        )
        last = change.column
    return statements
