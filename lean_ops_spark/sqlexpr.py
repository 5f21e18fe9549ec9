"""Spark SQL expressions built as text in Python, handed to Spark in one call.

Every ``pyspark.sql.functions`` call is a few py4j round trips to the driver JVM (look up
the function, call it, later free the Python proxy). The per-record expressions of a
curation run (parse, classify, partly-parsed marks, the drift profile) are a few thousand
such calls: about 4,500 round trips and a second of driver time per run for the parse
alone, on every run whatever the batch size. Built here as SQL text, the same expressions
cost one ``selectExpr`` each, parsed once by Spark (measured, same JVM: building the parse
went from ~1.4 s to ~0.6 s; in a fresh JVM Spark's parser is cold and the two cost the same).

The API mirrors the parts of PySpark's ``Column``/``functions`` the library uses, with the
same semantics (``lit`` of a Python ``float`` is a double, of an ``int`` an int or bigint, of a
``datetime`` that instant as a timestamp, a naive one read as local time;
``when`` without ``otherwise`` is null; ``struct`` of aliased expressions is a
``named_struct``), so code reads the same::

    from lean_ops_spark import sqlexpr as S
    df = S.with_columns(df, {"big": S.when(S.col("n") > 10, S.lit("yes"))})

Operands are parenthesised where Spark's grammar would bind them differently from Python's
operators, so an expression means what it reads as in Python.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Union

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame

__all__ = [
    "Expr",
    "array",
    "call",
    "coalesce",
    "col",
    "exists",
    "filter",
    "format_string",
    "from_json",
    "lit",
    "map_filter",
    "quote",
    "select",
    "struct",
    "to_column",
    "transform",
    "transform_keys",
    "when",
    "with_columns",
    "zip_with",
]

Value = Union["Expr", str, int, float, bool, datetime, None]
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_lambda_ids = itertools.count()


def quote(name: str) -> str:
    """``name`` as a quoted identifier."""
    return "`" + name.replace("`", "``") + "`"


def _string(value: str) -> str:
    out = []
    for ch in value:
        if ch in "\\'":
            out.append("\\" + ch)
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(ch)
    return "'" + "".join(out) + "'"


def lit(value: Value) -> Expr:
    """A literal, typed as ``pyspark.sql.functions.lit`` types it."""
    if isinstance(value, Expr):
        return value
    if value is None:
        return Expr("NULL")
    if isinstance(value, bool):
        return Expr("true" if value else "false")
    if isinstance(value, int):
        text = str(value) if -(2**31) <= value < 2**31 else f"{value}L"
        return Expr(text, level=_UNARY if value < 0 else _PRIMARY)
    if isinstance(value, float):
        if math.isfinite(value):  # a double literal (not nullable), as F.lit makes
            return Expr(f"{value!r}D", level=_UNARY if math.copysign(1, value) < 0 else _PRIMARY)
        return Expr(f"CAST('{value!r}' AS DOUBLE)")  # no literal syntax: the same value, nullable
    if isinstance(value, str):
        return Expr(_string(value))
    if isinstance(value, datetime):  # the instant, to the microsecond (naive: local time, as F.lit)
        aware = value if value.tzinfo else value.astimezone()
        return call("timestamp_micros", (aware - _EPOCH) // timedelta(microseconds=1))
    raise TypeError(f"no SQL literal for {value!r}")


def _sql(value: Value) -> str:
    return lit(value).sql


# Precedence of what an expression's text is, loosest first: an operand is parenthesised only
# where Spark's grammar would bind it differently. (Parentheses are not free: Spark's ANTLR
# parser predicts each ``(`` with lookahead to tell a lambda's parameters, a subquery or a
# struct from a grouped expression, which makes a cold parse of deeply parenthesised text slow.)
_OR, _AND, _NOT, _PREDICATE, _ADDITIVE, _UNARY, _PRIMARY = range(7)


class Expr:
    """One SQL expression (its text), with an optional output name (``alias``)."""

    __slots__ = ("level", "name", "sql")
    __hash__ = None  # type: ignore[assignment]  # == builds an expression, as on a Column

    def __init__(self, sql: str, name: str | None = None, level: int = _PRIMARY) -> None:
        self.sql = sql
        self.name = name
        self.level = level

    def __repr__(self) -> str:
        return f"Expr({self.sql!r}{'' if self.name is None else f', name={self.name!r}'})"

    def __bool__(self) -> bool:
        raise ValueError("an Expr has no truth value: use & | ~ for AND OR NOT")

    def operand(self, level: int) -> str:
        """The text, parenthesised if it binds looser than ``level``."""
        return self.sql if self.level >= level else f"({self.sql})"

    def _binary(self, op: str, other: Value, level: int) -> Expr:
        # AND/OR are associative: a same-level right operand needs no parentheses
        right = level if level in (_OR, _AND) else level + 1
        return Expr(f"{self.operand(level)} {op} {lit(other).operand(right)}", level=level)

    def _compare(self, op: str, other: Value) -> Expr:
        return Expr(f"{self.operand(_ADDITIVE)} {op} {lit(other).operand(_ADDITIVE)}", level=_PREDICATE)

    def __or__(self, other: Value) -> Expr:
        return self._binary("OR", other, _OR)

    def __and__(self, other: Value) -> Expr:
        return self._binary("AND", other, _AND)

    def __invert__(self) -> Expr:
        return Expr(f"NOT {self.operand(_NOT)}", level=_NOT)

    def __eq__(self, other: Value) -> Expr:  # type: ignore[override]
        return self._compare("=", other)

    def __ne__(self, other: Value) -> Expr:  # type: ignore[override]
        return self._compare("!=", other)

    def __lt__(self, other: Value) -> Expr:
        return self._compare("<", other)

    def __le__(self, other: Value) -> Expr:
        return self._compare("<=", other)

    def __gt__(self, other: Value) -> Expr:
        return self._compare(">", other)

    def __ge__(self, other: Value) -> Expr:
        return self._compare(">=", other)

    def __add__(self, other: Value) -> Expr:
        return self._binary("+", other, _ADDITIVE)

    def __sub__(self, other: Value) -> Expr:
        return self._binary("-", other, _ADDITIVE)

    def __getitem__(self, key: str | int) -> Expr:
        """A map value, struct field or array element (``Column[key]``)."""
        return Expr(f"{self.operand(_PRIMARY)}[{_sql(key)}]")

    def getField(self, name: str) -> Expr:
        return Expr(f"{self.operand(_PRIMARY)}.{quote(name)}")

    def isNull(self) -> Expr:
        return Expr(f"{self.operand(_ADDITIVE)} IS NULL", level=_PREDICATE)

    def isNotNull(self) -> Expr:
        return Expr(f"{self.operand(_ADDITIVE)} IS NOT NULL", level=_PREDICATE)

    def isin(self, *values: Value) -> Expr:
        if not values:
            raise ValueError("isin() needs at least one value")
        return Expr(f"{self.operand(_ADDITIVE)} IN ({', '.join(_sql(v) for v in values)})", level=_PREDICATE)

    def cast(self, ddl: str) -> Expr:
        return Expr(f"CAST({self.sql} AS {ddl})")

    def rlike(self, pattern: str) -> Expr:
        return Expr(f"{self.operand(_ADDITIVE)} RLIKE {_string(pattern)}", level=_PREDICATE)

    def startswith(self, prefix: str) -> Expr:
        return call("startswith", self, prefix)

    def alias(self, name: str) -> Expr:
        return Expr(self.sql, name)

    def named(self) -> str:
        """``expr AS name`` for a select list."""
        if self.name is None:
            raise ValueError(f"expression has no name: {self.sql[:80]}")
        return f"{self.sql} AS {quote(self.name)}"


def col(name: str) -> Expr:
    """A column of the input (a quoted identifier: no nested ``a.b`` paths)."""
    return Expr(quote(name))


def call(function: str, *args: Value) -> Expr:
    """``function(args...)``; ``str`` arguments are string literals (use :func:`col` for columns)."""
    return Expr(f"{function}({', '.join(_sql(a) for a in args)})")


class When(Expr):
    """``CASE WHEN ... END``, extended with :meth:`when` and closed with :meth:`otherwise`."""

    __slots__ = ("branches",)

    def __init__(self, branches: tuple[tuple[str, str], ...], default: str | None = None) -> None:
        cases = " ".join(f"WHEN {c} THEN {v}" for c, v in branches)
        super().__init__(f"CASE {cases}{'' if default is None else f' ELSE {default}'} END")
        self.branches = branches

    def when(self, condition: Expr, value: Value) -> When:
        return When((*self.branches, (condition.sql, _sql(value))))

    def otherwise(self, value: Value) -> Expr:
        return Expr(When(self.branches, _sql(value)).sql)  # closed: no further .when()


def when(condition: Expr, value: Value) -> When:
    return When(((condition.sql, _sql(value)),))


def coalesce(*values: Value) -> Expr:
    return call("coalesce", *values)


def array(*values: Value) -> Expr:
    return call("array", *values)


def struct(*fields: Expr) -> Expr:
    """A struct of named expressions (``named_struct``)."""
    parts = []
    for f in fields:
        if f.name is None:
            raise ValueError(f"struct field has no name: {f.sql[:80]}")
        parts += [_string(f.name), f.sql]
    return Expr(f"named_struct({', '.join(parts)})")


def from_json(text: Expr, ddl: str) -> Expr:
    return call("from_json", text, ddl)


def format_string(template: str, *args: Value) -> Expr:
    return call("format_string", template, *args)


def _lambda(arity: int, body: Callable[..., Expr]) -> str:
    names = [f"_lv{next(_lambda_ids)}" for _ in range(arity)]
    params = names[0] if arity == 1 else f"({', '.join(names)})"
    return f"{params} -> {body(*[Expr(n) for n in names]).sql}"


def _higher_order(function: str, args: Iterable[Expr], arity: int, body: Callable[..., Expr]) -> Expr:
    return Expr(f"{function}({', '.join(a.sql for a in args)}, {_lambda(arity, body)})")


def transform(values: Expr, body: Callable[[Expr], Expr]) -> Expr:
    return _higher_order("transform", [values], 1, body)


def filter(values: Expr, body: Callable[[Expr], Expr]) -> Expr:
    return _higher_order("filter", [values], 1, body)


def exists(values: Expr, body: Callable[[Expr], Expr]) -> Expr:
    return _higher_order("exists", [values], 1, body)


def zip_with(left: Expr, right: Expr, body: Callable[[Expr, Expr], Expr]) -> Expr:
    return _higher_order("zip_with", [left, right], 2, body)


def map_filter(values: Expr, body: Callable[[Expr, Expr], Expr]) -> Expr:
    return _higher_order("map_filter", [values], 2, body)


def transform_keys(values: Expr, body: Callable[[Expr, Expr], Expr]) -> Expr:
    return _higher_order("transform_keys", [values], 2, body)


def to_column(expr: Expr) -> Column:
    """The expression as a PySpark ``Column`` (one parse in the JVM)."""
    from pyspark.sql import functions as F

    column = F.expr(expr.sql)
    return column if expr.name is None else column.alias(expr.name)


def select(df: DataFrame, *exprs: Expr | str) -> DataFrame:
    """``df.select`` of named expressions (``str``: an input column kept as it is)."""
    return df.selectExpr(*[quote(e) if isinstance(e, str) else e.named() for e in exprs])


def with_columns(df: DataFrame, columns: Mapping[str, Expr]) -> DataFrame:
    """``df.withColumns`` in one call: columns of the same name are replaced in place,
    new ones appended in order."""
    existing = df.columns
    kept: list[Expr | str] = [columns[name].alias(name) if name in columns else name for name in existing]
    added = [expr.alias(name) for name, expr in columns.items() if name not in existing]
    return select(df, *kept, *added)
