"""``run_pipeline``: the rendered definition, the real checkpoint handlers on a real SQLite
catalog (tables made with PyIceberg, no Spark), and job runners that commit like curation."""

from __future__ import annotations

import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from pyiceberg.catalog.sql import SqlCatalog
from pyiceberg.schema import Schema
from pyiceberg.types import LongType, NestedField, StringType

from lean_ops_spark.catalog.checkpoints import RAW_CHECKPOINT_KEY, RUN_ID_KEY
from lean_ops_spark.cli.main import main
from lean_ops_spark.config import ProjectConfig, load_project
from lean_ops_spark.orchestration import state_machine as sm
from lean_ops_spark.orchestration.pipeline import resolve_job_runner, run_pipeline
from lean_ops_spark.orchestration.snapshots import open_snapshot_source

REPO = Path(__file__).resolve().parents[2]
RAW = Schema(
    NestedField(1, "message_id", StringType(), required=False),
    NestedField(2, "payload", StringType(), required=False),
)
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
        self.semantic_calls.append(arguments)
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
    import json

    document = json.loads(capsys.readouterr().out)
    assert code == 1 and document["ok"] is False
    outcomes = {t["topic"]: (t["status"], t["outcome"]) for t in document["topics"]}
    assert outcomes == {"clickstream": ("FAILED", "PipelineFailed"), "orders": ("SUCCEEDED", "NoNewData")}
    clickstream = next(t for t in document["topics"] if t["topic"] == "clickstream")
    assert clickstream["error"] == "LeanOps.GetAllCheckpointsFailed"
    assert "run `lean-ops init`" in clickstream["cause"]
