"""Metric sinks: one small interface, a log line locally, CloudWatch on AWS.

Library code takes a :class:`MetricSink` and calls ``emit(name, value, unit, dimensions)``;
the caller (CLI, job) picks the sink from the profile with :func:`build_sink` and calls
``flush()`` at the end. Dimensions identify *what* is measured (a table, an operation),
never *which run* measured it: every dimension combination is a billed CloudWatch metric,
so run ids, snapshot ids and timestamps are refused as dimensions.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Protocol

from lean_ops_spark.config.models import MetricsSettings
from lean_ops_spark.errors import RuntimeSetupError

__all__ = [
    "CLOUDWATCH_BATCH_SIZE",
    "CloudWatchSink",
    "LogSink",
    "MemorySink",
    "Metric",
    "MetricSink",
    "NullSink",
    "build_sink",
]

#: PutMetricData accepts at most 1000 metrics per call.
CLOUDWATCH_BATCH_SIZE = 1000
#: At most this many metrics wait in a CloudWatch sink after failed sends (the oldest go first).
MAX_UNSENT = 10 * CLOUDWATCH_BATCH_SIZE
#: CloudWatch allows at most 30 dimensions per metric.
MAX_DIMENSIONS = 30
#: CloudWatch's units (StandardUnit), the ones this project uses first.
UNITS = frozenset(
    {
        "Count",
        "Bytes",
        "Seconds",
        "Milliseconds",
        "Percent",
        "None",
        "Count/Second",
        "Bytes/Second",
        "Kilobytes",
        "Megabytes",
        "Gigabytes",
        "Microseconds",
    }
)
#: Dimension names that would make one billed metric per run (normalised: lower case, no _ - .).
_PER_RUN_DIMENSIONS = frozenset({"runid", "jobrunid", "executionid", "snapshotid", "timestamp", "batchid"})

_log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Metric:
    """One data point."""

    name: str
    value: float
    unit: str = "None"
    dimensions: tuple[tuple[str, str], ...] = ()
    timestamp: datetime | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "value": self.value,
            "unit": self.unit,
            "dimensions": dict(self.dimensions),
        }


def make_metric(
    name: str,
    value: float,
    unit: str = "None",
    dimensions: Mapping[str, str] | None = None,
    timestamp: datetime | None = None,
) -> Metric:
    """Validate and build a :class:`Metric`.

    Raises:
        ValueError: unknown unit, too many dimensions, an empty name or value, or a per-run
            dimension such as ``run_id``.
    """
    if not name:
        raise ValueError("a metric needs a name")
    if unit not in UNITS:
        raise ValueError(f"metric {name}: unknown CloudWatch unit {unit!r}")
    dims = tuple(sorted((str(k), str(v)) for k, v in (dimensions or {}).items()))
    if len(dims) > MAX_DIMENSIONS:
        raise ValueError(f"metric {name}: {len(dims)} dimensions, CloudWatch allows {MAX_DIMENSIONS}")
    for key, val in dims:
        if not key or not val:
            raise ValueError(f"metric {name}: dimension {key!r}={val!r} needs a name and a value")
        if key.lower().replace("_", "").replace("-", "").replace(".", "") in _PER_RUN_DIMENSIONS:
            raise ValueError(
                f"metric {name}: {key!r} is per run; as a dimension it would create one billed "
                "metric per run (log it instead)"
            )
    return Metric(name, float(value), unit, dims, timestamp)


class MetricSink(Protocol):
    """Where metrics go. ``emit`` may buffer; ``flush`` sends what is buffered."""

    def emit(
        self, name: str, value: float, unit: str = "None", dimensions: Mapping[str, str] | None = None
    ) -> None: ...

    def flush(self) -> None: ...


class NullSink:
    """Drops every metric (``metrics.sink: none``)."""

    def emit(
        self, name: str, value: float, unit: str = "None", dimensions: Mapping[str, str] | None = None
    ) -> None:
        make_metric(name, value, unit, dimensions)  # same validation everywhere

    def flush(self) -> None:
        return None


@dataclass
class MemorySink:
    """Keeps metrics in a list (tests, and callers that want to show what was emitted)."""

    metrics: list[Metric] = field(default_factory=list)

    def emit(
        self, name: str, value: float, unit: str = "None", dimensions: Mapping[str, str] | None = None
    ) -> None:
        self.metrics.append(make_metric(name, value, unit, dimensions))

    def flush(self) -> None:
        return None

    def values(self, name: str, **dimensions: str) -> list[float]:
        """Values of ``name`` whose dimensions include ``dimensions``."""
        return [
            m.value
            for m in self.metrics
            if m.name == name and all(dict(m.dimensions).get(k) == v for k, v in dimensions.items())
        ]


@dataclass
class LogSink:
    """Writes each metric as one JSON line on the ``lean_ops_spark.metrics`` logger (local profile)."""

    namespace: str = "LeanOps"
    level: int = logging.INFO
    logger: logging.Logger = field(default_factory=lambda: _log)

    def emit(
        self, name: str, value: float, unit: str = "None", dimensions: Mapping[str, str] | None = None
    ) -> None:
        metric = make_metric(name, value, unit, dimensions)
        self.logger.log(
            self.level, "metric %s", json.dumps({"namespace": self.namespace, **metric.as_dict()})
        )

    def flush(self) -> None:
        return None


@dataclass
class CloudWatchSink:
    """Buffers metrics and sends them with ``PutMetricData``, at most 1000 per call.

    Args:
        namespace: the CloudWatch namespace (``profile.metrics.namespace``).
        client: a boto3 CloudWatch client (tests pass a moto one); made lazily otherwise.
        region: region for the lazily made client.
    """

    namespace: str
    client: Any = None
    region: str | None = None
    batch_size: int = CLOUDWATCH_BATCH_SIZE
    _buffer: list[Metric] = field(default_factory=list, init=False, repr=False)
    calls: int = field(default=0, init=False)
    failed_calls: int = field(default=0, init=False)

    def __post_init__(self) -> None:
        if not 1 <= self.batch_size <= CLOUDWATCH_BATCH_SIZE:
            raise ValueError(f"batch_size must be between 1 and {CLOUDWATCH_BATCH_SIZE}")

    def emit(
        self, name: str, value: float, unit: str = "None", dimensions: Mapping[str, str] | None = None
    ) -> None:
        metric = make_metric(name, value, unit, dimensions, datetime.now(timezone.utc))
        if not _storable(metric.value):
            # CloudWatch refuses the whole call for it: buffered, it would block every metric
            # behind it at each flush. Raising would fail a run whose data is committed.
            _log.warning(
                "metric %s %s=%r: CloudWatch cannot store this value (NaN, infinite, or a "
                "magnitude beyond 2**360 or below 2**-360); not sent",
                self.namespace,
                name,
                metric.value,
            )
            return
        self._buffer.append(metric)
        if len(self._buffer) >= self.batch_size:
            self.flush()

    def flush(self) -> None:
        """Send everything buffered (several calls if needed).

        A failed call (throttling, access denied, no network, no region to make the client
        in) does not raise: metrics must not fail a run whose data is committed, nor replace the
        error of one that failed. It is logged as a warning, and what was not sent stays buffered
        for the next flush (at most :data:`MAX_UNSENT` metrics, the oldest dropped first). A call
        CloudWatch rejects as invalid would be rejected again: its metrics are dropped (logged).

        Raises:
            RuntimeSetupError: boto3 is missing.
        """
        while self._buffer:
            batch = self._buffer[: self.batch_size]
            try:
                client = self._client()
                client.put_metric_data(Namespace=self.namespace, MetricData=[_metric_datum(m) for m in batch])
            except RuntimeSetupError:
                raise
            except Exception as exc:  # any failure to send: keep the metrics, say so
                if _invalid_request(exc):
                    self.failed_calls += 1
                    del self._buffer[: len(batch)]
                    _log.warning(
                        "CloudWatch namespace %s rejected %d metric(s) as invalid (%s); dropped them",
                        self.namespace,
                        len(batch),
                        str(exc).splitlines()[0] if str(exc) else type(exc).__name__,
                    )
                    continue
                self.failed_calls += 1
                dropped = max(0, len(self._buffer) - MAX_UNSENT)
                del self._buffer[:dropped]
                _log.warning(
                    "could not send %d metric(s) to CloudWatch namespace %s (%s: %s); kept %d for the "
                    "next flush%s",
                    len(batch),
                    self.namespace,
                    type(exc).__name__,
                    str(exc).splitlines()[0] if str(exc) else "",
                    len(self._buffer),
                    f", dropped the {dropped} oldest" if dropped else "",
                )
                return
            del self._buffer[: len(batch)]
            self.calls += 1

    def _client(self) -> Any:
        if self.client is None:
            try:
                import boto3
            except ImportError as exc:
                raise RuntimeSetupError("boto3 is not installed: pip install 'lean-ops-spark[aws]'") from exc
            self.client = boto3.client("cloudwatch", region_name=self.region)
        return self.client


#: PutMetricData refuses values beyond 2^360 in magnitude, and non-zero ones below 2^-360.
_LARGEST = 2.0**360
_SMALLEST = 2.0**-360
#: Error codes of a request CloudWatch will reject however often it is sent.
_INVALID_REQUEST_CODES = frozenset(
    {
        "InvalidParameterValue",
        "InvalidParameterValueException",
        "InvalidParameterCombination",
        "InvalidParameterCombinationException",
        "MissingParameter",
        "MissingRequiredParameterException",
    }
)


def _storable(value: float) -> bool:
    """Whether CloudWatch accepts ``value`` (no NaN or infinity, within its range)."""
    magnitude = abs(value)
    return math.isfinite(value) and (magnitude == 0 or _SMALLEST <= magnitude <= _LARGEST)


def _invalid_request(exc: Exception) -> bool:
    """Whether ``exc`` says the request itself is invalid (resending it cannot succeed)."""
    if type(exc).__name__ == "ParamValidationError":  # botocore's own check, before sending
        return True
    response = getattr(exc, "response", None)
    code = response.get("Error", {}).get("Code") if isinstance(response, dict) else None
    return code in _INVALID_REQUEST_CODES


def _metric_datum(metric: Metric) -> dict[str, Any]:
    datum: dict[str, Any] = {
        "MetricName": metric.name,
        "Value": metric.value,
        "Unit": metric.unit,
        "Dimensions": [{"Name": k, "Value": v} for k, v in metric.dimensions],
    }
    if metric.timestamp is not None:
        datum["Timestamp"] = metric.timestamp
    return datum


def build_sink(settings: MetricsSettings, *, region: str | None = None, client: Any = None) -> MetricSink:
    """The sink a profile asks for: ``log`` -> LogSink, ``cloudwatch`` -> CloudWatchSink, ``none``."""
    if settings.sink == "cloudwatch":
        return CloudWatchSink(settings.namespace, client=client, region=region)
    if settings.sink == "none":
        return NullSink()
    return LogSink(settings.namespace)
