"""Run a suite with Great Expectations 1.x on a Spark DataFrame; typed results.

Great Expectations is imported lazily (the ``dq`` extra): ``import lean_ops_spark`` stays
free of it. Each run uses an ephemeral, in-memory context (no files, no analytics, no
progress bars) on the session that made the DataFrame; GE's own persisting is off and the
frame is cached here for the run, because a suite computes many metrics over it.
"""

from __future__ import annotations

import importlib
import itertools
import logging
import re
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from lean_ops_spark.errors import RuntimeSetupError
from lean_ops_spark.quality.results import DQResult, ExpectationResult
from lean_ops_spark.quality.suites import Expectation, QualitySuite

if TYPE_CHECKING:
    from pyspark.sql import DataFrame

__all__ = ["ge_expectation", "run_suite"]

log = logging.getLogger(__name__)
_names = itertools.count(1)
_INDEX = "lean_ops_index"


def _import_ge(module: str) -> Any:
    """``module`` of Great Expectations (typed Any: its stubs are partial). Its import logs
    ~200 INFO lines (``great_expectations._docs_decorators``), which a job logging at INFO
    would print: its logger is set to WARNING first, unless the application set a level."""
    quiet = logging.getLogger("great_expectations")
    if quiet.level == logging.NOTSET:
        quiet.setLevel(logging.WARNING)
    return importlib.import_module(module)


def ge_expectation(expectation: Expectation) -> Any:
    """The Great Expectations 1.x expectation for one of ours."""
    gxe: Any = _import_ge("great_expectations.expectations")
    column = expectation.columns[0] if expectation.columns else None
    mostly = {"mostly": expectation.mostly} if expectation.mostly is not None else {}
    kind = expectation.kind
    if kind == "not_null":
        return gxe.ExpectColumnValuesToNotBeNull(column=column, **mostly)
    if kind == "unique":
        if len(expectation.columns) > 1:
            return gxe.ExpectCompoundColumnsToBeUnique(column_list=list(expectation.columns))
        return gxe.ExpectColumnValuesToBeUnique(column=column)
    if kind == "in_set":
        return gxe.ExpectColumnValuesToBeInSet(column=column, value_set=list(expectation.values), **mostly)
    if kind == "between":
        return gxe.ExpectColumnValuesToBeBetween(
            column=column, min_value=expectation.minimum, max_value=expectation.maximum, **mostly
        )
    if kind == "regex":
        return gxe.ExpectColumnValuesToMatchRegex(column=column, regex=expectation.pattern, **mostly)
    if kind == "row_count":
        return gxe.ExpectTableRowCountToBeBetween(
            min_value=None if expectation.minimum is None else int(expectation.minimum),
            max_value=None if expectation.maximum is None else int(expectation.maximum),
        )
    raise ValueError(f"unknown expectation kind {kind!r}")


def _context() -> Any:
    try:
        gx: Any = _import_ge("great_expectations")
        base: Any = _import_ge("great_expectations.data_context.types.base")
    except ImportError as exc:
        raise RuntimeSetupError(
            "Great Expectations is not installed: pip install 'lean-ops-spark[dq]' (on Glue, "
            "`lean-ops deploy` adds it to the semantic job's --additional-python-modules)"
        ) from exc
    config = base.DataContextConfig(
        store_backend_defaults=base.InMemoryStoreBackendDefaults(),
        analytics_enabled=False,
        progress_bars=base.ProgressBarsConfig(globally=False),
    )
    return gx.get_context(mode="ephemeral", project_config=config)


def _plain(value: Any) -> Any:
    """JSON-friendly sample values (decimals, dates, rows)."""
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return str(value)


#: The GE expectation types each of our kinds becomes (a result must match its expectation).
_GE_TYPES = {
    "not_null": {"expect_column_values_to_not_be_null"},
    "unique": {"expect_column_values_to_be_unique", "expect_compound_columns_to_be_unique"},
    "in_set": {"expect_column_values_to_be_in_set"},
    "between": {"expect_column_values_to_be_between"},
    "regex": {"expect_column_values_to_match_regex"},
    "row_count": {"expect_table_row_count_to_be_between"},
}


#: Where an exception message stops being the reason: a JVM stack frame, a query plan.
_TRACE_LINE = re.compile(r"^\s*(at |\+- |:- |'|Driver stacktrace:|Caused by:)")
_PY4J_CALL = re.compile(r"^An error occurred while calling [\w.$]+\.?$")
#: Which task failed where: differs per metric, so one cause would be reported once per metric.
_TASK_FAILURE = re.compile(r"Job aborted due to stage failure: .*?\(TID \d+\) \([^)]*\): ")
_MAX_REASON = 600


def _brief(message: str) -> str:
    """The reason in an exception message, without the JVM stack trace or query plan that
    Spark appends (~100 kB for a bad pattern, which the audit's result, its log lines and
    the job's output would carry)."""
    kept: list[str] = []
    for line in message.splitlines():
        if kept and _TRACE_LINE.match(line):
            break
        if not _PY4J_CALL.match(line.strip()):
            kept.append(line.strip().removeprefix(": "))
    text = _TASK_FAILURE.sub("a task failed: ", " ".join(part for part in kept if part)) or message.strip()
    return text if len(text) <= _MAX_REASON else text[: _MAX_REASON - 3] + "..."


#: The GE expectation type of the kinds :func:`_unfit` may refuse without running GE.
_GE_TYPE = {"between": "expect_column_values_to_be_between", "regex": "expect_column_values_to_match_regex"}


def _raised(info: Mapping[str, Any]) -> str | None:
    """Why an expectation could not be evaluated (a missing column, a bad pattern), or None.
    Great Expectations 1.x keys the exception info by metric (one entry per metric that
    raised); a flat ``raised_exception`` is what older releases gave."""
    entries = [info, *(v for v in info.values() if isinstance(v, Mapping))]
    messages = [
        _brief(str(e.get("exception_message") or "raised an exception"))
        for e in entries
        if e.get("raised_exception")
    ]
    return "; ".join(dict.fromkeys(messages)) or None


def _unfit(expectation: Expectation, df: DataFrame) -> str | None:
    """Why ``expectation`` cannot be evaluated on ``df``, found without running it, or None.

    ``between``'s bounds are numbers: Spark compares a string column with them by casting
    each value, and a value that does not cast (``"abc"``, ``"12,50"``) is null, which Great
    Expectations counts as neither expected nor unexpected: the expectation would pass
    whatever the column holds. A ``regex`` is compiled as Spark's ``rlike`` does (Java
    syntax): a bad one would fail a Spark job per metric, each logging its stack traces.
    A missing column is Great Expectations' to report.
    """
    from pyspark.sql.types import NumericType

    if expectation.kind == "between":
        field = next((f for f in df.schema.fields if f.name == expectation.columns[0]), None)
        if field is not None and not isinstance(field.dataType, NumericType):
            return (
                f"between compares numbers, and column {field.name} is {field.dataType.simpleString()} "
                "(cast it in the model, or check it with in_set or regex)"
            )
    if expectation.kind == "regex":
        jvm: Any = df.sparkSession._jvm  # the JVM's regex engine is the one rlike uses
        try:
            jvm.java.util.regex.Pattern.compile(expectation.pattern)
        except Exception as exc:  # py4j's Py4JJavaError, its message the Java exception's
            reason = str(getattr(exc, "java_exception", exc)).splitlines()[0]
            return f"pattern {expectation.pattern!r} is not a valid (Java) regular expression: {reason}"
    return None


def _result(expectation: Expectation, outcome: Any, sample_size: int) -> ExpectationResult:
    assert str(outcome.expectation_config.type) in _GE_TYPES[expectation.kind], "GE result matched wrongly"
    details = dict(outcome.result or {})
    error = _raised(outcome.exception_info or {})
    samples = details.get("partial_unexpected_list") or []
    return ExpectationResult(
        expectation=expectation,
        ge_type=str(outcome.expectation_config.type),
        success=bool(outcome.success),
        element_count=details.get("element_count"),
        unexpected_count=details.get("unexpected_count"),
        unexpected_percent=details.get("unexpected_percent"),
        observed_value=_plain(details.get("observed_value")),
        sample_values=tuple(_plain(v) for v in samples[:sample_size]),
        error=error,
    )


def run_suite(df: DataFrame, suite: QualitySuite, *, table: str, sample_size: int = 5) -> DQResult:
    """Validate ``df`` with ``suite``. Triggers Spark jobs (caches ``df`` for the run).

    Args:
        table: what ``df`` is, for the result (e.g. ``lake.semantic.orders@branch audit``).
        sample_size: how many unexpected values to keep per failed expectation.

    Raises:
        RuntimeSetupError: Great Expectations is not installed.
    """
    started = time.time()
    context = _context()
    gx: Any = importlib.import_module("great_expectations")
    name = f"lean_ops_{next(_names)}"
    source = context.data_sources.add_spark(name=name, persist=False)
    batch_definition = source.add_dataframe_asset(name=suite.table).add_batch_definition_whole_dataframe(
        "all"
    )
    ge_suite = gx.ExpectationSuite(name=suite.name)
    unfit = {i: why for i, e in enumerate(suite.expectations) if (why := _unfit(e, df))}
    for index, expectation in enumerate(suite.expectations):
        if index in unfit:
            continue
        ge = ge_expectation(expectation)
        ge.meta = {**(ge.meta or {}), _INDEX: index}  # GE reorders results; match them back by this
        # GE keeps one of two expectations equal but for meta (not_null(a) and not_null(a)
        # mostly=1.0, its default): a description of each keeps them apart
        ge.description = f"#{index} {expectation.describe()}"
        ge_suite.add_expectation(ge)
    cached = df.persist()
    try:
        batch = batch_definition.get_batch(batch_parameters={"dataframe": cached})
        validation = batch.validate(
            ge_suite, result_format={"result_format": "SUMMARY", "partial_unexpected_count": sample_size}
        )
    finally:
        cached.unpersist()
    by_index = {int((o.expectation_config.meta or {})[_INDEX]): o for o in validation.results}
    results = tuple(
        ExpectationResult(expectation, _GE_TYPE[expectation.kind], False, error=unfit[index])
        if index in unfit
        else _result(expectation, by_index[index], sample_size)
        for index, expectation in enumerate(suite.expectations)
    )
    outcome = DQResult(
        table=table,
        suite=suite.name,
        source=suite.source,
        success=all(r.success for r in results),
        results=results,
        duration_seconds=time.time() - started,
    )
    log.info("data quality %s: %s", table, outcome.summary())
    return outcome
