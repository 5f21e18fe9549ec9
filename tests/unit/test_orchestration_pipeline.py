"""``run_pipeline``: the rendered definition, the real checkpoint handlers on a real SQLite
catalog (tables made with PyIceberg, no Spark), and job runners that commit like curation."""

from __future__ import annotations

import json
import shutil
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from pyiceberg.catalog.sql import SqlCatalog
from pyiceberg.schema import Schema
from pyiceberg.types import LongType, NestedField, StringType

from lean_ops_spark.catalog.checkpoints import CURATED_CHECKPOINT_KEY, RAW_CHECKPOINT_KEY, RUN_ID_KEY
from lean_ops_spark.cli.main import main
from lean_ops_spark.config import ProjectConfig, load_project
from lean_ops_spark.errors import DataQualityError, RuntimeSetupError
from lean_ops_spark.orchestration import state_machine as sm
from lean_ops_spark.orchestration.pipeline import resolve_job_runner, run_pipeline
from lean_ops_spark.orchestration.snapshots import open_snapshot_source

REPO = Path(__file__).resolve().parents[2]
RAW = Schema(
    NestedField(1, "message_id", StringType(), required=False),
    NestedField(2, "payload", StringType(), required=False),
)
SEMANTIC = Schema(NestedField(1, "order_id", StringType(), required=False))
CURATED = Schema(
    NestedField(1, "order_id", StringType(), required=False),
    NestedField(2, "_raw_snapshot_id", LongType(), required=False),
)


class Lake:
    def __init__(self, root: Path) -> None:
        self.conf = root / "conf"
        for folder in ("profiles", "topics"):
            shutil.copytree(REPO / "conf" / folder, self.conf / folder)
        (self.conf / "semantic").mkdir()
        self.home = root / "home"
        (self.home / "warehouse").mkdir(parents=True)
        self.catalog = SqlCatalog(
            "lake", uri=f"sqlite:///{self.home / 'catalog.db'}", warehouse=(self.home / "warehouse").as_uri()
        )
        for namespace in ("raw", "curated", "semantic"):
            self.catalog.create_namespace(namespace)
        self.raw = self.catalog.create_table("raw.orders_staging", RAW)
        self.catalog.create_table("curated.orders", CURATED)
        self.semantic_calls: list[Mapping[str, str]] = []

    def land(self, n: int) -> None:
        self.raw.append(pa.table({"message_id": [f"m{i}" for i in range(n)], "payload": ["{}"] * n}))

    def config(self) -> ProjectConfig:
        return load_project(self.conf, "local")

    def curation(
        self, _spark: Any, _config: ProjectConfig, arguments: Mapping[str, str]
    ) -> Mapping[str, Any]:
        """What the curation job does to the checkpoint: commit with the raw id and the run id."""
        raw_current = self.catalog.load_table("raw.orders_staging").metadata.current_snapshot_id
        curated = self.catalog.load_table("curated.orders")
        curated.append(
            pa.table({"order_id": pa.array(["o1"]), "_raw_snapshot_id": pa.array([raw_current], pa.int64())}),
            snapshot_properties={RAW_CHECKPOINT_KEY: str(raw_current), RUN_ID_KEY: arguments["run_id"]},
        )
        return {"read": 3, "upserted": 3, "quarantined": 0}

    def semantic(
        self, _spark: Any, _config: ProjectConfig, arguments: Mapping[str, str]
    ) -> Mapping[str, Any]:
        """What the semantic job does to its checkpoint: its table commits the curated snapshot read."""
        self.semantic_calls.append(arguments)
        table = self.catalog.create_table_if_not_exists("semantic.orders", SEMANTIC)
        table.append(
            pa.table({"order_id": ["o1"]}),
            snapshot_properties={CURATED_CHECKPOINT_KEY: arguments["curated_snapshot_id"]},
        )
        return {"dq": "passed"}

    def run(self, **kwargs: Any) -> Any:
        config = self.config()
        return run_pipeline(
            config,
            open_snapshot_source(config.profile, self.home / "catalog.db"),
            ["orders"],
            spark=lambda: None,
            runners=kwargs.pop("runners", {"curation": self.curation, "semantic": self.semantic}),
            **kwargs,
        )


@pytest.fixture
def lake(tmp_path: Path) -> Lake:
    return Lake(tmp_path)


def test_no_model_then_model_then_nothing_new(lake: Lake) -> None:
    lake.land(3)
    first = lake.run().topics[0]
    assert first.ok and first.execution.final_state == sm.CURATION_ONLY_SUCCESS
    assert [m["name"] for m in first.metrics] == ["MissingSemanticSchema"]
    assert first.jobs[0]["summary"] == {"read": 3, "upserted": 3, "quarantined": 0}

    (lake.conf / "semantic" / "orders.yaml").write_text(
        "topic: orders\nmodels:\n  - {name: orders, kind: entity, key: [order_id], columns: [order_id]}\n"
    )
    lake.land(2)
    events: list[str] = []
    second = lake.run(
        on_event=lambda topic, e: events.append(f"{topic}:{e.kind}:{e.state}"),
        job_defaults={"home": "/some/home"},
    ).topics[0]
    assert second.execution.final_state == sm.FULL_PIPELINE_SUCCESS
    curated = lake.catalog.load_table("curated.orders").metadata
    (call,) = lake.semantic_calls
    assert call["curated_snapshot_id"] == str(curated.current_snapshot_id)  # the token reached semantic
    assert call["run_id"] == second.jobs[0]["arguments"]["run_id"]
    # like a Glue job's DefaultArguments: the environment's name (Snowflake refresh) and the home
    assert (call["lean_ops_env"], call["home"]) == ("local", "/some/home")
    assert "orders:entered:RunSemanticJob" in events

    third = lake.run().topics[0]
    assert third.execution.path == [sm.GET_ALL_CHECKPOINTS, sm.CHECK_FOR_NEW_RAW_DATA, sm.NO_NEW_DATA]
    assert third.as_dict()["rounds"] == 1


def test_a_job_that_is_not_available_yet_fails_with_a_clear_cause(lake: Lake) -> None:
    lake.land(1)
    run = lake.run(
        runners={"curation": "lean_ops_spark.not_written_yet:run", "semantic": lake.semantic}
    ).topics[0]
    assert not run.ok and run.execution.final_state == sm.PIPELINE_FAILED
    assert "the curation job is not available yet: lean_ops_spark.not_written_yet:run" in (
        run.execution.cause or ""
    )
    assert [m["name"] for m in run.metrics] == ["PipelineFailures"]


def test_registry_resolution() -> None:
    with pytest.raises(Exception, match="no maintenance job runner"):
        resolve_job_runner("maintenance", {})
    assert resolve_job_runner("x", {"x": "json:dumps"}).__name__ == "dumps"


def test_cli_pipeline_reports_per_topic_and_fails_for_broken_topics(
    lake: Lake, capsys: pytest.CaptureFixture[str]
) -> None:
    """clickstream's tables were never created: GetAllCheckpoints fails for it, orders has nothing new."""
    code = main(["pipeline", "--conf", str(lake.conf), "--home", str(lake.home), "--json"])
    document = json.loads(capsys.readouterr().out)
    assert code == 1 and document["ok"] is False
    outcomes = {t["topic"]: (t["status"], t["outcome"]) for t in document["topics"]}
    assert outcomes == {"clickstream": ("FAILED", "PipelineFailed"), "orders": ("SUCCEEDED", "NoNewData")}
    clickstream = next(t for t in document["topics"] if t["topic"] == "clickstream")
    assert clickstream["error"] == "LeanOps.GetAllCheckpointsFailed"
    assert "run `lean-ops init`" in clickstream["cause"]


def test_every_one_of_many_rounds_runs(monkeypatch: pytest.MonkeyPatch) -> None:
    """max_rounds has no upper bound: the executor's cap follows it (it used to stop at 1000
    transitions, 143 rounds, with States.Runtime)."""
    from lean_ops_spark.orchestration import pipeline

    def checkpoints(payload: Any, _runtime: Any) -> Any:
        done = (payload["state"].get("checkpoints") or {}).get("round", 0) + 1
        topic = {"has_new_raw_data": True, "semantic_behind": False}
        return {"round": done, "run_id": f"x:r{done}", "topics": [topic]}

    def resolve(_payload: Any, _runtime: Any) -> Any:
        return {
            "curated_snapshot_id": "1",
            "run_committed": True,
            "schema_exists": True,
            "schema_reason": None,
            "pending_raw_snapshots": 10**6,
            "pending_raw_records": 10**9,
        }

    monkeypatch.setattr(pipeline, "get_all_checkpoints_event", checkpoints)
    monkeypatch.setattr(pipeline, "curation_result", resolve)
    config = load_project(REPO / "conf", "local")
    environment = replace(pipeline.local_environment(config), max_rounds=200)
    result = run_pipeline(
        config,
        open_snapshot_source(config.profile, REPO / "catalog.db"),  # never read: the handlers are fakes
        ["orders"],
        spark=lambda: None,
        environment=environment,
        runners={"curation": lambda *_a: {}, "semantic": lambda *_a: {}},
    )
    run = result.topics[0]
    assert (run.execution.status, run.execution.error) == ("SUCCEEDED", None)
    assert run.as_dict()["rounds"] == 200


def test_an_incomplete_local_runtime_stops_the_run_at_the_first_job(lake: Lake) -> None:
    """No jars: one RuntimeSetupError (exit 3), not a failed topic per topic, each starting Spark."""
    lake.land(1)
    attempts: list[int] = []

    def spark() -> Any:
        attempts.append(1)
        raise RuntimeSetupError("missing JVM dependencies in /jars: iceberg-spark-runtime.jar")

    config = lake.config()
    with pytest.raises(RuntimeSetupError, match="missing JVM dependencies"):
        run_pipeline(
            config,
            open_snapshot_source(config.profile, lake.home / "catalog.db"),
            ["orders", "orders"],
            spark=spark,
            runners={"curation": lake.curation, "semantic": lake.semantic},
        )
    assert attempts == [1]


def test_cli_pipeline_refuses_a_home_that_was_never_initialised(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    home = tmp_path / "never-init"
    assert main(["pipeline", "--conf", str(REPO / "conf"), "--home", str(home), "--json"]) == 3
    captured = capsys.readouterr()
    assert json.loads(captured.out)["error"] == {
        "type": "RuntimeSetupError",
        "message": f"no catalog at {home}/catalog.db: run `lean-ops init --home {home}` first",
    }
    assert "[orders]" not in captured.err and not home.exists()


def test_cli_pipeline_shows_why_a_topic_failed_after_a_job_succeeded(
    lake: Lake, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from lean_ops_spark.cli.context import CliContext
    from lean_ops_spark.orchestration import pipeline

    def semantic(*_args: Any) -> Mapping[str, Any]:
        raise DataQualityError("suite semantic.orders failed: row_count")

    (lake.conf / "semantic" / "orders.yaml").write_text(
        "topic: orders\nmodels:\n  - {name: orders, kind: entity, key: [order_id], columns: [order_id]}\n"
    )
    lake.land(2)
    monkeypatch.setitem(pipeline.JOB_RUNNERS, "curation", lake.curation)  # type: ignore[arg-type]
    monkeypatch.setitem(pipeline.JOB_RUNNERS, "semantic", semantic)  # type: ignore[arg-type]
    monkeypatch.setattr(CliContext, "spark", lambda _self: None)
    code = main(["pipeline", "--conf", str(lake.conf), "--home", str(lake.home), "--topics", "orders"])
    out = capsys.readouterr().out
    assert code == 1
    assert "curation: quarantined=0, read=3, upserted=3" in out  # the job that succeeded
    assert "orders FAILED: LeanOps.RunSemanticJobFailed: " in out
    assert "DataQualityError: suite semantic.orders failed: row_count" in out


def test_two_pipelines_started_in_the_same_second_use_different_run_ids(
    lake: Lake, monkeypatch: pytest.MonkeyPatch
) -> None:
    # the run id is how ResolveCuratedSnapshot finds a run's commit: a shared one would let
    # a pipeline take another's commit for its own
    from datetime import datetime as real_datetime

    from lean_ops_spark.orchestration import pipeline

    class Frozen(real_datetime):
        @classmethod
        def now(cls, tz: Any = None) -> Any:
            return real_datetime(2026, 11, 27, 12, 0, 0, tzinfo=tz)

    monkeypatch.setattr(pipeline, "datetime", Frozen)
    run_ids = []
    for _ in range(2):
        lake.land(1)
        run = lake.run().topics[0]
        run_ids.append(run.jobs[0]["arguments"]["run_id"])
    assert run_ids[0] != run_ids[1]
