"""Schema drift through real curation runs: every drift kind in every drift_mode, the audit
table, the CloudWatch metric (moto), and ``lean-ops drift``'s read-only detection."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import datetime, timedelta, timezone

import boto3
import pytest
from moto import mock_aws

from lean_ops_spark.catalog.bootstrap import bootstrap_tables
from lean_ops_spark.catalog.checkpoints import RAW_CHECKPOINT_KEY, current_snapshot_id, read_checkpoint
from lean_ops_spark.catalog.naming import topic_tables
from lean_ops_spark.config import Databases, parse_topic
from lean_ops_spark.curation.pipeline import CurationOptions, run_curation
from lean_ops_spark.drift.audit import AUDIT_TABLE_NAME
from lean_ops_spark.drift.diff import diff_batch
from lean_ops_spark.drift.handler import detect_drift
from lean_ops_spark.errors import CircuitBreakerError, DriftError
from lean_ops_spark.metrics import CloudWatchSink, MemorySink
from lean_ops_spark.raw import RawRecord
from lean_ops_spark.raw.writer import append_raw
from lean_ops_spark.session import pin, release
from tests.conftest import _namespace_counter

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=timezone.utc)


def things(mode: str):
    return parse_topic(
        {
            "topic": "things",
            "key": ["thing_id"],
            "ordering_column": "updated_at",
            "partition": {"column": "updated_at"},
            "drift_mode": mode,
            "error_rate_threshold": 1.0,  # batch R is all bad on purpose
            "fields": [
                {"name": "thing_id", "type": "string", "required": True},
                {"name": "updated_at", "type": "timestamp", "required": True},
                {"name": "qty", "type": "int"},
                {"name": "price", "type": "decimal(10,2)", "required": True},
                {"name": "code", "type": "string", "required": True},
                {"name": "label", "type": "string", "required": True},
                {
                    "name": "meta",
                    "type": "struct",
                    "flatten": True,
                    "fields": [{"name": "source", "type": "string"}],
                },
                {
                    "name": "items",
                    "type": "array",
                    "items": {
                        "type": "struct",
                        "fields": [{"name": "sku", "type": "string"}, {"name": "n", "type": "int"}],
                    },
                },
            ],
        },
        "test things.yaml",
    )


def payload(i: int, **changes: object) -> dict:
    body: dict = {
        "thing_id": f"t-{i}",
        "updated_at": (NOW - timedelta(hours=i)).isoformat().replace("+00:00", "Z"),
        "qty": i,
        "price": 1.5,
        "code": "c",
        "label": "l",
        "meta": {"source": "s"},
        "items": [{"sku": "a", "n": 1}],
    }
    for key, value in changes.items():
        if value is ...:
            body.pop(key)
        else:
            body[key] = value
    return body


#: Batch S: schema kinds in every record (new field, nested fields, a widening).
BATCH_S = [
    payload(
        i,
        promo="p",
        meta={"source": "s", "region": "eu"},
        items=[{"sku": "a", "n": 1, "discount": 0.5}],
        qty=3_000_000_000 + i,
    )
    for i in range(4)
]
#: Batch R: record kinds for half the records each (incompatible required type, absent
#: required field, null required field).
BATCH_R = [payload(10 + i, price="abc", label=None) for i in range(3)] + [
    payload(20 + i, code=...) for i in range(3)
]


class Env:
    def __init__(self, spark, project_config, mode: str) -> None:
        n = next(_namespace_counter)
        contract = things(mode)
        self.config = replace(
            project_config,
            profile=replace(
                project_config.profile,
                databases=Databases(raw=f"t{n}_raw", curated=f"t{n}_curated", semantic=f"t{n}_semantic"),
            ),
            topics={**project_config.topics, "things": contract},
        )
        self.spark = spark
        bootstrap_tables(spark, self.config, ["things"])
        self.tables = topic_tables(self.config.profile, "things")
        self.count = 0

    def land(self, payloads: list[dict]) -> None:
        records = []
        for body in payloads:
            self.count += 1
            records.append(
                RawRecord(
                    f"m-{self.count}", "things", json.dumps(body), NOW + timedelta(seconds=self.count), "t", 1
                )
            )
        append_raw(self.spark, self.tables.raw, records)

    def curate(self, run_id: str, metrics=None):
        return run_curation(
            self.spark, self.config, "things", options=CurationOptions(run_id=run_id), metrics=metrics
        )

    def audit(self, run_id: str) -> set[tuple[str, str, str]]:
        table = f"{self.config.profile.catalog}.{self.config.profile.databases.curated}.{AUDIT_TABLE_NAME}"
        self.spark.sql(f"REFRESH TABLE {table}")
        rows = self.spark.table(table).where(f"run_id = '{run_id}'").collect()
        return {(r["field_path"], r["kind"], r["action"]) for r in rows}

    def curated(self) -> dict[str, dict]:
        self.spark.sql(f"REFRESH TABLE {self.tables.curated.sql}")
        return {
            r["thing_id"]: r.asDict(recursive=True)
            for r in self.spark.table(self.tables.curated.sql).collect()
        }

    def quarantine(self) -> dict[str, str]:
        rows = self.spark.table(self.tables.quarantine.sql).collect()
        return {json.loads(r["payload"])["thing_id"]: r["reason_code"] for r in rows}


S_KINDS = {
    ("promo", "new_field"),
    ("meta.region", "nested_field_change"),
    ("items[].discount", "nested_field_change"),
    ("qty", "type_widening"),
}
R_KINDS = {
    ("price", "type_incompatible"),
    ("code", "missing_required_field"),
    ("label", "nullability_change"),
}
R_QUARANTINE = {
    **{f"t-{10 + i}": "MISSING_REQUIRED_FIELD" for i in range(3)},
    **{f"t-{20 + i}": "MISSING_REQUIRED_FIELD" for i in range(3)},
}


def test_evolve_adds_and_widens_columns_and_parses_into_them_in_the_same_run(spark, project_config) -> None:
    env = Env(spark, project_config, "evolve")
    env.land(BATCH_S)
    report = detect_drift(spark, env.config, "things")  # read-only first: nothing written
    assert {(d.drift.field_path, d.drift.kind.value, d.action.value) for d in report.plan.decisions} == {
        ("promo", "new_field", "add_column"),
        ("meta.region", "nested_field_change", "add_column"),
        ("items[].discount", "nested_field_change", "add_column"),
        ("qty", "type_widening", "widen_column"),
    }
    assert report.drifted and len(report.statements) == 4
    assert current_snapshot_id(spark, env.tables.curated) is None
    tables_now = {
        r["tableName"] for r in spark.sql(f"SHOW TABLES IN lake.{env.tables.curated.database}").collect()
    }
    assert AUDIT_TABLE_NAME not in tables_now  # detection wrote nothing
    assert "qty" not in {
        f.name
        for f in spark.table(env.tables.curated.sql).schema.fields
        if f.dataType.simpleString() == "bigint"
    }

    sink = MemorySink()
    result = env.curate("run-s", sink)
    assert result.ledger is not None and result.ledger.upserted == 4 and result.ledger.rescued_records == 0
    assert env.audit("run-s") == {
        (p, k, "widen_column" if k == "type_widening" else "add_column") for p, k in S_KINDS
    }
    schema = {f.name: f.dataType.simpleString() for f in spark.table(env.tables.curated.sql).schema.fields}
    assert schema["qty"] == "bigint" and schema["promo"] == "string" and schema["meta_region"] == "string"
    assert schema["items"] == "array<struct<sku:string,n:int,discount:double>>"
    rows = env.curated()
    assert rows["t-1"]["qty"] == 3_000_000_001 and rows["t-1"]["promo"] == "p"
    assert rows["t-1"]["meta_region"] == "eu" and rows["t-1"]["items"][0]["discount"] == 0.5
    assert all(r["_rescued_data"] is None for r in rows.values())  # parsed, not rescued
    totals = [
        m.value for m in sink.metrics if m.name == "SchemaDrift" and dict(m.dimensions) == {"Topic": "things"}
    ]
    assert totals == [4.0]

    # the next run: the evolved columns are used as they are (no new drift, no ALTER)
    env.land(BATCH_R)
    second = env.curate("run-r", sink)
    assert second.ledger is not None and second.ledger.quarantined == 6
    assert env.audit("run-r") == {(p, k, "quarantine") for p, k in R_KINDS}
    assert env.quarantine() == R_QUARANTINE


@pytest.mark.parametrize("mode", ["evolve", "rescue"])
def test_a_drifting_run_keeps_one_copy_of_the_batch_while_it_writes(
    spark, project_config, pin_spy, mode
) -> None:
    """Drift handling builds a second batch: evolve parses it again from raw with the evolved
    contract, rescue builds it from the first (partly parsed values into ``_rescued_data``).
    The first is released once the second is stored, not when the run ends: while the run
    writes, the executors store one batch, and none once it is done."""
    from lean_ops_spark.curation import pipeline
    from lean_ops_spark.drift import handler

    env = Env(spark, project_config, mode)
    env.land(BATCH_S)
    pin_spy.watch(pipeline, handler)
    during = []
    result = run_curation(
        spark,
        env.config,
        "things",
        options=CurationOptions(run_id="run-s"),
        after_step=lambda _step: during.append(pin_spy.stored()),
    )
    assert result.ledger is not None and result.ledger.upserted == 4
    assert result.ledger.rescued_records == (4 if mode == "rescue" else 0)
    assert {action for _p, _k, action in env.audit("run-s")} == (
        {"rescue"} if mode == "rescue" else {"add_column", "widen_column"}
    )
    assert len(pin_spy.pinned) == 2  # the run's parse, and the batch drift handling built
    assert during == [[1], [1]]  # only the second is stored while the run writes
    assert pin_spy.stored() == []


def test_rescue_never_changes_the_schema_and_keeps_every_value(spark, project_config, caplog) -> None:
    env = Env(spark, project_config, "rescue")
    before = spark.table(env.tables.curated.sql).schema
    env.land(BATCH_S)
    with caplog.at_level("WARNING", logger="lean_ops_spark.drift.audit"):
        result = env.curate("run-s")
    lines = [
        json.loads(r.getMessage().split(" ", 2)[2])
        for r in caplog.records
        if "schema drift" in r.getMessage()
    ]
    assert {(line["field_path"], line["action"], line["run_id"]) for line in lines} == {
        (p, "rescue", "run-s") for p, _ in S_KINDS
    }
    assert result.ledger is not None and result.ledger.upserted == 4
    assert spark.table(env.tables.curated.sql).schema == before
    assert env.audit("run-s") == {(p, k, "rescue") for p, k in S_KINDS}
    for thing_id, row in env.curated().items():
        rescued = json.loads(row["_rescued_data"])
        assert set(rescued) == {"promo", "meta.region", "items", "qty"}, thing_id
        assert rescued["promo"] == "p" and rescued["meta.region"] == "eu"
        assert json.loads(rescued["items"])[0]["discount"] == 0.5  # the whole raw value, nothing dropped
        assert int(rescued["qty"]) >= 3_000_000_000 and row["qty"] is None
    assert result.ledger.rescued_fields == {"items": 4, "meta.region": 4, "promo": 4, "qty": 4}

    env.land(BATCH_R)
    env.curate("run-r")
    assert env.audit("run-r") == {(p, k, "quarantine") for p, k in R_KINDS}
    assert env.quarantine() == R_QUARANTINE


def test_partly_parsed_values_are_rescued_from_the_parsed_batch_not_parsed_again(
    spark, project_config
) -> None:
    """The batch that keeps partly parsed values in ``_rescued_data`` is built from the pinned
    parsed batch: each raw row is parsed once per run (a Python UDF counts the reads)."""
    from pyspark.sql import functions as F

    from lean_ops_spark.drift.handler import handle_drift
    from lean_ops_spark.drift.observe import parse_batch

    env = Env(spark, project_config, "rescue")
    contract = env.config.topic("things")
    reads = spark.sparkContext.accumulator(0)

    def read(text: str) -> str:
        reads.add(1)
        return text

    raw = spark.createDataFrame(
        [(f"m{i}", "things", json.dumps(b), NOW, "t", 1, 1) for i, b in enumerate(BATCH_S)],
        "message_id string, topic string, payload string, ingestion_ts timestamp, producer string, "
        "schema_version int, _raw_snapshot_id bigint",
    ).withColumn("payload", F.udf(read, "string")("payload"))
    classified = pin(parse_batch(raw, contract))  # as a run does
    outcome = handle_drift(
        spark, contract=contract, curated=env.tables.curated, raw_batch=raw, classified=classified, run_id="r"
    )
    try:
        assert outcome.rescued_columns == ("items",)  # the unknown nested key "discount"
        rescued = [json.loads(r["_rescued_data"]) for r in outcome.classified.collect()]
        assert all(json.loads(r["items"])[0]["discount"] == 0.5 for r in rescued)
        assert reads.value == len(BATCH_S)
    finally:
        for df in (*reversed(outcome.pinned), classified):
            release(df)


@pytest.mark.parametrize(
    ("batch", "kinds"), [(BATCH_S, S_KINDS), (BATCH_R, R_KINDS)], ids=["schema", "records"]
)
def test_fail_stops_before_any_write_and_records_the_drift_in_cloudwatch(
    spark, project_config, batch, kinds
) -> None:
    env = Env(spark, project_config, "fail")
    env.land(batch)
    with mock_aws():
        cloudwatch = boto3.client("cloudwatch", region_name="us-east-1")
        sink = CloudWatchSink("LeanOpsTest", client=cloudwatch)
        with pytest.raises(DriftError, match=r"drift_mode fail: .*nothing written, checkpoint unchanged"):
            env.curate("run-fail", sink)
        sink.flush()
        metrics = cloudwatch.list_metrics(Namespace="LeanOpsTest", MetricName="SchemaDrift")["Metrics"]
        dimensions = [{d["Name"]: d["Value"] for d in m["Dimensions"]} for m in metrics]
        assert {(d["DriftKind"], d["Action"]) for d in dimensions if "DriftKind" in d} == {
            (k, "fail") for _, k in kinds
        }
        assert {"Topic": "things"} in dimensions  # the total, to alarm on
        kind = sorted(k for _, k in kinds)[0]
        points = cloudwatch.get_metric_statistics(
            Namespace="LeanOpsTest",
            MetricName="SchemaDrift",
            Dimensions=[
                {"Name": "Action", "Value": "fail"},
                {"Name": "DriftKind", "Value": kind},
                {"Name": "Topic", "Value": "things"},
            ],
            StartTime=datetime.now(timezone.utc) - timedelta(hours=1),
            EndTime=datetime.now(timezone.utc) + timedelta(hours=1),
            Period=3600,
            Statistics=["Sum"],
        )["Datapoints"]
        expected = sum(1 for _, k in kinds if k == kind)
        assert [p["Sum"] for p in points] == [float(expected)]
    assert env.audit("run-fail") == {(p, k, "fail") for p, k in kinds}
    for table in (env.tables.curated, env.tables.quarantine):
        assert current_snapshot_id(spark, table) is None
    assert read_checkpoint(spark, env.tables.curated, RAW_CHECKPOINT_KEY) is None


def test_a_drifting_batch_over_the_error_threshold_is_stopped_by_the_breaker_before_fail_records(
    spark, project_config
) -> None:
    # drift_mode fail records its audit rows before it stops the run; a batch the circuit
    # breaker stops must write nothing at all, and say which faults dominated
    env = Env(spark, project_config, "fail")
    env.config = replace(
        env.config,
        topics={**env.config.topics, "things": replace(env.config.topic("things"), error_rate_threshold=0.2)},
    )
    env.land(BATCH_S)
    append_raw(
        spark, env.tables.raw, [RawRecord(f"bad-{i}", "things", "{not json", NOW, "t", 1) for i in range(4)]
    )
    with pytest.raises(CircuitBreakerError, match=r"dominant: MALFORMED_JSON=4\b.*nothing written"):
        env.curate("run-breaker")
    audit = f"{env.config.profile.catalog}.{env.config.profile.databases.curated}.{AUDIT_TABLE_NAME}"
    assert not spark.catalog.tableExists(audit) or spark.table(audit).count() == 0
    for table in (env.tables.curated, env.tables.quarantine):
        assert current_snapshot_id(spark, table) is None


def test_observation_measures_kinds_digits_and_partly_parsed_values(spark) -> None:
    from lean_ops_spark.curation.transform import classify, parse_payload
    from lean_ops_spark.drift.observe import observe_batch, rescue_partial_values

    contract = things("rescue")
    bodies = [
        payload(1, price=123456789.5, qty=7, items=[{"sku": "a", "n": "x"}]),  # n does not parse
        payload(
            2, price=1.239, qty="8", items=[{"sku": "b", "n": 2, "extra": True}]
        ),  # a rounded price, an unknown key
        payload(3, price=10000001.0, qty=3_000_000_000),  # Spark re-writes this double as 1.0000001E7
    ]
    raw = spark.createDataFrame(
        [(f"m{i}", "things", json.dumps(b), NOW, "t", 1, 1) for i, b in enumerate(bodies)],
        "message_id string, topic string, payload string, ingestion_ts timestamp, producer string, "
        "schema_version int, _raw_snapshot_id bigint",
    )
    batch = classify(parse_payload(raw, contract), contract)
    observed = observe_batch(batch, contract)
    assert observed.records == 3
    price = observed.paths[("price",)]
    # 123456789.5 needs decimal(11,2), 1.239 would round (no decimal(p,2) holds it)
    assert (price.bad, price.bad_wider, price.max_int_digits) == (2, 1, 9)
    qty = observed.paths[("qty",)]
    assert (qty.kinds, qty.bad, qty.bad_wider) == ({"integer": 3}, 1, 0)  # "8" counts as a number
    assert observed.paths[("items", "[]", "extra")].kinds == {"boolean": 1}
    assert observed.paths[("items", "[]", "n")].bad == 1
    assert observed.lossy_records == {"items": 2, "price": 1}

    kept = {
        r["thing_id"]: json.loads(r["_rescued_data"] or "{}")
        for r in rescue_partial_values(batch, contract, ["items", "price"]).collect()
    }
    assert json.loads(kept["t-1"]["items"]) == [{"sku": "a", "n": "x"}]
    assert kept["t-2"]["price"] == "1.239" and json.loads(kept["t-2"]["items"])[0]["extra"] is True
    assert "price" not in kept["t-3"]  # 1.0000001E7 fits decimal(10,2) exactly


def test_observation_samples_clean_records_and_keeps_every_other_count_exact(spark) -> None:
    """Above ``sample_clean`` clean records only a deterministic sample of them is profiled
    and scaled; records that can show drift (rescued, quarantined, partly parsed) always are."""
    from lean_ops_spark.drift.observe import LOSSY_COLUMN, observe_batch, parse_batch

    contract = things("rescue")
    # qty (optional) is absent from every third clean record: a share a sample only estimates
    bodies = [payload(i, qty=... if i % 3 == 0 else i) for i in range(2000)]
    bodies += [payload(5000 + i, promo="p") for i in range(7)]  # unknown field: rescued
    bodies += [payload(6000 + i, items=[{"sku": "a", "n": 1, "x": 1}]) for i in range(3)]  # partly parsed
    bodies += [payload(7000 + i, price=1.239) for i in range(2)]  # rounded: partly parsed
    with_qty = sum("qty" in b for b in bodies)
    raw = spark.createDataFrame(
        [(f"m{i}", "things", json.dumps(b), NOW, "t", 1, 1) for i, b in enumerate(bodies)],
        "message_id string, topic string, payload string, ingestion_ts timestamp, producer string, "
        "schema_version int, _raw_snapshot_id bigint",
    )
    batch = parse_batch(raw, contract).cache()
    assert "_fields" not in batch.columns and not any(c.startswith("_raw__") for c in batch.columns)
    assert batch.where(batch[LOSSY_COLUMN].isNotNull()).count() == 5

    exact = observe_batch(batch, contract)  # 2,012 records: under twice the default, all profiled
    sampled = observe_batch(batch, contract, sample_clean=200)
    again = observe_batch(batch, contract, sample_clean=200)
    batch.unpersist()

    assert exact.records == sampled.records == len(bodies)
    assert sampled == again  # deterministic: a re-run decides the same
    assert exact.lossy_records == sampled.lossy_records == {"items": 3, "price": 2}
    # paths only the interesting records carry: exact in both
    assert exact.paths[("promo",)] == sampled.paths[("promo",)]
    assert sampled.paths[("promo",)].present == 7
    assert sampled.paths[("items", "[]", "x")].present == 3
    assert sampled.paths[("price",)].bad == exact.paths[("price",)].bad == 2
    # a path some clean records carry: counted exactly when all are profiled, estimated
    # (close, not equal: so the first assertion shows the 2,012 records were all profiled)
    assert exact.paths[("qty",)].present == with_qty == 1345
    assert sampled.paths[("qty",)].present != with_qty
    assert abs(sampled.paths[("qty",)].present - with_qty) <= 0.1 * with_qty

    # and the decisions agree
    def decisions(observed):
        return [(d.path, d.kind, d.new_type, d.records) for d in diff_batch(observed, contract)]

    assert decisions(sampled) == decisions(exact)
    assert {d[0] for d in decisions(exact)} >= {("promo",), ("items", "[]", "x")}


def test_a_run_keeps_payloads_only_where_read_and_profiles_them_the_same(spark, caplog) -> None:
    """``keep_profiled_payloads`` drops the payloads of clean records outside the profile's
    sample: the profile and the quarantine see exactly what they saw with every payload, and
    a batch whose sample misses every clean record is profiled from the full payloads."""
    from pyspark.sql import functions as F

    from lean_ops_spark.drift.observe import keep_profiled_payloads, parse_batch, profile_batch

    contract = things("rescue")
    bodies = [json.dumps(payload(i)) for i in range(1500)]
    bodies += [json.dumps(payload(5000 + i, promo="p")) for i in range(7)]  # rescued
    bodies += [json.dumps(payload(6000 + i, price=1.239)) for i in range(3)]  # partly parsed
    bodies += [json.dumps(payload(7000 + i, price="abc")) for i in range(4)]  # quarantined
    bodies += ["{not json"]
    raw = spark.createDataFrame(
        [(f"m{i}", "things", body, NOW, "t", 1, 1) for i, body in enumerate(bodies)],
        "message_id string, topic string, payload string, ingestion_ts timestamp, producer string, "
        "schema_version int, _raw_snapshot_id bigint",
    )
    n = len(bodies)
    full = parse_batch(raw, contract).cache()
    slim = keep_profiled_payloads(parse_batch(raw, contract), n, sample_clean=100).cache()
    try:
        interesting = "_error IS NOT NULL OR _rescued_data IS NOT NULL OR _lossy IS NOT NULL"
        kept = slim.where(F.col("payload").isNotNull())
        assert 100 <= kept.count() < n / 4  # the sample (~100 clean records) and every interesting one
        assert slim.where(interesting).where(F.col("payload").isNull()).count() == 0
        assert sorted(slim.where(interesting).select("message_id", "payload").collect()) == sorted(
            full.where(interesting).select("message_id", "payload").collect()
        )
        assert profile_batch(slim, contract, records_hint=n, sample_clean=100) == profile_batch(
            full, contract, records_hint=n, sample_clean=100
        )

        # a hint far above the batch: the sample holds no clean record, so all are profiled
        hint = 10**8
        missed = keep_profiled_payloads(parse_batch(raw, contract), hint, sample_clean=100)
        assert missed.where(F.col("payload").isNotNull()).count() == 15  # the interesting ones only
        with caplog.at_level("WARNING", logger="lean_ops_spark.drift.observe"):
            from_full = profile_batch(
                missed, contract, records_hint=hint, sample_clean=100, full_payloads=lambda: full
            )
        assert "sampled no clean record" in caplog.text
        every = profile_batch(full, contract, sample_clean=None)
        assert from_full == every and every.observed.paths[("qty",)].present == n - 1  # not the malformed one
        # (without the full payloads, the clean records would be profiled empty)
        assert profile_batch(missed, contract, records_hint=hint, sample_clean=100) != every
    finally:
        full.unpersist()
        slim.unpersist()


def test_batch_counts_agree_with_plain_dataframe_counts(spark) -> None:
    """The counts behind the ledger and the breaker (one profiling pass) against the same
    numbers counted one by one with plain DataFrame operations."""
    from pyspark.sql import functions as F

    from lean_ops_spark.drift.observe import batch_counts, parse_batch, profile_batch

    contract = things("rescue")
    bodies = [json.dumps(payload(i % 40, **({"promo": "p"} if i % 7 == 0 else {}))) for i in range(120)]
    bodies += [json.dumps(payload(200 + i, price="abc")) for i in range(5)]  # invalid type
    bodies += [json.dumps(payload(300 + i, code=...)) for i in range(4)]  # missing required field
    bodies += [json.dumps(payload(400, meta={"source": "s", "zone": 1}, extra=[1]))]  # two rescued paths
    bodies += ["{not json", "[1, 2]"]  # malformed
    rows = [(f"m{i}", "things", body, NOW, "t", 1, 1) for i, body in enumerate(bodies)]
    rows += [("w1", "other", json.dumps(payload(500)), NOW, "t", 1, 1)]  # wrong topic
    raw = spark.createDataFrame(
        rows,
        "message_id string, topic string, payload string, ingestion_ts timestamp, producer string, "
        "schema_version int, _raw_snapshot_id bigint",
    )
    batch = parse_batch(raw, contract).cache()
    profiled = profile_batch(batch, contract, records_hint=len(rows), sample_clean=20)
    counts_only = batch_counts(batch, contract)

    valid = batch.where(F.col("_error").isNull())
    reasons = batch.where(F.col("_error").isNotNull()).groupBy(F.col("_error.reason_code").alias("r")).count()
    rescued = valid.where(F.col("_rescued_data").isNotNull())
    paths = rescued.select(
        F.explode(F.map_keys(F.from_json("_rescued_data", "map<string,string>"))).alias("p")
    )
    days = sorted(r["d"] for r in valid.select(F.to_date("updated_at").alias("d")).distinct().collect())
    expected = {
        "read": batch.count(),
        "valid": valid.count(),
        "kept": valid.select("thing_id").distinct().count(),
        "by_reason": {r["r"]: r["count"] for r in reasons.collect()},
        "rescued_records": rescued.count(),
        "rescued_fields": {r["p"]: r["count"] for r in paths.groupBy("p").count().collect()},
        "partition_days": days,
    }
    assert expected["read"] == len(rows) and expected["kept"] == 41 and len(days) > 1
    assert expected["by_reason"] == {
        "INVALID_TYPE": 5,
        "MISSING_REQUIRED_FIELD": 4,
        "MALFORMED_JSON": 2,
        "WRONG_TOPIC": 1,
    }
    assert expected["rescued_fields"] == {"promo": 18, "extra": 1, "meta.zone": 1}
    for counts in (profiled.counts, counts_only):
        assert {
            "read": counts.read,
            "valid": counts.valid,
            "kept": counts.kept,
            "by_reason": dict(counts.by_reason),
            "rescued_records": counts.rescued_records,
            "rescued_fields": dict(counts.rescued_fields),
            "partition_days": list(counts.partition_days),
        } == expected
        assert counts.by_class == {"DROP": 12} and counts.quarantined == 12
    assert profiled.observed.records == len(rows) - 3  # malformed and wrong-topic payloads are not observed
    batch.unpersist()


def test_audit_rows_are_written_exactly_as_given(spark) -> None:
    """The audit rows are built as literals (no Python worker): every column keeps its value,
    nulls, quotes, backslashes and non-ASCII text included, and a UTC time stays that instant
    (sent as one SQL expression)."""
    from chispa import assert_df_equality

    from lean_ops_spark.drift.audit import AUDIT_COLUMNS, _literal_frame

    when = datetime(2026, 3, 1, 23, 30, 5, 123456, tzinfo=timezone.utc)
    texts = ["it's", "back\\slash", "naïve €", 'say "hi"\nnext line']
    rows = []
    for i, text in enumerate(texts):
        values = {
            # naive times are local time, as in F.lit and createDataFrame
            "timestamp": (when + timedelta(hours=i)).replace(tzinfo=None if i == 1 else timezone.utc),
            "bigint": 10**12 + i,
            "int": i,
            "string": text,
        }
        row = [values[dtype] for _, dtype, _ in AUDIT_COLUMNS]
        row[[name for name, _, _ in AUDIT_COLUMNS].index("old_type")] = None
        rows.append(tuple(row))
    schema = ", ".join(f"{name} {dtype}" for name, dtype, _ in AUDIT_COLUMNS)
    assert {dtype for _, dtype, _ in AUDIT_COLUMNS} <= {"timestamp", "bigint", "int", "string"}
    assert_df_equality(
        _literal_frame(spark, rows),
        spark.createDataFrame(rows, schema),
        ignore_row_order=True,
        ignore_nullable=True,
    )


def test_evolve_rescues_what_the_evolved_types_round_or_leave_out(spark, project_config) -> None:
    """The observation that decides a widening or a new column parsed with the old contract,
    where a value too big for qty was a cast failure and a new object an unknown key. Parsed
    again with the evolved contract, a value the new type rounds, or keys an inferred struct
    leaves out (not column names), are partly parsed: kept in ``_rescued_data``."""
    env = Env(spark, project_config, "evolve")
    env.land(
        [
            payload(1, qty=3_000_000_000),  # needs a long
            payload(2, qty="3000000000.5"),  # a long holds 3000000000
            payload(3, ext={"a": 1, "my key": 2, "Code": "X"}),  # a new struct: only "a" is a name
            payload(4, lines=[{"sku": "a", "Unit-Price": 9.5}]),
        ]
    )
    result = env.curate("run-1")
    assert env.audit("run-1") == {
        ("qty", "type_widening", "widen_column"),
        ("ext", "new_field", "add_column"),
        ("lines", "new_field", "add_column"),
    }
    rows = env.curated()
    rescued = {k: json.loads(r["_rescued_data"] or "{}") for k, r in rows.items()}
    assert rows["t-1"]["qty"] == rows["t-2"]["qty"] == 3_000_000_000 and rescued["t-1"] == {}
    assert rescued["t-2"] == {"qty": "3000000000.5"}
    assert rows["t-3"]["ext"] == {"a": 1} and set(rescued["t-3"]) == {"ext"}
    assert json.loads(rescued["t-3"]["ext"]) == {"a": 1, "my key": 2, "Code": "X"}
    assert rows["t-4"]["lines"] == [{"sku": "a"}] and set(rescued["t-4"]) == {"lines"}
    assert json.loads(rescued["t-4"]["lines"]) == [{"sku": "a", "Unit-Price": 9.5}]
    assert result.ledger is not None and result.ledger.rescued_records == 3


def test_evolve_never_adds_a_column_the_batch_has_or_another_new_field_takes(spark, project_config) -> None:
    """Payload fields named like raw record columns would replace them in the batch (every
    record WRONG_TOPIC, message ids replaced); two new fields of one column would ALTER twice.
    Both are rescued instead, and every record is curated with its own message id."""
    env = Env(spark, project_config, "evolve")
    env.land(
        [
            payload(1, topic="blue", message_id="p-1"),
            payload(2, topic="blue", message_id="p-1", meta={"source": "s", "region": "eu"}, meta_region="x"),
            payload(3),
        ]
    )
    result = env.curate("run-1")
    assert env.audit("run-1") == {
        ("topic", "new_field", "rescue"),
        ("message_id", "new_field", "rescue"),
        ("meta.region", "nested_field_change", "add_column"),  # column meta_region: first by path
        ("meta_region", "new_field", "rescue"),
    }
    rows = env.curated()
    assert result.ledger is not None and result.ledger.quarantined == 0
    assert {k: r["_message_id"] for k, r in rows.items()} == {"t-1": "m-1", "t-2": "m-2", "t-3": "m-3"}
    assert rows["t-2"]["meta_region"] == "eu"
    assert json.loads(rows["t-2"]["_rescued_data"]) == {
        "topic": "blue",
        "message_id": "p-1",
        "meta_region": "x",
    }
    assert not {"topic", "message_id"} & {f.name for f in spark.table(env.tables.curated.sql).schema.fields}


def _raw_frame(spark, bodies: list[dict]):
    return spark.createDataFrame(
        [(f"m{i}", "things", json.dumps(b), NOW, "t", 1, 1) for i, b in enumerate(bodies)],
        "message_id string, topic string, payload string, ingestion_ts timestamp, producer string, "
        "schema_version int, _raw_snapshot_id bigint",
    )


def test_a_dotted_key_is_rescued_apart_from_the_flattened_path_it_spells(spark) -> None:
    """A top-level key ``meta.region`` and ``region`` inside the flattened ``meta`` were one
    rescued key, and the duplicate failed every run of the topic: a key holding a dot (or a
    backtick) is rescued in backticks, so both values are kept."""
    from lean_ops_spark.drift.observe import parse_batch

    contract = things("rescue")
    body = payload(1, meta={"source": "s", "region": "eu", "a.b": 1}, plain=2)
    body.update({"meta.region": "x", "meta.source": "y", "`q`.k": 3})
    [row] = parse_batch(_raw_frame(spark, [body]), contract).collect()
    assert row["meta_source"] == "s"
    assert json.loads(row["_rescued_data"]) == {
        "plain": "2",
        "`meta.region`": "x",
        "`meta.source`": "y",
        "```q``.k`": "3",
        "meta.region": "eu",
        "meta.`a.b`": "1",
    }


def test_a_date_given_a_time_is_partly_parsed(spark) -> None:
    """A date cast keeps the day of ``2026-11-21T13:45:00Z`` and drops the time: the value
    does not fit the date type (drift when most do not) and its text is rescued."""
    from lean_ops_spark.config.models import FieldType
    from lean_ops_spark.drift.observe import observe_batch, parse_batch, rescue_partial_values
    from lean_ops_spark.drift.schema import with_field

    contract = with_field(things("rescue"), ("due",), FieldType("date"))
    bodies = [
        payload(1, due="2026-11-21T13:45:00Z"),
        payload(2, due="2026-11-22 08:00"),
        payload(3, due="2026-11-23"),
        payload(4, due=" 2026-11-24 "),  # a cast trims: nothing lost
    ]
    batch = parse_batch(_raw_frame(spark, bodies), contract).cache()
    try:
        observed = observe_batch(batch, contract)
        assert observed.lossy_records == {"due": 2} and observed.paths[("due",)].bad == 2
        assert [(d.field_path, d.kind.value) for d in diff_batch(observed, contract)] == [
            ("due", "type_incompatible")
        ]
        kept = {
            r["thing_id"]: (str(r["due"]), json.loads(r["_rescued_data"] or "{}"))
            for r in rescue_partial_values(batch, contract, ["due"]).collect()
        }
    finally:
        batch.unpersist()
    assert kept == {
        "t-1": ("2026-11-21", {"due": "2026-11-21T13:45:00Z"}),
        "t-2": ("2026-11-22", {"due": "2026-11-22 08:00"}),
        "t-3": ("2026-11-23", {}),
        "t-4": ("2026-11-24", {}),
    }


def test_a_timestamp_given_nanoseconds_is_partly_parsed(spark) -> None:
    """A timestamp holds microseconds: the cast of ``...00.123456789Z`` keeps ``.123456`` and
    drops the rest, silently until this was checked. Such a value does not fit the type and
    its text is rescued, at the top level and inside an array's struct elements; zeros past
    the microsecond lose nothing."""
    from dataclasses import replace

    from lean_ops_spark.config.models import FieldSpec, FieldType
    from lean_ops_spark.drift.observe import observe_batch, parse_batch, rescue_partial_values
    from lean_ops_spark.drift.schema import with_field

    contract = with_field(things("rescue"), ("seen",), FieldType("timestamp"))
    items = next(f for f in contract.fields if f.name == "items")
    assert items.type.element is not None
    element = items.type.element
    at = FieldSpec("at", FieldType("timestamp"))
    items = replace(items, type=replace(items.type, element=replace(element, fields=(*element.fields, at))))
    contract = replace(contract, fields=tuple(items if f.name == "items" else f for f in contract.fields))
    nanos = "2026-11-21T13:45:00.123456789Z"
    bodies = [
        payload(1, seen=nanos),
        payload(2, seen="2026-11-21 13:45:00.1234560"),
        payload(3, seen="2026-11-21T13:45:00.123Z"),
        payload(4, items=[{"sku": "a", "n": 1, "at": nanos}]),
        payload(5, items=[{"sku": "a", "n": 1, "at": "2026-11-21T13:45:00.000001Z"}]),
    ]
    batch = parse_batch(_raw_frame(spark, bodies), contract).cache()
    try:
        observed = observe_batch(batch, contract)
        assert observed.lossy_records == {"seen": 1, "items": 1}
        assert observed.paths[("seen",)].bad == 1
        kept = {
            r["thing_id"]: (r["seen"], json.loads(r["_rescued_data"] or "{}"))
            for r in rescue_partial_values(batch, contract, ["seen", "items"]).collect()
        }
    finally:
        batch.unpersist()
    micros = datetime(2026, 11, 21, 13, 45, 0, 123456)  # the session's zone is UTC
    assert kept["t-1"] == (micros, {"seen": nanos})
    assert kept["t-2"] == (micros, {})
    assert kept["t-3"][1] == {}
    assert kept["t-4"][1] == {"items": json.dumps([{"sku": "a", "n": 1, "at": nanos}]).replace(" ", "")}
    assert kept["t-5"][1] == {}
