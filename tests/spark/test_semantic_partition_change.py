"""A semantic table's partition spec follows its model's ``partition:``: a changed partition
(another transform, removed, added) evolves the table's spec before the rebuild writes, a
failed audit or a crash after the evolution converges on the re-run, and a spec changed by
hand is evolved back while the run MERGEs over files of both specs."""

from __future__ import annotations

import logging
from datetime import datetime, timezone
from decimal import Decimal

import pytest

from lean_ops_spark.catalog.checkpoints import CURATED_CHECKPOINT_KEY, read_checkpoint
from lean_ops_spark.catalog.metadata import current_schema, load_metadata_document, load_table_snapshots
from lean_ops_spark.catalog.naming import TableRef
from lean_ops_spark.quality.suites import Expectation, QualitySuite
from lean_ops_spark.semantic.job import STEP_WRITTEN
from lean_ops_spark.semantic.loader import parse_semantic_models
from lean_ops_spark.semantic.models import FINGERPRINT_KEY, SemanticModels
from tests.spark.test_semantic import DAY1, DAY2, Crash, Lake, crash_at, order
from tests.spark.test_semantic_rules import assert_recomputed

OCTOBER = datetime(2026, 10, 5, 10, 0, tzinfo=timezone.utc)  # another month than DAY1 and DAY2
JOB_LOGGER = "lean_ops_spark.semantic.job"


@pytest.fixture
def lake(spark, fresh_config) -> Lake:
    return Lake(spark, fresh_config)


def orders_model(transform: str | None) -> SemanticModels:
    """An entity model of orders, partitioned by ``transform`` of order_date (None: unpartitioned)."""
    definition: dict = {
        "name": "orders",
        "kind": "entity",
        "key": ["order_id"],
        "columns": [
            "order_id",
            {"name": "order_status", "expr": "status"},
            {"name": "order_date", "expr": "to_date(order_ts)", "type": "date"},
            {"name": "total_amount", "expr": "total_amount", "type": "decimal(12,2)"},
        ],
    }
    if transform is not None:
        definition["partition"] = {"column": "order_date", "transform": transform}
    return parse_semantic_models({"topic": "orders", "models": [definition]}, "test")


def fields(transform: str | None) -> list[tuple[str, str]]:
    return [] if transform is None else [("order_date", transform)]


def described(transform: str | None) -> str:
    return "unpartitioned" if transform is None else f"{transform}(order_date)"


def current_spec(spark, table: TableRef) -> tuple[int, list[tuple[str, str]]]:
    """The table's current spec id and its fields as (source column, Iceberg transform)."""
    document = load_metadata_document(spark, table)
    columns = {f["id"]: f["name"] for f in current_schema(document)["fields"]}
    spec_id = document["default-spec-id"]
    (spec,) = [s for s in document["partition-specs"] if s["spec-id"] == spec_id]
    return spec_id, [(columns[f["source-id"]], f["transform"]) for f in spec["fields"]]


def data_file_specs(spark, table: TableRef) -> set[int]:
    """The spec ids of the data files of main's current snapshot."""
    spark.sql(f"REFRESH TABLE {table.sql}")
    rows = spark.sql(
        f"SELECT DISTINCT spec_id FROM {table.metadata_table('files')} WHERE content = 0"
    ).collect()
    return {r["spec_id"] for r in rows}


def spec_warnings(caplog) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.name == JOB_LOGGER and r.levelno == logging.WARNING and "partition spec" in r.getMessage()
    ]


def order_rows(spark, table: TableRef, key: str) -> list[tuple]:
    spark.sql(f"REFRESH TABLE {table.sql}")
    rows = (
        spark.table(table.sql).where(f"order_id = '{key}'").select("order_id", "order_status", "total_amount")
    )
    return [tuple(r) for r in rows.collect()]


def land_three_orders(lake: Lake) -> int:
    lake.land(
        order("A", DAY1, 1, total="1.00"),
        order("B", DAY2, 1, total="2.00"),
        order("C", OCTOBER, 1, total="3.00"),
    )
    return lake.curate()


@pytest.mark.parametrize(
    ("before", "after"),
    [("month", "day"), ("month", None), (None, "month")],
    ids=["month-to-day", "partition-removed", "partition-added"],
)
def test_a_changed_model_partition_evolves_the_spec_before_the_rebuild_writes(
    spark, lake, caplog, before, after
) -> None:
    table = lake.table("orders")
    pinned = land_three_orders(lake)
    first = lake.semantic(models=orders_model(before), curated_snapshot_id=pinned)
    assert [(m.status, m.window) for m in first.models] == [("published", "full")]
    old_id, old_fields = current_spec(spark, table)
    assert old_fields == fields(before)
    assert data_file_specs(spark, table) == {old_id}

    changed = orders_model(after)
    with caplog.at_level(logging.WARNING, logger=JOB_LOGGER):
        rebuilt = lake.semantic(models=changed, curated_snapshot_id=pinned)
    assert [(m.status, m.window) for m in rebuilt.models] == [("published", "rebuild")]
    new_id, new_fields = current_spec(spark, table)
    assert new_fields == fields(after) and new_id != old_id
    # the rebuild replaced every row, each written in the new layout
    assert data_file_specs(spark, table) == {new_id}
    assert_recomputed(lake, changed)
    (warning,) = spec_warnings(caplog)
    assert table.sql in warning
    assert f"spec {old_id} {described(before)} -> spec {new_id} {described(after)}" in warning
    assert (
        rebuilt.models[0].partition_change
        == f"spec {old_id} {described(before)} -> spec {new_id} {described(after)}"
    )

    # an incremental run afterwards: A, first written under the old spec, is one row with its new values
    caplog.clear()
    lake.land(order("A", DAY1, 2, status="paid", total="4.00"))
    with caplog.at_level(logging.WARNING, logger=JOB_LOGGER):
        incremental = lake.semantic(models=changed, curated_snapshot_id=lake.curate())
    assert [(m.status, m.window, m.rows_merged) for m in incremental.models] == [
        ("published", "incremental", 1)
    ]
    assert order_rows(spark, table, "A") == [("A", "paid", Decimal("4.00"))]
    assert_recomputed(lake, changed)
    assert data_file_specs(spark, table) == {new_id}
    assert current_spec(spark, table) == (new_id, fields(after))
    assert not spec_warnings(caplog)  # nothing left to evolve


def test_a_failed_audit_or_a_crash_after_the_spec_change_keeps_main_and_the_rerun_converges(
    spark, lake, caplog
) -> None:
    table = lake.table("orders")
    month, day = orders_model("month"), orders_model("day")
    pinned = land_three_orders(lake)
    lake.semantic(models=month, curated_snapshot_id=pinned)
    old_id, _ = current_spec(spark, table)
    published = load_table_snapshots(spark, table).current_snapshot_id

    def main_unchanged() -> None:
        now = load_table_snapshots(spark, table)
        assert now.current_snapshot_id == published
        assert now.by_id()[published].summary[FINGERPRINT_KEY] == month.models[0].fingerprint()
        assert data_file_specs(spark, table) == {old_id}  # main's rows: files of the old spec ...
        assert_recomputed(lake, month)  # ... read as they were written

    # the rebuild's audit fails: the spec is table metadata, already the model's; main is not moved
    failing = {"orders": QualitySuite("semantic", "orders", "orders", (Expectation("row_count", maximum=1),))}
    with caplog.at_level(logging.WARNING, logger=JOB_LOGGER):
        failed = lake.semantic(models=day, curated_snapshot_id=pinned, suites=failing)
    assert [(m.status, m.window) for m in failed.models] == [("audit_failed", "rebuild")]
    new_id, new_fields = current_spec(spark, table)
    assert new_fields == [("order_date", "day")] and new_id != old_id
    assert len(spec_warnings(caplog)) == 1
    main_unchanged()

    # a run that dies after writing its branch: nothing left to evolve, main still not moved
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger=JOB_LOGGER), pytest.raises(Crash):
        lake.semantic(models=day, curated_snapshot_id=pinned, after_step=crash_at(STEP_WRITTEN))
    assert current_spec(spark, table) == (new_id, [("order_date", "day")])
    assert not spec_warnings(caplog)
    main_unchanged()

    # the re-run: main's fingerprint is still the old one, so it rebuilds, in the evolved spec
    rerun = lake.semantic(models=day, curated_snapshot_id=pinned)
    assert [(m.status, m.window, m.partition_change) for m in rerun.models] == [
        ("published", "rebuild", None)
    ]
    assert current_spec(spark, table) == (new_id, [("order_date", "day")])
    assert data_file_specs(spark, table) == {new_id}
    assert_recomputed(lake, day)
    assert read_checkpoint(spark, table, CURATED_CHECKPOINT_KEY).source_snapshot_id == pinned


def test_a_spec_changed_by_hand_is_evolved_back_and_the_merge_updates_a_row_of_the_other_spec(
    spark, lake, caplog
) -> None:
    table = lake.table("orders")
    day = orders_model("day")
    lake.semantic(models=day, curated_snapshot_id=land_three_orders(lake))
    assert current_spec(spark, table)[1] == [("order_date", "day")]

    # someone re-partitions the table by month by hand; a compaction rewrites its files in that spec
    spark.sql(f"ALTER TABLE {table.sql} REPLACE PARTITION FIELD order_date_day WITH months(order_date)")
    hand_id, hand_fields = current_spec(spark, table)
    assert hand_fields == [("order_date", "month")]
    spark.sql(
        f"CALL {table.catalog}.system.rewrite_data_files(table => '{table.identifier}', "
        "options => map('rewrite-all', 'true'))"
    )
    assert data_file_specs(spark, table) == {hand_id}

    # the model did not change (same fingerprint): the run stays incremental, the spec goes back to the model's
    lake.land(order("A", DAY1, 2, status="paid", total="4.00"))
    with caplog.at_level(logging.WARNING, logger=JOB_LOGGER):
        result = lake.semantic(models=day, curated_snapshot_id=lake.curate())
    assert [(m.status, m.window, m.rows_merged) for m in result.models] == [("published", "incremental", 1)]
    evolved_id, evolved_fields = current_spec(spark, table)
    assert evolved_fields == [("order_date", "day")] and evolved_id != hand_id
    (warning,) = spec_warnings(caplog)
    assert table.sql in warning and "month(order_date)" in warning and "day(order_date)" in warning
    assert "changed outside the model" in warning

    # A lived in a file of the month spec: the MERGE (pruned by order_date) updated it to one row,
    # rewritten in the day spec; C's October file was not touched and keeps the month spec
    assert order_rows(spark, table, "A") == [("A", "paid", Decimal("4.00"))]
    assert_recomputed(lake, day)
    assert data_file_specs(spark, table) == {hand_id, evolved_id}
    files = spark.sql(
        f"SELECT spec_id, readable_metrics.order_id.lower_bound AS first_key FROM {table.metadata_table('files')} "
        "WHERE content = 0"
    ).collect()
    assert {(r["first_key"], r["spec_id"]) for r in files if r["first_key"] == "C"} == {("C", hand_id)}


def test_the_evolution_statements_compare_transforms_not_spellings() -> None:
    from lean_ops_spark.catalog.schemas import PartitionSpecField, partition_evolution_sql

    month = PartitionSpecField("order_date", "month", "order_date_month")
    assert PartitionSpecField.from_ddl("months(order_date)").same_as(month)
    assert PartitionSpecField.from_ddl("month(ORDER_DATE)").same_as(month)
    assert (
        partition_evolution_sql("c.d.t", [month], [PartitionSpecField.from_ddl("months(order_date)")]) == ()
    )
    assert partition_evolution_sql("c.d.t", [month], [PartitionSpecField.from_ddl("days(order_date)")]) == (
        "ALTER TABLE c.d.t REPLACE PARTITION FIELD `order_date_month` WITH days(`order_date`)",
    )
    assert partition_evolution_sql("c.d.t", [month], []) == (
        "ALTER TABLE c.d.t DROP PARTITION FIELD `order_date_month`",
    )
    assert partition_evolution_sql("c.d.t", [], [PartitionSpecField.from_ddl("order_date")]) == (
        "ALTER TABLE c.d.t ADD PARTITION FIELD `order_date`",
    )
