"""The seed generator on a contract whose key, ordering and partition columns are not plain
top-level strings and timestamps (the shipped topics' shape)."""

from __future__ import annotations

import json
import struct
import time
from dataclasses import replace
from datetime import datetime, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from lean_ops_spark.config.loader import parse_topic
from lean_ops_spark.config.models import TopicContract
from lean_ops_spark.raw import ERROR_KINDS, FaultKind, RawRecord, fault_rates, generate_events

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=timezone.utc)


def test_clean_events_put_unique_typed_keys_and_event_times_at_their_paths(payments_contract) -> None:
    batch = generate_events(payments_contract, 50, seed=4, now=NOW)
    payloads = [json.loads(r.payload) for r in batch.records]
    keys = {(p["account"]["id"], p["payment_no"]) for p in payloads}
    assert len(keys) == 50
    assert all(isinstance(a, int) and isinstance(n, int) and n >= 0 for a, n in keys)
    assert not any("account_id" in p or "meta_seq" in p for p in payloads)  # no flattened names
    for p in payloads:
        opened = datetime.fromisoformat(p["account"]["opened_at"].replace("Z", "+00:00"))
        assert opened.date().isoformat() == p["paid_on"]  # nested timestamps at the event's time too
        assert isinstance(p["meta"]["seq"], int)
    for other in (5, 4 + 2000):  # a long key has room for the whole seed (an int key wraps at 2,000)
        other_seed = generate_events(payments_contract, 50, seed=other, now=NOW)
        assert not keys & {
            (json.loads(r.payload)["account"]["id"], json.loads(r.payload)["payment_no"])
            for r in other_seed.records
        }
    assert generate_events(payments_contract, 50, seed=4, now=NOW).records == batch.records


def test_a_resent_version_is_newer_by_its_nested_ordering_column_in_the_same_partition(
    payments_contract,
) -> None:
    batch = generate_events(payments_contract, 40, {FaultKind.RESENT_NEWER: 0.1}, seed=6, now=NOW)
    by_id = {r.message_id: json.loads(r.payload) for r in batch.records}
    resent = [m for m in by_id if m.endswith("-v2")]
    assert len(resent) == 4 and batch.expected.superseded == 4
    for message_id in resent:
        old, new = by_id[message_id.removesuffix("-v2")], by_id[message_id]
        assert new["meta"]["seq"] == old["meta"]["seq"] + 1
        assert (new["account"]["id"], new["payment_no"], new["paid_on"]) == (
            old["account"]["id"],
            old["payment_no"],
            old["paid_on"],
        )


def test_faults_change_nested_fields_and_every_kind_is_reported(payments_contract) -> None:
    batch = generate_events(payments_contract, 400, fault_rates(0.3, 0.1, 0.05), seed=7, now=NOW)
    assert set(batch.injected) == {k.value for k in FaultKind} and all(batch.injected.values())
    missing_key = [
        json.loads(r.payload)
        for r in batch.records
        if r.payload.startswith("{")
        and r.payload.endswith("}")
        and "id" not in json.loads(r.payload)["account"]
    ]
    assert len(missing_key) == batch.injected["missing_key"]  # the nested key part is the one removed
    assert sum(
        batch.expected.quarantined.values()
    ) + batch.expected.curated_keys + batch.expected.superseded == len(batch.records)


@pytest.mark.parametrize(
    ("fault", "needs"),
    [
        (FaultKind.OUT_OF_RANGE, "allowed values, a max_length, or a numeric min or max its type can pass"),
        (FaultKind.MISSING_REQUIRED, "required field besides the key"),
        (FaultKind.WRONG_TYPE, "a string does not fit"),
    ],
)
def test_a_fault_the_contract_cannot_express_is_refused_by_name(payments_contract, fault, needs) -> None:
    account = next(f for f in payments_contract.fields if f.name == "account")
    account = replace(account, type=replace(account.type, fields=account.type.fields[:1]))  # id only
    payment_no = next(f for f in payments_contract.fields if f.name == "payment_no")
    payment_no = replace(payment_no, minimum=None)  # no bound to pass
    keys_only = replace(
        payments_contract,
        fields=(account, payment_no),
        ordering_column="payment_no",
        partition=replace(payments_contract.partition, column="payment_no", transform="identity"),
    )
    with pytest.raises(ValueError, match=f"payments: cannot inject {fault.value}: .*{needs}"):
        generate_events(keys_only, 10, {fault: 0.5}, seed=1, now=NOW)


def _contract(*fields: dict[str, Any], **top: Any) -> TopicContract:
    """A topic ``t`` keyed by a string ``id``, ordered and partitioned by a timestamp ``ts``."""
    doc = {
        "topic": "t",
        "key": ["id"],
        "ordering_column": "ts",
        "partition": {"column": "ts", "transform": "day"},
        "fields": [
            {"name": "id", "type": "string", "required": True},
            {"name": "ts", "type": "timestamp", "required": True},
            *fields,
        ],
        **top,
    }
    return parse_topic(doc, "tests/unit/test_generator.py", "t")


def _significant_digits(value: float) -> int:
    return len(Decimal(repr(value)).normalize().as_tuple().digits)


def _float32(value: float) -> float:
    return float(struct.unpack("f", struct.pack("f", value))[0])


@pytest.mark.parametrize(
    ("field", "beyond"),
    [
        # the loader reads a bound as a float: an int/long value is still written as an integer
        ({"name": "ms", "type": "long", "min": 0, "max": 86400000}, 86400001),
        ({"name": "delta", "type": "int", "max": -5}, -4),  # a negative max: above it, not 10x below
        ({"name": "n", "type": "int", "min": 0, "max": 2147483647}, -1),  # above max no int holds
        ({"name": "amount", "type": "decimal(6,2)", "min": 0, "max": 9999.99}, -0.01),  # precision 6
        ({"name": "share", "type": "decimal(5,3)", "max": 0.5}, 0.501),
        ({"name": "weight", "type": "float", "min": 0, "max": 100000}, 100000.1),  # 7 digits
        ({"name": "ratio", "type": "double", "max": 0.1}, 0.100000000000001),
    ],
)
def test_an_out_of_range_value_is_the_nearest_beyond_a_bound_that_its_type_holds(field, beyond) -> None:
    batch = generate_events(_contract(field), 20, {FaultKind.OUT_OF_RANGE: 1.0}, seed=3, now=NOW)
    values = {json.dumps(json.loads(r.payload)[field["name"]]) for r in batch.records}
    assert values == {json.dumps(beyond)}
    assert batch.expected.as_dict() == {
        "curated_keys": 0,
        "superseded": 0,
        "rescued": 0,
        "quarantined": {"VALUE_OUT_OF_RANGE": 20},
    }


def test_out_of_range_is_refused_where_no_bound_can_be_passed_within_the_type() -> None:
    full = _contract(
        {"name": "rate", "type": "decimal(4,2)", "max": 99.99},  # 100.00 needs precision 5
        {"name": "n", "type": "int", "max": 2147483647},
    )
    with pytest.raises(
        ValueError, match=r"cannot inject out_of_range: .* numeric min or max its type can pass"
    ):
        generate_events(full, 10, {FaultKind.OUT_OF_RANGE: 0.1}, seed=1, now=NOW)


def test_clean_numbers_stay_inside_their_bounds_and_what_their_type_holds() -> None:
    contract = _contract(
        {"name": "price", "type": "double", "min": 5000},
        {"name": "discount", "type": "double", "min": -100, "max": 0},
        {"name": "rate", "type": "decimal(4,2)"},
        {"name": "fee", "type": "decimal(3,3)", "required": True},
        {"name": "year", "type": "int", "min": 1900},  # crashed: randint(1900, 1000)
        {"name": "delta", "type": "int", "max": -5},  # crashed: randint(0, -5)
        {"name": "weight", "type": "float", "min": 0, "max": 100000},
        {"name": "tiny", "type": "float", "min": 0.1, "max": 0.1000002},
        {
            "name": "items",
            "type": "array",
            "items": {"type": "struct", "fields": [{"name": "unit_price", "type": "decimal(5,2)"}]},
        },
    )
    batch = generate_events(contract, 300, seed=5, now=NOW)
    payloads = [json.loads(r.payload) for r in batch.records]
    bounds = {
        "price": (5000, None),
        "discount": (-100, 0),
        "rate": (-99.99, 99.99),
        "fee": (-0.999, 0.999),
        "year": (1900, 2**31 - 1),
        "delta": (-(2**31), -5),
    }
    for name, (low, high) in bounds.items():
        assert all(low <= p[name] and (high is None or p[name] <= high) for p in payloads), name
    for name, scale in (("rate", 2), ("fee", 3)):
        assert all(Decimal(repr(p[name])).as_tuple().exponent >= -scale for p in payloads), name
    assert all(Decimal(repr(i["unit_price"])) <= Decimal("999.99") for p in payloads for i in p["items"])
    assert all(isinstance(p["year"], int) and isinstance(p["delta"], int) for p in payloads)
    for name, low, high in (("weight", 0, 100000), ("tiny", 0.1, 0.1000002)):
        assert all(_significant_digits(p[name]) <= 7 for p in payloads), name  # what a float keeps
        assert all(low <= _float32(p[name]) <= high for p in payloads), name  # as curation compares
    assert batch.expected.curated_keys == 300 and batch.expected.rescued == 0


@pytest.mark.parametrize("drift_mode", ["rescue", "evolve"])
def test_unknown_fields_are_rescued_or_evolve_into_columns_per_the_drift_mode(drift_mode) -> None:
    contract = _contract({"name": "n", "type": "int"}, drift_mode=drift_mode)
    batch = generate_events(contract, 50, {FaultKind.UNKNOWN_FIELDS: 0.2}, seed=2, now=NOW)
    assert batch.injected["unknown_fields"] == 10
    assert batch.expected.curated_keys == 50
    assert batch.expected.rescued == (10 if drift_mode == "rescue" else 0)


def test_unknown_fields_are_refused_for_a_topic_whose_drift_stops_the_run() -> None:
    contract = _contract({"name": "n", "type": "int", "max": 10}, drift_mode="fail")
    with pytest.raises(ValueError, match=r"cannot inject unknown_fields: with drift_mode fail .*DriftError"):
        generate_events(contract, 50, fault_rates(error_rate=0.1), seed=2, now=NOW)
    rates = fault_rates(error_rate=0.1, overrides={FaultKind.UNKNOWN_FIELDS: 0.0})
    assert generate_events(contract, 50, rates, seed=2, now=NOW).injected["unknown_fields"] == 0


@pytest.mark.parametrize(
    ("ordering", "partition", "key", "moves"),
    [
        ("day", {"column": "day", "transform": "day"}, ["id"], False),  # a date partition day stays
        ("ts", {"column": "ts", "transform": "day"}, ["id"], True),  # 1 ms: the same day
        ("seq", {"column": "ts", "transform": "day"}, ["id", "seq"], False),  # a key column stays
    ],
)
def test_a_resent_version_keeps_its_key_and_partition_day_and_arrives_later(
    ordering, partition, key, moves
) -> None:
    contract = _contract(
        {"name": "day", "type": "date", "required": True},
        {"name": "seq", "type": "long", "required": True},
        ordering_column=ordering,
        partition=partition,
        key=key,
    )
    batch = generate_events(contract, 40, {FaultKind.RESENT_NEWER: 0.25}, seed=1, now=NOW)
    position = {r.message_id: n for n, r in enumerate(batch.records)}
    by_id = {r.message_id: json.loads(r.payload) for r in batch.records}
    resent = [m for m in by_id if m.endswith("-v2")]
    assert len(resent) == 10 and batch.expected.superseded == 10 and batch.expected.curated_keys == 40
    for message_id in resent:
        old, new = by_id[message_id.removesuffix("-v2")], by_id[message_id]
        assert [new[k] for k in key] == [old[k] for k in key]
        assert new[partition["column"]][:10] == old[partition["column"]][:10]
        assert (new[ordering] > old[ordering]) if moves else (new[ordering] == old[ordering])
        assert position[message_id] > position[message_id.removesuffix("-v2")]  # newer by arrival


def test_fault_counts_round_each_rate_once_and_never_exceed_the_events(project_config) -> None:
    orders = project_config.topic("orders")

    def errors(batch) -> int:  # type: ignore[no-untyped-def]
        return sum(batch.injected[k.value] for k in ERROR_KINDS)

    assert errors(generate_events(orders, 100, fault_rates(error_rate=0.04), seed=1, now=NOW)) == 4
    assert errors(generate_events(orders, 100, fault_rates(error_rate=0.05), seed=1, now=NOW)) == 5
    half = generate_events(orders, 10, fault_rates(error_rate=0.5, duplicates=0.5), seed=1, now=NOW)
    assert errors(half) == 5 and half.injected["exact_duplicate"] + half.injected["resent_newer"] == 5
    mixed = generate_events(orders, 37, fault_rates(0.3, 0.1, 0.05), seed=9, now=NOW)
    assert errors(mixed) == 11 and mixed.injected["late_event"] == 2
    assert sum(mixed.injected.values()) == round(37 * 0.45)


@pytest.fixture
def new_york(monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    """The machine's local time zone is not UTC."""
    monkeypatch.setenv("TZ", "America/New_York")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


@pytest.mark.usefixtures("new_york")
def test_a_now_without_an_offset_is_utc_not_the_machines_local_time(
    project_config, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    orders = project_config.topic("orders")
    naive = generate_events(orders, 5, seed=1, now=datetime(2026, 11, 20, 12, 0))
    assert naive.records == generate_events(orders, 5, seed=1, now=NOW).records

    from lean_ops_spark.cli.commands import seed as seed_command
    from lean_ops_spark.cli.context import CliContext
    from lean_ops_spark.cli.main import main

    written: list[tuple[RawRecord, ...]] = []
    monkeypatch.setattr(seed_command, "append_raw", lambda _s, _t, records, n: written.append(records) or [1])
    monkeypatch.setattr(CliContext, "spark", lambda self: None)
    for now in ("2026-11-20T12:00:00", "2026-11-20T12:00:00+00:00"):
        args = ["seed", "--topic", "orders", "--events", "5", "--seed", "1", "--now", now, "--json"]
        assert main([*args, "--conf", str(Path(__file__).resolve().parents[2] / "conf")]) == 0
    capsys.readouterr()
    assert written[0] == written[1] == naive.records


def test_a_numeric_key_stays_inside_its_min_and_max() -> None:
    contract = _contract(
        {"name": "n", "type": "int", "required": True, "min": 1, "max": 500},
        key=["n"],
    )
    batch = generate_events(contract, 300, seed=1999, now=NOW)  # seed 1999: serials near 2e9
    keys = [json.loads(r.payload)["n"] for r in batch.records]
    assert len(set(keys)) == 300 and all(1 <= k <= 500 for k in keys)
    with pytest.raises(ValueError, match="the min/max of the key leave 500 distinct values, fewer than 501"):
        generate_events(contract, 501, seed=1, now=NOW)


def test_a_clean_payload_above_a_small_max_payload_bytes_is_expected_in_quarantine() -> None:
    contract = _contract(
        {"name": "note", "type": "string"},
        {"name": "n", "type": "int"},
        max_payload_bytes=79,
    )
    batch = generate_events(contract, 200, {FaultKind.EXACT_DUPLICATE: 0.1}, seed=4, now=NOW)
    oversize = [r for r in batch.records if len(r.payload.encode()) > 79]
    assert 0 < len(oversize) < len(batch.records)  # 3-digit numbers fit, 4-digit ones do not
    assert batch.expected.quarantined == {"OVERSIZE_PAYLOAD": len(oversize)}
    fitting = {r.message_id for r in batch.records if len(r.payload.encode()) <= 79}
    assert batch.expected.curated_keys == len(fitting)
    assert batch.expected.superseded == len(batch.records) - len(oversize) - len(fitting)
