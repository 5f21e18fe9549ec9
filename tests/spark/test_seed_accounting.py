"""The seed generator's report against what curation does with a mixed batch, on a contract
whose types make the expectation easy to get wrong: an int with a max, decimals with a small
precision, a float with a wide range, a negative max, a date that is both the ordering and the
partition column, and ``drift_mode: evolve``."""

from __future__ import annotations

from collections import Counter
from dataclasses import replace
from datetime import datetime, timezone

import yaml

from lean_ops_spark.catalog.bootstrap import bootstrap_tables
from lean_ops_spark.catalog.naming import topic_tables
from lean_ops_spark.config.loader import parse_topic
from lean_ops_spark.curation.pipeline import CurationOptions, run_curation
from lean_ops_spark.raw import fault_rates, generate_events
from lean_ops_spark.raw.writer import append_raw

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=timezone.utc)

CONTRACT = """
topic: visits
key: [id]
ordering_column: day
partition: {column: day, transform: day}
drift_mode: evolve
error_rate_threshold: 1.0
fields:
  - {name: id, type: string, required: true}
  - {name: day, type: date, required: true}
  - {name: qty, type: int, required: true, min: 0, max: 500}
  - {name: amount, type: "decimal(6,2)", min: 0, max: 9999.99}
  - {name: rate, type: "decimal(4,2)"}
  - {name: weight, type: float, min: 0, max: 100000}
  - {name: delta, type: long, max: -5}
  - {name: status, type: string, allowed: [new, done]}
"""


def test_every_record_of_a_seeded_batch_ends_up_where_the_generator_said(spark, fresh_config) -> None:
    contract = parse_topic(yaml.safe_load(CONTRACT), "tests/spark/test_seed_accounting.py", "visits")
    config = replace(fresh_config, topics={**fresh_config.topics, "visits": contract})
    bootstrap_tables(spark, config, ["visits"])
    tables = topic_tables(config.profile, "visits")
    batch = generate_events(contract, 300, fault_rates(0.3, 0.2, 0.05), seed=21, now=NOW)
    assert all(batch.injected.values())
    append_raw(spark, tables.raw, batch.records, appends=4)

    ledgers = []  # one run per append: a re-send may arrive in a later run than its original
    while (result := run_curation(spark, config, "visits", options=CurationOptions(max_snapshots=1))).ledger:
        assert result.status == "committed" and result.ledger.balanced
        ledgers.append(result.ledger)
    assert len(ledgers) == 4

    expected = batch.expected
    quarantined: Counter[str] = Counter()
    for ledger in ledgers:
        quarantined.update(ledger.quarantined_by_reason)
    assert quarantined == expected.quarantined
    assert sum(ledger.rescued_records for ledger in ledgers) == expected.rescued
    valid = sum(ledger.upserted + ledger.superseded_in_batch + ledger.stale for ledger in ledgers)
    assert valid == expected.curated_keys + expected.superseded

    curated = spark.table(tables.curated.sql)
    assert curated.count() == curated.select("id").distinct().count() == expected.curated_keys
    assert curated.where("_rescued_data IS NOT NULL").count() == expected.rescued
    assert {"promo_channel", "experiment"} <= set(curated.columns)  # unknown fields evolved
    quarantine = spark.table(tables.quarantine.sql).groupBy("reason_code").count().collect()
    assert {r["reason_code"]: r["count"] for r in quarantine} == expected.quarantined
