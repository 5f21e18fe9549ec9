"""Semantic model config, the expression scanner, the change window and the MERGE text: no Spark."""

from __future__ import annotations

from datetime import date, datetime, timezone
from pathlib import Path
from typing import Any

import pytest

from lean_ops_spark.catalog.checkpoints import RUN_ID_KEY, SnapshotRecord
from lean_ops_spark.config.sources import open_config_source
from lean_ops_spark.errors import CheckpointError, ConfigError, DataQualityError
from lean_ops_spark.orchestration.schema_check import check_semantic_schema
from lean_ops_spark.semantic import job
from lean_ops_spark.semantic.expressions import (
    ExpressionError,
    plain_column,
    referenced_columns,
    volatile_functions,
    window_clauses,
)
from lean_ops_spark.semantic.incremental import plan_changes, plan_rebuild
from lean_ops_spark.semantic.job import merge_sql, value_predicate
from lean_ops_spark.semantic.loader import check_entity_keys, load_semantic_models, parse_semantic_models
from lean_ops_spark.semantic.models import ModelKind

CONF = Path(__file__).resolve().parents[2] / "conf"


@pytest.mark.parametrize(
    ("expression", "columns"),
    [
        ("order_id", ("order_id",)),
        ("to_date(order_ts)", ("order_ts",)),
        ("CAST(total AS DECIMAL(12,2))", ("total",)),
        ("aggregate(items, 0, (acc, i) -> acc + coalesce(i.quantity, 0))", ("items",)),
        ("transform(tags, t -> upper(t))", ("tags",)),
        ("status NOT IN ('cancelled', 'refunded') AND x IS NOT NULL", ("status", "x")),
        ("regexp_extract(page_url, '^(?:[a-z]+://[^/]+)?([^?#]*)', 1)", ("page_url",)),
        ("order_ts > TIMESTAMP '2026-01-01 00:00:00' + INTERVAL 1 DAY", ("order_ts",)),
        ('CASE WHEN a.b > 1 THEN `Weird Col` ELSE "text" END', ("a", "weird col")),
        ("count(*)", ()),
        ("sum(amount) / 1.5e3", ("amount",)),
        ("extract(YEAR FROM order_ts)", ("order_ts",)),
        ("status IS DISTINCT FROM 'cancelled'", ("status",)),
        # the scanner reads time-dependent functions and windows; the loader refuses them
        # (test_models_refuse_windows_and_volatile_functions)
        (
            "datediff(current_date, to_date(order_ts)) < 30 AND updated_at < current_timestamp",
            ("order_ts", "updated_at"),
        ),
        ("sum(amount) FILTER (WHERE status = 'paid')", ("amount", "status")),
        ("first(coupon, true) IGNORE NULLS", ("coupon",)),
        ("trim(BOTH 'x' FROM code) || substring(name FROM 1 FOR 2)", ("code", "name")),
        (
            "sum(amount) OVER (PARTITION BY customer ORDER BY ts DESC NULLS LAST "
            "ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW)",
            ("amount", "customer", "ts"),
        ),
        ("first + last - row + range + by", ("by", "first", "last", "range", "row")),
        ("desc || asc || leading || both", ("asc", "both", "desc", "leading")),
    ],
)
def test_referenced_columns(expression: str, columns: tuple[str, ...]) -> None:
    assert referenced_columns(expression) == columns


def test_an_unreadable_expression_is_an_error() -> None:
    with pytest.raises(ExpressionError):
        referenced_columns("'unterminated")


def model_file(**model: Any) -> dict[str, Any]:
    base: dict[str, Any] = {"name": "orders", "kind": "entity", "key": ["order_id"], "columns": ["order_id"]}
    base.update(model)
    return {"topic": "orders", "models": [base]}


def test_shipped_models_load_with_the_columns_they_read() -> None:
    source = open_config_source(CONF)
    orders = load_semantic_models(source, "orders")
    assert orders is not None
    entity, revenue = orders.models
    assert (entity.kind, revenue.kind) == (ModelKind.ENTITY, ModelKind.AGGREGATE)
    assert revenue.key == ("order_date", "currency")
    assert revenue.curated_columns == ("currency", "items", "order_ts", "status", "total_amount")
    assert "shipping_address_country" in entity.curated_columns
    clickstream = load_semantic_models(source, "clickstream")
    assert clickstream is not None and clickstream.models[0].partition is not None
    assert load_semantic_models(source, "nothing_here") is None


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"kind": "cube"}, "kind: 'cube' is not one of entity, aggregate"),
        ({"key": ["nope"]}, "key: nope is not a column of the model"),
        ({"columns": [{"name": "x", "expr": "a", "type": "map<string,int>"}]}, "is not a supported type"),
        ({"columns": [{"name": "_run_id", "expr": "a"}]}, "is not a valid identifier"),
        ({"columns": ["order_id", "order_id"]}, "order_id declared twice"),
        ({"measures": [{"name": "n", "expr": "count(*)"}]}, "only aggregate models have measures"),
        ({"partition": {"column": "zzz"}}, "'zzz' is not a column of the model"),
        ({"colour": "red"}, "unknown key(s) colour"),
        ({"filters": ["'open"]}, "cannot read"),
    ],
)
def test_invalid_models_name_the_file_and_key(change: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_semantic_models(model_file(**change), "semantic/orders.yaml")
    assert message in str(info.value) and "semantic/orders.yaml" in str(info.value)


def aggregate_file(**model: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "name": "daily",
        "kind": "aggregate",
        "group_by": ["currency"],
        "measures": [{"name": "n", "expr": "count(*)", "type": "bigint"}],
    }
    base.update(model)
    return {"topic": "orders", "models": [base]}


@pytest.mark.parametrize(
    ("data", "where", "message"),
    [
        # a window over the changed rows only: wrong for every other row
        (
            model_file(
                columns=["order_id", {"name": "n", "expr": "count(*) OVER (PARTITION BY customer_id)"}]
            ),
            "columns[1][n].expr",
            "window functions (OVER ...) are not supported",
        ),
        (
            model_file(filters=["row_number() over (partition by customer_id order by order_ts) = 1"]),
            "filters[0]",
            "window functions",
        ),
        (
            aggregate_file(measures=[{"name": "share", "expr": "sum(total) / sum(sum(total)) OVER ()"}]),
            "measures[0][share].expr",
            "window functions",
        ),
        # values that depend on when (or where) the run happens go stale on unchanged rows
        (
            model_file(filters=["datediff(current_date, to_date(order_ts)) < 30"]),
            "filters[0]",
            "current_date depends on when, where or by whom the run happens",
        ),
        (
            model_file(filters=["order_ts > current_timestamp() - INTERVAL 40 SECONDS"]),
            "filters[0]",
            "current_timestamp depends",
        ),
        (
            model_file(columns=["order_id", {"name": "age", "expr": "NOW() - order_ts"}]),
            "columns[1][age].expr",
            "now depends",
        ),
        (
            model_file(columns=["order_id", {"name": "r", "expr": "rand() < 0.5 OR uuid() IS NULL"}]),
            "columns[1][r].expr",
            "rand, uuid depends",
        ),
        (
            aggregate_file(group_by=[{"name": "stale", "expr": "order_ts < current_timestamp"}]),
            "group_by[0][stale].expr",
            "current_timestamp depends",
        ),
        (
            aggregate_file(measures=[{"name": "n", "expr": "count_if(unix_timestamp() - ts < 60)"}]),
            "measures[0][n].expr",
            "unix_timestamp depends",
        ),
    ],
)
def test_models_refuse_windows_and_volatile_functions(data: dict[str, Any], where: str, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_semantic_models(data, "semantic/orders.yaml")
    text = str(info.value)
    assert text.startswith("semantic/orders.yaml: models[0][") and f"].{where}: " in text
    assert message in text


def test_window_and_volatile_scans() -> None:
    assert window_clauses("sum(x) OVER (PARTITION BY y)") == 1 and window_clauses("a.over + over_x") == 0
    assert volatile_functions("unix_timestamp(ts) + x.now + `current_date` + random_col + user") == ()
    assert volatile_functions("CURRENT_DATE + unix_timestamp() + current_user") == (
        "current_date",
        "current_user",
        "unix_timestamp",
    )
    assert (plain_column("Order_ID"), plain_column("`weird id`"), plain_column("lower(order_id)")) == (
        "order_id",
        "weird id",
        None,
    )
    assert plain_column("null") is None and plain_column("current_date") is None
    # what still loads: a time given as a literal, a struct field called like a function name
    parse_semantic_models(
        model_file(filters=["order_ts > TIMESTAMP '2026-01-01 00:00:00'", "shipping.now IS NULL"]), "f"
    )


@pytest.mark.parametrize(
    ("key", "columns", "message"),
    [
        (
            ["customer_id"],
            ["customer_id", "order_id"],
            "customer_id is 'customer_id', not a plain curated key",
        ),
        (["k"], [{"name": "k", "expr": "lower(order_id)"}], "k is 'lower(order_id)', not a plain"),
        (["k"], [{"name": "k", "expr": "order_id", "type": "int"}], "casts order_id (string) to int"),
        (
            ["order_id", "k"],
            ["order_id", {"name": "k", "expr": "order_id"}],
            "order_id used twice",
        ),
    ],
)
def test_an_entity_must_key_on_the_curated_key(
    project_config, key: list[str], columns: list[Any], message: str
):
    contract = project_config.topic("orders")
    models = parse_semantic_models(model_file(key=key, columns=columns), "semantic/orders.yaml")
    with pytest.raises(ConfigError) as info:
        check_entity_keys(models, contract)
    text = str(info.value)
    assert text.startswith("semantic/orders.yaml: models[0][orders].key: entity model 'orders' keys on [")
    assert "the curated key of topic 'orders', [order_id]" in text and message in text
    # the semantic job refuses it before touching Spark
    with pytest.raises(ConfigError, match="must be the curated key"):
        job.run_semantic(None, project_config, "orders", models=models)  # type: ignore[arg-type]


def test_entity_keys_that_are_the_curated_key(project_config) -> None:
    contract = project_config.topic("orders")
    for columns in (
        ["order_id"],
        [{"name": "id", "expr": "order_id"}],
        [{"name": "id", "expr": "`ORDER_ID`", "type": "string"}],
    ):
        key = [columns[0] if isinstance(columns[0], str) else columns[0]["name"]]
        check_entity_keys(parse_semantic_models(model_file(key=key, columns=columns), "f"), contract)
    shipped = load_semantic_models(open_config_source(CONF), "orders")
    assert shipped is not None
    check_entity_keys(shipped, contract)  # the aggregate's group_by is not a curated key: fine
    clickstream = load_semantic_models(open_config_source(CONF), "clickstream")
    assert clickstream is not None
    check_entity_keys(clickstream, project_config.topic("clickstream"))


def test_the_fingerprint_changes_with_what_decides_the_rows() -> None:
    def fingerprint(**change: Any) -> str:
        return parse_semantic_models(model_file(**change), "f").models[0].fingerprint()

    base = fingerprint(
        filters=["status <> 'cancelled'"], columns=["order_id", {"name": "s", "expr": "status"}]
    )
    same = fingerprint(
        filters=["status   <>\n 'cancelled'"],
        columns=["order_id", {"name": "s", "expr": " status", "description": "docs do not count"}],
        description="nor here",
    )
    assert same == base and base.startswith("v1:")
    others = {
        fingerprint(
            filters=["status NOT IN ('cancelled', 'refunded')"],
            columns=["order_id", {"name": "s", "expr": "status"}],
        ),
        fingerprint(
            filters=["status <> 'cancelled'"], columns=["order_id", {"name": "s", "expr": "upper(status)"}]
        ),
        fingerprint(
            filters=["status <> 'cancelled'"],
            columns=["order_id", {"name": "s", "expr": "status", "type": "string"}],
        ),
        fingerprint(
            filters=["status <> 'cancelled'"],
            columns=["order_id", {"name": "s", "expr": "status"}],
            partition={"column": "s"},
        ),
    }
    assert base not in others and len(others) == 4

    data = {
        "topic": "orders",
        "models": [
            {
                "name": "daily",
                "kind": "aggregate",
                "group_by": [{"name": "day", "expr": "to_date(ts)"}, "currency"],
                "measures": [{"name": "n", "expr": "count(*)", "type": "long"}],
                "partition": {"column": "day", "transform": "month"},
            }
        ],
    }
    (model,) = parse_semantic_models(data, "f").models
    assert model.key == ("day", "currency") and model.measures[0].type == "bigint"
    assert model.partition is not None and model.partition.spark_ddl() == "months(day)"
    data["models"][0]["partition"] = {"column": "n"}
    with pytest.raises(ConfigError, match="partitioned by a group_by column"):
        parse_semantic_models(data, "f")


# --------------------------------------------------------------------------- CheckSchemaExists


def test_schema_check_names_what_is_missing(tmp_path: Path) -> None:
    source = open_config_source(tmp_path)
    missing_model = check_semantic_schema(source, "orders", {"order_id"})
    assert not missing_model.exists and "no semantic model for topic 'orders'" in missing_model.reason
    (tmp_path / "semantic").mkdir()
    (tmp_path / "semantic" / "orders.yaml").write_text((CONF / "semantic" / "orders.yaml").read_text())
    lacking = check_semantic_schema(source, "orders", {"order_id", "status", "order_ts"})
    assert not lacking.exists and "currency" in lacking.missing_columns
    assert "lacks column(s)" in lacking.reason and "orders_daily_revenue" in lacking.reason
    everything = {
        "order_id",
        "customer_id",
        "status",
        "order_ts",
        "updated_at",
        "currency",
        "total_amount",
        "items",
        "shipping_address_country",
        "coupon_code",
    }
    assert check_semantic_schema(source, "orders", everything).exists
    (tmp_path / "semantic" / "orders.yaml").write_text("topic: orders\nmodels: []\n")
    invalid = check_semantic_schema(source, "orders", everything)
    assert not invalid.exists and invalid.reason.startswith("invalid semantic model:")


# --------------------------------------------------------------------------- the change window


def snap(sid: int, parent: int | None, run: str | None = None, operation: str = "overwrite", added: int = 1):
    summary = {"added-records": str(added)}
    if run:
        summary[RUN_ID_KEY] = run
    return SnapshotRecord(sid, parent, summary, operation=operation)


HISTORY = [
    snap(1, None, "r1", "append"),
    snap(2, 1, "r2"),
    snap(3, 2, None, "replace"),  # compaction
    snap(4, 3, "r3"),
    snap(5, 4, "r3"),  # the same run id again (a retried job): read once
]


def test_change_window_collects_the_run_ids_after_the_checkpoint() -> None:
    window = plan_changes(HISTORY, 2, 5, "c")
    assert (window.mode, window.snapshots, window.run_ids) == ("incremental", (3, 4, 5), ("r3",))
    assert plan_changes(HISTORY, None, 4, "c").mode == "full"
    assert plan_changes(HISTORY, 5, 5, "c").mode == "up_to_date"
    assert plan_changes(HISTORY, 5, 2, "c").mode == "up_to_date"  # a stale token: the checkpoint is ahead


def test_change_window_refuses_what_it_cannot_know() -> None:
    with pytest.raises(CheckpointError, match="does not exist"):
        plan_changes(HISTORY, 2, 99, "c")
    unknown_writer = [*HISTORY, snap(6, 5, None, "overwrite")]
    with pytest.raises(CheckpointError, match=r"changed rows without a lean-ops\.run-id"):
        plan_changes(unknown_writer, 2, 6, "c")
    branched = [*HISTORY, snap(7, 2, "rx")]
    with pytest.raises(CheckpointError, match="not a descendant"):
        plan_changes(branched, 4, 7, "c")
    expired = [s for s in HISTORY if s.snapshot_id != 3]
    with pytest.raises(CheckpointError, match="was expired"):
        plan_changes(expired, 2, 5, "c")
    # the checkpoint itself expired, its child kept: the old versions cannot be read
    checkpoint_expired = [s for s in HISTORY if s.snapshot_id != 2]
    with pytest.raises(CheckpointError, match=r"semantic checkpoint 2 was expired.*full refresh"):
        plan_changes(checkpoint_expired, 2, 5, "c")


def test_a_rebuild_reads_everything_unless_the_token_is_stale() -> None:
    assert plan_rebuild(HISTORY, 2, 5, "c").mode == "rebuild"
    assert plan_rebuild(HISTORY, 5, 5, "c").mode == "rebuild"  # same snapshot, another model
    assert plan_rebuild(HISTORY, 4, 2, "c").mode == "up_to_date"  # never back in time
    assert plan_rebuild([s for s in HISTORY if s.snapshot_id != 2], 2, 5, "c").mode == "rebuild"
    with pytest.raises(CheckpointError, match="does not exist"):
        plan_rebuild(HISTORY, 2, 99, "c")


# --------------------------------------------------------------------------- SQL text


def test_merge_sql_for_entities_and_aggregates() -> None:
    source = open_config_source(CONF)
    models = load_semantic_models(source, "orders")
    assert models is not None
    entity, revenue = models.models
    sql = merge_sql("lake.s.orders", "v", entity, "(t.order_date IN (DATE '2026-11-18'))")
    assert sql.startswith(
        "MERGE INTO lake.s.orders t\nUSING v s\nON t.order_id = s.order_id AND (t.order_date IN"
    )
    assert (
        "WHEN MATCHED AND NOT s._keep THEN DELETE" in sql
        and "WHEN NOT MATCHED AND s._keep THEN INSERT" in sql
    )
    aggregate = merge_sql("lake.s.r", "v", revenue, None)
    assert "ON t.order_date <=> s.order_date AND t.currency <=> s.currency\n" in aggregate
    assert "WHEN MATCHED AND NOT s._exists THEN DELETE" in aggregate
    assert "t.revenue = s.revenue" in aggregate and "t.currency = s.currency" not in aggregate


def test_value_predicate() -> None:
    assert value_predicate("t.d", [date(2026, 1, 2), None, date(2026, 1, 1)]) == (
        "(t.d IN (DATE '2026-01-01', DATE '2026-01-02') OR t.d IS NULL)"
    )
    assert value_predicate("t.ts", [datetime(2026, 1, 1, 5, tzinfo=timezone.utc)]) == (
        "(t.ts IN (TIMESTAMP '2026-01-01 05:00:00.000000Z'))"
    )
    assert value_predicate("t.c", ["it's"]) == "(t.c IN ('it\\'s'))"
    assert value_predicate("t.n", list(range(500))) == "(t.n BETWEEN 0 AND 499)"
    assert value_predicate("t.n", []) is None
    # no literal for NaN or infinity: the MERGE goes without a partition predicate
    assert value_predicate("t.x", [1.5, float("nan")], "double") is None
    assert value_predicate("t.x", [float("-inf")], "double") is None
    assert value_predicate("t.x", [1.5, None], "double") == "(t.x IN (1.5) OR t.x IS NULL)"


def test_the_job_fails_on_a_failed_audit_and_passes_the_token(
    monkeypatch: pytest.MonkeyPatch, project_config
) -> None:
    calls: list[dict[str, Any]] = []

    def fake(_spark: Any, _config: Any, topic: str, **kwargs: Any) -> job.SemanticResult:
        calls.append({"topic": topic, **kwargs})
        from lean_ops_spark.quality.results import DQResult

        dq = DQResult("lake.s.orders@lean_ops_audit", "semantic.orders", False, ())
        failed = job.ModelResult(
            "orders",
            "entity",
            "lake.s.orders",
            "audit_failed",
            7,
            5,
            "incremental",
            branch="lean_ops_audit",
            dq=dq,
        )
        return job.SemanticResult(topic, "r", "audit_failed", "lake.c.orders", 7, models=(failed,))

    monkeypatch.setattr(job, "run_semantic", fake)
    with pytest.raises(
        DataQualityError, match=r"lake.s.orders: .*\(branch lean_ops_audit kept, main unchanged\)"
    ):
        job.run_semantic_job(
            None, project_config, {"topic": "orders", "run_id": "x:r1", "curated_snapshot_id": "7"}
        )
    assert calls[0]["curated_snapshot_id"] == 7 and calls[0]["run_id"] == "x:r1"
    with pytest.raises(ConfigError, match="must be a snapshot id"):
        job.run_semantic_job(None, project_config, {"topic": "orders", "curated_snapshot_id": "seven"})
    with pytest.raises(ConfigError, match="needs --topic"):
        job.run_semantic_job(None, project_config, {})


def test_a_topic_without_a_model_takes_the_notify_path(tmp_path: Path, project_config) -> None:
    from dataclasses import replace

    from lean_ops_spark.metrics import MemorySink

    sink = MemorySink()
    config = replace(project_config, root=str(tmp_path))  # a config root without semantic/
    result = job.run_semantic(None, config, "orders", metrics=sink)  # type: ignore[arg-type]
    assert result.status == "missing_schema" and "no semantic model for topic 'orders'" in result.reason
    assert sink.values("MissingSemanticSchema", Topic="orders") == [1.0]


def test_value_predicate_writes_a_collected_timestamp_as_its_instant(monkeypatch: pytest.MonkeyPatch) -> None:
    # collect() returns naive times in the Python process's zone; Spark reads a literal
    # without a zone in its session zone (UTC in every profile): the instant must survive
    import time

    monkeypatch.setenv("TZ", "America/New_York")
    time.tzset()
    try:
        assert value_predicate("t.ts", [datetime(2026, 1, 1, 0, 0, 0, 250)]) == (
            "(t.ts IN (TIMESTAMP '2026-01-01 05:00:00.000250Z'))"
        )
        assert value_predicate("t.ts", [datetime(2026, 1, 1, 0, 0, 0, 250)], "timestamp") == (
            "(t.ts IN (TIMESTAMP '2026-01-01 05:00:00.000250Z'))"
        )
        # a timestamp_ntz is collected as its wall-clock time and stays one
        ntz = [datetime(2026, 1, 1, 9, 0, 0, 250), datetime(2026, 1, 2, 9, 0)]
        assert value_predicate("t.ts", ntz, "timestamp_ntz") == (
            "(t.ts IN (TIMESTAMP_NTZ '2026-01-01 09:00:00.000250', TIMESTAMP_NTZ '2026-01-02 09:00:00.000000'))"
        )
    finally:
        monkeypatch.undo()
        time.tzset()


def test_a_suite_naming_no_model_of_the_topic_stops_the_run_before_spark(project_config) -> None:
    # a typo in a suite's table name would otherwise publish that model's table unchecked
    from lean_ops_spark.quality.suites import Expectation, QualitySuite

    typo = QualitySuite("semantic", "orders", "order", (Expectation("row_count", maximum=0),), "orders.yaml")
    with pytest.raises(
        ConfigError, match=r"orders\.yaml: a suite for table 'order', which is not a semantic model"
    ):
        job.run_semantic(None, project_config, "orders", suites={"order": typo})  # type: ignore[arg-type]
