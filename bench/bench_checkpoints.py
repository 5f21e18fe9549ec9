"""GetAllCheckpoints for 50 topics: fresh-process latency, side by side.

Three ways to answer the same question (every topic's raw snapshot, curation and semantic
checkpoints, backlog), each in a new Python process as a cold Lambda would be:

1. the Lambda handler with its default source (catalog pointer + metadata.json, no PyIceberg),
2. the same handler with the PyIceberg source (a plain PyIceberg loop),
3. a SparkSession-based lookup (``read_checkpoint`` + the raw snapshots via Spark SQL).

The lake is built once with PyIceberg (150 tables: raw with 3 appends, curated with a
checkpoint, semantic for every other topic). Run: ``.venv/bin/python bench/bench_checkpoints.py``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

HANDLER = """
import sys, json
sys.path.insert(0, {orchestration!r})
import checkpoints_lambda
answer = checkpoints_lambda.handler({{}})
print(json.dumps({{"topics": len(answer["topics"]), "with_new_raw_data": sum(t["has_new_raw_data"] for t in answer["topics"])}}))
"""

SPARK = """
import json, os
from lean_ops_spark.config import load_project
from lean_ops_spark.session import LocalHome, build_session
from lean_ops_spark.catalog.naming import topic_tables
from lean_ops_spark.catalog.checkpoints import RAW_CHECKPOINT_KEY, read_checkpoint, current_snapshot_id
config = load_project({conf!r}, "local")
spark = build_session(config.profile, home=LocalHome.at({home!r}), app_name="bench-checkpoints")
pending = 0
for topic in sorted(config.topics):
    tables = topic_tables(config.profile, topic)
    checkpoint = read_checkpoint(spark, tables.curated, RAW_CHECKPOINT_KEY)
    current = current_snapshot_id(spark, tables.raw)
    pending += int(current != (checkpoint.source_snapshot_id if checkpoint else None))
print(json.dumps({{"topics": len(config.topics), "with_new_raw_data": pending}}))
"""


def build_lake(root: Path, topics: int) -> tuple[Path, Path]:
    """A config root with ``topics`` topic contracts and a home with their tables (PyIceberg)."""
    import pyarrow as pa
    from pyiceberg.catalog.sql import SqlCatalog
    from pyiceberg.schema import Schema
    from pyiceberg.types import LongType, NestedField, StringType

    conf, home = root / "conf", root / "home"
    (conf / "topics").mkdir(parents=True)
    (conf / "profiles").mkdir()
    (home / "warehouse").mkdir(parents=True)
    (conf / "profiles" / "local.yaml").write_text((REPO / "conf" / "profiles" / "local.yaml").read_text())
    contract = (REPO / "conf" / "topics" / "orders.yaml").read_text()
    catalog = SqlCatalog(
        "lake", uri=f"sqlite:///{home / 'catalog.db'}", warehouse=(home / "warehouse").as_uri()
    )
    for namespace in ("raw", "curated", "semantic"):
        catalog.create_namespace(namespace)
    schema = Schema(
        NestedField(1, "id", LongType(), required=False),
        NestedField(2, "payload", StringType(), required=False),
    )
    batch = pa.table({"id": pa.array(range(10), pa.int64()), "payload": pa.array(["{}"] * 10)})
    for i in range(topics):
        topic = f"topic_{i:02d}"
        (conf / "topics" / f"{topic}.yaml").write_text(contract.replace("topic: orders", f"topic: {topic}"))
        raw = catalog.create_table(f"raw.{topic}_staging", schema)
        for _ in range(3):
            raw.append(batch)
        first = raw.metadata.snapshots[0].snapshot_id
        curated = catalog.create_table(f"curated.{topic}", schema)
        curated.append(
            batch, snapshot_properties={"lean-ops.raw-snapshot-id": str(first), "lean-ops.run-id": "r1"}
        )
        if i % 2 == 0:
            semantic = catalog.create_table(f"semantic.{topic}", schema)
            cur_id = curated.metadata.current_snapshot_id
            semantic.append(batch, snapshot_properties={"lean-ops.curated-snapshot-id": str(cur_id)})
    return conf, home


def timed(code: str, env: dict[str, str]) -> tuple[float, str]:
    started = time.perf_counter()
    completed = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, check=False
    )
    elapsed = time.perf_counter() - started
    if completed.returncode != 0:
        raise SystemExit(f"benchmark process failed:\n{completed.stderr[-3000:]}")
    return elapsed, completed.stdout.strip().splitlines()[-1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--topics", type=int, default=50)
    parser.add_argument("--repeat", type=int, default=3, help="runs of each JVM-free variant (median)")
    parser.add_argument("--skip-spark", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-checkpoints-") as tmp:
        started = time.perf_counter()
        conf, home = build_lake(Path(tmp), args.topics)
        tables = 2 * args.topics + (args.topics + 1) // 2
        print(
            f"lake: {args.topics} topics, {tables} tables, built in {time.perf_counter() - started:.1f} s (PyIceberg)"
        )
        base = {
            **os.environ,
            "LEAN_OPS_CONF": str(conf),
            "LEAN_OPS_PROFILE": "local",
            "LEAN_OPS_HOME": str(home),
            "PYSPARK_PYTHON": sys.executable,
        }
        handler = HANDLER.format(orchestration=str(REPO / "orchestration"))
        rows = []
        for label, source in (
            ("Lambda handler (metadata.json source)", "metadata"),
            ("Lambda handler (PyIceberg source)", "pyiceberg"),
        ):
            runs = [timed(handler, {**base, "LEAN_OPS_SNAPSHOT_SOURCE": source}) for _ in range(args.repeat)]
            rows.append((label, statistics.median(r[0] for r in runs), runs[0][1]))
        if not args.skip_spark:
            rows.append(("SparkSession lookup", *timed(SPARK.format(conf=str(conf), home=str(home)), base)))
        fastest = rows[0][1]
        print(
            f"\n{'fresh process, all ' + str(args.topics) + ' topics':44} {'wall s':>7} {'x handler':>10}  answer"
        )
        for label, seconds, answer in rows:
            print(f"{label:44} {seconds:7.2f} {seconds / fastest:10.1f}  {answer}")
        print(
            f"\ngoal <= 1.0 s: {'met' if fastest <= 1.0 else 'NOT met'} ({fastest:.2f} s); "
            f"answers agree: {len({json.dumps(json.loads(r[2]), sort_keys=True) for r in rows}) == 1}"
        )


if __name__ == "__main__":
    main()
