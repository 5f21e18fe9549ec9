"""Drift diffing on observed schemas, contracts and Spark StructTypes: pure, no Spark session."""

from __future__ import annotations

import pytest
from pyspark.sql import types as T

from lean_ops_spark.config import DriftMode, parse_topic
from lean_ops_spark.config.models import FieldType, TopicContract
from lean_ops_spark.drift.diff import (
    PATH_COMMENT_PREFIX,
    DriftKind,
    DriftSource,
    DriftThresholds,
    ObservedPath,
    ObservedSchema,
    diff_batch,
    infer_type,
    reconcile_with_curated,
)
from lean_ops_spark.drift.schema import (
    ELEMENT,
    contract_paths,
    ddl_path,
    json_path,
    parse_json_path,
    promote,
    replace_type,
    with_field,
)
from lean_ops_spark.errors import ContractError


def contract(mode: str = "evolve") -> TopicContract:
    return parse_topic(
        {
            "topic": "things",
            "key": ["thing_id"],
            "ordering_column": "updated_at",
            "partition": {"column": "updated_at"},
            "drift_mode": mode,
            "fields": [
                {"name": "thing_id", "type": "string", "required": True},
                {"name": "updated_at", "type": "timestamp", "required": True},
                {"name": "qty", "type": "int"},
                {"name": "price", "type": "decimal(10,2)", "required": True},
                {"name": "note", "type": "string"},
                {
                    "name": "meta",
                    "type": "struct",
                    "flatten": True,
                    "fields": [{"name": "source", "type": "string"}],
                },
                {
                    "name": "items",
                    "type": "array",
                    "items": {
                        "type": "struct",
                        "fields": [{"name": "sku", "type": "string"}, {"name": "n", "type": "int"}],
                    },
                },
            ],
        },
        "test",
    )


def p(text: str) -> tuple[str, ...]:
    return parse_json_path(text)


def observed(records: int, **paths: dict[str, object]) -> ObservedSchema:
    """``observed(10, qty={"present": 10, "kinds": {"integer": 10}})``; ``__`` in names is ``.``,
    ``_E`` is ``[]``."""
    out = {}
    for name, stats in paths.items():
        path = p(name.replace("__", ".").replace("_E", "[]"))
        out[path] = ObservedPath(path=path, **stats)  # type: ignore[arg-type]
    return ObservedSchema(records, out)


def clean(records: int = 10, **extra: dict[str, object]) -> ObservedSchema:
    """A batch where every known field arrives as the contract says."""
    base: dict[str, dict[str, object]] = {
        "thing_id": {"present": records, "kinds": {"string": records}},
        "updated_at": {"present": records, "kinds": {"string": records}},
        "qty": {"present": records, "kinds": {"integer": records}},
        "price": {"present": records, "kinds": {"number": records}, "max_int_digits": 3},
        "meta": {"present": records, "kinds": {"object": records}},
        "meta__source": {"present": records, "kinds": {"string": records}},
        "items": {"present": records, "kinds": {"array": records}},
        "items_E": {"present": records, "kinds": {"object": records}},
        "items_E__sku": {"present": records, "kinds": {"string": records}},
        "items_E__n": {"present": records, "kinds": {"integer": records}},
    }
    base.update(extra)
    return observed(records, **base)


def kinds(drifts) -> set[tuple[str, DriftKind]]:
    return {(d.field_path, d.kind) for d in drifts}


def test_paths_round_trip_and_map_to_columns() -> None:
    for text in ("a", "a.b", "items[].sku", "m[][]", "x[].y[].z"):
        assert json_path(parse_json_path(text)) == text
    known = contract_paths(contract())
    assert known[p("meta.source")].column == "meta_source" and known[p("meta.source")].enforced
    assert known[p("items[].n")].ddl == "items.element.n" and not known[p("items[].n")].enforced
    assert known[p("meta")].flattened_parent
    assert ddl_path(contract(), p("meta.region")) == ("meta_region", "meta_region")
    assert ddl_path(contract(), p("items[].discount")) == ("items", "items.element.discount")
    with pytest.raises(ContractError):
        ddl_path(contract(), p("qty.sub"))


def test_a_clean_batch_has_no_drift() -> None:
    assert diff_batch(clean(), contract()) == ()


def test_new_fields_top_level_and_nested_are_drift_from_one_record() -> None:
    batch = clean(
        promo={"present": 1, "kinds": {"string": 1}},
        meta__region={"present": 2, "kinds": {"string": 2}},
        items_E__discount={"present": 3, "kinds": {"number": 2, "integer": 1}},
        exp={"present": 4, "kinds": {"object": 4}},
        exp__id={"present": 4, "kinds": {"string": 4}},
        exp__arm={"present": 4, "kinds": {"integer": 4}},
    )
    drifts = {d.field_path: d for d in diff_batch(batch, contract())}
    assert set(drifts) == {"promo", "meta.region", "items[].discount", "exp"}  # exp.* is part of exp
    assert drifts["promo"].kind is DriftKind.NEW_FIELD and drifts["promo"].new_type == "string"
    assert (drifts["promo"].records, drifts["promo"].observed) == (1, 10)
    assert drifts["meta.region"].kind is DriftKind.NESTED_FIELD_CHANGE
    assert drifts["items[].discount"].new_type == "double"
    assert drifts["exp"].new_type == "struct<arm:bigint,id:string>"


def test_required_fields_absent_or_null_are_drift_only_for_a_majority() -> None:
    few = clean(price={"present": 8, "kinds": {"number": 8}, "max_int_digits": 3})
    assert diff_batch(few, contract()) == ()  # 2 of 10 absent: bad records, quarantined per record
    absent = clean(price={"present": 4, "kinds": {"number": 4}, "max_int_digits": 3})
    nulls = clean(price={"present": 3, "nulls": 7, "kinds": {"number": 3}, "max_int_digits": 3})
    assert kinds(diff_batch(absent, contract())) == {("price", DriftKind.MISSING_REQUIRED_FIELD)}
    assert kinds(diff_batch(nulls, contract())) == {("price", DriftKind.NULLABILITY_CHANGE)}
    assert kinds(diff_batch(few, contract(), DriftThresholds(min_share=0.2))) == {
        ("price", DriftKind.MISSING_REQUIRED_FIELD)
    }


def test_widening_from_one_value_and_incompatible_types_from_a_majority() -> None:
    wide = clean(qty={"present": 10, "kinds": {"integer": 10}, "bad": 1, "bad_wider": 0})
    (drift,) = diff_batch(wide, contract())
    assert (drift.kind, drift.old_type, drift.new_type) == (DriftKind.TYPE_WIDENING, "int", "bigint")

    decimal = clean(
        price={"present": 10, "kinds": {"number": 10}, "bad": 2, "bad_wider": 0, "max_int_digits": 12}
    )
    (drift,) = diff_batch(decimal, contract())
    assert (drift.old_type, drift.new_type) == ("decimal(10,2)", "decimal(14,2)")

    minority = clean(qty={"present": 10, "kinds": {"integer": 7, "string": 3}, "bad": 3, "bad_wider": 3})
    assert diff_batch(minority, contract()) == ()  # rescued per value, not drift
    majority = clean(qty={"present": 10, "kinds": {"integer": 3, "string": 7}, "bad": 7, "bad_wider": 7})
    (drift,) = diff_batch(majority, contract())
    assert (drift.kind, drift.new_type) == (DriftKind.TYPE_INCOMPATIBLE, "string")
    assert "mostly JSON string" in drift.detail

    nested = clean(items_E__n={"present": 10, "kinds": {"number": 10}, "bad": 10, "bad_wider": 10})
    assert kinds(diff_batch(nested, contract())) == {("items[].n", DriftKind.TYPE_INCOMPATIBLE)}
    not_array = clean(items={"present": 10, "kinds": {"string": 9, "array": 1}})
    assert kinds(diff_batch(not_array, contract())) == {("items", DriftKind.TYPE_INCOMPATIBLE)}


def test_string_fields_never_drift_on_type_and_are_not_descended() -> None:
    batch = clean(
        note={"present": 10, "kinds": {"object": 10}},
        note__inner={"present": 10, "kinds": {"string": 10}},
    )
    assert diff_batch(batch, contract()) == ()


def test_infer_type() -> None:
    batch = observed(
        4,
        a={"present": 4, "kinds": {"integer": 4}},
        b={"present": 4, "kinds": {"integer": 2, "number": 2}},
        c={"present": 4, "kinds": {"integer": 2, "string": 2}},
        d={"nulls": 4},
        e={"present": 4, "kinds": {"array": 4}},
        e_E={"present": 6, "kinds": {"object": 6}},
        e_E__k={"present": 6, "kinds": {"boolean": 6}},
        f={"present": 4, "kinds": {"array": 4}},
    )
    assert [infer_type(batch, p(x)).spark_ddl() for x in "abcdef"] == [
        "bigint",
        "double",
        "string",
        "string",
        "array<struct<k:boolean>>",
        "array<string>",
    ]


def test_contract_edits_are_pure() -> None:
    base = contract()
    added = with_field(base, p("items[].discount"), FieldType("double"))
    assert contract_paths(added)[p("items[].discount")].ddl == "items.element.discount"
    assert p("items[].discount") not in contract_paths(base)
    widened_contract = replace_type(base, p("items[].n"), FieldType("long"))
    assert contract_paths(widened_contract)[p("items[].n")].type == FieldType("long")
    assert [c for c, _ in with_field(base, p("meta.region"), FieldType("string")).curated_columns()][:7] == [
        "thing_id",
        "updated_at",
        "qty",
        "price",
        "note",
        "meta_source",
        "meta_region",
    ]
    assert promote(FieldType("int"), FieldType("long"))
    assert promote(FieldType("decimal", 10, 2), FieldType("decimal", 14, 2))
    assert not promote(FieldType("decimal", 10, 2), FieldType("decimal", 14, 3))
    assert not promote(FieldType("long"), FieldType("int"))


# --------------------------------------------------------------------------- curated vs contract


SIMPLE = {
    "string": T.StringType(),
    "int": T.IntegerType(),
    "long": T.LongType(),
    "bigint": T.LongType(),
    "double": T.DoubleType(),
    "float": T.FloatType(),
    "boolean": T.BooleanType(),
    "date": T.DateType(),
    "timestamp": T.TimestampType(),
}


def spark_type(ftype: FieldType) -> T.DataType:
    """A contract type as a Spark type, without a JVM."""
    if ftype.kind == "decimal":
        return T.DecimalType(ftype.precision or 10, ftype.scale or 0)
    if ftype.kind == "struct":
        return T.StructType([T.StructField(f.name, spark_type(f.type)) for f in ftype.fields])
    if ftype.kind == "array":
        assert ftype.element is not None
        return T.ArrayType(spark_type(ftype.element))
    return SIMPLE[ftype.kind]


def ddl_type(ddl: str) -> T.DataType:
    from lean_ops_spark.config._reader import MappingReader
    from lean_ops_spark.config.loader import parse_type

    if ddl in SIMPLE:
        return SIMPLE[ddl]
    return spark_type(parse_type(ddl, MappingReader({}, "t"), "t"))


def curated_schema(
    base: TopicContract, *extra: T.StructField, drop: tuple[str, ...] = (), **types: T.DataType
):
    fields = []
    specs = {name: spec for name, _, spec in base.flattened_fields()}
    for name, ddl in base.curated_columns():
        if name in drop:
            continue
        default = spark_type(specs[name].type) if name in specs else ddl_type(ddl)
        fields.append(T.StructField(name, types.get(name) or default))
    return T.StructType(fields + list(extra))


def test_curated_matching_the_contract_changes_nothing() -> None:
    base = contract()
    result = reconcile_with_curated(base, curated_schema(base))
    assert result.contract == base and result.drifts == () and result.changes == ()


def test_columns_an_earlier_evolve_added_are_used_with_their_payload_path() -> None:
    base = contract()
    region = T.StructField(
        "meta_region", T.StringType(), metadata={"comment": f"{PATH_COMMENT_PREFIX}meta.region (run r1)"}
    )
    promo = T.StructField("promo", T.LongType(), metadata={"comment": f"{PATH_COMMENT_PREFIX}promo (run r1)"})
    items = T.ArrayType(
        T.StructType(
            [
                T.StructField("sku", T.StringType()),
                T.StructField("n", T.LongType()),
                T.StructField("discount", T.DoubleType()),
            ]
        )
    )
    result = reconcile_with_curated(base, curated_schema(base, region, promo, items=items, qty=T.LongType()))
    known = contract_paths(result.contract)
    assert known[p("meta.region")].column == "meta_region"
    assert known[p("promo")].type == FieldType("long")
    assert known[p("items[].discount")].type == FieldType("double")
    assert known[p("items[].n")].type == FieldType("long") and known[p("qty")].type == FieldType("long")
    assert {d.source for d in result.drifts} == {DriftSource.CURATED} and result.changes == ()
    assert {(d.field_path, d.kind) for d in result.drifts} == {
        ("meta.region", DriftKind.NESTED_FIELD_CHANGE),
        ("promo", DriftKind.NEW_FIELD),
        ("items[].discount", DriftKind.NESTED_FIELD_CHANGE),
        ("items[].n", DriftKind.TYPE_WIDENING),
        ("qty", DriftKind.TYPE_WIDENING),
    }


def test_contract_fields_and_widenings_curated_lacks_become_table_changes() -> None:
    base = contract()
    narrower_items = T.ArrayType(T.StructType([T.StructField("sku", T.StringType())]))
    result = reconcile_with_curated(
        base, curated_schema(base, drop=("note",), items=narrower_items, price=T.DecimalType(8, 2))
    )
    assert result.contract == base
    assert [c.describe() for c in result.changes] == [
        "widen column price decimal(10,2)",
        "add column note string",
        "add column items.element.n int",
    ]
    assert {d.source for d in result.drifts} == {DriftSource.CONTRACT}


def test_types_that_cannot_be_reconciled_are_an_error() -> None:
    base = contract()
    with pytest.raises(ContractError, match="qty: the contract says int but curated column qty is string"):
        reconcile_with_curated(base, curated_schema(base, qty=T.StringType()))


def test_a_curated_column_named_like_a_raw_record_column_is_an_error() -> None:
    """An evolve that did not refuse the name yet added it: parsing into it would replace the
    raw record's own column, so the run stops and says how to repair the table."""
    base = contract()
    topic = T.StructField(
        "topic", T.StringType(), metadata={"comment": f"{PATH_COMMENT_PREFIX}topic (run r1)"}
    )
    with pytest.raises(ContractError, match=r"curated column 'topic' .*reserved name.*DROP COLUMN topic"):
        reconcile_with_curated(base, curated_schema(base, topic))


def test_shipped_contracts_are_consistent_with_their_own_tables(project_config) -> None:
    for topic in project_config.topics.values():
        assert reconcile_with_curated(topic, curated_schema(topic)).drifts == ()
        assert topic.drift_mode in (DriftMode.EVOLVE, DriftMode.RESCUE, DriftMode.FAIL)
    assert ELEMENT == "[]"
