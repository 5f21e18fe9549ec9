"""Replay under review: newest wins against curated, the raw checkpoint, crashes, DROP on
replay, exhaustion, several runs and days, nothing pending, and the replay's own ledger."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta, timezone

import pytest

from lean_ops_spark.catalog.bootstrap import bootstrap_tables
from lean_ops_spark.catalog.checkpoints import RAW_CHECKPOINT_KEY, current_snapshot_id, read_checkpoint
from lean_ops_spark.catalog.naming import topic_tables
from lean_ops_spark.curation import replay as replay_module
from lean_ops_spark.curation.pipeline import run_curation
from lean_ops_spark.curation.replay import STEP_REPLAY_MERGED, run_replay
from lean_ops_spark.errors import LedgerError
from lean_ops_spark.raw import RawRecord
from lean_ops_spark.raw.writer import append_raw
from tests.conftest import Crash, crash_at
from tests.conftest import order_payload as order

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=timezone.utc)


def record(message_id: str, payload: str | None, ingested: datetime, version: int = 1) -> RawRecord:
    return RawRecord(message_id, "orders", payload, ingested, "test", version)  # type: ignore[arg-type]


def orders_with(config, **changes):  # type: ignore[no-untyped-def]
    return replace(config, topics={**config.topics, "orders": replace(config.topic("orders"), **changes)})


@pytest.fixture
def env(spark, fresh_config):
    config = orders_with(fresh_config, error_rate_threshold=1.0)
    bootstrap_tables(spark, config, ["orders"])
    return config, orders_with(config, schema_versions=(1, 2)), topic_tables(config.profile, "orders")


def curated_state(spark, tables) -> dict[str, tuple[str, str]]:
    return {
        r["order_id"]: (r["customer_id"], r["_message_id"])
        for r in spark.table(tables.curated.sql).select("order_id", "customer_id", "_message_id").collect()
    }


def quarantine_state(spark, tables) -> dict[tuple[str, datetime], tuple]:
    return {
        (r["message_id"], r["ingestion_ts"]): (
            r["error_class"],
            r["reason_code"],
            r["replay_status"],
            r["attempt_count"],
        )
        for r in spark.table(tables.quarantine.sql).collect()
    }


def test_replay_never_overwrites_a_newer_curated_version_and_wins_over_an_older_one(spark, env) -> None:
    """Key N: curated already holds a newer version than the replayed one (it stays); key O:
    curated holds an older one (the replayed version wins); both rows are marked replayed."""
    config, fixed, tables = env
    t0 = NOW - timedelta(days=1)
    append_raw(
        spark,
        tables.raw,
        [
            record("n-old", order("N", t0, t0, customer_id="v2-old"), NOW, version=2),
            record(
                "n-new",
                order("N", t0, t0 + timedelta(hours=2), customer_id="new"),
                NOW + timedelta(minutes=1),
            ),
            record("o-old", order("O", t0, t0, customer_id="old"), NOW),
            record("o-new", order("O", t0, t0 + timedelta(hours=2), customer_id="v2-new"), NOW, version=2),
        ],
    )
    run_curation(spark, config, "orders")
    assert curated_state(spark, tables) == {"N": ("new", "n-new"), "O": ("old", "o-old")}

    result = run_replay(spark, fixed, "orders")

    assert (result.pending, result.replayed) == (2, 2)
    assert curated_state(spark, tables) == {"N": ("new", "n-new"), "O": ("v2-new", "o-new")}
    statuses = {k[0]: v[2:] for k, v in quarantine_state(spark, tables).items()}
    assert statuses == {"n-old": ("replayed", 2), "o-new": ("replayed", 2)}


def test_a_replay_leaves_the_raw_checkpoint_and_the_next_curation_reads_only_new_raw(spark, env) -> None:
    config, fixed, tables = env
    t0 = NOW - timedelta(days=1)
    append_raw(
        spark,
        tables.raw,
        [record("a", order("A", t0, t0), NOW, version=2), record("b", order("B", t0, t0), NOW)],
    )
    run_curation(spark, config, "orders")
    before = read_checkpoint(spark, tables.curated, RAW_CHECKPOINT_KEY)
    assert before is not None

    with pytest.raises(Crash):
        run_replay(spark, fixed, "orders", after_step=crash_at(STEP_REPLAY_MERGED))
    replayed = run_replay(spark, fixed, "orders")
    after = read_checkpoint(spark, tables.curated, RAW_CHECKPOINT_KEY)
    assert after is not None and after.source_snapshot_id == before.source_snapshot_id
    assert replayed.replayed == 1 and replayed.curated_snapshot_id != before.recorded_in_snapshot_id

    append_raw(spark, tables.raw, [record("c", order("C", t0, t0), NOW + timedelta(minutes=5))])
    nxt = run_curation(spark, fixed, "orders")
    assert nxt.ledger is not None and nxt.ledger.read == 1 and nxt.ledger.balanced
    assert sorted(curated_state(spark, tables)) == ["A", "B", "C"]
    assert run_curation(spark, fixed, "orders").status == "no_new_data"


def test_a_retry_row_that_now_fails_a_drop_check_is_dropped_with_the_new_reason(spark, env) -> None:
    """Unknown version is checked before the payload: a version-2 record with a broken
    payload (or none) is RETRY first, and DROP once its version is known."""
    config, fixed, tables = env
    t0 = NOW - timedelta(days=1)
    append_raw(
        spark,
        tables.raw,
        [
            record("bad-json", "{not json", NOW, version=2),
            record("null-payload", None, NOW, version=2),
            record("no-key", order("K", t0, t0, order_id=None), NOW, version=2),
            record("good", order("G", t0, t0), NOW, version=2),
        ],
    )
    run_curation(spark, config, "orders")
    assert {v[0] for v in quarantine_state(spark, tables).values()} == {"RETRY"}

    result = run_replay(spark, fixed, "orders")

    assert (result.pending, result.replayed, result.dropped, result.still_pending) == (4, 1, 3, 0)
    by_id = {k[0]: v for k, v in quarantine_state(spark, tables).items()}
    assert by_id == {
        "bad-json": ("DROP", "MALFORMED_JSON", "dropped", 2),
        "null-payload": ("DROP", "MALFORMED_JSON", "dropped", 2),
        "no-key": ("DROP", "MISSING_KEY", "dropped", 2),
        "good": ("RETRY", "UNKNOWN_SCHEMA_VERSION", "replayed", 2),
    }
    assert sorted(curated_state(spark, tables)) == ["G"]
    assert run_replay(spark, fixed, "orders").pending == 0  # dropped rows are never replayed again


def test_rows_are_exhausted_at_max_attempts_and_never_replayed_again(spark, env) -> None:
    config, fixed, tables = env
    t0 = NOW - timedelta(days=1)
    append_raw(spark, tables.raw, [record("x", order("X", t0, t0), NOW, version=2)])
    run_curation(spark, config, "orders")  # attempt 1
    first = run_replay(spark, config, "orders", max_attempts=3)  # attempt 2
    second = run_replay(spark, config, "orders", max_attempts=3)  # attempt 3: exhausted
    assert (first.still_pending, first.exhausted) == (1, 0)
    assert (second.still_pending, second.exhausted) == (0, 1)
    assert list(quarantine_state(spark, tables).values()) == [
        ("RETRY", "UNKNOWN_SCHEMA_VERSION", "exhausted", 3)
    ]
    assert run_replay(spark, fixed, "orders").pending == 0
    assert curated_state(spark, tables) == {}


def test_rows_of_several_runs_and_days_replay_together_newest_wins(spark, env) -> None:
    config, fixed, tables = env
    t0 = NOW - timedelta(days=5)
    for day in range(3):
        ingested = NOW - timedelta(days=3 - day)
        append_raw(
            spark,
            tables.raw,
            [
                record(
                    f"k-{day}",
                    order("K", t0, t0 + timedelta(hours=day), customer_id=f"c{day}"),
                    ingested,
                    version=2,
                ),
                record(f"u-{day}", order(f"U{day}", t0 + timedelta(days=day), t0), ingested, version=2),
            ],
        )
        run_curation(spark, config, "orders")
    assert len({r["run_id"] for r in spark.table(tables.quarantine.sql).collect()}) == 3

    result = run_replay(spark, fixed, "orders")

    assert (result.pending, result.replayed) == (6, 6)
    assert curated_state(spark, tables) == {
        "K": ("c2", "k-2"),
        "U0": ("c-1", "u-0"),
        "U1": ("c-1", "u-1"),
        "U2": ("c-1", "u-2"),
    }
    assert {v[2:] for v in quarantine_state(spark, tables).values()} == {("replayed", 2)}


def test_a_replay_with_nothing_pending_commits_nothing(spark, env) -> None:
    config, fixed, tables = env
    t0 = NOW - timedelta(days=1)
    assert run_replay(spark, fixed, "orders").pending == 0  # empty quarantine: no snapshot at all
    append_raw(spark, tables.raw, [record("d", "{not json", NOW), record("a", order("A", t0, t0), NOW)])
    run_curation(spark, config, "orders")  # only a DROP row in quarantine
    curated_before = current_snapshot_id(spark, tables.curated)
    quarantine_before = current_snapshot_id(spark, tables.quarantine)
    result = run_replay(spark, fixed, "orders")
    assert (result.pending, result.curated_snapshot_id) == (0, None)
    assert current_snapshot_id(spark, tables.curated) == curated_before
    assert current_snapshot_id(spark, tables.quarantine) == quarantine_before


def test_a_replay_fails_loudly_when_its_classified_rows_do_not_match_the_pending_rows_read(
    spark, env, monkeypatch
) -> None:
    """``pending`` must be counted from the rows read, not derived from the outcomes: a row
    lost between the read and the classification would otherwise balance by construction."""
    config, fixed, tables = env
    t0 = NOW - timedelta(days=1)
    append_raw(
        spark,
        tables.raw,
        [record("a", order("A", t0, t0), NOW, version=2), record("b", order("B", t0, t0), NOW, version=2)],
    )
    run_curation(spark, config, "orders")
    parse = replay_module.parse_batch
    monkeypatch.setattr(
        replay_module, "parse_batch", lambda df, contract: parse(df, contract).where("message_id <> 'b'")
    )
    with pytest.raises(LedgerError, match="read 2 pending"):
        run_replay(spark, fixed, "orders")
    assert {v[2] for v in quarantine_state(spark, tables).values()} == {"pending"}  # nothing marked


def test_a_replay_after_a_contract_fix_that_adds_a_field_keeps_the_field_s_values(spark, env) -> None:
    """Schema version 2 brings a field: the operator adds the version and the field to the
    contract and replays before any curation run has brought curated up to the contract.
    Parsed into a column curated did not have, the value was silently dropped by the MERGE
    (neither a column nor ``_rescued_data``); now replay adds the column as curation would."""
    from lean_ops_spark.config.models import FieldSpec, FieldType
    from lean_ops_spark.drift.audit import AUDIT_TABLE_NAME

    config, fixed, tables = env
    t0 = NOW - timedelta(days=1)
    append_raw(
        spark,
        tables.raw,
        [
            record("g", order("G", t0, t0, gift_note="hi"), NOW, version=2),
            record("h", order("H", t0, t0), NOW),
        ],
    )
    run_curation(spark, config, "orders")
    with_field = orders_with(
        fixed, fields=(*fixed.topic("orders").fields, FieldSpec("gift_note", FieldType("string")))
    )
    with pytest.raises(Crash):  # the ALTER is idempotent: a re-run after a crash is the same
        run_replay(spark, with_field, "orders", after_step=crash_at(STEP_REPLAY_MERGED))
    result = run_replay(spark, with_field, "orders")

    assert result.replayed == 1
    rows = spark.table(tables.curated.sql).collect()
    assert sorted((r["order_id"], r["gift_note"], r["_rescued_data"]) for r in rows) == [
        ("G", "hi", None),
        ("H", None, None),
    ]
    audit = spark.table(f"{tables.curated.catalog}.{tables.curated.database}.{AUDIT_TABLE_NAME}")
    assert [(r["field_path"], r["action"]) for r in audit.where("field_path = 'gift_note'").collect()] == [
        ("gift_note", "add_column")
    ]
    nxt = run_curation(spark, with_field, "orders")  # nothing new, and no drift left to apply
    assert nxt.status == "no_new_data"


def test_the_curation_job_replays_with_replay_true_and_sends_the_counts(spark, env, monkeypatch) -> None:
    """On Glue a replay is a run of the curation job (no job of its own); before, replay had
    no way to run there, and sent no metrics to alarm on exhausted or dropped rows."""
    from lean_ops_spark.curation import job
    from lean_ops_spark.metrics import MemorySink

    config, fixed, tables = env
    t0 = NOW - timedelta(days=1)
    append_raw(
        spark,
        tables.raw,
        [
            record("a", order("A", t0, t0), NOW, version=2),  # RETRY: version 2 unknown
            record("b", order("B", t0, t0), NOW, version=2),
            record("c", order("C", t0, t0), NOW),
        ],
    )
    run_curation(spark, config, "orders")
    sinks: list[MemorySink] = []
    monkeypatch.setattr(job, "build_sink", lambda *_a, **_k: sinks.append(MemorySink()) or sinks[-1])

    still = job.run_curation_job(spark, config, {"topic": "orders", "replay": "TRUE", "max_attempts": "3"})
    assert (still["mode"], still["pending"], still["still_pending"]) == ("replay", 2, 2)
    done = job.run_curation_job(spark, fixed, {"topic": "orders", "replay": "true", "run_id": "rpl-job-1"})
    assert (done["mode"], done["run_id"], done["pending"], done["replayed"]) == ("replay", "rpl-job-1", 2, 2)
    assert sorted(curated_state(spark, tables)) == ["A", "B", "C"]

    dims = {"Topic": "orders", "Layer": "quarantine"}
    assert sinks[0].values("ReplayRowsRead", **dims) == [2.0]
    assert sinks[0].values("ReplayRowsStillPending", **dims) == [2.0]
    assert sinks[1].values("ReplayRowsReplayed", **dims) == [2.0]
    assert (
        sinks[1].values("ReplayRowsExhausted", **dims)
        == sinks[1].values("ReplayRowsDropped", **dims)
        == [0.0]
    )
    assert all(m.unit in ("Count", "Seconds") and "RunId" not in dict(m.dimensions) for m in sinks[1].metrics)
    # without --replay the job curates (nothing new here), as before
    assert "mode" not in job.run_curation_job(spark, config, {"topic": "orders"})
