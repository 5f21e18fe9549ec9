"""The CLI's errors without Spark: argument errors, bad counts and rates, a home never
initialised, outputs that cannot be written, config files that are not UTF-8, a closed
stdout; and the library checks behind the CLI's (a run cap, a replay's attempt count)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any
from unittest.mock import MagicMock

import pytest

from lean_ops_spark.catalog.metadata import SnapshotRecord
from lean_ops_spark.cli.context import CliContext
from lean_ops_spark.cli.main import main
from lean_ops_spark.config import load_project
from lean_ops_spark.curation.batch import plan_batch
from lean_ops_spark.curation.replay import run_replay
from lean_ops_spark.errors import ConfigError, LedgerError

REPO = Path(__file__).resolve().parents[2]
CONF = str(REPO / "conf")


@pytest.fixture
def no_spark(monkeypatch: pytest.MonkeyPatch) -> None:
    """A command that gets as far as starting Spark fails the test."""

    def spark(_self: CliContext) -> Any:
        raise AssertionError("the command started Spark")

    monkeypatch.setattr(CliContext, "spark", spark)


def _json_error(out: str) -> dict[str, Any]:
    document: dict[str, Any] = json.loads(out)
    assert document["ok"] is False
    return document


@pytest.mark.parametrize(
    "argv",
    [
        ["--json", "curate"],
        ["--json", "seed", "--topic", "orders", "--events", "abc"],
        ["--json", "seed", "--topic", "orders", "--fault", "foo=1"],
        ["--json", "bogus"],
        ["curate", "--json"],  # --json after the command, the error before it
    ],
)
def test_an_argument_error_with_json_is_one_document_and_exit_2(
    argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(argv) == 2
    captured = capsys.readouterr()
    document = _json_error(captured.out)
    assert document["error"]["type"] == "UsageError"
    err = captured.err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("lean-ops")
    assert "usage:" not in captured.err


def test_an_argument_error_without_json_is_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["seed", "--topic", "orders", "--events", "abc"]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.strip() == (
        "lean-ops seed: error: argument --events: invalid int value: 'abc' (see `lean-ops seed --help`)"
    )
    assert main(["curate"]) == 2
    assert "the following arguments are required: --topic" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("--max-snapshots", "0", "argument --max-snapshots: must be at least 1, got 0"),
        ("--max-snapshots", "-1", "argument --max-snapshots: must be at least 1, got -1"),
        ("--max-records", "0", "argument --max-records: must be at least 1, got 0"),
        ("--max-records", "x", "argument --max-records: must be a whole number, got 'x'"),
    ],
)
def test_curate_caps_must_be_at_least_1(
    option: str, value: str, message: str, no_spark: None, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["curate", "--topic", "orders", "--conf", CONF, f"{option}={value}"]) == 2
    assert message in capsys.readouterr().err


def test_a_run_cap_below_1_is_refused_by_the_planner() -> None:
    """-1 used to end in an IndexError (the plan took no snapshot, then its last one)."""
    appends = [
        SnapshotRecord(i, i - 1 if i > 1 else None, {"added-records": "10"}, operation="append")
        for i in range(1, 5)
    ]
    for caps in ({"max_snapshots": 0}, {"max_snapshots": -1}, {"max_snapshots": 5, "max_records": 0}):
        with pytest.raises(
            ConfigError, match=r"lake\.raw\.orders_staging: max_\w+ per run must be at least 1"
        ):
            plan_batch(appends, 4, 1, table="lake.raw.orders_staging", **caps)  # type: ignore[arg-type]


def test_replay_max_attempts_must_be_at_least_1(no_spark: None, capsys: pytest.CaptureFixture[str]) -> None:
    for value in ("0", "-2"):
        assert main(["replay", "--topic", "orders", "--conf", CONF, "--max-attempts", value]) == 2
        assert "argument --max-attempts: must be at least 1" in capsys.readouterr().err
    # the library too: 0 would mark every pending row exhausted, for good
    with pytest.raises(ConfigError, match="max_attempts must be at least 1, got 0"):
        run_replay(MagicMock(), load_project(CONF, "local"), "orders", max_attempts=0)


@pytest.mark.parametrize(
    "command",
    [
        ["curate", "--topic", "orders"],
        ["seed", "--topic", "orders"],
        ["replay", "--topic", "orders"],
        ["drift", "--topic", "orders"],
        ["semantic", "--topic", "orders"],
        ["maintain"],
        ["health", "--no-metrics"],
    ],
    ids=lambda c: c[0],
)
def test_a_spark_command_refuses_a_home_that_was_never_initialised(
    command: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """As `lean-ops tables` does (exit 3); Spark used to create an empty catalog there first."""
    started: list[Any] = []
    monkeypatch.setattr("lean_ops_spark.cli.context.build_session", lambda *a, **k: started.append(a))
    home = tmp_path / "never-init"
    assert main([*command, "--conf", CONF, "--home", str(home)]) == 3
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [
        f"lean-ops {command[0]}: error: no catalog at {home}/catalog.db: run `lean-ops init --home {home}` first"
    ]
    assert started == [] and not home.exists()


@pytest.mark.parametrize(
    ("command", "missing"),
    [
        (["seed", "--topic", "orders", "--events", "10"], "lake.raw.orders_staging"),
        (["replay", "--topic", "orders"], "lake.curated.orders, lake.curated.orders_quarantine"),
    ],
    ids=lambda c: c[0] if isinstance(c, list) else "",
)
def test_a_topic_whose_tables_were_never_created_is_named_with_the_init_command(
    command: list[str],
    missing: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """`init --topics clickstream`, then `seed`/`replay` of orders: was exit 4, `unexpected
    AnalysisException: [TABLE_OR_VIEW_NOT_FOUND] ...`, after the work had started."""
    from pyspark.errors import AnalysisException

    from lean_ops_spark.cli.commands import replay as replay_command
    from lean_ops_spark.cli.commands import seed as seed_command

    def spark_fails(*_args: Any, **_kwargs: Any) -> Any:  # what Spark raises, without a JVM
        raise AnalysisException(message="[TABLE_OR_VIEW_NOT_FOUND] The table or view ... cannot be found.")

    spark = MagicMock()
    spark.catalog.tableExists.return_value = False
    monkeypatch.setattr(CliContext, "spark", lambda _self: spark)
    monkeypatch.setattr(seed_command, "append_raw", spark_fails)
    monkeypatch.setattr(replay_command, "run_replay", spark_fails)
    home = tmp_path / "home"
    assert main([*command, "--conf", CONF, "--home", str(home), "--json"]) == 1
    captured = capsys.readouterr()
    message = f"table(s) missing: {missing}: run `lean-ops init --home {home} --topics orders` first"
    assert captured.err.strip().splitlines() == [f"lean-ops {command[0]}: error: {message}"]
    assert _json_error(captured.out)["error"] == {"type": "CatalogError", "message": message}


def test_a_missing_table_error_is_left_alone_when_the_topic_tables_exist(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Another table missing (the check found the topic's tables): Spark's error as it was."""
    from lean_ops_spark.cli.commands import seed as seed_command

    def spark_fails(*_args: Any, **_kwargs: Any) -> Any:
        raise RuntimeError("[TABLE_OR_VIEW_NOT_FOUND] The table or view `other` cannot be found.")

    monkeypatch.setattr(CliContext, "spark", lambda _self: MagicMock())  # tableExists: truthy
    monkeypatch.setattr(seed_command, "append_raw", spark_fails)
    assert main(["seed", "--topic", "orders", "--conf", CONF]) == 4
    assert "unexpected RuntimeError: [TABLE_OR_VIEW_NOT_FOUND]" in capsys.readouterr().err


def test_pipeline_stops_at_once_when_the_jars_were_never_fetched(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, no_spark: None, capsys: pytest.CaptureFixture[str]
) -> None:
    """As the README says (exit 3 at once): it used to walk every topic's GetAllCheckpoints and
    fail only when a topic first needed Spark (or fail each topic on something else)."""
    home = tmp_path / "home"
    home.mkdir()
    (home / "catalog.db").write_bytes(b"")
    jars = tmp_path / "no-jars"
    jars.mkdir()
    monkeypatch.setenv("LEAN_OPS_JARS_DIR", str(jars))
    monkeypatch.delenv("LEAN_OPS_ICEBERG_VERSION", raising=False)
    assert main(["pipeline", "--conf", CONF, "--home", str(home)]) == 3
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err  # no per-topic progress before the error
    assert err[0].startswith(f"lean-ops pipeline: error: missing JVM dependencies in {jars}: ")
    assert "lean-ops setup-jars" in err[0]


def test_init_may_start_spark_on_a_new_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def build_session(*_args: Any, **_kwargs: Any) -> Any:
        raise LedgerError("session requested")  # stands for Spark creating the home

    monkeypatch.setattr("lean_ops_spark.cli.context.build_session", build_session)
    assert main(["init", "--conf", CONF, "--home", str(tmp_path / "new")]) == 1


@pytest.mark.parametrize(
    "argv",
    [
        ["maintain", "--html", "/nonexistent/r.html"],
        ["health", "--html", "/nonexistent/r.html"],
        ["health", "--dashboard-out", "/nonexistent/d.json"],
        ["snowflake", "ddl", "--env", "dev", "--out", "/nonexistent/x.sql"],
    ],
    ids=lambda a: " ".join(a[:2]),
)
def test_an_output_that_cannot_be_written_fails_before_the_work(
    argv: list[str], no_spark: None, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main([*argv, "--conf", CONF, "--json"]) == 2
    captured = capsys.readouterr()
    option, path = argv[-2:]
    assert _json_error(captured.out)["error"] == {
        "type": "ConfigError",
        "message": f"{option} {path}: the folder {Path(path).parent} does not exist",
    }


def test_iam_out_must_be_a_folder_it_can_create(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    assert main(["iam", "--env", "dev", "--conf", CONF, "--out", str(blocker / "policies")]) == 2
    assert f"--out {blocker / 'policies'}: cannot create the folder" in capsys.readouterr().err


def test_a_config_file_that_is_not_utf8_is_named(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    conf = tmp_path / "conf"
    shutil.copytree(CONF, conf)
    profile = conf / "profiles" / "local.yaml"
    profile.write_bytes(profile.read_bytes() + "# caf\xe9\n".encode("latin-1"))
    assert main(["validate", "--conf", str(conf)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and f"{profile} is not UTF-8 text" in err[0]


def test_a_config_file_that_is_not_yaml_gets_its_position_on_the_error_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The one stderr line used to be the parser's first line only, `... not valid YAML: while
    parsing a flow sequence`, without the line and column, which came on the lines after it."""
    conf = tmp_path / "conf"
    shutil.copytree(CONF, conf)
    topic = conf / "topics" / "orders.yaml"
    lines = topic.read_text().splitlines()
    topic.write_text("\n".join([*lines, "key: [unclosed", ""]))
    assert main(["validate", "--conf", str(conf), "--json"]) == 2
    captured = capsys.readouterr()
    assert captured.err.strip().splitlines() == [
        f"lean-ops validate: error: {topic}: not valid YAML: while parsing a flow sequence "
        f"(at line {len(lines) + 1}, column 6): expected ',' or ']', but got '<stream end>' "
        f"(at line {len(lines) + 2}, column 1)"
    ]
    message = _json_error(captured.out)["error"]["message"]
    assert "key: [unclosed" in message  # the whole parser text stays in the JSON document


@pytest.mark.parametrize(
    ("option", "message"),
    [
        (
            ["--error-rate", "2"],
            "argument --error-rate: expected a share between 0 and 1, e.g. 0.05; got '2'",
        ),
        (["--error-rate", "-0.1"], "argument --error-rate: expected a share between 0 and 1"),
        (["--duplicates", "nan"], "argument --duplicates: expected a share between 0 and 1"),
        (["--late", "x"], "argument --late: expected a share between 0 and 1"),
        (
            ["--fault", "missing_key=abc"],
            "argument --fault: the RATE of missing_key must be a share between 0 and 1",
        ),
        (["--fault", "missing_key"], "argument --fault: expected KIND=RATE, e.g. missing_key=0.01"),
        (["--fault", "foo=1"], "argument --fault: expected KIND=RATE with KIND one of malformed_json"),
    ],
)
def test_seed_rates_name_the_option_and_the_range(
    option: list[str], message: str, no_spark: None, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["seed", "--topic", "orders", "--conf", CONF, *option]) == 2
    assert message in capsys.readouterr().err


def test_curate_all_batches_json_reports_the_batches_committed_before_a_failure(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from lean_ops_spark.cli.commands import curate as curate_command

    runs = iter(
        [
            SimpleNamespace(status="committed", backlog_snapshots=3, as_dict=lambda: {"run_id": "r1"}),
            SimpleNamespace(status="committed", backlog_snapshots=1, as_dict=lambda: {"run_id": "r2"}),
        ]
    )

    def run_curation(*_args: Any, **_kwargs: Any) -> Any:
        for run in runs:
            return run
        raise LedgerError("the ledger does not balance")

    monkeypatch.setattr(curate_command, "run_curation", run_curation)
    monkeypatch.setattr(CliContext, "spark", lambda _self: None)
    assert main(["curate", "--topic", "orders", "--conf", CONF, "--all-batches", "--json"]) == 1
    assert json.loads(capsys.readouterr().out) == {
        "ok": False,
        "error": {"type": "LedgerError", "message": "the ledger does not balance"},
        "runs": [{"run_id": "r1"}, {"run_id": "r2"}],
    }


def test_a_closed_stdout_ends_quietly() -> None:
    """`lean-ops validate --json | head -1`: no BrokenPipeError traceback."""
    process = subprocess.Popen(
        [sys.executable, "-m", "lean_ops_spark.cli.main", "validate", "--conf", CONF, "--json"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=REPO,
    )
    assert process.stdout is not None
    process.stdout.close()  # the reader is gone before the command prints
    _, err = process.communicate(timeout=120)
    assert err.decode() == ""
    assert process.returncode == 141
