"""A MERGE and a compaction on the same table at the same time: whatever the interleaving, both
sides' data and the table history stay intact, and a lost commit race is a typed result."""

from __future__ import annotations

import itertools
import threading
from dataclasses import replace
from datetime import datetime, timezone

from lean_ops_spark.config import parse_maintenance
from lean_ops_spark.maintenance.health import measure_health
from lean_ops_spark.maintenance.policy import PlanContext, plan_maintenance
from lean_ops_spark.maintenance.procedures import (
    ProcedureOutcome,
    RewriteDataFilesResult,
    is_commit_conflict,
    run_procedure,
)
from lean_ops_spark.maintenance.runner import MaintenanceRequest, maintain
from tests.spark.conftest_maintenance import live_files, new_namespace, table

POLICY = parse_maintenance(
    {"thresholds": {"min_small_files": 2, "delete_file_ratio": 0.0}}, "concurrency.yaml"
)
COMPACTION = MaintenanceRequest(ops=frozenset({"rewrite_data_files"}))


def _merge_with_retry(spark, target: str, source: str, attempts: list[str]) -> None:
    """The writer's side: an idempotent MERGE, re-run if it lost a commit race (as a pipeline re-runs a batch)."""
    statement = (
        f"MERGE INTO {target} t USING {source} s ON t.id = s.id "
        "WHEN MATCHED THEN UPDATE SET t.val = s.val WHEN NOT MATCHED THEN INSERT *"
    )
    for _ in range(4):
        try:
            spark.sql(statement)
            attempts.append("committed")
            return
        except Exception as exc:
            attempts.append(str(exc))
    raise AssertionError(f"the MERGE never committed: {attempts}")


def _part(i: int) -> str:
    return "even" if i % 2 == 0 else "odd"


def test_merge_and_compaction_concurrently_keep_data_and_history_intact(spark, project_config) -> None:
    ref = table(new_namespace(spark), "orders_live", layer="curated")
    spark.sql(
        f"CREATE TABLE {ref.sql} (id bigint, part string, val bigint) USING iceberg PARTITIONED BY (part) "
        "TBLPROPERTIES ('format-version'='2', 'write.merge.mode'='merge-on-read', "
        "'write.update.mode'='merge-on-read', 'write.delete.mode'='merge-on-read')"
    )
    for batch in range(4):  # four small appends into both partitions
        spark.range(batch * 20, batch * 20 + 20, numPartitions=1).selectExpr(
            "id", "IF(id % 2 = 0, 'even', 'odd') AS part", "id * 10 AS val"
        ).writeTo(ref.sql).append()
    merges = 2
    for k in range(1, merges + 1):  # batch k: update ids 0..29 to id*10+k, insert id 200+k
        spark.range(0, 31).selectExpr(
            f"IF(id < 30, id, {200 + k}) AS id",
            "IF(id % 2 = 0, 'even', 'odd') AS part",
            f"id * 10 + {k} AS val",
        ).createOrReplaceTempView(f"merge_source_{k}")
    expected = sorted(
        [(i, _part(i), i * 10 + merges) for i in range(30)]
        + [(i, _part(i), i * 10) for i in range(30, 80)]
        + [(200 + k, "even", 300 + k) for k in range(1, merges + 1)]
    )
    config = replace(project_config, maintenance=POLICY)
    # Plan first, so the compaction call and the writer start together at the barrier.
    health = measure_health(spark, ref, POLICY.thresholds)
    [compaction] = [
        p
        for p in plan_maintenance(health, POLICY, PlanContext(datetime.now(timezone.utc)))
        if p.run and p.name == "rewrite_data_files"
    ]
    assert compaction.call is not None
    start = threading.Barrier(2)
    attempts: list[str] = []
    outcomes: list[ProcedureOutcome] = []
    errors: list[BaseException] = []

    def writer() -> None:
        try:
            start.wait()
            for k in range(1, merges + 1):
                _merge_with_retry(spark, ref.sql, f"merge_source_{k}", attempts)
        except BaseException as exc:
            errors.append(exc)

    def compactor() -> None:
        try:
            start.wait()
            outcomes.append(run_procedure(spark, ref, compaction.call))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=writer), threading.Thread(target=compactor)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=600)
    assert not errors, errors

    # every MERGE committed once; an attempt that did not commit lost a commit race
    assert attempts.count("committed") == merges
    assert all(a == "committed" or is_commit_conflict(a) for a in attempts), attempts
    # the compaction finished with a typed outcome: done, or a reported conflict (never a crash)
    [outcome] = outcomes
    assert outcome.status in ("succeeded", "conflict"), outcome
    if outcome.status == "conflict":
        assert outcome.result is None and outcome.error and is_commit_conflict(outcome.error)
    else:
        assert isinstance(outcome.result, RewriteDataFilesResult)
        assert outcome.result.rewritten_data_files > 0

    _assert_intact(spark, ref, expected, merges=merges)

    # the next maintenance run compacts whatever the race left, and reports it
    again = maintain(spark, config, COMPACTION, tables=[ref]).table(ref.sql)
    assert again.operation("rewrite_data_files").status == "succeeded"
    assert again.health_after is not None
    assert again.health_after.data_file_count == 2  # one file per partition
    assert again.health_after.delete_file_count == 0  # the MERGEs' deletes are applied
    _assert_intact(spark, ref, expected, merges=merges)


def _assert_intact(spark, ref, expected, *, merges: int) -> None:
    spark.sql(f"REFRESH TABLE {ref.sql}")
    assert sorted(tuple(r) for r in spark.table(ref.sql).collect()) == expected
    snapshots = spark.sql(
        f"SELECT snapshot_id, parent_id, operation FROM {ref.metadata_table('snapshots')} ORDER BY committed_at"
    ).collect()
    # one linear history: each snapshot's parent is the one committed before it
    assert snapshots[0]["parent_id"] is None
    assert all(b["parent_id"] == a["snapshot_id"] for a, b in itertools.pairwise(snapshots))
    history = spark.sql(f"SELECT is_current_ancestor FROM {ref.metadata_table('history')}").collect()
    assert len(history) == len(snapshots) and all(r["is_current_ancestor"] for r in history)
    operations = [r["operation"] for r in snapshots]
    assert operations[:4] == ["append"] * 4
    assert operations.count("overwrite") == merges  # the MERGE, committed once
    assert set(operations[4:]) <= {"overwrite", "replace"}
    assert all(p.exists() for p in live_files(spark, ref))  # nothing the table references is gone
