"""SQL-text expressions evaluate exactly as the PySpark Column expressions they replace."""

from __future__ import annotations

from datetime import datetime, timezone

from chispa import assert_df_equality

from lean_ops_spark import sqlexpr as S

LITERALS = [None, True, 7, 2**31, -(2**31) - 1, 1.5, -0.25, 3.4028235e38, 1e-05]
LITERALS += ["it's", "a\\.b\\", "\u0000lean-ops:f\u001fpath", "ünï 日本", ""]
LITERALS += [
    datetime(2026, 3, 1, 23, 30, 5, 123456, tzinfo=timezone.utc),
    datetime(1969, 12, 31, 23, 59, 59, 1),
]
NON_FINITE = [float("inf"), float("-inf"), float("nan")]


def test_literals_and_types_match_pyspark_lit(spark) -> None:  # type: ignore[no-untyped-def]
    from pyspark.sql import functions as F

    df = spark.range(1)
    ours = S.select(df, *[S.lit(v).alias(f"c{i}") for i, v in enumerate(LITERALS)])
    theirs = df.select(*[F.lit(v).alias(f"c{i}") for i, v in enumerate(LITERALS)])
    assert_df_equality(ours, theirs)
    # no SQL literal syntax for these: the same values, but typed nullable
    ours = S.select(df, *[S.lit(v).alias(f"c{i}") for i, v in enumerate(NON_FINITE)])
    theirs = df.select(*[F.lit(v).alias(f"c{i}") for i, v in enumerate(NON_FINITE)])
    assert_df_equality(ours, theirs, allow_nan_equality=True, ignore_nullable=True)


def test_expressions_match_their_column_equivalents(spark) -> None:  # type: ignore[no-untyped-def]
    from pyspark.sql import functions as F

    df = spark.createDataFrame(
        [("1", '{"a": "x", "b": [1, 2]}'), (None, "[1]"), ("12.50", '{"c": {"d": 1}}')], "n string, j string"
    )
    m = S.from_json(S.col("j"), "map<string,string>")
    fm = F.from_json(F.col("j"), "map<string,string>")
    ours = S.with_columns(
        df,
        {
            "n": S.coalesce(S.col("n"), "none"),  # replaced in place
            "dec": S.col("n").cast("decimal(10,2)"),
            "kind": S.when(S.col("j").startswith("{"), "object").otherwise("other"),
            "unknown": S.map_filter(m, lambda k, _v: ~S.call("array_contains", S.array("a", "b"), k)),
            "b": S.transform(S.from_json(m["b"], "array<int>"), lambda x: x + 1),
            "hit": S.col("n").isin("1", "2") | S.col("n").rlike(r"^[0-9]+\.[0-9]+$"),
            "s": S.struct(S.lit("k").alias("key"), m["a"].alias("value")).getField("value"),
        },
    )
    theirs = df.withColumns(
        {
            "n": F.coalesce(F.col("n"), F.lit("none")),
            "dec": F.col("n").cast("decimal(10,2)"),
            "kind": F.when(F.col("j").startswith("{"), F.lit("object")).otherwise(F.lit("other")),
            "unknown": F.map_filter(fm, lambda k, _v: ~F.array_contains(F.array(F.lit("a"), F.lit("b")), k)),
            "b": F.transform(F.from_json(fm["b"], "array<int>"), lambda x: x + 1),
            "hit": F.col("n").isin("1", "2") | F.col("n").rlike(r"^[0-9]+\.[0-9]+$"),
            "s": F.struct(F.lit("k").alias("key"), fm["a"].alias("value")).getField("value"),
        }
    )
    assert_df_equality(ours, theirs)


def test_operator_precedence_matches_columns_over_every_null_combination(spark) -> None:  # type: ignore[no-untyped-def]
    from itertools import product

    from pyspark.sql import functions as F

    values = [True, False, None]
    rows = [(p, q, r, a, b) for p, q, r in product(values, repeat=3) for a, b in [(1, 2), (3, None)]]
    df = spark.createDataFrame(rows, "p boolean, q boolean, r boolean, a int, b int")
    cases = {
        "or_and_not": lambda p, q, r, a, b: (p | q) & ~r,
        "and_in_or": lambda p, q, r, a, b: p | (q & r) | ~p,
        "not_and": lambda p, q, r, a, b: ~(p & q),
        "minus": lambda p, q, r, a, b: a - (b - a) - b,
        "compare_of_predicates": lambda p, q, r, a, b: (a > b) == p.isNull(),
        "not_predicate": lambda p, q, r, a, b: ~a.isNull() & ~(a < 2),
        "isin_of_sum": lambda p, q, r, a, b: (a + b).isin(3, 4),
    }
    ours = S.with_columns(df, {n: f(*(S.col(c) for c in "pqrab")) for n, f in cases.items()})
    theirs = df.withColumns({n: f(*(F.col(c) for c in "pqrab")) for n, f in cases.items()})
    assert_df_equality(ours, theirs)
