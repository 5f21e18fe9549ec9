"""The glue profile's catalog settings for real: Iceberg's GlueCatalog + S3FileIO on a moto server.

A moto server listens on 127.0.0.1. A separate Spark process (the test session's JVM is
the local profile's and a JVM has one) starts the way a Glue job does - static Iceberg
extensions, the Iceberg runtime and ``iceberg-aws-bundle`` on the classpath - then
``build_session`` adopts it with the ``glue`` profile, adding only the endpoint overrides.
It creates a namespace and a table, appends twice (one commit with a checkpoint property)
and reads back. The parent then reads the same table through the JVM-free snapshot source
on Glue + S3 (what the GetAllCheckpoints Lambda does on AWS).
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest

from lean_ops_spark.catalog.checkpoints import RAW_CHECKPOINT_KEY, find_checkpoint
from lean_ops_spark.catalog.naming import TableRef
from lean_ops_spark.config.loader import parse_profile
from lean_ops_spark.errors import RuntimeSetupError
from lean_ops_spark.orchestration.snapshots import open_snapshot_source
from lean_ops_spark.runtime.jars import aws_jar_paths, default_jars_dir, local_jar_paths

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
BUCKET = "lean-ops-moto-warehouse"
REGION = "us-east-1"
ICEBERG_VERSION = os.environ.get("LEAN_OPS_ICEBERG_VERSION") or "1.10.0"

SPARK_SCRIPT = textwrap.dedent(
    """
    import json, sys
    from pyspark.sql import SparkSession
    from lean_ops_spark.config.loader import parse_profile
    from lean_ops_spark.session import ICEBERG_EXTENSIONS, build_session

    endpoint, jars, warehouse = sys.argv[1], sys.argv[2], sys.argv[3]
    # what the Glue job parameters provide before our code runs (static confs)
    SparkSession.builder.master("local[1]").appName("glue-profile-on-moto") \\
        .config("spark.jars", jars).config("spark.sql.extensions", ICEBERG_EXTENSIONS) \\
        .config("spark.ui.enabled", "false").config("spark.sql.shuffle.partitions", "1").getOrCreate()
    profile = parse_profile(
        {"kind": "glue", "warehouse": warehouse, "region": "us-east-1",
         "databases": {"raw": "moto_raw", "curated": "moto_curated", "semantic": "moto_semantic"}},
        "moto-glue.yaml", "glue")
    c = "spark.sql.catalog." + profile.catalog
    spark = build_session(profile, extra_conf={
        c + ".glue.endpoint": endpoint, c + ".s3.endpoint": endpoint,
        c + ".s3.path-style-access": "true", c + ".client.region": "us-east-1"})
    steps = []
    def step(name, sql):
        spark.sql(sql)
        steps.append(name)
        print("STEP", name, flush=True)
    step("create namespace", "CREATE NAMESPACE IF NOT EXISTS lake.moto_raw")
    step("create table", "CREATE TABLE lake.moto_raw.events (id bigint, body string) USING iceberg")
    step("insert", "INSERT INTO lake.moto_raw.events VALUES (1, 'a'), (2, 'b')")
    first = spark.sql("SELECT snapshot_id FROM lake.moto_raw.events.snapshots").first()[0]
    spark.createDataFrame([(3, "c")], "id bigint, body string").writeTo("lake.moto_raw.events") \\
        .option("snapshot-property.lean-ops.raw-snapshot-id", str(first)).append()
    steps.append("append with snapshot property")
    rows = spark.sql("SELECT count(*) AS n FROM lake.moto_raw.events").first()["n"]
    snaps = [r[0] for r in spark.sql(
        "SELECT snapshot_id FROM lake.moto_raw.events.snapshots ORDER BY committed_at").collect()]
    print("RESULT " + json.dumps({"steps": steps, "rows": rows, "snapshots": [str(s) for s in snaps]}), flush=True)
    spark.stop()
    """
)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def moto_server(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    from moto.server import ThreadedMotoServer

    port = _free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    for key, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_REGION": REGION,
        "AWS_DEFAULT_REGION": REGION,
    }.items():
        monkeypatch.setenv(key, value)
    boto3.client("s3", endpoint_url=endpoint).create_bucket(Bucket=BUCKET)
    yield endpoint
    server.stop()


def test_glue_catalog_and_s3_fileio_on_a_moto_server(moto_server: str) -> None:
    jars_dir = Path(os.environ.get("LEAN_OPS_JARS_DIR") or default_jars_dir())
    try:
        jars = [*local_jar_paths(jars_dir, ICEBERG_VERSION), *aws_jar_paths(jars_dir, ICEBERG_VERSION)]
    except RuntimeSetupError as exc:
        pytest.skip(str(exc))
    env = {
        **os.environ,
        "PYSPARK_PYTHON": sys.executable,
        "AWS_ENDPOINT_URL": moto_server,  # only the Python side (none here); the JVM uses the overrides
    }
    completed = subprocess.run(
        [sys.executable, "-c", SPARK_SCRIPT, moto_server, ",".join(map(str, jars)), f"s3://{BUCKET}/iceberg"],
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO,
        timeout=240,
        check=False,
    )
    result_lines = [line for line in completed.stdout.splitlines() if line.startswith("RESULT ")]
    steps = [line[5:] for line in completed.stdout.splitlines() if line.startswith("STEP ")]
    assert completed.returncode == 0 and result_lines, (
        f"Spark on moto got through {steps or 'nothing'}; stderr tail:\n"
        + "\n".join(completed.stderr.splitlines()[-25:])
    )
    result = json.loads(result_lines[0][len("RESULT ") :])
    assert result["rows"] == 3
    assert len(result["snapshots"]) == 2

    # the table really lives in moto's Glue Data Catalog and S3
    glue = boto3.client("glue", endpoint_url=moto_server)
    s3 = boto3.client("s3", endpoint_url=moto_server)
    table = glue.get_table(DatabaseName="moto_raw", Name="events")["Table"]
    assert table["Parameters"]["table_type"].upper() == "ICEBERG"
    assert table["Parameters"]["metadata_location"].startswith(f"s3://{BUCKET}/iceberg/")
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET, Prefix="iceberg/")["Contents"]]
    assert any(k.endswith(".parquet") for k in keys) and any(k.endswith(".metadata.json") for k in keys)

    # and the Lambda's JVM-free reader finds it on Glue + S3
    profile = parse_profile(
        {"kind": "glue", "warehouse": f"s3://{BUCKET}/iceberg", "region": REGION}, "g.yaml", "glue"
    )
    ref = TableRef("lake", "moto_raw", "events", "raw")
    loaded = open_snapshot_source(profile, clients={"glue": glue, "s3": s3}).load([ref])[ref.identifier]
    first, second = (int(s) for s in result["snapshots"])
    assert loaded.current_snapshot_id == second
    checkpoint = find_checkpoint(loaded.records, loaded.current_snapshot_id, RAW_CHECKPOINT_KEY)
    assert checkpoint is not None and checkpoint.source_snapshot_id == first
    assert loaded.columns == ("id", "body")
