"""Schema drift as typed items: what arrived (or what curated holds) against the contract.

Pure: the observed schema is a small summary computed by
:func:`lean_ops_spark.drift.observe.observe_batch` (one aggregation over a batch); the
curated schema is a Spark ``StructType``. Nothing here needs a SparkSession.

Two comparisons:

* :func:`diff_batch` - the payloads of a batch against the contract. A field the contract
  does not know, or a value that needs a wider type, is drift as soon as one record shows
  it. A type that does not fit, or a required field that is absent or null, is drift when
  it holds for at least ``min_share`` of the observed values (default half); below that it
  is a bad record, which curation rescues or quarantines per record as before.
* :func:`reconcile_with_curated` - the curated table against the contract: columns an
  earlier ``evolve`` added (kept and used), contract fields or widenings the table lacks
  (applied), and types that cannot be reconciled (an error).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from dataclasses import replace as dataclass_replace
from enum import Enum
from typing import Any

from lean_ops_spark.config.models import RESERVED_COLUMNS, FieldSpec, FieldType, TopicContract
from lean_ops_spark.drift.schema import (
    ELEMENT,
    NON_PAYLOAD_COLUMNS,
    FieldPath,
    PathInfo,
    contract_paths,
    field_type_from_spark,
    is_identifier,
    json_path,
    parse_json_path,
    promote,
    replace_type,
    widened,
    with_field,
)
from lean_ops_spark.errors import ContractError

__all__ = [
    "JSON_KINDS",
    "PATH_COMMENT_PREFIX",
    "Drift",
    "DriftKind",
    "DriftSource",
    "DriftThresholds",
    "ObservedPath",
    "ObservedSchema",
    "Reconciliation",
    "SchemaChange",
    "diff_batch",
    "drifts_by_kind",
    "infer_type",
    "reconcile_with_curated",
]

#: How a JSON value is classified from its text.
JSON_KINDS = ("boolean", "integer", "number", "string", "object", "array")
#: Column comment that maps a column added by evolution back to its payload path.
PATH_COMMENT_PREFIX = "lean-ops payload path: "


class DriftKind(str, Enum):
    NEW_FIELD = "new_field"
    NESTED_FIELD_CHANGE = "nested_field_change"
    MISSING_REQUIRED_FIELD = "missing_required_field"
    NULLABILITY_CHANGE = "nullability_change"
    TYPE_WIDENING = "type_widening"
    TYPE_INCOMPATIBLE = "type_incompatible"


class DriftSource(str, Enum):
    """What differs from the contract: a batch's payloads, or the curated table."""

    DATA = "data"
    CURATED = "curated"  # curated has it, the contract does not (an earlier evolve)
    CONTRACT = "contract"  # the contract has it, curated does not yet (a contract edit)


@dataclass(frozen=True)
class Drift:
    """One difference between what arrived (or curated) and the contract.

    ``records`` is how many observed values show the difference, out of ``observed``
    (records for top-level fields, values of the parent for nested ones).
    """

    path: FieldPath
    kind: DriftKind
    old_type: str | None
    new_type: str | None
    source: DriftSource = DriftSource.DATA
    records: int = 0
    observed: int = 0
    detail: str = ""
    #: The type to evolve to (new fields and widenings), as a contract type.
    proposed: FieldType | None = field(default=None, compare=False, repr=False)

    @property
    def field_path(self) -> str:
        return json_path(self.path)

    @property
    def nested(self) -> bool:
        return len(self.path) > 1

    def as_dict(self) -> dict[str, Any]:
        return {
            "field_path": self.field_path,
            "kind": self.kind.value,
            "old_type": self.old_type,
            "new_type": self.new_type,
            "source": self.source.value,
            "records": self.records,
            "observed": self.observed,
            "detail": self.detail,
        }


@dataclass(frozen=True)
class DriftThresholds:
    """When a type mismatch or an absent/null required field is drift rather than a bad record."""

    min_share: float = 0.5

    def __post_init__(self) -> None:
        if not 0 < self.min_share <= 1:
            raise ValueError("min_share must be in (0, 1]")


@dataclass(frozen=True)
class ObservedPath:
    """What a batch shows at one path.

    ``bad`` counts non-null values that do not fit the contract type of a known path and
    ``bad_wider`` those that would not fit even its widest promotion (so
    ``bad - bad_wider`` values need a widening); both are 0 for unknown paths.
    """

    path: FieldPath
    present: int = 0
    nulls: int = 0
    kinds: Mapping[str, int] = field(default_factory=dict)
    bad: int = 0
    bad_wider: int = 0
    max_int_digits: int | None = None

    @property
    def occurrences(self) -> int:
        return self.present + self.nulls

    def kind_count(self, kind: str) -> int:
        return int(self.kinds.get(kind, 0))


@dataclass(frozen=True)
class ObservedSchema:
    """The observed paths of a batch and how many records (JSON objects) it had."""

    records: int
    paths: Mapping[FieldPath, ObservedPath]
    #: Records where parsing a struct/array column lost something (an unknown nested key,
    #: a nested value that did not parse, a rounded or truncated scalar), per column.
    lossy_records: Mapping[str, int] = field(default_factory=dict)

    def get(self, path: FieldPath) -> ObservedPath | None:
        return self.paths.get(path)

    def containers(self, path: FieldPath) -> int:
        """How many objects could have carried ``path`` (records for a top-level field)."""
        if len(path) == 1:
            return self.records
        parent = self.paths.get(path[:-1])
        return 0 if parent is None else parent.kind_count("object")

    def as_dict(self) -> dict[str, Any]:
        return {
            "records": self.records,
            "paths": {
                json_path(p): {k: v for k, v in asdict(o).items() if k != "path"}
                for p, o in self.paths.items()
            },
            "lossy_records": dict(self.lossy_records),
        }


# --------------------------------------------------------------------------- inference


def _children(observed: ObservedSchema, path: FieldPath) -> list[ObservedPath]:
    depth = len(path) + 1
    return sorted(
        (o for p, o in observed.paths.items() if len(p) == depth and p[:-1] == path and p[-1] != ELEMENT),
        key=lambda o: o.path[-1],
    )


def infer_type(observed: ObservedSchema, path: FieldPath) -> FieldType:
    """The contract type for an observed path: the narrowest type every value fits.

    Integers -> long, any fraction -> double, true/false -> boolean, objects -> struct of
    their (identifier-named) keys, arrays -> array of the inferred element type; mixed
    kinds, strings and null-only fields -> string.
    """
    obs = observed.get(path)
    kinds = {k for k, v in (obs.kinds if obs else {}).items() if v}
    if kinds == {"object"}:
        children = [c for c in _children(observed, path) if is_identifier(c.path[-1])]
        if not children:
            return FieldType("string")
        return FieldType(
            "struct",
            fields=tuple(FieldSpec(name=c.path[-1], type=infer_type(observed, c.path)) for c in children),
        )
    if kinds == {"array"}:
        element = (*path, ELEMENT)
        if observed.get(element) is None or not observed.paths[element].present:
            return FieldType("array", element=FieldType("string"))
        return FieldType("array", element=infer_type(observed, element))
    if kinds == {"boolean"}:
        return FieldType("boolean")
    if kinds == {"integer"}:
        return FieldType("long")
    if kinds and kinds <= {"integer", "number"}:
        return FieldType("double")
    return FieldType("string")


def _observed_kind(obs: ObservedPath) -> str:
    kinds = sorted((v, k) for k, v in obs.kinds.items() if v)
    return kinds[-1][1] if kinds else "null"


# --------------------------------------------------------------------------- batch diff


def _widening(info: PathInfo, obs: ObservedPath) -> FieldType | None:
    """The exact type the values of a known scalar path need (None: no widening needed)."""
    need = obs.bad - obs.bad_wider
    target = widened(info.type)
    if need <= 0 or target is None:
        return None
    if info.type.kind == "decimal":
        scale = info.type.scale or 0
        digits = max(obs.max_int_digits or 0, (info.type.precision or 0) - scale + 1)
        return FieldType("decimal", precision=min(38, scale + digits), scale=scale)
    return target


def diff_batch(
    observed: ObservedSchema, contract: TopicContract, thresholds: DriftThresholds | None = None
) -> tuple[Drift, ...]:
    """Classify every difference between a batch's payloads and the contract (see the module doc)."""
    limits = thresholds or DriftThresholds()
    known = contract_paths(contract)
    drifts: list[Drift] = []

    for path in sorted(observed.paths):
        if path in known:
            continue
        ancestors = [path[:i] for i in range(1, len(path))]
        if any(a not in known for a in ancestors):
            continue  # part of an unknown ancestor's inferred type
        if ancestors and known[ancestors[-1]].type.kind not in ("struct", "array"):
            continue  # inside a value the contract types as a scalar (e.g. JSON text in a string)
        if path[-1] == ELEMENT:
            continue  # elements of a field typed as a struct: reported as a type mismatch
        obs = observed.paths[path]
        proposed = infer_type(observed, path)
        drifts.append(
            Drift(
                path=path,
                kind=DriftKind.NEW_FIELD if len(path) == 1 else DriftKind.NESTED_FIELD_CHANGE,
                old_type=None,
                new_type=proposed.spark_ddl(),
                records=obs.occurrences,
                observed=observed.containers(path),
                detail="field not in the contract",
                proposed=proposed,
            )
        )

    for path, info in known.items():
        if info.flattened_parent:
            continue
        if any(
            p in known and known[p].type.kind == "string" for p in (path[:i] for i in range(1, len(path)))
        ):
            continue
        obs = observed.get(path) or ObservedPath(path)
        base = observed.records if info.enforced else observed.containers(path)
        if base <= 0:
            continue
        if info.enforced and info.spec is not None and info.spec.required:
            missing = max(base - obs.occurrences, 0)
            if missing + obs.nulls and (missing + obs.nulls) / base >= limits.min_share:
                nullability = obs.nulls > missing
                drifts.append(
                    Drift(
                        path=path,
                        kind=DriftKind.NULLABILITY_CHANGE
                        if nullability
                        else DriftKind.MISSING_REQUIRED_FIELD,
                        old_type=info.type.spark_ddl(),
                        new_type=info.type.spark_ddl() + (" (null)" if nullability else " (absent)"),
                        records=missing + obs.nulls,
                        observed=base,
                        detail=f"required field {'null' if nullability else 'absent'} in {missing + obs.nulls} of {base} records",
                    )
                )
        if not obs.present or info.type.kind == "string":
            continue
        if info.type.kind in ("struct", "array"):
            expected = "object" if info.type.kind == "struct" else "array"
            mismatched = obs.present - obs.kind_count(expected)
            if mismatched and mismatched / obs.present >= limits.min_share:
                drifts.append(
                    Drift(
                        path=path,
                        kind=DriftKind.TYPE_INCOMPATIBLE,
                        old_type=info.type.spark_ddl(),
                        new_type=infer_type(observed, path).spark_ddl(),
                        records=mismatched,
                        observed=obs.present,
                        detail=f"{mismatched} of {obs.present} values are not JSON {expected}s",
                    )
                )
            continue
        if obs.bad_wider and obs.bad_wider / obs.present >= limits.min_share:
            drifts.append(
                Drift(
                    path=path,
                    kind=DriftKind.TYPE_INCOMPATIBLE,
                    old_type=info.type.spark_ddl(),
                    new_type=infer_type(observed, path).spark_ddl(),
                    records=obs.bad_wider,
                    observed=obs.present,
                    detail=f"{obs.bad_wider} of {obs.present} values do not fit {info.type.spark_ddl()} "
                    f"(mostly JSON {_observed_kind(obs)})",
                )
            )
            continue
        target = _widening(info, obs)
        if target is not None:
            drifts.append(
                Drift(
                    path=path,
                    kind=DriftKind.TYPE_WIDENING,
                    old_type=info.type.spark_ddl(),
                    new_type=target.spark_ddl(),
                    records=obs.bad - obs.bad_wider,
                    observed=obs.present,
                    detail=f"{obs.bad - obs.bad_wider} of {obs.present} values need {target.spark_ddl()}",
                    proposed=target,
                )
            )
    return tuple(sorted(drifts, key=lambda d: (d.path, d.kind.value)))


# --------------------------------------------------------------------------- curated vs contract


@dataclass(frozen=True)
class SchemaChange:
    """One ALTER the curated table needs: add a column or nested field, or widen a type."""

    operation: str  # add | widen
    path: FieldPath
    column: str
    ddl_path: str
    type: FieldType
    top_level: bool = False  # a new top-level column (placed before _rescued_data)

    def describe(self) -> str:
        verb = "add column" if self.operation == "add" else "widen column"
        return f"{verb} {self.ddl_path} {self.type.spark_ddl()}"


@dataclass(frozen=True)
class Reconciliation:
    """The contract the run must parse with, given what the curated table already holds."""

    contract: TopicContract
    drifts: tuple[Drift, ...]
    changes: tuple[SchemaChange, ...]

    @property
    def changed(self) -> bool:
        return bool(self.drifts)


def _path_from_comment(comment: str | None) -> FieldPath | None:
    if comment and comment.startswith(PATH_COMMENT_PREFIX):
        return parse_json_path(comment[len(PATH_COMMENT_PREFIX) :].split(" ")[0])
    return None


def _reconcile_type(  # noqa: PLR0917 - one recursive helper, positional for readability
    path: FieldPath,
    ddl: str,
    column: str,
    contract_type: FieldType,
    curated_type: FieldType,
    drifts: list[Drift],
    changes: list[SchemaChange],
) -> FieldType:
    """The effective type at ``path``: recurse into structs/arrays, keep curated's extra
    nested fields and wider types, ask for contract fields and widenings curated lacks."""
    if contract_type.spark_ddl() == curated_type.spark_ddl():
        return contract_type
    if contract_type.kind == "struct" and curated_type.kind == "struct":
        curated_children = {f.name: f for f in curated_type.fields}
        merged: list[FieldSpec] = []
        for child in contract_type.fields:
            child_path, child_ddl = (*path, child.name), f"{ddl}.{child.name}"
            if child.name not in curated_children:
                drifts.append(
                    Drift(
                        child_path,
                        DriftKind.NESTED_FIELD_CHANGE,
                        None,
                        child.type.spark_ddl(),
                        DriftSource.CONTRACT,
                        detail="in the contract, not yet in curated",
                    )
                )
                changes.append(SchemaChange("add", child_path, column, child_ddl, child.type))
                merged.append(child)
                continue
            effective = _reconcile_type(
                child_path, child_ddl, column, child.type, curated_children[child.name].type, drifts, changes
            )
            merged.append(dataclass_replace(child, type=effective))
        names = {f.name for f in contract_type.fields}
        for extra in curated_type.fields:
            if extra.name not in names:
                drifts.append(
                    Drift(
                        (*path, extra.name),
                        DriftKind.NESTED_FIELD_CHANGE,
                        None,
                        extra.type.spark_ddl(),
                        DriftSource.CURATED,
                        detail="in curated (an earlier evolve), not in the contract",
                    )
                )
                merged.append(FieldSpec(name=extra.name, type=extra.type, description="kept from curated"))
        return FieldType("struct", fields=tuple(merged))
    if contract_type.kind == "array" and curated_type.kind == "array":
        assert contract_type.element is not None and curated_type.element is not None
        element = _reconcile_type(
            (*path, ELEMENT),
            f"{ddl}.element",
            column,
            contract_type.element,
            curated_type.element,
            drifts,
            changes,
        )
        return FieldType("array", element=element)
    if promote(contract_type, curated_type):
        drifts.append(
            Drift(
                path,
                DriftKind.TYPE_WIDENING,
                contract_type.spark_ddl(),
                curated_type.spark_ddl(),
                DriftSource.CURATED,
                detail="curated was widened earlier; the contract still has the narrower type",
            )
        )
        return curated_type
    if promote(curated_type, contract_type):
        drifts.append(
            Drift(
                path,
                DriftKind.TYPE_WIDENING,
                curated_type.spark_ddl(),
                contract_type.spark_ddl(),
                DriftSource.CONTRACT,
                detail="the contract widened the type",
            )
        )
        changes.append(SchemaChange("widen", path, column, ddl, contract_type))
        return contract_type
    raise ContractError(
        f"{json_path(path)}: the contract says {contract_type.spark_ddl()} but curated column {ddl} is "
        f"{curated_type.spark_ddl()}; Iceberg cannot change one into the other in place (migrate the table "
        "by hand, or fix the contract)"
    )


def reconcile_with_curated(contract: TopicContract, curated_schema: Any) -> Reconciliation:
    """Compare the contract with the curated table's schema (a Spark ``StructType``).

    Raises:
        ContractError: a contract type and a curated type cannot be reconciled in place.
    """
    drifts: list[Drift] = []
    changes: list[SchemaChange] = []
    curated = {f.name: f for f in curated_schema.fields}
    effective = contract
    flattened = {name: (path, spec) for name, path, spec in contract.flattened_fields()}
    for name, (path, spec) in flattened.items():
        if name not in curated:
            drifts.append(
                Drift(
                    path,
                    DriftKind.NEW_FIELD if len(path) == 1 else DriftKind.NESTED_FIELD_CHANGE,
                    None,
                    spec.type.spark_ddl(),
                    DriftSource.CONTRACT,
                    detail="in the contract, not yet in curated",
                )
            )
            changes.append(SchemaChange("add", path, name, name, spec.type, top_level=True))
            continue
        curated_type = field_type_from_spark(curated[name].dataType)
        merged = _reconcile_type(path, name, name, spec.type, curated_type, drifts, changes)
        if merged.spark_ddl() != spec.type.spark_ddl():
            effective = replace_type(effective, path, merged)
    known = contract_paths(contract)
    for name, struct_field in curated.items():
        if name in flattened or name in NON_PAYLOAD_COLUMNS:
            continue
        if name in RESERVED_COLUMNS:
            # parsed into, it would replace the raw record's own column in every batch
            raise ContractError(
                f"curated column {name!r} (an earlier evolve added it) has a reserved name: parsing "
                "into it would replace the raw record's own column; drop it "
                f"(ALTER TABLE ... DROP COLUMN {name}; older snapshots keep its values)"
            )
        path = _path_from_comment((struct_field.metadata or {}).get("comment")) or (name,)
        parent = known.get(path[:-1]) if len(path) > 1 else None
        if len(path) > 1 and (parent is None or not parent.flattened_parent):
            path = (name,)  # the recorded path no longer fits the contract: a top-level field
        if not is_identifier(path[-1]) or path in known:
            raise ContractError(f"curated column {name!r} cannot be mapped to a payload field")
        ftype = field_type_from_spark(struct_field.dataType)
        drifts.append(
            Drift(
                path,
                DriftKind.NEW_FIELD if len(path) == 1 else DriftKind.NESTED_FIELD_CHANGE,
                None,
                ftype.spark_ddl(),
                DriftSource.CURATED,
                detail="in curated (an earlier evolve), not in the contract",
            )
        )
        effective = with_field(effective, path, ftype)
    return Reconciliation(effective, tuple(drifts), tuple(changes))


def drifts_by_kind(drifts: Iterable[Drift]) -> dict[str, int]:
    """``{kind: count}`` over ``drifts``."""
    out: dict[str, int] = {}
    for drift in drifts:
        out[drift.kind.value] = out.get(drift.kind.value, 0) + 1
    return out
