"""The CloudWatch sink under review: values CloudWatch refuses, permanent rejections, a
client that cannot be made, batching, and the dimensions a curation run emits."""

from __future__ import annotations

import logging
import math
from typing import Any

import boto3
import pytest
from moto import mock_aws

from lean_ops_spark.metrics import CloudWatchSink


class RecordingClient:
    """A moto CloudWatch client that remembers each PutMetricData call's metric names."""

    def __init__(self, client: Any) -> None:
        self.client = client
        self.calls: list[list[str]] = []

    def put_metric_data(self, **kwargs: Any) -> Any:
        self.calls.append([m["MetricName"] for m in kwargs["MetricData"]])
        return self.client.put_metric_data(**kwargs)


def listed(client: Any, namespace: str) -> set[str]:
    return {m["MetricName"] for m in client.list_metrics(Namespace=namespace)["Metrics"]}


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf, 1e200, 1e-200])
@mock_aws
def test_a_value_cloudwatch_refuses_is_skipped_and_does_not_block_the_rest(
    value: float, caplog: pytest.LogCaptureFixture
) -> None:
    """CloudWatch rejects a whole PutMetricData call for one NaN (or infinite, or out of
    range) value; kept for the next flush, that call failed forever and every metric
    behind it with it."""
    client = RecordingClient(boto3.client("cloudwatch", region_name="us-east-1"))
    sink = CloudWatchSink("LeanOpsReview", client=client)
    with caplog.at_level(logging.WARNING, logger="lean_ops_spark.metrics"):
        sink.emit("ErrorRate", value, "None", {"Topic": "orders", "Layer": "curated"})
    sink.emit("RecordsRead", 5, "Count", {"Topic": "orders", "Layer": "curated"})
    sink.flush()
    sink.flush()
    assert client.calls == [["RecordsRead"]]
    assert listed(client.client, "LeanOpsReview") == {"RecordsRead"}
    assert "ErrorRate" in caplog.text and "cannot store" in caplog.text


@mock_aws
def test_a_zero_and_negative_values_are_sent() -> None:
    client = RecordingClient(boto3.client("cloudwatch", region_name="us-east-1"))
    sink = CloudWatchSink("LeanOpsReview", client=client)
    sink.emit("ErrorRate", 0.0)
    sink.emit("LagSeconds", -1.5, "Seconds")  # a producer clock ahead of the catalog's
    sink.flush()
    assert client.calls == [["ErrorRate", "LagSeconds"]]


class RejectingClient:
    """Rejects the first call as CloudWatch rejects an invalid request (HTTP 400), then accepts."""

    def __init__(self, code: str) -> None:
        self.code = code
        self.calls: list[list[str]] = []

    def put_metric_data(self, Namespace: str, MetricData: list[dict[str, Any]]) -> None:
        from botocore.exceptions import ClientError

        self.calls.append([m["MetricName"] for m in MetricData])
        if len(self.calls) == 1:
            raise ClientError(
                {
                    "Error": {"Code": self.code, "Message": "invalid"},
                    "ResponseMetadata": {"HTTPStatusCode": 400},
                },
                "PutMetricData",
            )


def test_a_call_rejected_as_invalid_is_dropped_not_retried_forever(caplog: pytest.LogCaptureFixture) -> None:
    client = RejectingClient("InvalidParameterValue")
    sink = CloudWatchSink("LeanOpsReview", client=client)
    sink.emit("RecordsRead", 1.0, "Count")
    with caplog.at_level(logging.WARNING, logger="lean_ops_spark.metrics"):
        sink.flush()
    assert "dropped" in caplog.text
    sink.emit("RecordsUpserted", 1.0, "Count")
    sink.flush()
    assert client.calls == [["RecordsRead"], ["RecordsUpserted"]]


def test_a_throttled_call_is_still_kept_for_the_next_flush() -> None:
    client = RejectingClient("Throttling")
    sink = CloudWatchSink("LeanOpsReview", client=client)
    sink.emit("RecordsRead", 1.0, "Count")
    sink.flush()
    sink.flush()
    assert client.calls == [["RecordsRead"], ["RecordsRead"]]


def test_a_client_that_cannot_be_made_does_not_fail_the_flush(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """No region configured (spark-submit outside Glue, a profile without ``region``):
    boto3 raises NoRegionError when the client is made, which flush let through, failing a
    run whose data was already committed."""
    for name in ("AWS_REGION", "AWS_DEFAULT_REGION"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent")
    sink = CloudWatchSink("LeanOpsReview", region=None)
    sink.emit("RecordsRead", 1.0, "Count")
    with caplog.at_level(logging.WARNING, logger="lean_ops_spark.metrics"):
        sink.flush()
    assert "could not send 1 metric(s)" in caplog.text and "NoRegionError" in caplog.text
    assert sink.failed_calls == 1


@mock_aws
def test_a_full_batch_of_curation_like_metrics_stays_far_below_the_1_mb_request_limit() -> None:
    """Checked and fine: PutMetricData takes 1000 metrics and 1 MB per call; 1000 metrics with
    the dimensions a run uses (Topic, Layer, ErrorClass) are a small fraction of that."""
    import json

    from lean_ops_spark.metrics import _metric_datum, make_metric

    metric = make_metric(
        "RecordsQuarantined",
        12345.678,
        "Count",
        {"Topic": "t" * 64, "Layer": "curated", "ErrorClass": "RETRY"},
    )
    size = len(json.dumps(_metric_datum(metric), default=str)) * 1000
    assert size < 300_000
