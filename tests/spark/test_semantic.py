"""The semantic layer on the real local runtime: hand-computed entity and aggregate rows,
updates to existing keys on a merge-on-read curated table, the pinned snapshot, and re-runs."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pytest
from chispa import assert_df_equality

from lean_ops_spark.catalog.bootstrap import bootstrap_tables
from lean_ops_spark.catalog.checkpoints import CURATED_CHECKPOINT_KEY, read_checkpoint
from lean_ops_spark.catalog.naming import TableRef, topic_tables
from lean_ops_spark.curation.pipeline import run_curation
from lean_ops_spark.errors import CheckpointError
from lean_ops_spark.raw import RawRecord
from lean_ops_spark.raw.writer import append_raw
from lean_ops_spark.semantic.job import STEP_AUDITED, STEP_PUBLISHED, STEP_WRITTEN, run_semantic
from lean_ops_spark.semantic.publish import AUDIT_BRANCH_PREFIX, branches
from tests.conftest import Crash, crash_at

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=timezone.utc)
DAY1 = datetime(2026, 11, 18, 9, 0, tzinfo=timezone.utc)
DAY2 = datetime(2026, 11, 19, 15, 30, tzinfo=timezone.utc)
NO_SUITES: dict = {}


def iso(ts: datetime) -> str:
    return ts.isoformat().replace("+00:00", "Z")


def order(
    key: str,
    ts: datetime,
    version: int,
    *,
    status: str = "created",
    currency: str = "EUR",
    total: str = "10.50",
    items: list[tuple[str, int, str]] | None = None,
    coupon: str | None = None,
) -> str:
    payload = {
        "order_id": key,
        "customer_id": f"c-{key}",
        "status": status,
        "order_ts": iso(ts),
        "updated_at": iso(ts + timedelta(minutes=version)),
        "currency": currency,
        "total_amount": float(total),
        "shipping_address": {"street": "Main 1", "city": "Oslo", "postcode": "0150", "country": "NO"},
        "items": [
            {"sku": s, "quantity": q, "unit_price": float(p)} for s, q, p in (items or [("a", 1, total)])
        ],
    }
    if coupon:
        payload["coupon_code"] = coupon
    return json.dumps(payload)


class Lake:
    """A fresh orders environment: land raw records, curate, run semantic."""

    def __init__(self, spark, config) -> None:
        self.spark = spark
        self.config = config
        bootstrap_tables(spark, config, ["orders"])
        self.tables = topic_tables(config.profile, "orders")
        self.sequence = 0

    def land(self, *payloads: str) -> None:
        records = []
        for payload in payloads:
            self.sequence += 1
            records.append(
                RawRecord(
                    f"m-{self.sequence}", "orders", payload, NOW + timedelta(seconds=self.sequence), "t", 1
                )
            )
        append_raw(self.spark, self.tables.raw, records)

    def curate(self) -> int:
        result = run_curation(self.spark, self.config, "orders")
        assert result.status == "committed" and result.curated_snapshot_id is not None
        return result.curated_snapshot_id

    def semantic(self, **kwargs):
        kwargs.setdefault("suites", NO_SUITES)
        return run_semantic(self.spark, self.config, "orders", **kwargs)

    def table(self, name: str) -> TableRef:
        return TableRef(self.config.profile.catalog, self.config.profile.databases.semantic, name, "semantic")

    def entity(self):
        self.spark.sql(f"REFRESH TABLE {self.table('orders').sql}")
        return self.spark.table(self.table("orders").sql).select(
            "order_id",
            "order_status",
            "order_date",
            "currency",
            "total_amount",
            "item_count",
            "items_amount",
            "has_coupon",
        )

    def revenue(self):
        self.spark.sql(f"REFRESH TABLE {self.table('orders_daily_revenue').sql}")
        return self.spark.table(self.table("orders_daily_revenue").sql).select(
            "order_date", "currency", "order_count", "revenue", "items_sold"
        )


ENTITY_SCHEMA = (
    "order_id string, order_status string, order_date date, currency string, total_amount decimal(12,2), "
    "item_count int, items_amount decimal(18,2), has_coupon boolean"
)
REVENUE_SCHEMA = (
    "order_date date, currency string, order_count bigint, revenue decimal(22,2), items_sold bigint"
)


def audit_branches(spark, table: TableRef) -> list[str]:
    return [name for name in branches(spark, table) if name.startswith(AUDIT_BRANCH_PREFIX)]


def expect(spark, rows, schema):
    return spark.createDataFrame(rows, schema)


@pytest.fixture
def lake(spark, fresh_config) -> Lake:
    return Lake(spark, fresh_config)


def test_entity_and_aggregate_rows_after_inserts_and_updates_on_merge_on_read_curated(spark, lake) -> None:
    d1, d2 = DAY1.date(), DAY2.date()
    lake.land(
        order("A", DAY1, 1, items=[("a", 2, "5.25")]),
        order(
            "B", DAY1, 1, status="paid", currency="USD", total="20.00", items=[("b", 1, "20.00")], coupon="X"
        ),
        order("C", DAY2, 1, total="5.00", items=[("c", 5, "1.00")]),
    )
    first = lake.semantic(curated_snapshot_id=lake.curate())
    assert first.status == "published"
    assert {m.model: (m.window, m.rows_merged) for m in first.models} == {
        "orders": ("full", 3),
        "orders_daily_revenue": ("full", 3),
    }
    assert_df_equality(
        lake.entity(),
        expect(
            spark,
            [
                ("A", "created", d1, "EUR", Decimal("10.50"), 2, Decimal("10.50"), False),
                ("B", "paid", d1, "USD", Decimal("20.00"), 1, Decimal("20.00"), True),
                ("C", "created", d2, "EUR", Decimal("5.00"), 5, Decimal("5.00"), False),
            ],
            ENTITY_SCHEMA,
        ),
        ignore_row_order=True,
        ignore_nullable=True,
        ignore_metadata=True,
    )
    assert_df_equality(
        lake.revenue(),
        expect(
            spark,
            [
                (d1, "EUR", 1, Decimal("10.50"), 2),
                (d1, "USD", 1, Decimal("20.00"), 1),
                (d2, "EUR", 1, Decimal("5.00"), 5),
            ],
            REVENUE_SCHEMA,
        ),
        ignore_row_order=True,
        ignore_nullable=True,
        ignore_metadata=True,
    )

    # updates to existing keys: A paid with a new total, C cancelled (leaves both tables), D new
    lake.land(
        order("A", DAY1, 2, status="paid", total="12.00", items=[("a", 2, "5.25"), ("z", 1, "1.50")]),
        order("C", DAY2, 2, status="cancelled", total="5.00", items=[("c", 5, "1.00")]),
        order("D", DAY1, 1, total="7.00", items=[("d", 7, "1.00")]),
    )
    pinned = lake.curate()
    delete_files = spark.sql(
        f"SELECT count(*) AS n FROM {lake.tables.curated.metadata_table('files')} WHERE content = 1"
    ).first()["n"]
    assert delete_files > 0  # merge-on-read: the updates left position delete files

    second = lake.semantic(curated_snapshot_id=pinned)
    (curation_run,) = {m.run_ids for m in second.models}
    assert len(curation_run) == 1  # only the second curation run's rows were read
    assert {m.model: (m.window, m.rows_merged) for m in second.models} == {
        "orders": ("incremental", 3),  # A updated, C deleted, D inserted
        "orders_daily_revenue": ("incremental", 2),  # (d1, EUR) recomputed, (d2, EUR) emptied
    }
    assert_df_equality(
        lake.entity(),
        expect(
            spark,
            [
                ("A", "paid", d1, "EUR", Decimal("12.00"), 3, Decimal("12.00"), False),
                ("B", "paid", d1, "USD", Decimal("20.00"), 1, Decimal("20.00"), True),
                ("D", "created", d1, "EUR", Decimal("7.00"), 7, Decimal("7.00"), False),
            ],
            ENTITY_SCHEMA,
        ),
        ignore_row_order=True,
        ignore_nullable=True,
        ignore_metadata=True,
    )
    assert_df_equality(
        lake.revenue(),
        expect(
            spark,
            [(d1, "EUR", 2, Decimal("19.00"), 10), (d1, "USD", 1, Decimal("20.00"), 1)],
            REVENUE_SCHEMA,
        ),
        ignore_row_order=True,
        ignore_nullable=True,
        ignore_metadata=True,
    )
    for name in ("orders", "orders_daily_revenue"):
        checkpoint = read_checkpoint(spark, lake.table(name), CURATED_CHECKPOINT_KEY)
        assert checkpoint is not None and checkpoint.source_snapshot_id == pinned
        assert not audit_branches(spark, lake.table(name))
    assert lake.semantic(curated_snapshot_id=pinned).status == "up_to_date"


def only(name: str):
    from lean_ops_spark.config.sources import open_config_source
    from lean_ops_spark.semantic.loader import load_semantic_models
    from lean_ops_spark.semantic.models import SemanticModels

    shipped = load_semantic_models(open_config_source("conf"), "orders")
    assert shipped is not None
    return SemanticModels("orders", (shipped.model(name),), shipped.source)


def test_the_run_reads_curated_as_of_the_pinned_snapshot(spark, lake) -> None:
    lake.land(order("A", DAY1, 1, total="1.00"), order("B", DAY1, 1, total="2.00"))
    first = lake.curate()
    # curation commits again before the semantic job of the first run starts
    lake.land(order("A", DAY1, 2, status="paid", total="3.00"), order("E", DAY2, 1, total="4.00"))
    second = lake.curate()

    result = lake.semantic(curated_snapshot_id=first, models=only("orders"))
    (model,) = result.models
    assert (model.status, model.curated_snapshot_id) == ("published", first)
    state = {r["order_id"]: (r["order_status"], r["total_amount"]) for r in lake.entity().collect()}
    assert state == {"A": ("created", Decimal("1.00")), "B": ("created", Decimal("2.00"))}
    assert read_checkpoint(spark, lake.table("orders"), CURATED_CHECKPOINT_KEY).source_snapshot_id == first

    caught_up = lake.semantic(curated_snapshot_id=second, models=only("orders"))
    assert caught_up.models[0].window == "incremental" and caught_up.models[0].rows_merged == 2
    state = {r["order_id"]: (r["order_status"], r["total_amount"]) for r in lake.entity().collect()}
    assert state == {
        "A": ("paid", Decimal("3.00")),
        "B": ("created", Decimal("2.00")),
        "E": ("created", Decimal("4.00")),
    }
    # a stale token (an older execution re-run) changes nothing
    assert lake.semantic(curated_snapshot_id=first, models=only("orders")).status == "up_to_date"

    # a model reading a column curated does not have takes the notify path, nothing written
    from lean_ops_spark.metrics import MemorySink
    from lean_ops_spark.semantic.loader import parse_semantic_models

    needs_more = parse_semantic_models(
        {
            "topic": "orders",
            "models": [{"name": "orders", "key": ["order_id"], "columns": ["order_id", "loyalty_tier"]}],
        },
        "test",
    )
    sink = MemorySink()
    skipped = lake.semantic(curated_snapshot_id=second, models=needs_more, metrics=sink)
    assert (skipped.status, skipped.missing, skipped.models) == ("missing_schema", ("loyalty_tier",), ())
    assert "lacks column(s) loyalty_tier" in skipped.reason
    assert sink.values("MissingSemanticSchema", Topic="orders") == [1.0]
    assert read_checkpoint(spark, lake.table("orders"), CURATED_CHECKPOINT_KEY).source_snapshot_id == second


def test_a_rerun_after_a_crash_in_the_middle_of_publish_is_safe(spark, lake) -> None:
    models = only("orders_daily_revenue")
    table = lake.table("orders_daily_revenue")
    lake.land(order("A", DAY1, 1, total="1.00"), order("B", DAY1, 1, total="2.00"))
    pinned = lake.curate()
    # audited, main not moved yet: main is untouched, the re-run rebuilds the branch from main
    with pytest.raises(Crash):
        lake.semantic(curated_snapshot_id=pinned, models=models, after_step=crash_at(STEP_AUDITED))
    assert len(audit_branches(spark, table)) == 1 and "main" not in branches(spark, table)
    assert lake.semantic(curated_snapshot_id=pinned, models=models).status == "published"
    expected = [(DAY1.date(), "EUR", 2, Decimal("3.00"), 2)]
    assert_df_equality(lake.revenue(), expect(spark, expected, REVENUE_SCHEMA), ignore_nullable=True)

    # published, the branch not dropped yet: the re-run finds the checkpoint on main
    lake.land(order("A", DAY1, 2, total="5.00"))
    pinned = lake.curate()
    with pytest.raises(Crash):
        lake.semantic(curated_snapshot_id=pinned, models=models, after_step=crash_at(STEP_PUBLISHED))
    again = lake.semantic(curated_snapshot_id=pinned, models=models)
    assert again.status == "up_to_date" and not audit_branches(spark, table)
    expected = [(DAY1.date(), "EUR", 2, Decimal("7.00"), 2)]
    assert_df_equality(lake.revenue(), expect(spark, expected, REVENUE_SCHEMA), ignore_nullable=True)
    assert read_checkpoint(spark, table, CURATED_CHECKPOINT_KEY).source_snapshot_id == pinned


def test_snowflake_refresh_after_a_run_covers_exactly_the_tables_whose_schema_changed(
    spark, lake, tmp_path
) -> None:
    """The semantic job's step after its commits (``--lean_ops_env dev``: conf/governance/dev.yaml
    has a snowflake: section without a connection, so the SQL goes to a file under the home)."""
    from lean_ops_spark.metrics import MemorySink
    from lean_ops_spark.semantic.job import SNOWFLAKE_REFRESH_FAILED_METRIC, refresh_snowflake_after_run

    home = tmp_path / "home"

    def refresh(outcome, metrics=None):
        return refresh_snowflake_after_run(
            spark, lake.config, outcome, env_name="dev", home=str(home), metrics=metrics, environ={}
        )

    def sql_files():
        return sorted((home / "snowflake" / "sql").glob("*.sql"))

    lake.land(order("o-1", DAY1, 1))
    lake.curate()
    first = lake.semantic()
    assert first.status == "published"

    # Failure while writing the SQL: reported and counted, the job is not failed, nothing recorded.
    (home / "snowflake").mkdir(parents=True)
    (home / "snowflake" / "sql").write_text("a file where the folder should be")
    sink = MemorySink()
    failed = refresh(first, sink)
    assert failed is not None and "writing the refresh SQL" in failed["error"]
    assert sink.values(SNOWFLAKE_REFRESH_FAILED_METRIC, Topic="orders") == [1.0]
    assert not (home / "snowflake" / "schemas.json").exists()
    (home / "snowflake" / "sql").unlink()

    # Retried on the next call: both tables are new to Snowflake -> CREATE IF NOT EXISTS + REFRESH.
    done = refresh(first)
    assert done is not None and done["outcome"]["mode"] == "written"
    assert done["changes"]["new"] == ["orders", "orders_daily_revenue"]
    [script] = sql_files()
    text = script.read_text()
    assert done["outcome"]["sql_file"] == str(script)
    for table in ("orders", "orders_daily_revenue"):
        assert f"CREATE ICEBERG TABLE IF NOT EXISTS ANALYTICS.LAKEHOUSE.{table}\n" in text
        assert f"ALTER ICEBERG TABLE ANALYTICS.LAKEHOUSE.{table} REFRESH;" in text
    state = json.loads((home / "snowflake" / "schemas.json").read_text())
    assert sorted(state["tables"]) == ["orders", "orders_daily_revenue"]

    # A data commit changes no schema: nothing to refresh, no new file.
    lake.land(order("o-2", DAY2, 1))
    lake.curate()
    again = refresh(lake.semantic())
    assert again is not None and again["outcome"]["mode"] == "nothing"
    assert again["changes"]["unchanged"] == ["orders", "orders_daily_revenue"]
    assert len(sql_files()) == 1

    # A schema change of one table: only that one, REFRESH only. (A column added behind the
    # model's back; the next semantic run would refuse the table, so the step is called on
    # the last run's outcome, which only names the tables.)
    spark.sql(f"ALTER TABLE {lake.table('orders_daily_revenue').sql} ADD COLUMN note string")
    changed = refresh(first)
    assert changed is not None and changed["changes"]["changed"] == ["orders_daily_revenue"]
    assert [a["table"] for a in changed["plan"]["actions"]] == ["orders_daily_revenue"]
    assert changed["plan"]["actions"][0]["sql"] == [
        "ALTER ICEBERG TABLE ANALYTICS.LAKEHOUSE.orders_daily_revenue REFRESH"
    ]
    assert len(sql_files()) == 2

    # Without an environment (or one with no governance file) the step does nothing.
    assert refresh_snowflake_after_run(spark, lake.config, first, env_name=None) is None
    assert refresh_snowflake_after_run(spark, lake.config, first, env_name="local") is None


@pytest.mark.parametrize("b_at", [STEP_AUDITED, STEP_WRITTEN])
def test_a_run_publishes_only_what_it_audited_when_another_run_of_the_table_overlaps(
    spark, lake, b_at
) -> None:
    """Overlapping executions of a topic run the semantic job for one table at once.
    Run B starts while run A is between its write and its publish: B after A's audit passed,
    dying after its own write (before its audit), or B whole, right after A's write. Either
    way A must not publish what B wrote: it fails, naming the branch, and main holds only
    audited snapshots."""
    models = only("orders_daily_revenue")
    table = lake.table("orders_daily_revenue")
    lake.land(order("A", DAY1, 1, total="1.00"))
    first = lake.curate()
    lake.land(order("B", DAY1, 1, total="2.00"))
    second = lake.curate()
    b_runs = []

    def run_b(step: str) -> None:
        if step == b_at and not b_runs:
            if b_at == STEP_AUDITED:  # B writes its branch, then dies before its audit
                with pytest.raises(Crash):
                    lake.semantic(
                        curated_snapshot_id=second, models=models, after_step=crash_at(STEP_WRITTEN)
                    )
            else:  # B writes, audits and publishes
                b_runs.append(lake.semantic(curated_snapshot_id=second, models=models))
            b_runs.append(step)

    with pytest.raises(
        CheckpointError, match=r"branch lean_ops_audit_\w+ no longer holds the audited snapshot"
    ):
        lake.semantic(curated_snapshot_id=first, models=models, after_step=run_b)
    assert b_runs[-1] == b_at
    checkpoint = read_checkpoint(spark, table, CURATED_CHECKPOINT_KEY)
    if b_at == STEP_AUDITED:
        assert checkpoint is None  # main untouched: B's snapshot was not published by A
        assert lake.semantic(curated_snapshot_id=second, models=models).status == "published"  # the retry
    else:
        assert b_runs[0].status == "published"
    assert read_checkpoint(spark, table, CURATED_CHECKPOINT_KEY).source_snapshot_id == second
    expected = [(DAY1.date(), "EUR", 2, Decimal("3.00"), 2)]
    assert_df_equality(lake.revenue(), expect(spark, expected, REVENUE_SCHEMA), ignore_nullable=True)
    assert not audit_branches(spark, table)


def test_an_entity_partitioned_by_a_timestamp_updates_its_row_whatever_the_driver_time_zone(
    spark, lake, monkeypatch
) -> None:
    # collect() turns the changed rows' partition values into naive times in the Python
    # process's zone; the MERGE's partition predicate must still find the row (it used to
    # miss it outside UTC and insert the key again)
    import time

    from lean_ops_spark.semantic.loader import parse_semantic_models

    models = parse_semantic_models(
        {
            "topic": "orders",
            "models": [
                {
                    "name": "orders",
                    "kind": "entity",
                    "key": ["order_id"],
                    "partition": {"column": "order_ts", "transform": "day"},
                    "columns": ["order_id", "order_ts", {"name": "order_status", "expr": "status"}],
                }
            ],
        },
        "test",
    )
    monkeypatch.setenv("TZ", "America/New_York")
    time.tzset()
    try:
        lake.land(order("A", DAY1, 1, status="created"))
        lake.semantic(curated_snapshot_id=lake.curate(), models=models)
        lake.land(order("A", DAY1, 2, status="paid"))
        lake.semantic(curated_snapshot_id=lake.curate(), models=models)
    finally:
        monkeypatch.undo()
        time.tzset()
    rows = spark.table(lake.table("orders").sql).select("order_id", "order_status").collect()
    assert [tuple(r) for r in rows] == [("A", "paid")]


def test_a_run_whose_checkpoint_another_run_moved_on_before_its_write_publishes_nothing(
    spark, lake, monkeypatch
) -> None:
    """Run A reads its checkpoint and plans its window; run B then runs whole and publishes a
    newer curated snapshot before A's first write. A's branch would be made from B's main, and
    A's older window MERGEd on top of it and published (an older status over a newer one). A
    must fail instead, and main keep B's result and checkpoint."""
    from lean_ops_spark.semantic import job

    lake.land(order("A", DAY1, 1, status="created", total="1.00"))
    first = lake.curate()
    lake.land(order("A", DAY1, 2, status="paid", total="3.00"))
    second = lake.curate()
    stage, b_runs = job._stage, []

    def stage_then_b(*args, **kwargs):  # type: ignore[no-untyped-def]
        staged = stage(*args, **kwargs)
        if not b_runs:
            b_runs.append("started")  # B's own _stage comes here too
            b_runs.append(lake.semantic(curated_snapshot_id=second, models=only("orders")))
        return staged

    monkeypatch.setattr(job, "_stage", stage_then_b)
    with pytest.raises(CheckpointError, match=r"main moved from snapshot"):
        lake.semantic(curated_snapshot_id=first, models=only("orders"))
    monkeypatch.setattr(job, "_stage", stage)
    assert b_runs[1].status == "published"
    table = lake.table("orders")
    assert read_checkpoint(spark, table, CURATED_CHECKPOINT_KEY).source_snapshot_id == second
    rows = spark.table(table.sql).select("order_id", "order_status", "total_amount").collect()
    assert [tuple(r) for r in rows] == [("A", "paid", Decimal("3.00"))]
    assert lake.semantic(curated_snapshot_id=second, models=only("orders")).status == "up_to_date"
