"""Drift decisions per mode, the evolved contract and the ALTER statements: pure."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timezone

import pytest

from lean_ops_spark.config import DriftMode
from lean_ops_spark.config.models import FieldType
from lean_ops_spark.drift.audit import audit_rows, emit_drift_metrics
from lean_ops_spark.drift.diff import Drift, DriftKind, DriftSource, Reconciliation
from lean_ops_spark.drift.policy import DriftAction, alter_statements, decide, plan_drift
from lean_ops_spark.drift.schema import contract_paths, parse_json_path
from lean_ops_spark.metrics import MemorySink
from tests.unit.test_drift_diff import contract

A = DriftAction
NEW = Drift(("promo",), DriftKind.NEW_FIELD, None, "string", proposed=FieldType("string"))
NESTED = Drift(
    parse_json_path("items[].discount"),
    DriftKind.NESTED_FIELD_CHANGE,
    None,
    "double",
    proposed=FieldType("double"),
)
FLAT = Drift(
    parse_json_path("meta.region"),
    DriftKind.NESTED_FIELD_CHANGE,
    None,
    "string",
    proposed=FieldType("string"),
)
WIDEN_OPTIONAL = Drift(("qty",), DriftKind.TYPE_WIDENING, "int", "bigint", proposed=FieldType("long"))
WIDEN_REQUIRED = Drift(
    ("price",),
    DriftKind.TYPE_WIDENING,
    "decimal(10,2)",
    "decimal(14,2)",
    proposed=FieldType("decimal", 14, 2),
)
INCOMPATIBLE_OPTIONAL = Drift(("qty",), DriftKind.TYPE_INCOMPATIBLE, "int", "string")
INCOMPATIBLE_REQUIRED = Drift(("price",), DriftKind.TYPE_INCOMPATIBLE, "decimal(10,2)", "string")
MISSING = Drift(("price",), DriftKind.MISSING_REQUIRED_FIELD, "decimal(10,2)", "decimal(10,2) (absent)")
NULLS = Drift(("price",), DriftKind.NULLABILITY_CHANGE, "decimal(10,2)", "decimal(10,2) (null)")

#: The documented table: drift -> (evolve, rescue, fail).
TABLE = [
    (NEW, A.ADD_COLUMN, A.RESCUE, A.FAIL),
    (NESTED, A.ADD_COLUMN, A.RESCUE, A.FAIL),
    (FLAT, A.ADD_COLUMN, A.RESCUE, A.FAIL),
    (WIDEN_OPTIONAL, A.WIDEN_COLUMN, A.RESCUE, A.FAIL),
    (WIDEN_REQUIRED, A.WIDEN_COLUMN, A.QUARANTINE, A.FAIL),
    (INCOMPATIBLE_OPTIONAL, A.RESCUE, A.RESCUE, A.FAIL),
    (INCOMPATIBLE_REQUIRED, A.QUARANTINE, A.QUARANTINE, A.FAIL),
    (MISSING, A.QUARANTINE, A.QUARANTINE, A.FAIL),
    (NULLS, A.QUARANTINE, A.QUARANTINE, A.FAIL),
]


@pytest.mark.parametrize(
    ("drift", "evolve", "rescue", "fail"), TABLE, ids=lambda x: getattr(x, "field_path", "")
)
def test_every_kind_in_every_mode(
    drift: Drift, evolve: DriftAction, rescue: DriftAction, fail: DriftAction
) -> None:
    base = contract()
    got = [decide(drift, mode, base).action for mode in (DriftMode.EVOLVE, DriftMode.RESCUE, DriftMode.FAIL)]
    assert got == [evolve, rescue, fail]
    if evolve is A.ADD_COLUMN:
        assert "no backfill" in decide(drift, DriftMode.EVOLVE, base).note


def test_fields_that_cannot_be_columns_are_rescued_even_in_evolve() -> None:
    bad_name = replace(NEW, path=("Promo-Code",))
    decision = decide(bad_name, DriftMode.EVOLVE, contract())
    assert decision.action is A.RESCUE and "not a valid column name" in decision.note


def test_a_new_field_whose_column_name_is_taken_is_rescued() -> None:
    clash = replace(NEW, path=("meta_source",))  # the flattened meta.source already is column meta_source
    decision = decide(clash, DriftMode.EVOLVE, contract())
    assert decision.action is A.RESCUE and "column meta_source already exists" in decision.note


@pytest.mark.parametrize(
    "name", ["topic", "message_id", "payload", "ingestion_ts", "producer", "schema_version"]
)
def test_a_new_field_named_like_a_raw_record_column_is_rescued(name: str) -> None:
    """Parsed into, its column would replace the raw record's own in the batch."""
    decision = decide(replace(NEW, path=(name,)), DriftMode.EVOLVE, contract())
    assert decision.action is A.RESCUE and f"column name {name} is reserved" in decision.note
    flattened = Drift(
        ("meta", "id"), DriftKind.NESTED_FIELD_CHANGE, None, "string", proposed=FieldType("string")
    )
    renamed = replace(
        contract(),
        fields=tuple(replace(f, name="message") if f.name == "meta" else f for f in contract().fields),
    )
    decision = decide(replace(flattened, path=("message", "id")), DriftMode.EVOLVE, renamed)
    assert decision.action is A.RESCUE and "column name message_id is reserved" in decision.note


def test_two_new_fields_of_one_column_add_it_once() -> None:
    """meta.region (meta is flattened) and meta_region are both column meta_region: the
    first by path adds it, the other is rescued (two ALTERs would fail after the first)."""
    top = replace(NEW, path=("meta_region",))
    plan = plan_drift(Reconciliation(contract(), (), ()), [FLAT, top], DriftMode.EVOLVE)
    assert [(d.drift.field_path, d.action) for d in plan.decisions] == [
        ("meta.region", A.ADD_COLUMN),
        ("meta_region", A.RESCUE),
    ]
    assert "column meta_region is the column of another new field" in plan.decisions[1].note
    assert [c.describe() for c in plan.changes] == ["add column meta_region string"]
    assert ("meta_region",) not in contract_paths(plan.contract)


def test_curated_and_contract_differences_apply_in_every_mode() -> None:
    kept = replace(NEW, source=DriftSource.CURATED)
    ahead = replace(NEW, source=DriftSource.CONTRACT)
    for mode in DriftMode:
        assert decide(kept, mode, contract()).action is A.USE_CURATED_SCHEMA
        assert decide(ahead, mode, contract()).action is A.ADD_COLUMN


def test_evolve_plan_extends_the_contract_and_says_how_to_alter_the_table() -> None:
    base = contract("evolve")
    plan = plan_drift(
        Reconciliation(base, (), ()), [NEW, NESTED, FLAT, WIDEN_OPTIONAL, MISSING], DriftMode.EVOLVE
    )
    assert not plan.failed
    known = contract_paths(plan.contract)
    assert known[("promo",)].type == FieldType("string")
    assert known[parse_json_path("items[].discount")].type == FieldType("double")
    assert known[parse_json_path("meta.region")].column == "meta_region"
    assert known[("qty",)].type == FieldType("long")
    statements = alter_statements("lake.c.things", plan.changes, after_column="items", run_id="r-1")
    assert statements == [
        "ALTER TABLE lake.c.things ADD COLUMN promo string COMMENT 'lean-ops payload path: promo (run r-1)' AFTER items",
        "ALTER TABLE lake.c.things ADD COLUMN items.element.discount double",
        "ALTER TABLE lake.c.things ADD COLUMN meta_region string "
        "COMMENT 'lean-ops payload path: meta.region (run r-1)' AFTER promo",
        "ALTER TABLE lake.c.things ALTER COLUMN qty TYPE bigint",
    ]


def test_rescue_and_fail_plans_leave_the_contract_alone() -> None:
    base = contract("rescue")
    rescue = plan_drift(Reconciliation(base, (), ()), [NEW, WIDEN_OPTIONAL], DriftMode.RESCUE)
    assert rescue.contract == base and rescue.changes == () and not rescue.failed
    fail = plan_drift(Reconciliation(base, (), ()), [NEW, MISSING], DriftMode.FAIL)
    assert fail.contract == base and len(fail.failed) == 2


def test_audit_rows_and_metrics_leave_out_curated_steady_state() -> None:
    base = contract()
    plan = plan_drift(
        Reconciliation(base, (replace(FLAT, source=DriftSource.CURATED),), ()),
        [NEW, MISSING],
        DriftMode.EVOLVE,
    )
    when = datetime(2026, 11, 20, tzinfo=timezone.utc)
    rows = audit_rows(plan.decisions, topic="things", run_id="r-1", mode="evolve", detected_at=when)
    assert [(r[3], r[4], r[7]) for r in rows] == [
        ("promo", "new_field", "add_column"),
        ("price", "missing_required_field", "quarantine"),
    ]
    sink = MemorySink()
    emit_drift_metrics(sink, "things", plan.decisions)
    assert sink.values("SchemaDrift", Topic="things", DriftKind="new_field", Action="add_column") == [1.0]
    assert [m.value for m in sink.metrics if dict(m.dimensions) == {"Topic": "things"}] == [2.0]
