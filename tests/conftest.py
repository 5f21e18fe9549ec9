"""Shared fixtures: the shipped config, and ONE SparkSession for the whole test run.

The session runs the real local profile (Iceberg runtime + SQLite JDBC catalog) on a
temporary home. Tests that need a clean catalog use their own namespaces
(``fresh_config``) instead of a new session.
"""

from __future__ import annotations

import itertools
import json
import os
import sys
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime
from pathlib import Path

import pytest

from lean_ops_spark.config import Databases, ProjectConfig, load_project

REPO = Path(__file__).resolve().parents[1]
CONF = REPO / "conf"
_namespace_counter = itertools.count(1)


@pytest.fixture(scope="session")
def project_config() -> ProjectConfig:
    return load_project(CONF, "local", iceberg_version=os.environ.get("LEAN_OPS_ICEBERG_VERSION") or None)


def order_payload(key: str, ts: datetime, updated: datetime, status: str = "created", **extra: object) -> str:
    """An ``orders`` payload (JSON text) for ``key``, created at ``ts`` and updated at ``updated``;
    ``extra`` sets (or, with None, nulls) any other top-level field."""
    payload: dict[str, object] = {
        "order_id": key,
        "customer_id": "c-1",
        "status": status,
        "order_ts": ts.isoformat().replace("+00:00", "Z"),
        "updated_at": updated.isoformat().replace("+00:00", "Z"),
        "currency": "EUR",
        "total_amount": 10.5,
        "shipping_address": {"street": "Main 1", "city": "Oslo", "postcode": "0150", "country": "NO"},
        "items": [{"sku": "a", "quantity": 1, "unit_price": 10.5}],
    }
    payload.update(extra)
    return json.dumps(payload)


class Crash(RuntimeError):
    """What :func:`crash_at` raises: a run dying at a step boundary."""


def crash_at(step_name: str) -> Callable[[str], None]:
    """An ``after_step`` hook that raises :class:`Crash` at step ``step_name``."""

    def hook(step: str) -> None:
        if step == step_name:
            raise Crash(step)

    return hook


@pytest.fixture(scope="session")
def local_home(tmp_path_factory: pytest.TempPathFactory):
    from lean_ops_spark.session import LocalHome

    return LocalHome.at(tmp_path_factory.mktemp("lean-ops-home"))


@pytest.fixture(scope="session")
def spark(project_config: ProjectConfig, local_home):
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    os.environ.setdefault("PYARROW_IGNORE_TIMEZONE", "1")
    from lean_ops_spark.session import build_session

    session = build_session(
        project_config.profile,
        home=local_home,
        app_name="lean-ops-tests",
        extra_conf={"spark.sql.shuffle.partitions": "2", "spark.default.parallelism": "2"},
    )
    yield session
    session.stop()


@pytest.fixture
def fresh_config(project_config: ProjectConfig) -> ProjectConfig:
    """The shipped config with namespaces of its own, so a test starts from empty tables."""
    n = next(_namespace_counter)
    databases = Databases(raw=f"t{n}_raw", curated=f"t{n}_curated", semantic=f"t{n}_semantic")
    return replace(project_config, profile=replace(project_config.profile, databases=databases))


#: A contract shape the shipped topics do not have: a composite key with one part inside a
#: flattened struct and both numeric, a numeric ordering column inside a flattened struct,
#: a nested timestamp, and a date partition column by month.
PAYMENTS_CONTRACT = """
topic: payments
key: [account_id, payment_no]
ordering_column: meta_seq
partition: {column: paid_on, transform: month}
drift_mode: rescue
error_rate_threshold: 0.5
fields:
  - name: account
    type: struct
    flatten: true
    fields:
      - {name: id, type: long, required: true}
      - {name: opened_at, type: timestamp}
  - {name: payment_no, type: int, required: true, min: 0}
  - name: meta
    type: struct
    flatten: true
    fields:
      - {name: seq, type: long, required: true}
  - {name: paid_on, type: date, required: true}
  - {name: amount, type: "decimal(10,2)", required: true, min: 0, max: 100000}
  - {name: method, type: string, allowed: [card, sepa]}
  - {name: note, type: string}
"""


@pytest.fixture(scope="session")
def payments_contract():  # type: ignore[no-untyped-def]
    import yaml

    from lean_ops_spark.config.loader import parse_topic

    return parse_topic(yaml.safe_load(PAYMENTS_CONTRACT), "tests/conftest.py", "payments")


@pytest.fixture
def fake_aws_env(monkeypatch: pytest.MonkeyPatch) -> str:
    """Dummy credentials and a region for moto (and no endpoint override); returns the region."""
    for key, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    return "us-east-1"
