"""SQL-text expressions (no Spark): literals, precedence, the Column-like API's guards."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from lean_ops_spark import sqlexpr as S


@pytest.mark.parametrize(
    ("value", "sql"),
    [
        (None, "NULL"),
        (True, "true"),
        (False, "false"),
        (7, "7"),
        (2**31 - 1, "2147483647"),
        (2**31, "2147483648L"),
        (-(2**31), "-2147483648"),
        (-(2**31) - 1, "-2147483649L"),
        (1.5, "1.5D"),
        (-3.4028235e38, "-3.4028235e+38D"),
        (float("inf"), "CAST('inf' AS DOUBLE)"),
        ("it's", r"'it\'s'"),
        ("a\\.b", r"'a\\.b'"),
        ("\u0000x\u001f", r"'\u0000x\u001f'"),
        ("ünï", "'ünï'"),
        (datetime(2026, 3, 1, 0, 0, 0, 5, tzinfo=timezone.utc), "timestamp_micros(1772323200000005L)"),
        (
            datetime(1969, 12, 31, 23, 59, 59, tzinfo=timezone(timedelta(hours=-1))),
            "timestamp_micros(3599000000L)",
        ),
    ],
)
def test_literals_render_as_spark_sql(value: object, sql: str) -> None:
    assert S.lit(value).sql == sql  # type: ignore[arg-type]


def test_composite_expressions_keep_python_precedence() -> None:
    a, b, c = S.col("a"), S.col("b"), S.col("c")
    assert ((a | b) & ~c).sql == "(`a` OR `b`) AND NOT `c`"
    assert (a | (b & c) | a).sql == "`a` OR `b` AND `c` OR `a`"
    assert (~(a & b)).sql == "NOT (`a` AND `b`)"
    assert (a - (b - c)).sql == "`a` - (`b` - `c`)"
    assert (a - b - c).sql == "`a` - `b` - `c`"
    assert (a - (-1)).sql == "`a` - -1"
    assert (a.isNull() == b.isNull()).sql == "(`a` IS NULL) = (`b` IS NULL)"
    assert (~a.isNull()).sql == "NOT `a` IS NULL"
    assert (a | b)["k"].sql == "(`a` OR `b`)['k']"
    assert (a == "x").sql == "`a` = 'x'"
    assert S.col("we`ird").sql == "`we``ird`"


def test_case_when_and_struct() -> None:
    expr = S.when(S.col("n") > 1, "big").when(S.col("n") < 0, None).otherwise(0)
    assert expr.sql == "CASE WHEN `n` > 1 THEN 'big' WHEN `n` < 0 THEN NULL ELSE 0 END"
    assert S.when(S.col("n").isNull(), 1).sql == "CASE WHEN `n` IS NULL THEN 1 END"
    assert S.struct(S.lit(1).alias("k")).sql == "named_struct('k', 1)"
    assert not hasattr(expr, "when")  # closed by otherwise(), as a Column's CASE is


def test_lambdas_get_distinct_variable_names() -> None:
    outer = S.transform(S.col("xs"), lambda x: S.transform(x, lambda y: y + x))
    names = {part.split(" ->")[0].strip("(") for part in outer.sql.split(", ")[1:] if "->" in part}
    assert len(names) == 2, outer.sql


def test_misuse_is_an_error_not_a_silent_expression() -> None:
    with pytest.raises(ValueError, match="truth value"):
        bool(S.col("a") == 1)
    with pytest.raises(ValueError, match="at least one"):
        S.col("a").isin()
    with pytest.raises(ValueError, match="no name"):
        S.struct(S.col("a"))
    with pytest.raises(TypeError):
        S.lit(object())  # type: ignore[arg-type]
