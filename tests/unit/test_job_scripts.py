"""The Glue entry scripts refuse bad arguments before any JVM starts: one JSON line on
stdout, exit code 2, and no session (plain ``python`` runs them, no Spark needed)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
CONF = str(REPO / "conf")


def run_script(script: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(REPO / "jobs" / script), *args],
        capture_output=True,
        text=True,
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        timeout=120,
        check=False,
    )


@pytest.mark.parametrize(
    ("script", "args", "message"),
    [
        ("curation_job.py", ["--topic", "payments"], "unknown topic 'payments'"),
        (
            "curation_job.py",
            ["--topic", "orders", "--max_snapshots", "0"],
            "--max_snapshots must be at least 1",
        ),
        ("maintenance_job.py", ["--lean_ops_ops", "vacuum"], "unknown maintenance operation(s) vacuum"),
        ("maintenance_job.py", ["--lean_ops_frequency", "hourly!"], "frequency 'hourly!' is not one of"),
        # the semantic job started its session before it refused these
        (
            "semantic_job.py",
            ["--topic", "payments", "--run_id", "r:1", "--curated_snapshot_id", "1"],
            "unknown topic 'payments'",
        ),
        (
            "semantic_job.py",
            ["--topic", "orders", "--run_id", "r:1", "--curated_snapshot_id", "latest"],
            "--curated_snapshot_id must be a snapshot id, got 'latest'",
        ),
        # replay mode (--replay true): its own options only
        ("curation_job.py", ["--topic", "orders", "--replay", "yes"], "--replay must be true or false"),
        (
            "curation_job.py",
            ["--topic", "orders", "--replay", "true", "--max_records", "10"],
            "--max_records cap a curation run's raw read",
        ),
        (
            "curation_job.py",
            ["--topic", "orders", "--max_attempts", "3"],
            "--max_attempts is a replay's (with --replay true)",
        ),
        (
            "curation_job.py",
            ["--topic", "orders", "--replay", "true", "--max_attempts", "0"],
            "--max_attempts must be at least 1",
        ),
        # a misspelt option was dropped silently, and the run went on without it
        (
            "curation_job.py",
            ["--topic", "orders", "--max-snapshots", "5"],
            "unknown argument(s): --max-snapshots (did you mean --max_snapshots?)",
        ),
    ],
)
def test_a_job_refuses_bad_arguments_before_spark_with_exit_code_2(
    script: str, args: list[str], message: str, tmp_path: Path
) -> None:
    done = run_script(script, "--lean_ops_conf", CONF, *args, "--home", str(tmp_path))
    assert done.returncode == 2, done.stderr[-2000:]
    document = json.loads(done.stdout.strip().splitlines()[-1])
    assert document["ok"] is False and document["job"] == script.removesuffix("_job.py")
    assert document["error"]["type"] == "ConfigError" and message in document["error"]["message"]
    assert not (tmp_path / "catalog.db").exists()  # no session was built, so no catalog either
