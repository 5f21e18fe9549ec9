"""The curation job: what ``jobs/curation_job.py`` and ``lean-ops pipeline`` run per topic."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from lean_ops_spark.config.models import ProjectConfig
from lean_ops_spark.curation.pipeline import CurationOptions, run_curation
from lean_ops_spark.errors import ConfigError
from lean_ops_spark.metrics import build_sink

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

__all__ = [
    "OPTIONAL_ARGUMENTS",
    "REQUIRED_ARGUMENTS",
    "check_curation_arguments",
    "positive_int",
    "run_curation_job",
]

REQUIRED_ARGUMENTS = ("topic",)
OPTIONAL_ARGUMENTS = ("run_id", "max_snapshots", "max_records")


def positive_int(text: str) -> int:
    """``text`` as a whole number of at least 1: a run cap, an attempt count.

    Shared by the job's arguments and the CLI's options (``--max-snapshots``...).

    Raises:
        ValueError: not a whole number, or below 1 (the message says which, without the name).
    """
    try:
        number = int(str(text))
    except ValueError:
        raise ValueError(f"must be a whole number, got {text!r}") from None
    if number < 1:
        raise ValueError(f"must be at least 1, got {number}")
    return number


def _positive(arguments: Mapping[str, str], name: str) -> int | None:
    value = arguments.get(name)
    if value in (None, ""):
        return None
    try:
        return positive_int(str(value))
    except ValueError as exc:
        raise ConfigError(f"--{name} {exc}") from None


def check_curation_arguments(config: ProjectConfig, arguments: Mapping[str, str]) -> None:
    """An unknown topic or a bad cap fails before a session starts (``ConfigError``)."""
    if "topic" not in arguments:
        raise ConfigError("the curation job needs --topic")
    config.topic(arguments["topic"])
    _positive(arguments, "max_snapshots")
    _positive(arguments, "max_records")


def run_curation_job(
    spark: SparkSession, config: ProjectConfig, arguments: Mapping[str, str]
) -> Mapping[str, Any]:
    """Curate one batch of ``arguments["topic"]``; metrics go to the profile's sink.

    Arguments (Glue names): ``topic``; optional ``run_id`` (Step Functions passes one so the
    committed snapshot can be found again), ``max_snapshots``, ``max_records``.
    """
    if "topic" not in arguments:
        raise ConfigError("the curation job needs --topic")
    options = CurationOptions(
        max_snapshots=_positive(arguments, "max_snapshots"),
        max_records=_positive(arguments, "max_records"),
        run_id=arguments.get("run_id") or None,
    )
    sink = build_sink(config.profile.metrics, region=config.profile.region)
    return run_curation(spark, config, arguments["topic"], options=options, metrics=sink).as_dict()
