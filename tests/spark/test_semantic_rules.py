"""Semantic tables stay equal to a full recomputation from curated: when a model's definition
changes (the table is rebuilt), and when an entity is partitioned by a ``timestamp_ntz``
outside UTC."""

from __future__ import annotations

import time

import pytest
from chispa import assert_df_equality

from lean_ops_spark.catalog.metadata import load_table_snapshots
from lean_ops_spark.semantic.compiler import KEEP_COLUMN, aggregate_rows, entity_rows
from lean_ops_spark.semantic.loader import parse_semantic_models
from lean_ops_spark.semantic.models import FINGERPRINT_KEY, ModelKind, SemanticModels
from tests.spark.test_semantic import DAY1, DAY2, Lake, order


@pytest.fixture
def lake(spark, fresh_config) -> Lake:
    return Lake(spark, fresh_config)


def models(*definitions: dict) -> SemanticModels:
    return parse_semantic_models({"topic": "orders", "models": list(definitions)}, "test")


def assert_recomputed(lake: Lake, semantic: SemanticModels) -> None:
    """Every model's table equals its full recomputation from the current curated table."""
    spark = lake.spark
    spark.sql(f"REFRESH TABLE {lake.tables.curated.sql}")
    curated = spark.table(lake.tables.curated.sql)
    for model in semantic.models:
        table = lake.table(model.name).sql
        spark.sql(f"REFRESH TABLE {table}")
        actual = spark.table(table).select(*model.output_columns)
        if model.kind is ModelKind.AGGREGATE:
            expected = aggregate_rows(curated, model)
        else:
            expected = entity_rows(curated, model).where(KEEP_COLUMN).drop(KEEP_COLUMN)
        assert_df_equality(
            actual,
            expected.select(*model.output_columns),
            ignore_row_order=True,
            ignore_nullable=True,
            ignore_metadata=True,
        )


ENTITY = {
    "name": "ent",
    "kind": "entity",
    "key": ["order_id"],
    "filters": ["status <> 'cancelled'"],
    "columns": ["order_id", {"name": "st", "expr": "status"}],
}
DAILY = {
    "name": "daily",
    "kind": "aggregate",
    "group_by": [{"name": "day", "expr": "to_date(order_ts)", "type": "date"}],
    "measures": [{"name": "n", "expr": "count(*)", "type": "bigint"}],
}


def test_a_changed_model_definition_rebuilds_its_table(spark, lake) -> None:
    # the same columns and types, other rows: a narrower filter, groups by another day
    before = models(ENTITY, DAILY)
    after = models(
        {**ENTITY, "filters": ["status NOT IN ('cancelled', 'refunded')"]},
        {
            **DAILY,
            "group_by": [{"name": "day", "expr": "to_date(updated_at + INTERVAL 1 DAY)", "type": "date"}],
        },
    )
    lake.land(order("A", DAY1, 1, status="refunded"), order("B", DAY2, 1))
    first = lake.curate()
    assert lake.semantic(models=before, curated_snapshot_id=first).status == "published"
    assert_recomputed(lake, before)

    # a stale token under the new definition does not move the table back in time
    lake.land(order("C", DAY1, 1))
    second = lake.curate()
    assert lake.semantic(models=before, curated_snapshot_id=second).status == "published"
    stale = lake.semantic(models=after, curated_snapshot_id=first)
    assert [m.status for m in stale.models] == ["up_to_date", "up_to_date"]

    rebuilt = lake.semantic(models=after, curated_snapshot_id=second)
    assert [(m.status, m.window) for m in rebuilt.models] == [("published", "rebuild")] * 2
    assert_recomputed(lake, after)  # A left the entity, the old days left the aggregate
    for model in after.models:
        table = lake.table(model.name)
        current = load_table_snapshots(spark, table)
        head = current.by_id()[current.current_snapshot_id]
        assert head.summary[FINGERPRINT_KEY] == model.fingerprint()
        properties = {r["key"]: r["value"] for r in spark.sql(f"SHOW TBLPROPERTIES {table.sql}").collect()}
        assert properties[FINGERPRINT_KEY] == model.fingerprint()

    # the same definition again: incremental
    lake.land(order("B", DAY2, 2, status="refunded"))
    again = lake.semantic(models=after, curated_snapshot_id=lake.curate())
    assert [m.window for m in again.models] == ["incremental", "incremental"]
    assert_recomputed(lake, after)


def test_an_entity_partitioned_by_a_timestamp_ntz_updates_its_row_outside_utc(
    spark, lake, monkeypatch
) -> None:
    # a collected timestamp_ntz is a wall-clock time: the MERGE's partition predicate must
    # not shift it by the driver's zone (it missed the row and inserted the key again)
    semantic = models(
        {
            "name": "ent",
            "kind": "entity",
            "key": ["order_id"],
            "partition": {"column": "local_ts", "transform": "day"},
            "columns": [
                "order_id",
                {"name": "st", "expr": "status"},
                {"name": "local_ts", "expr": "to_timestamp_ntz(order_ts)"},
            ],
        }
    )
    monkeypatch.setenv("TZ", "America/New_York")
    time.tzset()
    try:
        lake.land(order("A", DAY1.replace(hour=2), 1))  # 02:00 UTC: the day before in New York
        lake.semantic(models=semantic, curated_snapshot_id=lake.curate())
        lake.land(order("A", DAY1.replace(hour=2), 2, status="paid"))
        lake.semantic(models=semantic, curated_snapshot_id=lake.curate())
    finally:
        monkeypatch.undo()
        time.tzset()
    rows = spark.table(lake.table("ent").sql).select("order_id", "st").collect()
    assert [tuple(r) for r in rows] == [("A", "paid")]
    assert_recomputed(lake, semantic)
