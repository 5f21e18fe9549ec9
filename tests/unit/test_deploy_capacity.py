"""Glue run slots of the jobs every topic's execution runs: ``max_concurrent_runs`` defaults to
the number of deployed topics, and a smaller configured value is a warning of the deploy plan
(in the plan, the text output and ``--json``), never an error."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from lean_ops_spark.cli.main import main
from lean_ops_spark.config.environment import GlueJobSettings, parse_environment
from lean_ops_spark.deploy import AwsClients, apply_plan, plan_deployment
from lean_ops_spark.deploy import plan as deploy_plan
from tests.unit.test_deploy_moto import JOBS, _env_doc, _inputs, deploy_project, moto_clients


@pytest.fixture
def project(tmp_path: Path) -> Path:
    return deploy_project(tmp_path)


@pytest.fixture
def aws(fake_aws_env: str) -> Iterator[AwsClients]:
    with moto_clients() as clients:
        yield clients


def _doc(curation: int | None = None, semantic: int | None = None, **retry: Any) -> dict[str, Any]:
    """The test environment (two topics: every one in conf/topics/) with these job settings."""
    doc = _env_doc()
    for role, runs in (("curation", curation), ("semantic", semantic)):
        doc["glue"]["jobs"][role].pop("max_concurrent_runs", None)
        if runs is not None:
            doc["glue"]["jobs"][role]["max_concurrent_runs"] = runs
    doc["glue"]["retry"] = {"interval_seconds": 60, "max_attempts": 5, "backoff_rate": 2.0, **retry}
    return doc


def _max_runs(aws: AwsClients) -> dict[str, int]:
    return {
        name: aws.glue.get_job(JobName=name)["Job"]["ExecutionProperty"]["MaxConcurrentRuns"] for name in JOBS
    }


# --------------------------------------------------------------------------- the default


def test_max_concurrent_runs_is_unset_when_the_file_leaves_it_out() -> None:
    env = parse_environment(_doc(curation=3), "test.yaml", "test")
    assert env.curation_job.max_concurrent_runs == 3
    assert env.semantic_job.max_concurrent_runs is None
    assert env.maintenance_job.max_concurrent_runs is None


@pytest.mark.parametrize(
    ("role", "configured", "topics", "runs"),
    [
        ("curation", None, 6, 6),
        ("semantic", None, 6, 6),
        ("curation", None, 0, 1),  # at least one
        ("maintenance", None, 6, 1),  # one scheduled run, not per topic
        ("curation", 2, 6, 2),
        ("maintenance", 3, 6, 3),
    ],
)
def test_job_max_concurrent_runs(role: str, configured: int | None, topics: int, runs: int) -> None:
    job = GlueJobSettings(name="job", max_concurrent_runs=configured)
    assert deploy_plan.job_max_concurrent_runs(role, job, topics) == runs


def test_curation_and_semantic_get_one_run_per_deployed_topic_by_default(
    project: Path, aws: AwsClients
) -> None:
    """``topics: []`` deploys every topic of conf/topics/ (orders, clickstream): two runs each."""
    plan = apply_plan(plan_deployment(_inputs(project, _doc()), aws))
    assert plan.warnings == ()
    assert _max_runs(aws) == {
        "lean-ops-test-curation": 2,
        "lean-ops-test-semantic": 2,
        "lean-ops-test-maintenance": 1,
    }
    assert plan_deployment(_inputs(project, _doc()), aws).pending == ()

    # a topic fewer: the defaulted jobs follow (planned only: moto 5.2.5 has no UpdateJob)
    one_topic = {**_doc(), "topics": ["orders"]}
    updates = [(c.name, c.changed) for c in plan_deployment(_inputs(project, one_topic), aws).pending]
    assert [u for u in updates if u[0] in JOBS] == [
        ("lean-ops-test-curation", ("ExecutionProperty",)),
        ("lean-ops-test-semantic", ("ExecutionProperty",)),
    ]


def test_a_configured_max_concurrent_runs_is_deployed_as_given(project: Path, aws: AwsClients) -> None:
    apply_plan(plan_deployment(_inputs(project, _doc(curation=3, semantic=5)), aws))
    assert _max_runs(aws) == {
        "lean-ops-test-curation": 3,
        "lean-ops-test-semantic": 5,
        "lean-ops-test-maintenance": 1,
    }


# --------------------------------------------------------------------------- the warning


def test_fewer_runs_than_topics_is_a_warning_of_the_plan_not_an_error(project: Path, aws: AwsClients) -> None:
    plan = plan_deployment(_inputs(project, _doc(curation=1)), aws)
    (warning,) = plan.warnings  # the semantic job defaults to the topic count
    assert warning == (
        "test.yaml: glue job lean-ops-test-curation has max_concurrent_runs 1 but 2 topics are deployed, "
        "each with its own execution running it: when more than 1 need it at once, the topics beyond 1 wait "
        "through Glue.ConcurrentRunsExceededException retries for about 31 minutes (glue.retry) and then fail "
        "their execution, unless a run of the job ended meanwhile. Raise glue.jobs.curation.max_concurrent_runs "
        "to at least 2 (or remove it: the default is one run per deployed topic)."
    )
    apply_plan(plan)  # deployed all the same, as configured
    assert _max_runs(aws)["lean-ops-test-curation"] == 1


@pytest.mark.parametrize(
    ("retry", "outcome"),
    [
        ({}, "retries for about 31 minutes (glue.retry)"),  # 60 + 120 + 240 + 480 + 960 s
        ({"interval_seconds": 30, "max_attempts": 3, "backoff_rate": 1.5}, "retries for about 2 minutes"),
        ({"interval_seconds": 5, "max_attempts": 2, "backoff_rate": 1.0}, "retries for about 10 seconds"),
        (
            {"max_attempts": 0},
            "fail their execution on Glue.ConcurrentRunsExceededException (glue.retry.max_attempts is 0)",
        ),
    ],
)
def test_the_warning_says_how_long_the_retries_wait(retry: dict[str, Any], outcome: str) -> None:
    env = parse_environment(_doc(curation=2, semantic=4, **retry), "test.yaml", "test")
    (warning,) = deploy_plan.concurrency_warnings(env, ["a", "b", "c"])
    assert "glue job lean-ops-test-curation has max_concurrent_runs 2 but 3 topics" in warning
    assert outcome in warning
    assert "glue.jobs.curation.max_concurrent_runs to at least 3" in warning


def test_both_jobs_are_checked_and_enough_runs_is_no_warning() -> None:
    env = parse_environment(_doc(curation=2, semantic=1), "test.yaml", "test")
    names = [w.split(" has ")[0] for w in deploy_plan.concurrency_warnings(env, ["a", "b"])]
    assert names == ["test.yaml: glue job lean-ops-test-semantic"]
    assert deploy_plan.concurrency_warnings(env, ["a"]) == ()
    maintenance_too = _doc(curation=5, semantic=5)
    maintenance_too["glue"]["jobs"]["maintenance"]["max_concurrent_runs"] = 1  # one scheduled run: fine
    assert (
        deploy_plan.concurrency_warnings(parse_environment(maintenance_too, "t.yaml", "t"), ["a", "b"]) == ()
    )


def test_the_cli_shows_the_warning_in_text_and_json(
    project: Path, aws: AwsClients, capsys: pytest.CaptureFixture[str]
) -> None:
    (project / "conf" / "environments" / "test.yaml").write_text(yaml.safe_dump(_doc(semantic=1)))
    argv = ["deploy", "--env", "test", "--conf", str(project / "conf"), "--project-root", str(project)]
    argv += ["--wheel", str(project / "dist" / "lean_ops_spark-0.1.0-py3-none-any.whl"), "--dry-run"]
    assert main([*argv, "--json"]) == 0
    document = json.loads(capsys.readouterr().out)
    (warning,) = document["warnings"]
    # the file as the CLI read it
    assert warning.startswith(f"{project}/conf/environments/test.yaml: glue job lean-ops-test-semantic ")
    assert "has max_concurrent_runs 1 but 2 topics are deployed" in warning
    assert document["ok"] is True and set(document["counts"]) == {"create"}
    assert main(argv) == 0
    lines = capsys.readouterr().out.splitlines()
    assert f"warning: {warning}" in lines
    assert lines[-1].startswith("test: ")  # the summary still closes the output
