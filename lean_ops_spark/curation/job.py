"""The curation job: what ``jobs/curation_job.py`` and ``lean-ops pipeline`` run per topic.

With ``--replay true`` the same job replays the topic's pending RETRY quarantine rows instead
(:func:`~lean_ops_spark.curation.replay.run_replay`, what ``lean-ops replay`` runs locally):
on Glue, after a contract fix is deployed, ``aws glue start-job-run --job-name <curation job>
--arguments '{"--topic": "orders", "--replay": "true"}'``. It writes the tables a curation run
writes, so it needs no job, role or grant of its own.
"""

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
OPTIONAL_ARGUMENTS = ("run_id", "max_snapshots", "max_records", "replay", "max_attempts")
#: Arguments of a curation run that a replay does not take (it reads quarantine, not raw).
CURATION_ONLY_ARGUMENTS = ("max_snapshots", "max_records")


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


def _replay(arguments: Mapping[str, str]) -> bool:
    """``--replay``: ``true`` or ``false`` (any case; absent or empty is false).

    Raises:
        ConfigError: another value, or a curation-only argument given with ``--replay true``,
            or ``--max_attempts`` without it.
    """
    text = str(arguments.get("replay") or "false").strip().lower()
    if text not in ("true", "false"):
        raise ConfigError(f"--replay must be true or false, got {arguments['replay']!r}")
    replay = text == "true"
    if replay:
        given = [f"--{name}" for name in CURATION_ONLY_ARGUMENTS if arguments.get(name) not in (None, "")]
        if given:
            raise ConfigError(
                f"{' and '.join(given)} cap a curation run's raw read; a replay (--replay true) reads "
                "every pending RETRY row of the quarantine: leave them out"
            )
    elif arguments.get("max_attempts") not in (None, ""):
        raise ConfigError(
            "--max_attempts is a replay's (with --replay true); a curation run does not take it"
        )
    return replay


def check_curation_arguments(config: ProjectConfig, arguments: Mapping[str, str]) -> None:
    """An unknown topic, a bad cap or a bad replay option fails before a session starts
    (``ConfigError``)."""
    if "topic" not in arguments:
        raise ConfigError("the curation job needs --topic")
    config.topic(arguments["topic"])
    _positive(arguments, "max_snapshots")
    _positive(arguments, "max_records")
    _replay(arguments)
    _positive(arguments, "max_attempts")


def run_curation_job(
    spark: SparkSession, config: ProjectConfig, arguments: Mapping[str, str]
) -> Mapping[str, Any]:
    """Curate one batch of ``arguments["topic"]`` (or, with ``replay`` true, replay its
    pending RETRY quarantine rows); metrics go to the profile's sink.

    Arguments (Glue names): ``topic``; optional ``run_id`` (Step Functions passes one so the
    committed snapshot can be found again), ``max_snapshots``, ``max_records``; ``replay``
    (``true``/``false``) and ``max_attempts`` (a replay's, default :data:`~lean_ops_spark.curation.replay.DEFAULT_MAX_ATTEMPTS`).
    """
    if "topic" not in arguments:
        raise ConfigError("the curation job needs --topic")
    sink = build_sink(config.profile.metrics, region=config.profile.region)
    if _replay(arguments):
        from lean_ops_spark.curation.replay import DEFAULT_MAX_ATTEMPTS, run_replay

        result = run_replay(
            spark,
            config,
            arguments["topic"],
            run_id=arguments.get("run_id") or None,
            max_attempts=_positive(arguments, "max_attempts") or DEFAULT_MAX_ATTEMPTS,
            metrics=sink,
        )
        return {"mode": "replay", **result.as_dict()}
    options = CurationOptions(
        max_snapshots=_positive(arguments, "max_snapshots"),
        max_records=_positive(arguments, "max_records"),
        run_id=arguments.get("run_id") or None,
    )
    return run_curation(spark, config, arguments["topic"], options=options, metrics=sink).as_dict()
