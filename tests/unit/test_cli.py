"""The CLI's contract without Spark: help, JSON output, one-line errors and exit codes."""

from __future__ import annotations

import argparse
import json
import shlex
from pathlib import Path
from unittest.mock import MagicMock

import pytest

from lean_ops_spark.cli.main import build_parser, main

CONF = str(Path(__file__).resolve().parents[2] / "conf")


def test_every_command_has_the_common_options() -> None:
    parser = build_parser()
    for command in ("setup-jars", "validate", "init", "tables"):
        args = parser.parse_args([command, "--profile", "glue", "--conf", "c", "--home", "h", "--json"])
        assert (args.profile, args.conf, args.home, args.json) == ("glue", "c", "h", True)


def test_snowflake_takes_the_common_options_before_its_subcommand_too() -> None:
    """`lean-ops snowflake --json ddl ...` used to be refused (`unrecognized arguments: --json`)
    though every command takes them before or after its name."""
    parser = build_parser()
    for argv in (
        ["snowflake", "--json", "--conf", "c", "ddl", "--env", "dev"],
        ["snowflake", "ddl", "--env", "dev", "--json", "--conf", "c"],
        ["--json", "--conf", "c", "snowflake", "refresh", "--env", "dev"],
    ):
        args = parser.parse_args(argv)
        assert (args.json, args.conf, args.env) == (True, "c", "dev"), argv


def _command_parsers(parser: argparse.ArgumentParser, prefix: str = "") -> dict[str, argparse.ArgumentParser]:
    found: dict[str, argparse.ArgumentParser] = {}
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                found[prefix + name] = sub
                found.update(_command_parsers(sub, f"{prefix}{name} "))
    return found


def test_every_command_help_ends_with_an_example_that_parses(capsys: pytest.CaptureFixture[str]) -> None:
    commands = _command_parsers(build_parser())
    assert {"curate", "seed", "maintain", "snowflake ddl", "snowflake refresh"} <= set(commands)
    for name in commands:
        with pytest.raises(SystemExit):
            main([*name.split(), "--help"])
        last = capsys.readouterr().out.strip().splitlines()[-1]
        assert last.startswith(f"example: lean-ops {name.split()[0]} "), (name, last)
        example = shlex.split(last.removeprefix("example: lean-ops "))
        assert build_parser().parse_args(example).command == name.split()[0], name


def test_common_options_may_come_before_the_command(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("LEAN_OPS_PROFILE", "LEAN_OPS_CONF", "LEAN_OPS_HOME"):
        monkeypatch.delenv(name, raising=False)
    parser = build_parser()
    before = parser.parse_args(["--home", "h", "--json", "--conf", "c", "curate", "--topic", "orders"])
    assert (before.command, before.home, before.json, before.conf, before.profile) == (
        "curate",
        "h",
        True,
        "c",
        "local",
    )
    # given on both sides, the one after the command wins; given nowhere, the default
    both = parser.parse_args(["--home", "h", "tables", "--home", "h2"])
    assert (both.home, both.json, both.conf) == ("h2", False, "conf")


def test_help_explains_commands(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    for command in ("setup-jars", "validate", "init", "tables"):
        assert command in out


def test_validate_json_lists_topics(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", "--conf", CONF, "--json"]) == 0
    document = json.loads(capsys.readouterr().out)
    assert document["ok"] is True
    assert {t["topic"] for t in document["topics"]} == {"orders", "clickstream"}


def test_validate_checks_that_every_suite_names_a_table_it_can_check(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import shutil

    conf = tmp_path / "conf"
    shutil.copytree(CONF, conf)
    assert main(["validate", "--conf", str(conf), "--json"]) == 0
    orders = {t["topic"]: t for t in json.loads(capsys.readouterr().out)["topics"]}["orders"]
    assert (orders["semantic_models"], orders["quality_suites"]) == (2, 3)
    # a typo in a suite's table name: that suite would never run, and its table publish unchecked
    (conf / "quality" / "semantic" / "orders.yaml").write_text(
        "topic: orders\ntables:\n  order:\n    - row_count: {min: 1}\n"
    )
    assert main(["validate", "--conf", str(conf)]) == 2
    err = capsys.readouterr().err
    assert "a suite for table 'order', which is not a semantic model of topic 'orders'" in err
    assert "orders, orders_daily_revenue" in err and "quality/semantic/orders.yaml" in err


def test_validate_refuses_an_entity_model_keyed_by_something_else_than_the_curated_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import shutil

    conf = tmp_path / "conf"
    shutil.copytree(CONF, conf)
    models = conf / "semantic" / "orders.yaml"
    models.write_text(models.read_text().replace("key: [order_id]", "key: [customer_id]", 1))
    assert main(["validate", "--conf", str(conf)]) == 2
    err = capsys.readouterr().err
    assert "orders" in err and "customer_id" in err


def test_config_error_is_one_line_and_exit_code_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", "--conf", CONF, "--profile", "prod"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert err[0].startswith("lean-ops validate: error: profile 'prod' not found")


def test_json_error_document(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["init", "--conf", CONF, "--json", "--topics", "payments"]) == 2
    document = json.loads(capsys.readouterr().out)
    assert document == {
        "ok": False,
        "error": {
            "type": "ConfigError",
            "message": "unknown topic 'payments' (configured topics: clickstream, orders)",
        },
    }


def test_tables_before_init_says_to_run_init(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["tables", "--conf", CONF, "--home", str(tmp_path)]) == 3
    # the init of the home it was given: a plain `lean-ops init` would create ./.lean-ops
    assert f"run `lean-ops init --home {tmp_path}` first" in capsys.readouterr().err


def test_tables_names_the_init_of_the_home_it_was_given(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A plain `lean-ops init` would create ./.lean-ops, not the tables of `--home`."""
    from pyiceberg.catalog.sql import SqlCatalog

    home = tmp_path / "home"
    home.mkdir()
    SqlCatalog("lake", uri=f"sqlite:///{home}/catalog.db", warehouse=f"file://{home}/warehouse")
    assert main(["tables", "--conf", CONF, "--home", str(home)]) == 0
    # (the semantic tables' line follows: their first semantic run creates them, not init)
    assert f"6 table(s) missing: run `lean-ops init --home {home}`" in capsys.readouterr().out.splitlines()


def test_seed_without_a_seed_sends_new_keys_and_message_ids(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A second `lean-ops seed` must not send the first one's message ids (they would be re-deliveries)
    and keys again at another time; `--seed` with `--now` repeats a run exactly."""
    from lean_ops_spark.cli.commands import seed as seed_command
    from lean_ops_spark.cli.context import CliContext

    written: list[list[str]] = []

    def append(_spark, _table, records, appends):  # type: ignore[no-untyped-def]
        written.append([r.message_id for r in records])
        return list(range(appends))

    monkeypatch.setattr(seed_command, "append_raw", append)
    monkeypatch.setattr(CliContext, "spark", lambda self: MagicMock())  # every table exists
    args = [
        "seed",
        "--topic",
        "orders",
        "--events",
        "40",
        "--conf",
        CONF,
        "--now",
        "2026-11-20T12:00:00+00:00",
    ]
    documents = []
    for extra in ([], [], ["--seed", "424242"], ["--seed", "424242"]):
        assert main([*args, *extra, "--json"]) == 0
        documents.append(json.loads(capsys.readouterr().out))
    seeds = [d["seed"] for d in documents]
    assert seeds[0] != seeds[1] and seeds[2:] == [424242, 424242]
    assert not set(written[0]) & set(written[1])  # new message ids (and keys: ord-<seed>-<n>)
    assert written[2] == written[3]  # the same seed and clock: the same events
    assert main([*args]) == 0
    assert "(seed " in capsys.readouterr().out
