"""Partition labels of time transforms on a real table: ``lean-ops health`` shows
``m_ts_month=2025-12``, not ``m_ts_month=671`` (months since 1970)."""

from __future__ import annotations

import json
import os
from datetime import date
from pathlib import Path

from lean_ops_spark.catalog.naming import TableRef
from lean_ops_spark.cli.main import main
from lean_ops_spark.maintenance.health import measure_health

CONF = Path(__file__).resolve().parents[2] / "conf"

#: One field per transform, each on a column of its own (Iceberg refuses two time
#: transforms of one column).
PARTITIONING = "years(y_ts), months(m_ts), days(d_ts), hours(h_ts), bucket(4, id), truncate(3, s), cat"


def test_health_labels_time_partitions_as_iceberg_shows_them(
    spark, project_config, local_home, capsys
) -> None:
    # a table of the semantic database: `lean-ops health --table` takes any of them by name
    semantic = project_config.profile.databases.semantic
    ref = TableRef("lake", semantic, f"rough_edges_partitions_{os.getpid()}", "semantic")
    spark.sql(f"CREATE NAMESPACE IF NOT EXISTS lake.{semantic}")
    spark.sql(
        f"CREATE TABLE {ref.sql} (id bigint, y_ts timestamp, m_ts timestamp, d_ts timestamp, "
        f"h_ts timestamp, s string, cat string) USING iceberg PARTITIONED BY ({PARTITIONING})"
    )
    try:
        late, early = "TIMESTAMP '2025-12-31 13:45:00Z'", "TIMESTAMP '1969-12-31 23:30:00Z'"
        spark.sql(
            f"INSERT INTO {ref.sql} VALUES (1, {late}, {late}, {late}, {late}, 'abcdef', 'a'), "
            f"(2, {early}, {early}, {early}, {early}, 'x', 'b'), (3, NULL, NULL, NULL, NULL, NULL, NULL)"
        )

        health = measure_health(spark, ref)

        # what Spark's files table gives: years, months and hours as ints since 1970, days as dates
        types = {
            name: {
                type(v).__name__
                for p in health.partitions
                for n, v in p.values
                if n == name and v is not None
            }
            for name in ("y_ts_year", "m_ts_month", "d_ts_day", "h_ts_hour")
        }
        assert types == {
            "y_ts_year": {"int"},
            "m_ts_month": {"int"},
            "d_ts_day": {"date"},
            "h_ts_hour": {"int"},
        }
        assert {v for p in health.partitions for n, v in p.values if n == "m_ts_month"} == {671, -1, None}
        assert date(2025, 12, 31) in {v for p in health.partitions for n, v in p.values if n == "d_ts_day"}

        bucket_of = {
            dict(p.values)["cat"]: dict(p.values)["id_bucket"] for p in health.partitions
        }  # bucket values (ints) stay as they are
        expected = {
            f"y_ts_year=2025/m_ts_month=2025-12/d_ts_day=2025-12-31/h_ts_hour=2025-12-31-13/"
            f"id_bucket={bucket_of['a']}/s_trunc=abc/cat=a",
            f"y_ts_year=1969/m_ts_month=1969-12/d_ts_day=1969-12-31/h_ts_hour=1969-12-31-23/"
            f"id_bucket={bucket_of['b']}/s_trunc=x/cat=b",
            f"y_ts_year=null/m_ts_month=null/d_ts_day=null/h_ts_hour=null/"
            f"id_bucket={bucket_of[None]}/s_trunc=null/cat=null",
        }
        assert {p.label for p in health.partitions} == expected

        # the --json document and the text the CLI prints carry the same labels, in label order
        # on ties (every file is small at the default 512 MiB target: one small file each)
        common = ["--conf", str(CONF), "--home", str(local_home.root), "--no-metrics"]
        assert main(["health", *common, "--table", ref.identifier, "--json"]) == 0
        [document] = json.loads(capsys.readouterr().out)["tables"]
        assert [p["partition"] for p in document["top_small_file_partitions"]] == sorted(expected)
        assert main(["health", *common, "--table", ref.identifier]) == 0
        text = capsys.readouterr().out
        assert f"{ref.sql}: most small files in y_ts_year=1969/m_ts_month=1969-12/" in text
        assert "m_ts_month=671" not in text and "h_ts_hour=490885" not in text
    finally:
        spark.sql(f"DROP TABLE IF EXISTS {ref.sql} PURGE")
