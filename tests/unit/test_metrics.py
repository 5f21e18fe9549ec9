"""Metric sinks: validation, the log sink, and the CloudWatch sink against moto."""

from __future__ import annotations

import json
import logging
from datetime import datetime, timedelta, timezone
from typing import Any

import boto3
import pytest
from moto import mock_aws

from lean_ops_spark.config.models import MetricsSettings
from lean_ops_spark.metrics import CloudWatchSink, LogSink, MemorySink, NullSink, build_sink, make_metric


class CountingClient:
    """A real (moto) CloudWatch client that remembers each PutMetricData call's size."""

    def __init__(self, client: Any) -> None:
        self.client = client
        self.batches: list[int] = []

    def put_metric_data(self, **kwargs: Any) -> Any:
        self.batches.append(len(kwargs["MetricData"]))
        return self.client.put_metric_data(**kwargs)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"name": "X", "value": 1, "unit": "Hours"}, "unknown CloudWatch unit 'Hours'"),
        ({"name": "", "value": 1}, "needs a name"),
        ({"name": "X", "value": 1, "dimensions": {"run_id": "r-1"}}, "'run_id' is per run"),
        ({"name": "X", "value": 1, "dimensions": {"SnapshotId": "1"}}, "'SnapshotId' is per run"),
        ({"name": "X", "value": 1, "dimensions": {f"d{i}": "v" for i in range(31)}}, "31 dimensions"),
        ({"name": "X", "value": 1, "dimensions": {"Table": ""}}, "needs a name and a value"),
    ],
)
def test_bad_metrics_are_refused(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        make_metric(**kwargs)


def test_every_sink_validates_the_same_way() -> None:
    for sink in (NullSink(), MemorySink(), LogSink()):
        with pytest.raises(ValueError, match="per run"):
            sink.emit("X", 1, "Count", {"RunId": "abc"})


def test_log_sink_writes_one_json_line_per_metric(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="lean_ops_spark.metrics"):
        LogSink("LeanOps").emit("SmallFileRatio", 0.5, "None", {"Table": "raw.orders_staging"})
    [record] = caplog.records
    payload = json.loads(record.getMessage().removeprefix("metric "))
    assert payload == {
        "namespace": "LeanOps",
        "name": "SmallFileRatio",
        "value": 0.5,
        "unit": "None",
        "dimensions": {"Table": "raw.orders_staging"},
    }


def test_memory_sink_filters_by_dimension() -> None:
    sink = MemorySink()
    sink.emit("DataFileCount", 3, "Count", {"Table": "a"})
    sink.emit("DataFileCount", 5, "Count", {"Table": "b"})
    assert sink.values("DataFileCount", Table="b") == [5.0]
    assert sink.values("DataFileCount") == [3.0, 5.0]


@mock_aws
def test_cloudwatch_sink_sends_at_most_1000_per_call_and_they_arrive() -> None:
    client = CountingClient(boto3.client("cloudwatch", region_name="us-east-1"))
    sink = CloudWatchSink("LeanOpsTest", client=client)
    for i in range(2500):
        sink.emit("DataFileCount", i, "Count", {"Table": f"raw.t{i % 3}"})
    assert client.batches == [1000, 1000]  # two full batches went out on their own
    sink.flush()
    assert client.batches == [1000, 1000, 500]
    assert sink.calls == 3
    listed = client.client.list_metrics(Namespace="LeanOpsTest")["Metrics"]
    assert {tuple((d["Name"], d["Value"]) for d in m["Dimensions"]) for m in listed} == {
        (("Table", "raw.t0"),),
        (("Table", "raw.t1"),),
        (("Table", "raw.t2"),),
    }
    sink.flush()  # nothing buffered: no call
    assert sink.calls == 3


class FlakyClient:
    """Throttles ``failures`` calls, then records what it is sent."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.sent: list[str] = []

    def put_metric_data(self, Namespace: str, MetricData: list[dict[str, Any]]) -> None:
        if self.failures:
            self.failures -= 1
            raise RuntimeError("Throttling: Rate exceeded")
        self.sent += [m["MetricName"] for m in MetricData]


def test_a_failed_send_is_logged_and_kept_for_the_next_flush(caplog: pytest.LogCaptureFixture) -> None:
    # a run whose data is committed must not fail on CloudWatch, nor lose its metrics
    client = FlakyClient(failures=1)
    sink = CloudWatchSink("LeanOpsTest", client=client)
    for name in ("RecordsRead", "RecordsUpserted", "ErrorRate"):
        sink.emit(name, 1.0)
    with caplog.at_level(logging.WARNING, logger="lean_ops_spark.metrics"):
        sink.flush()  # the first call fails: logged, nothing raised, nothing lost
    assert (sink.failed_calls, client.sent) == (1, [])
    assert (
        "could not send 3 metric(s) to CloudWatch namespace LeanOpsTest (RuntimeError: Throttling"
        in caplog.text
    )
    sink.flush()
    assert client.sent == ["RecordsRead", "RecordsUpserted", "ErrorRate"] and sink.calls == 1


@mock_aws
def test_cloudwatch_sink_statistics_match_what_was_emitted() -> None:
    raw = boto3.client("cloudwatch", region_name="us-east-1")
    sink = build_sink(MetricsSettings(namespace="LeanOpsStats", sink="cloudwatch"), client=raw)
    assert isinstance(sink, CloudWatchSink)
    for value in (2, 3, 7):
        sink.emit(
            "FilesRewritten", value, "Count", {"Table": "curated.orders", "Operation": "rewrite_data_files"}
        )
    sink.flush()
    now = datetime.now(timezone.utc)
    stats = raw.get_metric_statistics(
        Namespace="LeanOpsStats",
        MetricName="FilesRewritten",
        Dimensions=[
            {"Name": "Operation", "Value": "rewrite_data_files"},
            {"Name": "Table", "Value": "curated.orders"},
        ],
        StartTime=now - timedelta(minutes=5),
        EndTime=now + timedelta(minutes=5),
        Period=600,
        Statistics=["Sum", "SampleCount"],
    )["Datapoints"]
    assert sum(d["Sum"] for d in stats) == 12
    assert sum(d["SampleCount"] for d in stats) == 3


def test_build_sink_follows_the_profile() -> None:
    assert isinstance(build_sink(MetricsSettings(sink="log")), LogSink)
    assert isinstance(build_sink(MetricsSettings(sink="none")), NullSink)
    cloudwatch = build_sink(MetricsSettings(namespace="N", sink="cloudwatch"), region="eu-west-1")
    assert isinstance(cloudwatch, CloudWatchSink) and cloudwatch.namespace == "N"
    with pytest.raises(ValueError, match="batch_size"):
        CloudWatchSink("N", batch_size=1001)
