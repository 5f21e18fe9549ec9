"""Suite files, their strict loader, the GE mapping and the result texts: no Spark."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from lean_ops_spark.config.sources import open_config_source
from lean_ops_spark.errors import ConfigError
from lean_ops_spark.quality.check import parse_table_name
from lean_ops_spark.quality.results import DQResult, ExpectationResult
from lean_ops_spark.quality.suites import Expectation, find_suite, load_suites, parse_suites

CONF = Path(__file__).resolve().parents[2] / "conf"


def test_shipped_suites_load_for_both_layers_and_topics() -> None:
    source = open_config_source(CONF)
    for topic in ("orders", "clickstream"):
        assert topic in load_suites(source, "curated", topic)
        assert topic in load_suites(source, "semantic", topic)
    revenue = find_suite(source, "semantic", "orders_daily_revenue")
    assert revenue is not None and revenue.name == "semantic.orders_daily_revenue"
    assert Expectation("unique", ("order_date", "currency")) in revenue.expectations
    assert find_suite(source, "semantic", "nope") is None
    assert load_suites(source, "semantic", "nothing") == {}


def test_the_short_and_long_forms() -> None:
    (suite,) = parse_suites(
        {
            "topic": "t",
            "tables": {
                "t": [
                    {"not_null": ["a", "b"]},
                    {"not_null": {"columns": "c", "mostly": 0.9}},
                    {"unique": "a"},
                    {"in_set": {"column": "k", "values": ["x", 1]}},
                    {"between": {"column": "n", "max": 5}},
                    {"regex": {"column": "s", "pattern": "^a"}},
                    {"row_count": {"min": 1}},
                ]
            },
        },
        "f",
        "curated",
    )
    assert [e.describe() for e in suite.expectations] == [
        "not_null(a)",
        "not_null(b)",
        "not_null(c) mostly=0.9",
        "unique(a)",
        "in_set(k) values=['x', 1]",
        "between(n) [None, 5.0]",
        "regex(s) pattern='^a'",
        "row_count(table) [1.0, None]",
    ]


@pytest.mark.parametrize(
    ("tables", "message"),
    [
        ({"t": [{"looks_fine": ["a"]}]}, "unknown expectation 'looks_fine'"),
        ({"t": [{"not_null": ["a"], "unique": ["a"]}]}, "expected one of not_null"),
        ({"t": [{"between": {"column": "a"}}]}, "between needs min, max or both"),
        ({"t": [{"in_set": {"column": "a", "values": [[1]]}}]}, "expected a list of scalar values"),
        ({"t": [{"not_null": {"columns": ["a"], "mostly": 2}}]}, "must be at most 1.0"),
        ({"t": [{"regex": {"column": "a", "pattern": "x", "flags": "i"}}]}, "unknown key(s) flags"),
        ({"T": [{"not_null": ["a"]}]}, "is not a valid identifier"),
        ({"t": []}, "expected a non-empty list"),
        # Great Expectations keeps one of two equal expectations: its result would be missing
        ({"t": [{"not_null": ["a", "b"]}, {"not_null": ["a"]}]}, "tables.t[1]: not_null(a) is already in"),
    ],
)
def test_invalid_suites_name_the_file_and_key(tables: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_suites({"topic": "t", "tables": tables}, "quality/semantic/t.yaml", "semantic")
    assert message in str(info.value) and "quality/semantic/t.yaml" in str(info.value)


def test_table_names_are_layer_dot_table(project_config) -> None:
    ref = parse_table_name(project_config, "semantic.orders_daily_revenue")
    assert (ref.database, ref.name) == (project_config.profile.databases.semantic, "orders_daily_revenue")
    assert (
        parse_table_name(project_config, "curated.orders").database
        == project_config.profile.databases.curated
    )
    with pytest.raises(ConfigError, match=r"expected <layer>\.<table>"):
        parse_table_name(project_config, "raw.orders_staging")


def test_results_say_which_expectations_failed_with_samples() -> None:
    failed = ExpectationResult(
        Expectation("between", ("item_count",), maximum=10),
        "expect_column_values_to_be_between",
        False,
        element_count=3,
        unexpected_count=1,
        unexpected_percent=33.3333,
        sample_values=(20000,),
    )
    passed = ExpectationResult(
        Expectation("row_count", minimum=1), "expect_table_row_count_to_be_between", True, observed_value=3
    )
    result = DQResult("lake.s.orders@b", "semantic.orders", False, (failed, passed))
    assert (
        result.summary()
        == "1 of 2 expectations failed: between(item_count) [None, 10]: 1 unexpected (33.3%), e.g. [20000]"
    )
    document = result.as_dict()
    assert document["failed"] == 1 and document["results"][0]["sample_values"] == [20000]
    assert passed.describe() == "row_count(table) [1, None]: observed 3"


def test_every_expectation_kind_maps_to_a_great_expectations_class() -> None:
    from lean_ops_spark.quality.runner import ge_expectation

    kinds = {
        Expectation("not_null", ("a",), mostly=0.5): "expect_column_values_to_not_be_null",
        Expectation("unique", ("a",)): "expect_column_values_to_be_unique",
        Expectation("unique", ("a", "b")): "expect_compound_columns_to_be_unique",
        Expectation("in_set", ("a",), values=("x",)): "expect_column_values_to_be_in_set",
        Expectation("between", ("a",), minimum=0): "expect_column_values_to_be_between",
        Expectation("regex", ("a",), pattern="^x"): "expect_column_values_to_match_regex",
        Expectation("row_count", minimum=1, maximum=5): "expect_table_row_count_to_be_between",
    }
    for expectation, ge_type in kinds.items():
        assert ge_expectation(expectation).expectation_type == ge_type
