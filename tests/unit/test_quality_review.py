"""Review of the data-quality suites, no Spark: bounds and values that Great Expectations
would only refuse (or silently pass) when a suite runs are refused when it loads; errors
are reported without the JVM's stack trace; Great Expectations stays out of imports and
out of an INFO log."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import pytest
import yaml

from lean_ops_spark.errors import ConfigError
from lean_ops_spark.quality.suites import parse_suites

WHERE = "quality/semantic/t.yaml"


def parse(expectation_yaml: str) -> Any:
    data = yaml.safe_load(f"topic: t\ntables:\n  t:\n    - {expectation_yaml}\n")
    return parse_suites(data, WHERE, "semantic")


@pytest.mark.parametrize(
    ("expectation", "message"),
    [
        # Great Expectations raised a pydantic ValidationError out of run_suite (after the
        # semantic job had written its branch), or failed the audit, for these
        ("row_count: {min: 5, max: 1}", "tables.t[0].row_count: min (5.0) is greater than max (1.0)"),
        (
            "between: {column: n, min: 10, max: 0}",
            "tables.t[0].between: min (10.0) is greater than max (0.0)",
        ),
        # int(0.5) == 0: an empty table passed a suite asking for at least half a row
        ("row_count: {min: 0.5}", "tables.t[0].row_count.min: expected a whole number of rows, got 0.5"),
        ("row_count: {max: -1}", "tables.t[0].row_count.max: must be at least 0"),
        # every value compares <= NaN in Spark: the expectation passed whatever the column held
        ("between: {column: n, max: .nan}", "tables.t[0].between.max: expected a number, got NaN"),
        # `c IN ('EUR', NULL)` is null, never false: every value passed
        ("in_set: {column: c, values: [EUR, null]}", "null cannot be a value of the set"),
        # already refused before this review (untested): bounds are numbers, a YAML date is not
        ("between: {column: d, min: 2024-01-01}", "tables.t[0].between.min: expected a number"),
        ("between: {column: d, max: '2024-01-01T00:00:00Z'}", "tables.t[0].between.max: expected a number"),
    ],
)
def test_bounds_and_values_that_cannot_work_are_refused_at_load(expectation: str, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse(expectation)
    assert message in str(info.value) and WHERE in str(info.value)


def test_sound_bounds_still_load() -> None:
    (suite,) = parse("row_count: {min: 1.0, max: 1.0}")
    assert (suite.expectations[0].minimum, suite.expectations[0].maximum) == (1.0, 1.0)
    (suite,) = parse("between: {column: n, min: -5, max: .inf}")
    assert suite.expectations[0].minimum == -5.0


def test_an_error_from_the_jvm_is_reported_without_its_stack_trace() -> None:
    from lean_ops_spark.quality.runner import _raised

    trace = "".join(f"\tat org.apache.spark.Frame{i}.run(Frame.scala:{i})\n" for i in range(400))

    def failure(stage: int) -> str:
        return (
            "An error occurred while calling o383.collectToPython.\n"
            f": org.apache.spark.SparkException: Job aborted due to stage failure: Task 1 in stage {stage}.0 "
            f"failed 1 times, most recent failure: Lost task 1.0 in stage {stage}.0 (TID {stage}) "
            "(192.0.2.2 executor driver): java.lang.ArithmeticException: [CAST_OVERFLOW] overflow\n"
            + trace
            + "Driver stacktrace:\n"
            + trace
        )

    plan = '[DATATYPE_MISMATCH.DATA_DIFF_TYPES] Cannot resolve "(s IN (true))".;\n\'Project [s#1]\n+- LogicalRDD\n'
    info = {
        "unexpected_count": {"raised_exception": True, "exception_message": failure(31)},
        "unexpected_values": {"raised_exception": True, "exception_message": failure(32)},
        "other": {"raised_exception": True, "exception_message": plan},
    }
    error = _raised(info)
    assert error == (
        "org.apache.spark.SparkException: a task failed: java.lang.ArithmeticException: [CAST_OVERFLOW] "
        'overflow; [DATATYPE_MISMATCH.DATA_DIFF_TYPES] Cannot resolve "(s IN (true))".;'
    )


def test_great_expectations_is_imported_only_to_run_a_suite_and_does_not_flood_an_info_log() -> None:
    # a job logs at INFO (lean_ops_spark.runtime.jobs); GE's import logged ~200 INFO lines
    script = """
import logging, sys
logging.basicConfig(level=logging.INFO, format="%(name)s: %(message)s")
import lean_ops_spark.quality, lean_ops_spark.quality.runner, lean_ops_spark.quality.check
import lean_ops_spark.semantic.job, lean_ops_spark.cli.main
assert not [m for m in sys.modules if m.startswith("great_expectations")], "GE imported too early"
from lean_ops_spark.quality.runner import ge_expectation
from lean_ops_spark.quality.suites import Expectation
ge_expectation(Expectation("not_null", ("a",)))
assert "great_expectations" in sys.modules
"""
    done = subprocess.run(
        [sys.executable, "-c", script], check=False, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr[-2000:]
    noise = [line for line in done.stderr.splitlines() if line.startswith("great_expectations")]
    assert noise == []
