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


def ge_expectation(expectation: Expectation) -> Any:
    """The Great Expectations 1.x expectation for one of ours."""
    gxe: Any = importlib.import_module("great_expectations.expectations")  # typed Any: GE's stubs are partial
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
        gx: Any = importlib.import_module("great_expectations")
        base: Any = importlib.import_module("great_expectations.data_context.types.base")
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


def _raised(info: Mapping[str, Any]) -> str | None:
    """Why an expectation could not be evaluated (a missing column, a bad pattern), or None.
    Great Expectations 1.x keys the exception info by metric (one entry per metric that
    raised); a flat ``raised_exception`` is what older releases gave."""
    entries = [info, *(v for v in info.values() if isinstance(v, Mapping))]
    messages = [
        str(e.get("exception_message") or "raised an exception") for e in entries if e.get("raised_exception")
    ]
    return "; ".join(dict.fromkeys(messages)) or None


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
    for index, expectation in enumerate(suite.expectations):
        ge = ge_expectation(expectation)
        ge.meta = {**(ge.meta or {}), _INDEX: index}  # GE reorders results; match them back by this
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
        _result(expectation, by_index[index], sample_size)
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
