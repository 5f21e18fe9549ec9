"""``lean-ops drift | semantic | dq`` without Spark: options, and errors before Spark starts."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lean_ops_spark.cli.main import build_parser, main

CONF = str(Path(__file__).resolve().parents[2] / "conf")


def test_the_commands_and_their_options() -> None:
    parser = build_parser()
    args = parser.parse_args(["drift", "--topic", "orders", "--json"])
    assert (args.command, args.topic, args.json) == ("drift", "orders", True)
    args = parser.parse_args(
        ["semantic", "--topic", "orders", "--curated-snapshot-id", "42", "--run-id", "r-1"]
    )
    assert (args.curated_snapshot_id, args.run_id) == (42, "r-1")
    args = parser.parse_args(["dq", "--table", "semantic.orders", "--branch", "lean_ops_audit"])
    assert (args.table, args.branch) == ("semantic.orders", "lean_ops_audit")


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["drift", "--topic", "payments"], "unknown topic 'payments'"),
        (["semantic", "--topic", "payments"], "unknown topic 'payments'"),
        (["dq", "--table", "raw.orders_staging"], "expected <layer>.<table>"),
    ],
)
def test_bad_arguments_fail_before_spark_starts(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main([*argv, "--conf", CONF, "--json"]) == 2
    captured = capsys.readouterr()
    assert "starting Spark" not in captured.err
    assert message in json.loads(captured.out)["error"]["message"]


def test_the_semantic_job_script_asks_glue_for_the_state_machine_arguments() -> None:
    import runpy

    script = runpy.run_path(str(Path(CONF).parent / "jobs" / "semantic_job.py"), run_name="not_main")
    assert script["REQUIRED_ARGUMENTS"] == ("topic", "run_id", "curated_snapshot_id")
    from lean_ops_spark.orchestration.pipeline import JOB_RUNNERS, resolve_job_runner

    assert JOB_RUNNERS["semantic"] == "lean_ops_spark.semantic.job:run_semantic_job"
    assert resolve_job_runner("semantic").__name__ == "run_semantic_job"
