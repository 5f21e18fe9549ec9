"""Write-audit-publish with Great Expectations on the real runtime: a bad batch fails the
suite and leaves main untouched (branch kept, metric, failed expectations with samples);
fixing the data publishes; ``lean-ops dq``'s check runs a suite on a table or a branch."""

from __future__ import annotations

from decimal import Decimal

from lean_ops_spark.catalog.checkpoints import CURATED_CHECKPOINT_KEY, current_snapshot_id, read_checkpoint
from lean_ops_spark.metrics import MemorySink
from lean_ops_spark.quality.check import check_table
from lean_ops_spark.quality.suites import Expectation, QualitySuite
from lean_ops_spark.semantic.publish import AUDIT_BRANCH_PREFIX, audit_branch, branches, read_branch
from tests.spark.test_semantic import DAY1, DAY2, Lake, only, order

SUITE = QualitySuite(
    layer="semantic",
    topic="orders",
    table="orders",
    expectations=(
        Expectation("not_null", ("order_id",)),
        Expectation("unique", ("order_id",)),
        Expectation("between", ("item_count",), minimum=0, maximum=10_000),
    ),
)


def state(rows) -> dict[str, tuple]:
    return {r["order_id"]: (r["item_count"], r["total_amount"]) for r in rows}


def test_a_bad_batch_fails_the_audit_main_stays_and_a_fixed_one_publishes(spark, fresh_config) -> None:
    lake = Lake(spark, fresh_config)
    table = lake.table("orders")
    models, suites = only("orders"), {"orders": SUITE}

    lake.land(
        order("A", DAY1, 1, items=[("a", 2, "5.25")]),
        order("B", DAY2, 1, total="2.00", items=[("b", 1, "2.00")]),
    )
    good = lake.semantic(curated_snapshot_id=lake.curate(), models=models, suites=suites)
    assert good.status == "published" and good.models[0].dq is not None and good.models[0].dq.success
    published = current_snapshot_id(spark, table)
    before = state(lake.entity().collect())
    assert before == {"A": (2, Decimal("10.50")), "B": (1, Decimal("2.00"))}

    # A arrives with an absurd quantity: valid for curation, not for the semantic suite
    lake.land(order("A", DAY1, 2, items=[("a", 20_000, "5.25")]), order("C", DAY2, 1, total="3.00"))
    bad_snapshot = lake.curate()
    sink = MemorySink()
    bad = lake.semantic(curated_snapshot_id=bad_snapshot, models=models, suites=suites, metrics=sink)
    (model,) = bad.models
    assert (bad.status, model.status, model.branch) == (
        "audit_failed",
        "audit_failed",
        audit_branch(bad.run_id),
    )
    assert model.dq is not None and not model.dq.success
    (failed,) = model.dq.failed
    assert failed.expectation.kind == "between" and failed.sample_values == (20_000,)
    assert failed.unexpected_count == 1
    assert "between(item_count)" in bad.failures() and "main unchanged" in bad.failures()
    assert sink.values("DataQualityFailed", Topic="orders", Table="orders") == [1.0]
    assert sink.values("SemanticPublished", Topic="orders", Table="orders") == [0.0]
    # readers of main see nothing of it; the branch is kept for inspection
    assert current_snapshot_id(spark, table) == published
    assert state(lake.entity().collect()) == before
    assert read_checkpoint(spark, table, CURATED_CHECKPOINT_KEY).source_snapshot_id != bad_snapshot
    assert model.branch in branches(spark, table)
    on_branch = state(read_branch(spark, table, model.branch).collect())
    assert on_branch["A"][0] == 20_000 and "C" in on_branch
    # the on-demand check (lean-ops dq --branch) sees the failure on the kept branch
    on_demand = check_table(spark, fresh_config, "semantic.orders", branch=model.branch)
    assert not on_demand.success
    assert [r.sample_values for r in on_demand.failed if r.expectation.columns == ("item_count",)] == [
        (20_000,)
    ]

    # the producer fixes A: the next run re-reads both curation runs since the checkpoint
    lake.land(order("A", DAY1, 3, items=[("a", 2, "5.25")]))
    fixed_snapshot = lake.curate()
    fixed = lake.semantic(curated_snapshot_id=fixed_snapshot, models=models, suites=suites)
    assert fixed.status == "published" and len(fixed.models[0].run_ids) == 2
    assert state(lake.entity().collect()) == {
        "A": (2, Decimal("10.50")),
        "B": (1, Decimal("2.00")),
        "C": (1, Decimal("3.00")),
    }
    assert read_checkpoint(spark, table, CURATED_CHECKPOINT_KEY).source_snapshot_id == fixed_snapshot
    assert not [name for name in branches(spark, table) if name.startswith(AUDIT_BRANCH_PREFIX)]


def test_an_expectation_that_cannot_be_evaluated_says_why(spark) -> None:
    from lean_ops_spark.quality.runner import run_suite

    typo = QualitySuite("semantic", "orders", "orders", (Expectation("not_null", ("ordr_id",)),))
    result = run_suite(spark.createDataFrame([("o-1",)], "order_id string"), typo, table="t")
    (outcome,) = result.results
    assert not result.success and outcome.error is not None and "ordr_id" in outcome.error
    assert "not_null(ordr_id): error: " in result.summary()


def test_a_suite_whose_expectations_overlap_reports_each_of_them(spark) -> None:
    # not_null(a) twice would be one expectation to Great Expectations; the loader refuses
    # exact repeats, and overlapping ones (a, b then a mostly=0.5) each get their own result
    from lean_ops_spark.quality.runner import run_suite

    suite = QualitySuite(
        "semantic",
        "orders",
        "orders",
        (
            Expectation("not_null", ("a",)),
            Expectation("not_null", ("b",)),
            Expectation("not_null", ("a",), mostly=0.5),
        ),
    )
    result = run_suite(spark.createDataFrame([("x", None)], "a string, b string"), suite, table="t")
    assert [(r.expectation.describe(), r.success) for r in result.results] == [
        ("not_null(a)", True),
        ("not_null(b)", False),
        ("not_null(a) mostly=0.5", True),
    ]
