"""Snowflake DDL text: golden files for the Glue and Glue-REST forms, the real syntax only."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest

from lean_ops_spark.cli.main import main
from lean_ops_spark.governance.context import load_governance_context
from lean_ops_spark.governance.errors import SnowflakeError
from lean_ops_spark.governance.snowflake import (
    SnowflakeTarget,
    create_table_sql,
    ddl_statements,
    refresh_table_sql,
    render_script,
    sql_identifier,
    sql_string,
)
from tests.unit.test_governance_config import governance_doc, write_project

GOLDEN = Path(__file__).parent / "golden"


def assert_golden(name: str, text: str) -> None:
    """Compare with ``tests/unit/golden/<name>``; ``LEAN_OPS_UPDATE_GOLDEN=1`` rewrites it."""
    path = GOLDEN / name
    if os.environ.get("LEAN_OPS_UPDATE_GOLDEN") == "1":
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    assert path.is_file(), f"{path} missing: run with LEAN_OPS_UPDATE_GOLDEN=1 once and review it"
    assert text == path.read_text(encoding="utf-8")


assert_golden.__test__ = False  # type: ignore[attr-defined]


def _target(tmp_path: Path, **snowflake: object) -> tuple[SnowflakeTarget, list[str]]:
    context = load_governance_context(write_project(tmp_path, gov_doc=governance_doc(**snowflake)), "test")
    return context.snowflake(), [t.name for t in context.semantic_tables]


def test_ddl_for_the_glue_catalog_matches_the_golden_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    conf = write_project(tmp_path)
    out = tmp_path / "ddl.sql"
    assert main(["snowflake", "ddl", "--env", "test", "--conf", str(conf), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert printed == out.read_text()
    assert_golden("snowflake_ddl_glue.sql", printed)


def test_ddl_for_the_glue_rest_endpoint_with_vended_credentials(tmp_path: Path) -> None:
    target, tables = _target(
        tmp_path,
        external_volume=None,
        catalog_integration={
            "name": "LEAN_OPS_TEST_GLUE_REST",
            "type": "glue_rest",
            "role_arn": "arn:aws:iam::123456789012:role/snowflake",
            "access_delegation": "vended_credentials",
            "region": "eu-west-1",
            "catalog_id": "210987654321",
        },
        auto_refresh=True,
        replace_invalid_characters=True,
        tables={"daily_sessions": {"name": "DAILY_SESSIONS_V1", "auto_refresh": False}},
    )
    script = render_script(ddl_statements(target, tables), ["glue_rest + vended credentials"])
    assert "EXTERNAL_VOLUME" not in script  # the catalog vends the credentials
    assert_golden("snowflake_ddl_glue_rest.sql", script)


def test_only_real_snowflake_syntax_is_generated(tmp_path: Path) -> None:
    target, tables = _target(tmp_path)
    statements = ddl_statements(target, tables)
    text = render_script(statements)
    assert "EXTERNAL ICEBERG" not in text and "CATALOG_SYNC" not in text
    assert [s.kind for s in statements] == ["catalog_integration", "create_table", "create_table"]
    for statement in statements[1:]:
        assert re.match(r"CREATE ICEBERG TABLE IF NOT EXISTS ANALYTICS\.LAKEHOUSE\.\w+\n", statement.sql)
        assert f"CATALOG_TABLE_NAME = '{statement.table}'" in statement.sql
        assert "CATALOG = 'LEAN_OPS_TEST_GLUE'" in statement.sql
    # Glue is the catalog: the refresh names no metadata file
    assert refresh_table_sql(target, "lakehouse_semantic.customer_orders") == (
        "ALTER ICEBERG TABLE ANALYTICS.LAKEHOUSE.customer_orders REFRESH"
    )


def test_a_catalog_integration_owned_by_an_admin_is_left_out(tmp_path: Path) -> None:
    doc = governance_doc()
    doc["snowflake"]["catalog_integration"]["create"] = False
    context = load_governance_context(write_project(tmp_path, gov_doc=doc), "test")
    statements = ddl_statements(context.snowflake(), ["customer_orders"])
    assert [s.kind for s in statements] == ["create_table"]


def test_names_outside_the_semantic_database_or_overrides_of_unknown_tables_fail(tmp_path: Path) -> None:
    target, tables = _target(tmp_path, tables={"gone": {"auto_refresh": True}})
    with pytest.raises(SnowflakeError, match=r"snowflake\.tables: gone not among the semantic tables"):
        ddl_statements(target, tables)
    with pytest.raises(
        SnowflakeError, match=r"'lakehouse_curated\.orders' is not a table of the semantic database"
    ):
        create_table_sql(target, "lakehouse_curated.orders")


def test_reserved_words_are_quoted_upper_case_and_other_names_stay_unquoted() -> None:
    """Unquoted ``order`` is a syntax error; ``"ORDER"`` is the object unquoted ``order`` would be
    (Snowflake stores and resolves unquoted identifiers upper case), ``"order"`` another one."""
    for name in ("customer_orders", "ANALYTICS", "Lakehouse", "_x$1", "orders", "selection"):
        assert sql_identifier(name) == name
    for name, quoted in (("order", '"ORDER"'), ("Group", '"GROUP"'), ("values", '"VALUES"')):
        assert sql_identifier(name) == quoted


def test_a_semantic_table_named_like_a_reserved_word_gives_valid_ddl(tmp_path: Path) -> None:
    target, _tables = _target(tmp_path)
    create = create_table_sql(target, "order")
    assert create.startswith('CREATE ICEBERG TABLE IF NOT EXISTS ANALYTICS.LAKEHOUSE."ORDER"\n')
    assert "  CATALOG_TABLE_NAME = 'order'\n" in create  # the Glue table: a string, lower case
    assert refresh_table_sql(target, "lakehouse_semantic.values") == (
        'ALTER ICEBERG TABLE ANALYTICS.LAKEHOUSE."VALUES" REFRESH'
    )
    statements = ddl_statements(target, ["select", "customer_orders"])
    assert [s.sql.splitlines()[0] for s in statements] == [
        "CREATE CATALOG INTEGRATION IF NOT EXISTS LEAN_OPS_TEST_GLUE",
        'CREATE ICEBERG TABLE IF NOT EXISTS ANALYTICS.LAKEHOUSE."SELECT"',
        "CREATE ICEBERG TABLE IF NOT EXISTS ANALYTICS.LAKEHOUSE.customer_orders",  # as before
    ]


def test_reserved_words_in_the_configured_snowflake_names_are_quoted(tmp_path: Path) -> None:
    target, _tables = _target(
        tmp_path,
        database="analytics",
        schema="table",
        catalog_integration={
            "name": "group",
            "type": "glue",
            "role_arn": "arn:aws:iam::123456789012:role/sf",
        },
        tables={"customer_orders": {"name": "order"}},
    )
    statements = ddl_statements(target, ["customer_orders"])
    assert statements[0].sql.splitlines()[0] == 'CREATE CATALOG INTEGRATION IF NOT EXISTS "GROUP"'
    assert statements[1].sql.splitlines()[0] == 'CREATE ICEBERG TABLE IF NOT EXISTS analytics."TABLE"."ORDER"'
    assert "  CATALOG_TABLE_NAME = 'customer_orders'\n" in statements[1].sql
    assert (
        refresh_table_sql(target, "customer_orders")
        == 'ALTER ICEBERG TABLE analytics."TABLE"."ORDER" REFRESH'
    )


def test_string_values_are_quoted_and_escaped() -> None:
    assert sql_string("it's") == "'it''s'"
    assert sql_string("a\\b") == "'a\\\\b'"


def test_cli_ddl_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    conf = write_project(tmp_path)
    assert main(["snowflake", "ddl", "--env", "test", "--conf", str(conf), "--json"]) == 0
    document = json.loads(capsys.readouterr().out)
    assert [(s["kind"], s["table"]) for s in document["statements"]] == [
        ("catalog_integration", None),
        ("create_table", "customer_orders"),
        ("create_table", "daily_sessions"),
    ]


def test_cli_without_a_snowflake_section_says_so(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    doc = governance_doc()
    del doc["snowflake"]
    del doc["lake_formation"]["grants"]["snowflake"]
    conf = write_project(tmp_path, gov_doc=doc)
    assert main(["snowflake", "ddl", "--env", "test", "--conf", str(conf)]) == 2  # a config error
    assert "no snowflake: section" in capsys.readouterr().err
