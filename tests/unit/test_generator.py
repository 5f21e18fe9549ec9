"""The seed generator on a contract whose key, ordering and partition columns are not plain
top-level strings and timestamps (the shipped topics' shape)."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import datetime, timezone

import pytest

from lean_ops_spark.raw import FaultKind, fault_rates, generate_events

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
        (FaultKind.OUT_OF_RANGE, "allowed values, a max_length or a numeric max"),
        (FaultKind.MISSING_REQUIRED, "required field besides the key"),
        (FaultKind.WRONG_TYPE, "a string does not fit"),
    ],
)
def test_a_fault_the_contract_cannot_express_is_refused_by_name(payments_contract, fault, needs) -> None:
    account = next(f for f in payments_contract.fields if f.name == "account")
    account = replace(account, type=replace(account.type, fields=account.type.fields[:1]))  # id only
    payment_no = next(f for f in payments_contract.fields if f.name == "payment_no")
    keys_only = replace(
        payments_contract,
        fields=(account, payment_no),
        ordering_column="payment_no",
        partition=replace(payments_contract.partition, column="payment_no", transform="identity"),
    )
    with pytest.raises(ValueError, match=f"payments: cannot inject {fault.value}: .*{needs}"):
        generate_events(keys_only, 10, {fault: 0.5}, seed=1, now=NOW)
