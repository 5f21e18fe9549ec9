"""``lean-ops demo`` end to end on the shared session, with small numbers: every raw record is
accounted for, the backlog loop runs, the topic reaches FullPipelineSuccess, maintenance runs
and the health report is written."""

from __future__ import annotations

from dataclasses import replace

from lean_ops_spark.catalog.naming import topic_tables
from lean_ops_spark.orchestration.demo import run_demo


def test_demo_runs_the_whole_flow_and_accounts_for_every_raw_record(spark, fresh_config, local_home) -> None:
    # one topic keeps the suite short; the demo itself runs every configured topic the same way
    config = replace(fresh_config, topics={"orders": fresh_config.topic("orders")})
    lines: list[str] = []
    report = run_demo(
        config,
        local_home,
        lambda: spark,
        events=120,
        appends=3,
        max_snapshots_per_run=2,
        seed=7,
        say=lines.append,
    )
    document = report.as_dict()
    assert document["ok"] is True, document["pipeline"]
    assert [line for line in lines if line.startswith("seeded")] == [
        f"seeded orders: {document['seeded']['orders']['records']} raw records in 3 appends (seed 7)"
    ]
    assert [run["topic"] for run in document["pipeline"]] == ["orders"]
    for run in document["pipeline"]:
        topic = run["topic"]
        assert run["status"] == "SUCCEEDED" and run["outcome"] == "FullPipelineSuccess", run
        curations = [j["summary"] for j in run["jobs"] if j["job"] == "curation"]
        semantics = [j["summary"] for j in run["jobs"] if j["job"] == "semantic"]
        # 3 appends with at most 2 per run: the backlog loop takes a second round
        assert run["rounds"] >= 2 and len(curations) >= 2
        assert all(c["ledger"]["balanced"] for c in curations if c["ledger"] is not None)
        read = sum(c["ledger"]["read"] for c in curations if c["ledger"] is not None)
        assert read == document["seeded"][topic]["records"]  # every raw record is accounted for
        assert semantics and all(s["status"] in ("published", "up_to_date") for s in semantics)
        # the last curation consumed raw's current snapshot: nothing is left behind
        assert curations[-1]["raw_end_snapshot_id"] == curations[-1]["raw_current_snapshot_id"]
        tables = topic_tables(fresh_config.profile, topic)
        spark.sql(f"REFRESH TABLE {tables.curated.sql}")
        assert (
            spark.table(tables.curated.sql).count() == document["seeded"][topic]["expected"]["curated_keys"]
        )
    assert document["maintenance"]["ok"] is True and document["maintenance"]["tables"]
    page = report.health_report.read_text()
    assert page.startswith("<!DOCTYPE html>") and topic_tables(fresh_config.profile, "orders").raw.sql in page
