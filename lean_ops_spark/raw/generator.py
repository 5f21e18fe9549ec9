"""Synthetic raw events for a topic contract, with named faults injected at chosen rates.

Generation is pure Python and deterministic for a given seed and ``now``; writing the
records into the raw staging table (several small appends, as Firehose buffers) is
:func:`lean_ops_spark.raw.writer.append_raw`. The report says what was injected and
where every record must end up, so tests can check each one is accounted for.
"""

from __future__ import annotations

import json
import math
import operator
import random
import struct
import sys
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from decimal import ROUND_CEILING, ROUND_FLOOR, Context, Decimal
from typing import Any

from lean_ops_spark.config.models import DriftMode, FieldSpec, FieldType, TopicContract
from lean_ops_spark.curation.reasons import Reason
from lean_ops_spark.drift.observe import FLOAT_DIGITS  # what curation reads a float exactly to
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


#: Integers each integer type holds.
_INTEGER_LIMITS = {"int": (-(2**31), 2**31 - 1), "long": (-(2**63), 2**63 - 1)}
_FLOAT_MAX = 3.4028234663852886e38  # the largest 32-bit float
_DOUBLE_DIGITS = 15
#: Clean values of a numeric field come from at most this wide a part of its range.
_CLEAN_SPAN = {"int": 100_000, "long": 100_000, "decimal": 10_000, "float": 1e6, "double": 1e6}
_WIDE = Context(prec=100)  # exact arithmetic on any bound a contract can give


def _float32(value: float) -> float:
    """``value`` as a 32-bit float holds it (what curation's ``float`` column compares)."""
    try:
        return float(struct.unpack("f", struct.pack("f", value))[0])
    except OverflowError:
        return math.copysign(math.inf, value)


def _decimal_limit(ftype: FieldType) -> Decimal:
    """The largest value ``decimal(p,s)`` holds (``9999.99`` for ``decimal(6,2)``)."""
    scale = ftype.scale or 0
    return Decimal(10) ** ((ftype.precision or 38) - scale) - Decimal(1).scaleb(-scale)


def _type_limits(ftype: FieldType) -> tuple[float, float]:
    if ftype.kind in _INTEGER_LIMITS:
        low, high = _INTEGER_LIMITS[ftype.kind]
        return float(low), float(high)
    if ftype.kind == "float":
        return -_FLOAT_MAX, _FLOAT_MAX
    if ftype.kind == "decimal":
        limit = float(_decimal_limit(ftype))
        return -limit, limit
    return -sys.float_info.max, sys.float_info.max


def _clean_range(spec: FieldSpec, ftype: FieldType) -> tuple[float, float]:
    """Where clean values of a numeric field come from: ``[min, max]`` within what its type
    holds. Neither given: 0..1,000; no min: from 0 (below a negative max, from
    ``max - max(1000, |max|)``); no max: up to ``max(1000, min + max(1000, |min|))``. At most
    :data:`_CLEAN_SPAN` (or ``|low|``) wide, so a float's 7 digits always fit some values.
    ``low > high``: no value fits."""
    low, high = spec.minimum, spec.maximum
    if low is None and high is None:
        low, high = 0.0, 1000.0
    elif low is None:
        assert high is not None
        low = 0.0 if high >= 0 else high - max(1000.0, abs(high))
    elif high is None:
        high = max(1000.0, low + max(1000.0, abs(low)))
    type_low, type_high = _type_limits(ftype)
    low = max(low, type_low)
    return low, min(high, type_high, low + max(_CLEAN_SPAN[ftype.kind], abs(low)))


def _digits(
    value: float, digits: int, low: float, high: float, cast: Callable[[float], float]
) -> float | None:
    """``value`` rounded to ``digits`` significant digits, moved inward where the rounding (or
    ``cast`` to the column's type) would put it outside ``[low, high]``; None if none fits."""
    nearest = Context(prec=digits)
    rounded = nearest.plus(Decimal(value))
    if cast(float(rounded)) < low:
        up = Context(prec=digits, rounding=ROUND_CEILING)
        rounded = up.plus(Decimal(low))
        for _ in range(4):
            if cast(float(rounded)) >= low:
                break
            rounded = up.next_plus(rounded)
    if cast(float(rounded)) > high:
        down = Context(prec=digits, rounding=ROUND_FLOOR)
        rounded = down.plus(Decimal(high))
        for _ in range(4):
            if cast(float(rounded)) <= high:
                break
            rounded = down.next_minus(rounded)
    return float(rounded) if low <= cast(float(rounded)) <= high else None


class _Values:
    """Realistic values per field type, from one seeded RNG; temporal values at the event's time.

    Numbers stay inside the field's ``min``/``max`` and what its type holds exactly: a
    decimal within its precision at its scale, a float at the 7 significant digits a 32-bit
    float keeps (more would be read as partly parsed and rescued)."""

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
        if kind == "boolean":
            return rng.random() < 0.5
        if kind not in _NUMERIC:
            raise AssertionError(f"not a scalar: {kind}")
        number = self._number(spec, ftype)
        if number is None:
            raise ValueError(
                f"topic {self.topic}: field {spec.name}: no {ftype.spark_ddl()} value lies in "
                f"[{spec.minimum}, {spec.maximum}]"
            )
        return number

    def _number(self, spec: FieldSpec, ftype: FieldType) -> float | int | None:
        """A clean value of a numeric field (None: no value of its type fits its min/max)."""
        low, high = _clean_range(spec, ftype)
        if low > high:
            return None
        if ftype.kind in ("int", "long"):
            type_low, type_high = _INTEGER_LIMITS[ftype.kind]
            int_low, int_high = max(math.ceil(low), type_low), min(math.floor(high), type_high)
            return self.rng.randint(int_low, int_high) if int_low <= int_high else None
        value = self.rng.uniform(low, high)
        if ftype.kind == "float":
            return _digits(value, FLOAT_DIGITS, low, high, _float32)
        if ftype.kind == "double":
            return min(max(round(value, 3), low), high)
        # decimal: at its scale, inside the range (a bound as written: 99.99 itself is in
        # [0, 99.99], as curation compares it, though the double 99.99 is a little less)
        step = Decimal(1).scaleb(-(ftype.scale or 0))
        dec_low = Decimal(repr(low)).quantize(step, rounding=ROUND_CEILING, context=_WIDE)
        dec_high = Decimal(repr(high)).quantize(step, rounding=ROUND_FLOOR, context=_WIDE)
        if dec_low > dec_high:
            return None
        return float(min(max(Decimal(value).quantize(step, context=_WIDE), dec_low), dec_high))

    def value(self, spec: FieldSpec, ftype: FieldType, event_ts: datetime) -> Any:
        if ftype.kind == "struct":
            return {child.name: self.value(child, child.type, event_ts) for child in ftype.fields}
        if ftype.kind == "array":
            assert ftype.element is not None
            element_spec = FieldSpec(name=spec.name, type=ftype.element)
            return [self.value(element_spec, ftype.element, event_ts) for _ in range(self.rng.randint(1, 3))]
        return self.scalar(spec, ftype, event_ts)


def _beyond(bound: float, ftype: FieldType, *, above: bool) -> float | int | None:
    """The value of ``ftype`` nearest beyond ``bound`` (above or below it) that curation reads
    exactly and compares as outside it; None where the type cannot hold such a value (a
    decimal's precision, a 32-bit int)."""
    beyond: Callable[[float, float], bool] = operator.gt if above else operator.lt
    kind = ftype.kind
    if kind in _INTEGER_LIMITS:
        whole = math.floor(bound) + 1 if above else math.ceil(bound) - 1
        if not beyond(float(whole), bound):  # above 2**53 curation compares as doubles
            whole = int(math.nextafter(bound, math.inf if above else -math.inf))
        type_low, type_high = _INTEGER_LIMITS[kind]
        return whole if type_low <= whole <= type_high else None
    if kind == "decimal":
        step = Decimal(1).scaleb(-(ftype.scale or 0))
        exact = Decimal(bound).quantize(step, rounding=ROUND_FLOOR if above else ROUND_CEILING, context=_WIDE)
        for _ in range(3):
            exact = exact + step if above else exact - step
            if beyond(float(exact), bound):
                break
        else:
            return None
        written = Decimal(repr(float(exact)))  # what the JSON says (and curation reads)
        fits = written.quantize(step, context=_WIDE) == written  # no more decimals than the scale
        return float(exact) if fits and abs(written) <= _decimal_limit(ftype) else None
    digits, cast = (FLOAT_DIGITS, _float32) if kind == "float" else (_DOUBLE_DIGITS, float)
    context = Context(prec=digits, rounding=ROUND_CEILING if above else ROUND_FLOOR)
    value = context.plus(Decimal(bound))
    for _ in range(4):
        if value == 0:  # next_plus of 0 is the smallest Decimal, not a number a float holds
            value = Decimal(1 if above else -1)
        if beyond(cast(float(value)), bound):
            return float(value) if math.isfinite(cast(float(value))) else None
        value = context.next_plus(value) if above else context.next_minus(value)
    return None


def _out_of_range_value(spec: FieldSpec) -> float | int | None:
    """A numeric value just above ``max`` (or, where the type cannot hold one, just below
    ``min``) that curation quarantines as ``VALUE_OUT_OF_RANGE``; None: neither side can."""
    for bound, above in ((spec.maximum, True), (spec.minimum, False)):
        if bound is not None and (value := _beyond(bound, spec.type, above=above)) is not None:
            return value
    return None


def _key_range(spec: FieldSpec) -> tuple[int, int] | None:
    """The integers a numeric key column may take (None: not a numeric key)."""
    kind = spec.type.kind
    if kind in _INTEGER_LIMITS:
        type_low, type_high = _INTEGER_LIMITS[kind]
    elif kind == "decimal":
        type_high = int(_decimal_limit(spec.type))
        type_low = -type_high
    else:
        return None
    high = min(type_high, math.floor(spec.maximum)) if spec.maximum is not None else type_high
    if spec.minimum is None:
        return (0 if high >= 0 else type_low), high
    return max(type_low, math.ceil(spec.minimum)), high


def _key_value(spec: FieldSpec, topic: str, seed: int, index: int) -> Any:
    """A key column's value for event ``index``: unique per event and seed where the type can be;
    a numeric one inside the column's min/max (unique per event while the events fit in it)."""
    kind = spec.type.kind
    serial = (seed % 2000) * 1_000_000 + index  # < 2**31, so it fits an int too
    if kind == "string":
        text = f"{topic[:3]}-{seed}-{index:08d}"
        return (
            text if not spec.max_length or len(text) <= spec.max_length else str(serial)[-spec.max_length :]
        )
    if kind == "date":
        return (datetime(2000, 1, 1) + timedelta(days=serial % 2_900_000)).date().isoformat()
    if kind == "timestamp":
        return _iso(datetime(2000, 1, 1, tzinfo=timezone.utc) + timedelta(seconds=serial))
    bounds = _key_range(spec)
    if bounds is None:
        return index % 2 == 0  # boolean: unique only with the other key columns
    low, high = bounds
    if kind == "long":  # room for the whole seed: unique per event and seed
        number = max(low, 0) + seed * 1_000_000_000 + index
    elif kind == "int":
        number = max(low, 0) + serial
    else:  # decimal
        digits = (spec.type.precision or 38) - (spec.type.scale or 0)
        number = serial if len(str(serial)) <= digits else index
    # consecutive numbers wrapped into [low, high] stay distinct for up to high - low + 1 events
    return number if low <= number <= high else low + (number - low) % (high - low + 1)


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


def _newer_ordering(value: Any, spec: FieldSpec, *, partition_column: bool, key_column: bool) -> Any:
    """The ordering column's value for a re-sent newer version of a key.

    A key's partition column never changes (curated's MERGE prunes by its days), nor, of
    course, its key: as the partition column a timestamp moves 1 ms (its values are whole
    seconds, so never into the next hour or day); as a key column, or as a date partition
    column, the value stays and the re-send is newer by its later ingestion time (the next
    level of the newest-wins order). Otherwise a timestamp moves 5 minutes, a date a day, a
    number 1 (:func:`_room_to_bump` left room below ``max``).
    """
    kind = spec.type.kind
    if key_column or (partition_column and kind != "timestamp"):
        return value
    if kind == "timestamp":
        step = timedelta(milliseconds=1) if partition_column else timedelta(minutes=5)
        return _iso(datetime.fromisoformat(str(value).replace("Z", "+00:00")) + step)
    if kind == "date":
        return (datetime.fromisoformat(str(value)) + timedelta(days=1)).date().isoformat()
    return int(value) + 1


def _room_to_bump(value: Any, spec: FieldSpec) -> Any:
    """A numeric ordering value with room for :func:`_newer_ordering`'s +1 below ``max``."""
    if spec.type.kind in _INTEGER_LIMITS and spec.maximum is not None and int(value) + 1 > spec.maximum:
        return int(value) - 1
    return value


def _iso(ts: datetime) -> str:
    return ts.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


@dataclass(frozen=True)
class _Injected:
    body: str | None
    topic: str
    version: int | None
    reason: Reason | None
    rescued: bool


def _wrong_type_target(
    contract: TopicContract, rng: random.Random | None
) -> tuple[tuple[str, ...], FieldSpec] | None:
    """The field a ``wrong_type`` fault changes: an optional one (rescued) if any, else a
    required one besides the key; None: no field a string does not fit (checking only,
    without ``rng``)."""
    columns = contract.flattened_fields()
    optional = [
        (path, f) for _, path, f in columns if not f.required and f.type.kind not in ("string", "struct")
    ]
    required = [
        (path, f)
        for name, path, f in columns
        if f.required and name not in contract.key and f.type.kind != "string"
    ]
    if optional:
        return rng.choice(optional) if rng else optional[0]
    return required[0] if required else None


def _out_of_range_targets(contract: TopicContract) -> list[tuple[tuple[str, ...], FieldSpec]]:
    """Fields an ``out_of_range`` fault can change: strings with allowed values or a
    max_length, numbers whose type holds a value beyond their min or max."""
    return [
        (path, f)
        for _, path, f in contract.flattened_fields()
        if f.allowed or f.max_length or (f.type.kind in _NUMERIC and _out_of_range_value(f) is not None)
    ]


def _missing_required_targets(contract: TopicContract) -> list[tuple[str, ...]]:
    return [path for name, path, f in contract.flattened_fields() if f.required and name not in contract.key]


def _check_expressible(contract: TopicContract, kinds: Sequence[FaultKind]) -> None:
    """Refuse, by name, a fault the contract cannot express or whose effect is not a record's
    fate (whatever the seed, before generating anything).

    Raises:
        ValueError: the first such fault.
    """
    for kind in kinds:
        if kind is FaultKind.MISSING_REQUIRED and not _missing_required_targets(contract):
            raise _no_target(contract, kind, "required field besides the key")
        if kind is FaultKind.WRONG_TYPE and _wrong_type_target(contract, None) is None:
            raise _no_target(contract, kind, "field besides the key that a string does not fit")
        if kind is FaultKind.OUT_OF_RANGE and not _out_of_range_targets(contract):
            raise _no_target(
                contract,
                kind,
                "field with allowed values, a max_length, or a numeric min or max its type can pass",
            )
        if kind is FaultKind.UNKNOWN_FIELDS and contract.drift_mode is DriftMode.FAIL:
            raise ValueError(
                f"topic {contract.topic}: cannot inject {kind.value}: with drift_mode fail an unknown "
                "field stops the curation run (DriftError) before anything is written, so no record "
                f"of the batch would be curated (give {kind.value} a rate of 0, e.g. --fault {kind.value}=0)"
            )


def _unknown_field_names(contract: TopicContract) -> tuple[str, str]:
    """Two top-level field names the contract does not know and no curated column has."""
    taken = {f.name for f in contract.fields} | {name for name, _ in contract.curated_columns()}

    def free(name: str) -> str:
        while name in taken:
            name += "_x"
        return name

    return free("promo_channel"), free("experiment")


def _apply_fault(
    fault: FaultKind | None, payload: dict[str, Any], contract: TopicContract, rng: random.Random
) -> _Injected:
    """Apply one error fault to ``payload`` (in place); say where the record must end up."""
    version: int | None = contract.schema_versions[-1]
    topic = contract.topic
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
        _pop_path(payload, rng.choice(_missing_required_targets(contract)))
        reason = Reason.MISSING_REQUIRED_FIELD
    elif fault is FaultKind.WRONG_TYPE:
        wrong = _wrong_type_target(contract, rng)
        assert wrong is not None  # _check_expressible
        path, target = wrong
        _set_path(payload, path, "not-a-" + target.type.kind)
        rescued = not target.required
        reason = None if rescued else Reason.INVALID_TYPE
    elif fault is FaultKind.OUT_OF_RANGE:
        path, target = rng.choice(_out_of_range_targets(contract))
        if target.type.kind in _NUMERIC:
            _set_path(payload, path, _out_of_range_value(target))
            reason = Reason.VALUE_OUT_OF_RANGE
        else:
            bogus = "bogus"
            while bogus in target.allowed:
                bogus += "x"
            _set_path(payload, path, "x" * ((target.max_length or 8) + 1) if not target.allowed else bogus)
            reason = Reason.INVALID_VALUE
    elif fault is FaultKind.UNKNOWN_FIELDS:
        channel, experiment = _unknown_field_names(contract)
        payload[channel] = rng.choice(["email", "push", "partner"])
        payload[experiment] = {"id": f"exp-{rng.randrange(100)}", "arm": "b"}
        # evolve adds them as columns (the record parses whole); rescue keeps them in
        # _rescued_data; fail is refused up front (_check_expressible)
        rescued = contract.drift_mode is not DriftMode.EVOLVE
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


def _fate(record: RawRecord, reason: Reason | None, contract: TopicContract) -> Reason | None:
    """Why curation quarantines ``record`` (None: it is valid): ``reason``, the fault's, unless
    a check curation makes first applies (a clean payload above a small max_payload_bytes)."""
    if record.topic != contract.topic:
        return Reason.WRONG_TOPIC
    if len(record.payload.encode()) > contract.max_payload_bytes:
        return Reason.OVERSIZE_PAYLOAD
    if record.schema_version is not None and record.schema_version not in contract.schema_versions:
        return Reason.UNKNOWN_SCHEMA_VERSION
    return reason


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


#: Fault kinds whose events are counted together from one rate (``fault_rates``' groups).
_FAULT_GROUPS: tuple[tuple[FaultKind, ...], ...] = (ERROR_KINDS, DUPLICATE_KINDS, (FaultKind.LATE_EVENT,))


def _split(total: int, shares: Sequence[float], rng: random.Random) -> list[int]:
    """``total`` split in proportion to ``shares`` by largest remainder (ties drawn by ``rng``)."""
    weight = sum(shares)
    if total <= 0 or weight <= 0:
        return [0] * len(shares)
    exact = [share * total / weight for share in shares]
    counts = [math.floor(x) for x in exact]
    eligible = sorted(
        (i for i, share in enumerate(shares) if share > 0), key=lambda i: (counts[i] - exact[i], rng.random())
    )
    for i in eligible[: total - sum(counts)]:
        counts[i] += 1
    return counts


def _fault_counts(events: int, rates: Mapping[FaultKind, float], rng: random.Random) -> dict[FaultKind, int]:
    """Events per fault kind. All faults' total is rounded once (half up) and split over the
    groups (errors, duplicates, late), and each group's over its kinds, by largest remainder:
    0.04 of 100 events is 4 errors (not nine 0.44s rounded to 0), and rates adding up to 1
    never ask for more events than there are."""
    group_rates = [sum(rates.get(kind, 0.0) for kind in group) for group in _FAULT_GROUPS]
    total = min(events, math.floor(events * sum(group_rates) + 0.5 + 1e-9))
    counts: dict[FaultKind, int] = {}
    for group, group_total in zip(_FAULT_GROUPS, _split(total, group_rates, rng), strict=True):
        shares = [rates.get(kind, 0.0) for kind in group]
        counts.update((kind, n) for kind, n in zip(group, _split(group_total, shares, rng), strict=True) if n)
    return counts


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


def _check_key_space(contract: TopicContract, events: int) -> None:
    """Refuse more events than distinct keys the min/max of the key's numeric columns leave
    (a key is unique while one of its columns is)."""
    spaces = [_key_range(_column(contract, key)[1]) for key in contract.key]
    sizes = [high - low + 1 for low, high in (b for b in spaces if b is not None)]
    if len(sizes) == len(spaces) and max(sizes) < events:
        raise ValueError(
            f"topic {contract.topic}: the min/max of the key leave {max(sizes)} distinct values, "
            f"fewer than {events} events"
        )


def _copies(
    fault: FaultKind | None, record: RawRecord, payload: dict[str, Any], contract: TopicContract
) -> list[RawRecord]:
    """The extra records of a duplicate fault: the same message again, or a newer version of
    its key (by the ordering column, or by arrival where that is the partition column)."""
    if fault is FaultKind.EXACT_DUPLICATE:
        return [record]
    if fault is not FaultKind.RESENT_NEWER:
        return []
    path, spec = _column(contract, contract.ordering_column)
    newer = json.loads(json.dumps(payload))  # nested structs copied too
    newest = _newer_ordering(
        _path_value(payload, path),
        spec,
        partition_column=contract.ordering_column == contract.partition.column,
        key_column=contract.ordering_column in contract.key,
    )
    _set_path(newer, path, newest)
    status = next((f for f in contract.fields if f.name == "status"), None)
    if status is not None and status.allowed:
        newer["status"] = status.allowed[-1]
    resent = RawRecord(
        message_id=f"{record.message_id}-v2",
        topic=record.topic,
        payload=json.dumps(newer, separators=(",", ":")),
        ingestion_ts=record.ingestion_ts,
        producer=record.producer,
        schema_version=record.schema_version,
    )
    return [resent]


def new_seed() -> int:
    """A fresh seed for a run that was given none (``lean-ops seed``, the demo): keys and
    message ids carry the seed, so a second run adds new ones instead of sending the same
    keys and message ids again at another time (a repeated message id is a re-delivery of
    that message), and a key's versions keep their partition day (curated's pruned MERGE), which
    shifted event times of the same keys would not. Int keys are unique per seed modulo 2,000
    (they must fit 32 bits); long and string keys and message ids per seed; a numeric key
    with a min/max narrower than that wraps inside it (unique within one run only)."""
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
    the expectation is exact. Deterministic for equal ``seed`` and ``now`` (a naive ``now``
    is UTC).

    Raises:
        ValueError: a fault with a rate above 0 that the contract cannot express (or that
            would stop the run: ``unknown_fields`` with ``drift_mode: fail``), bounds no
            value fits, or more events than the key's min/max leave distinct keys.
    """
    rng = random.Random(seed)  # noqa: S311 - reproducible test data, not security
    now = now or datetime.now(timezone.utc)
    now = (now if now.tzinfo else now.replace(tzinfo=timezone.utc)).astimezone(timezone.utc)
    now = now.replace(microsecond=0)
    values = _Values(rng, contract.topic, seed)
    rates = dict(rates or {})
    if any(rate < 0 for rate in rates.values()) or sum(rates.values()) > 1 + 1e-9:
        raise ValueError(f"fault rates must be >= 0 and add up to at most 1, got {rates}")
    _check_expressible(contract, [kind for kind in FaultKind if rates.get(kind, 0) > 0])
    _check_key_space(contract, events)
    counts = _fault_counts(events, rates, rng)

    assigned = _assign_faults(events, counts, rng)
    ordering_path, ordering_spec = _column(contract, contract.ordering_column)
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
        if fault is FaultKind.RESENT_NEWER and contract.ordering_column not in contract.key:
            original = _path_value(payload, ordering_path)
            _set_path(payload, ordering_path, _room_to_bump(original, ordering_spec))
        record = RawRecord(
            message_id=f"{contract.topic}-{seed}-{i:08d}",
            topic=topic,
            payload=injected_fault.body or json.dumps(payload, separators=(",", ":")),
            ingestion_ts=ingestion(i),
            producer=producer,
            schema_version=version,
        )
        records.append(record)
        copies = _copies(fault, record, payload, contract)
        extra.extend((rng.randint(i, events - 1), copy) for copy in copies)

        # Where each record ends up: every valid version of the event's key but the newest
        # is superseded; only the original can carry rescued data (copies are of clean events).
        valid = 0
        for n, rec in enumerate((record, *copies)):
            reason = _fate(rec, injected_fault.reason if n == 0 else None, contract)
            if reason is not None:
                expected.quarantined[reason.value] += 1
                continue
            valid += 1
            expected.rescued += int(n == 0 and injected_fault.rescued)
        expected.curated_keys += int(valid > 0)
        expected.superseded += max(valid - 1, 0)

    stamped = _interleave(records, extra, ingestion)
    injected = {kind.value: counts.get(kind, 0) for kind in FaultKind}
    return GeneratedBatch(contract.topic, stamped, events, injected, expected)
