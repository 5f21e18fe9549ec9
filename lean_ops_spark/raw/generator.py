"""Synthetic raw events for a topic contract, with named faults injected at chosen rates.

Generation is pure Python and deterministic for a given seed and ``now``; writing the
records into the raw staging table (several small appends, as Firehose buffers) is
:func:`lean_ops_spark.raw.writer.append_raw`. The report says what was injected and
where every record must end up, so tests can check each one is accounted for.
"""

from __future__ import annotations

import json
import random
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

from lean_ops_spark.config.models import FieldSpec, FieldType, TopicContract
from lean_ops_spark.curation.reasons import Reason
from lean_ops_spark.raw.faults import DUPLICATE_KINDS, ERROR_KINDS, FaultKind

__all__ = ["GeneratedBatch", "RawRecord", "SeedExpectation", "fault_rates", "generate_events", "new_seed"]

_NUMERIC = ("int", "long", "double", "float", "decimal")


@dataclass(frozen=True)
class RawRecord:
    """One row of ``<raw_db>.<topic>_staging`` as Firehose writes it."""

    message_id: str
    topic: str
    payload: str
    ingestion_ts: datetime
    producer: str | None
    schema_version: int | None


@dataclass
class SeedExpectation:
    """Where the generated records must end up after curating all of them in one run."""

    curated_keys: int = 0  # distinct valid keys
    superseded: int = 0  # valid records that lose to another version of their key
    rescued: int = 0  # valid records with something in _rescued_data
    quarantined: Counter[str] = field(default_factory=Counter)  # reason code -> records

    def as_dict(self) -> dict[str, Any]:
        return {
            "curated_keys": self.curated_keys,
            "superseded": self.superseded,
            "rescued": self.rescued,
            "quarantined": dict(sorted(self.quarantined.items())),
        }


@dataclass(frozen=True)
class GeneratedBatch:
    """The records in arrival order, and the report of what was injected."""

    topic: str
    records: tuple[RawRecord, ...]
    events: int
    injected: Mapping[str, int]
    expected: SeedExpectation

    def as_dict(self) -> dict[str, Any]:
        return {
            "topic": self.topic,
            "events": self.events,
            "records": len(self.records),
            "injected": dict(sorted(self.injected.items())),
            "expected": self.expected.as_dict(),
        }


def fault_rates(
    error_rate: float = 0.0,
    duplicates: float = 0.0,
    late: float = 0.0,
    overrides: Mapping[FaultKind, float] | None = None,
) -> dict[FaultKind, float]:
    """Per-kind rates: ``error_rate`` split evenly over the error kinds, ``duplicates`` over
    the duplicate kinds, ``late`` for late events; ``overrides`` set single kinds exactly."""
    rates: dict[FaultKind, float] = {}
    for kind in ERROR_KINDS:
        rates[kind] = error_rate / len(ERROR_KINDS)
    for kind in DUPLICATE_KINDS:
        rates[kind] = duplicates / len(DUPLICATE_KINDS)
    rates[FaultKind.LATE_EVENT] = late
    rates.update(overrides or {})
    if any(r < 0 for r in rates.values()) or sum(rates.values()) > 1:
        raise ValueError(f"fault rates must be >= 0 and add up to at most 1, got {rates}")
    return rates


class _Values:
    """Realistic values per field type, from one seeded RNG; temporal values at the event's time."""

    def __init__(self, rng: random.Random, topic: str, seed: int) -> None:
        self.rng = rng
        self.topic = topic
        self.seed = seed

    def scalar(self, spec: FieldSpec, ftype: FieldType, event_ts: datetime) -> Any:
        rng = self.rng
        if spec.allowed:
            return rng.choice(spec.allowed)
        kind = ftype.kind
        if kind == "timestamp":
            return _iso(event_ts)
        if kind == "date":
            return event_ts.date().isoformat()
        if kind == "string":
            text = f"{spec.name}-{rng.randrange(10_000):04d}"
            return text[: spec.max_length] if spec.max_length else text
        if kind in ("int", "long"):
            low = int(spec.minimum) if spec.minimum is not None else 0
            high = int(spec.maximum) if spec.maximum is not None else 1000
            return rng.randint(low, min(high, low + 100_000))
        if kind in ("double", "float"):
            return round(rng.uniform(spec.minimum or 0.0, min(spec.maximum or 1000.0, 1e6)), 3)
        if kind == "decimal":
            dec_low = spec.minimum if spec.minimum is not None else 0.0
            dec_high = min(spec.maximum if spec.maximum is not None else 1000.0, 10_000.0)
            return float(round(Decimal(str(rng.uniform(dec_low, dec_high))), ftype.scale or 0))
        if kind == "boolean":
            return rng.random() < 0.5
        raise AssertionError(f"not a scalar: {kind}")

    def value(self, spec: FieldSpec, ftype: FieldType, event_ts: datetime) -> Any:
        if ftype.kind == "struct":
            return {child.name: self.value(child, child.type, event_ts) for child in ftype.fields}
        if ftype.kind == "array":
            assert ftype.element is not None
            element_spec = FieldSpec(name=spec.name, type=ftype.element)
            return [self.value(element_spec, ftype.element, event_ts) for _ in range(self.rng.randint(1, 3))]
        return self.scalar(spec, ftype, event_ts)


def _key_value(spec: FieldSpec, topic: str, seed: int, index: int) -> Any:
    """A key column's value for event ``index``: unique per event and seed where the type can be."""
    kind = spec.type.kind
    serial = (seed % 2000) * 1_000_000 + index  # < 2**31, so it fits an int too
    if kind == "string":
        text = f"{topic[:3]}-{seed}-{index:08d}"
        return (
            text if not spec.max_length or len(text) <= spec.max_length else str(serial)[-spec.max_length :]
        )
    if kind == "long":  # room for the whole seed: unique per event and seed
        return int(spec.minimum or 0) + seed * 1_000_000_000 + index
    if kind == "int":
        return int(spec.minimum or 0) + serial
    if kind == "decimal":
        digits = (spec.type.precision or 38) - (spec.type.scale or 0)
        return serial if len(str(serial)) <= digits else index
    if kind == "date":
        return (datetime(2000, 1, 1) + timedelta(days=serial % 2_900_000)).date().isoformat()
    if kind == "timestamp":
        return _iso(datetime(2000, 1, 1, tzinfo=timezone.utc) + timedelta(seconds=serial))
    return index % 2 == 0  # boolean: unique only with the other key columns


def _path_value(payload: dict[str, Any], path: tuple[str, ...]) -> Any:
    node: Any = payload
    for part in path:
        node = node.get(part) if isinstance(node, dict) else None
    return node


def _set_path(payload: dict[str, Any], path: tuple[str, ...], value: Any) -> None:
    node = payload
    for part in path[:-1]:
        child = node.get(part)
        if not isinstance(child, dict):
            child = node[part] = {}
        node = child
    node[path[-1]] = value


def _pop_path(payload: dict[str, Any], path: tuple[str, ...]) -> None:
    parent = _path_value(payload, path[:-1]) if len(path) > 1 else payload
    if isinstance(parent, dict):
        parent.pop(path[-1], None)


def _column(contract: TopicContract, name: str) -> tuple[tuple[str, ...], FieldSpec]:
    """The payload path and spec of a (flattened) curated column."""
    return next((path, spec) for column, path, spec in contract.flattened_fields() if column == name)


def _no_target(contract: TopicContract, fault: FaultKind, needs: str) -> ValueError:
    return ValueError(
        f"topic {contract.topic}: cannot inject {fault.value}: the contract has no {needs} "
        f"(give {fault.value} a rate of 0, e.g. --fault {fault.value}=0)"
    )


def _bump(value: Any, kind: str, step: timedelta) -> Any:
    """``value`` of an ordering column moved later by ``step`` (or by 1 for numbers)."""
    if kind == "timestamp":
        return _iso(datetime.fromisoformat(str(value).replace("Z", "+00:00")) + step)
    if kind == "date":
        return (datetime.fromisoformat(str(value)) + timedelta(days=1)).date().isoformat()
    return int(value) + 1


def _iso(ts: datetime) -> str:
    return ts.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


@dataclass(frozen=True)
class _Injected:
    body: str | None
    topic: str
    version: int | None
    reason: Reason | None
    rescued: bool


def _fault_target(
    contract: TopicContract, fault: FaultKind, rng: random.Random
) -> tuple[tuple[str, ...], FieldSpec]:
    """The field (payload path and spec) a ``wrong_type`` or ``out_of_range`` fault changes.

    Raises:
        ValueError: the contract has no such field (the fault cannot be expressed).
    """
    columns = contract.flattened_fields()
    if fault is FaultKind.WRONG_TYPE:  # an optional one (rescued) if any, else a required one
        optional = [
            (path, f) for _, path, f in columns if not f.required and f.type.kind not in ("string", "struct")
        ]
        required = [
            (path, f)
            for name, path, f in columns
            if f.required and name not in contract.key and f.type.kind != "string"
        ]
        if not optional and not required:
            raise _no_target(contract, fault, "field besides the key that a string does not fit")
        return rng.choice(optional) if optional else required[0]
    bounded = [
        (path, f)
        for _, path, f in columns
        if f.allowed or f.max_length or (f.type.kind in _NUMERIC and f.maximum is not None)
    ]
    if not bounded:
        raise _no_target(contract, fault, "field with allowed values, a max_length or a numeric max")
    return rng.choice(bounded)


def _apply_fault(
    fault: FaultKind | None, payload: dict[str, Any], contract: TopicContract, rng: random.Random
) -> _Injected:
    """Apply one error fault to ``payload`` (in place); say where the record must end up."""
    version: int | None = contract.schema_versions[-1]
    topic = contract.topic
    columns = contract.flattened_fields()
    body: str | None = None
    reason: Reason | None = None
    rescued = False

    if fault is FaultKind.MALFORMED_JSON:
        body = json.dumps(payload)[:-7] + '"broken'
        reason = Reason.MALFORMED_JSON
    elif fault is FaultKind.MISSING_KEY:
        _pop_path(payload, _column(contract, contract.key[0])[0])
        reason = Reason.MISSING_KEY
    elif fault is FaultKind.MISSING_REQUIRED:
        candidates = [path for name, path, f in columns if f.required and name not in contract.key]
        if not candidates:
            raise _no_target(contract, fault, "required field besides the key")
        _pop_path(payload, rng.choice(candidates))
        reason = Reason.MISSING_REQUIRED_FIELD
    elif fault is FaultKind.WRONG_TYPE:
        path, target = _fault_target(contract, fault, rng)
        _set_path(payload, path, "not-a-" + target.type.kind)
        rescued = not target.required
        reason = None if rescued else Reason.INVALID_TYPE
    elif fault is FaultKind.OUT_OF_RANGE:
        path, target = _fault_target(contract, fault, rng)
        if target.type.kind in _NUMERIC:
            assert target.maximum is not None
            _set_path(payload, path, target.maximum * 10 + 1)
            reason = Reason.VALUE_OUT_OF_RANGE
        else:
            _set_path(payload, path, "x" * ((target.max_length or 8) + 1) if not target.allowed else "bogus")
            reason = Reason.INVALID_VALUE
    elif fault is FaultKind.UNKNOWN_FIELDS:
        payload["promo_channel"] = rng.choice(["email", "push", "partner"])
        payload["experiment"] = {"id": f"exp-{rng.randrange(100)}", "arm": "b"}
        rescued = True
    elif fault is FaultKind.OVERSIZE_PAYLOAD:
        payload["blob"] = "z" * (contract.max_payload_bytes + 16)
        reason = Reason.OVERSIZE_PAYLOAD
    elif fault is FaultKind.WRONG_TOPIC:
        topic = f"{contract.topic}_misrouted"
        reason = Reason.WRONG_TOPIC
    elif fault is FaultKind.UNKNOWN_VERSION:
        version = max(contract.schema_versions) + 1
        reason = Reason.UNKNOWN_SCHEMA_VERSION

    return _Injected(body, topic, version, reason, rescued)


def _interleave(
    records: list[RawRecord], extra: list[tuple[int, RawRecord]], ingestion: Callable[[int], datetime]
) -> tuple[RawRecord, ...]:
    """Put each extra record (duplicate, re-send) after its position; re-stamp ingestion
    times so arrival order is ingestion order."""
    by_position: dict[int, list[RawRecord]] = {}
    for position, rec in extra:
        by_position.setdefault(position, []).append(rec)
    ordered: list[RawRecord] = []
    for i, rec in enumerate(records):
        ordered.append(rec)
        ordered.extend(by_position.get(i, []))
    return tuple(
        RawRecord(r.message_id, r.topic, r.payload, ingestion(n), r.producer, r.schema_version)
        for n, r in enumerate(ordered)
    )


def _assign_faults(events: int, counts: Mapping[FaultKind, int], rng: random.Random) -> dict[int, FaultKind]:
    """Distinct events for each fault kind: event index -> fault."""
    order = list(range(events))
    rng.shuffle(order)
    assigned: dict[int, FaultKind] = {}
    cursor = 0
    for kind in FaultKind:
        for _ in range(counts.get(kind, 0)):
            assigned[order[cursor]] = kind
            cursor += 1
    return assigned


def _clean_payload(
    contract: TopicContract, values: _Values, index: int, event_ts: datetime, seed: int
) -> dict[str, Any]:
    """A valid payload for event ``index``: every temporal field (nested ones too) at
    ``event_ts``, the ordering column (when separate) a little later, a unique key; key,
    ordering and partition columns may be inside flattened structs."""
    payload = {spec.name: values.value(spec, spec.type, event_ts) for spec in contract.fields}
    for key in contract.key:
        path, spec = _column(contract, key)
        _set_path(payload, path, _key_value(spec, contract.topic, seed, index))
    path, ordering = _column(contract, contract.ordering_column)
    if contract.ordering_column != contract.partition.column and ordering.type.kind == "timestamp":
        _set_path(payload, path, _iso(event_ts + timedelta(seconds=values.rng.randint(0, 600))))
    return payload


def new_seed() -> int:
    """A fresh seed for a run that was given none (``lean-ops seed``, the demo): keys and
    message ids carry the seed, so a second run adds new ones instead of sending the same
    keys and message ids again at another time (a repeated message id is a re-delivery of
    that message), and a key's versions keep their partition day (curated's pruned MERGE), which
    shifted event times of the same keys would not. Int keys are unique per seed modulo 2,000
    (they must fit 32 bits); long and string keys and message ids per seed."""
    return random.SystemRandom().randrange(1, 1_000_000)


def generate_events(
    contract: TopicContract,
    events: int,
    rates: Mapping[FaultKind, float] | None = None,
    *,
    seed: int = 7,
    now: datetime | None = None,
    producer: str = "lean-ops-seed",
) -> GeneratedBatch:
    """Generate ``events`` logical events (plus extra records for duplicates and re-sends).

    Each event gets at most one fault; duplicates and re-sends copy clean events only, so
    the expectation is exact. Deterministic for equal ``seed`` and ``now``.
    """
    rng = random.Random(seed)  # noqa: S311 - reproducible test data, not security
    now = (now or datetime.now(timezone.utc)).astimezone(timezone.utc).replace(microsecond=0)
    values = _Values(rng, contract.topic, seed)
    rates = dict(rates or {})
    counts = {kind: round(events * rate) for kind, rate in rates.items() if rate > 0}
    if sum(counts.values()) > events:
        raise ValueError("more faults than events")

    assigned = _assign_faults(events, counts, rng)
    specs = {f.name: f for f in contract.fields}
    ordering, partition = contract.ordering_column, contract.partition.column
    ordering_path, ordering_spec = _column(contract, ordering)
    expected = SeedExpectation()
    records: list[RawRecord] = []
    extra: list[tuple[int, RawRecord]] = []  # (insert-after index, record) for duplicates/re-sends
    ingestion_start = now - timedelta(minutes=30)

    def ingestion(position: int) -> datetime:
        return ingestion_start + timedelta(milliseconds=position * 10)

    for i in range(events):
        fault = assigned.get(i)
        event_ts = now - timedelta(seconds=rng.randint(60, 3 * 86_400))
        if fault is FaultKind.LATE_EVENT:
            event_ts = now - timedelta(days=rng.randint(30, 360))
        payload = _clean_payload(contract, values, i, event_ts, seed)
        injected_fault = _apply_fault(fault, payload, contract, rng)
        topic, version = injected_fault.topic, injected_fault.version
        reason, rescued = injected_fault.reason, injected_fault.rescued
        record = RawRecord(
            message_id=f"{contract.topic}-{seed}-{i:08d}",
            topic=topic,
            payload=injected_fault.body or json.dumps(payload, separators=(",", ":")),
            ingestion_ts=ingestion(i),
            producer=producer,
            schema_version=version,
        )
        records.append(record)
        if reason is not None:
            expected.quarantined[reason.value] += 1
            continue
        expected.curated_keys += 1
        expected.rescued += int(rescued)
        if fault is FaultKind.EXACT_DUPLICATE:
            extra.append((rng.randint(i, events - 1), record))
            expected.superseded += 1
        elif fault is FaultKind.RESENT_NEWER:
            # a newer version of the same key; the partition column never changes for a key
            step = timedelta(milliseconds=1) if ordering == partition else timedelta(minutes=5)
            newer = json.loads(json.dumps(payload))  # nested structs copied too
            _set_path(
                newer,
                ordering_path,
                _bump(_path_value(payload, ordering_path), ordering_spec.type.kind, step),
            )
            if "status" in specs and specs["status"].allowed:
                newer["status"] = specs["status"].allowed[-1]
            resent = RawRecord(
                message_id=f"{record.message_id}-v2",
                topic=topic,
                payload=json.dumps(newer, separators=(",", ":")),
                ingestion_ts=record.ingestion_ts,
                producer=producer,
                schema_version=version,
            )
            extra.append((rng.randint(i, events - 1), resent))
            expected.superseded += 1

    stamped = _interleave(records, extra, ingestion)
    injected = {kind.value: counts.get(kind, 0) for kind in FaultKind}
    return GeneratedBatch(contract.topic, stamped, events, injected, expected)
