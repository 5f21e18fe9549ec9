"""Which curated columns a Spark SQL expression reads: a small tokenizer, no Spark.

The schema check of the state machine (a Lambda, no JVM) must name the curated columns a
semantic model needs, so the model's expressions are scanned here: identifiers that are
not function names, struct fields (after a dot), lambda parameters, SQL keywords, type
names (after ``AS``), typed-literal prefixes (``DATE '...'``) or interval units. The
semantic job then selects exactly these columns before evaluating the expressions, so a
column the scan missed fails the run loudly instead of being read unnoticed.
"""

from __future__ import annotations

import re

__all__ = ["ExpressionError", "referenced_columns"]

_TOKEN = re.compile(
    r"""
    (?P<space>\s+)
  | (?P<string>'(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*")
  | (?P<quoted>`(?:[^`]|``)+`)
  | (?P<number>(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?[a-zA-Z]{0,2})
  | (?P<ident>[A-Za-z_][A-Za-z0-9_]*)
  | (?P<arrow>->)
  | (?P<op>[-+*/%<>=!|&^~.,()\[\]:;?]+?)
    """,
    re.VERBOSE,
)

_KEYWORDS = frozenset(
    [
        "and",
        "or",
        "not",
        "in",
        "is",
        "null",
        "true",
        "false",
        "case",
        "when",
        "then",
        "else",
        "end",
        "as",
        "between",
        "like",
        "ilike",
        "rlike",
        "regexp",
        "distinct",
        "interval",
        "div",
        "escape",
        "all",
        "any",
        "some",
        "exists",
    ]
)
_TYPED_LITERALS = frozenset({"date", "timestamp", "timestamp_ntz", "timestamp_ltz", "x", "interval"})
_UNITS = frozenset(
    [
        "year",
        "years",
        "month",
        "months",
        "week",
        "weeks",
        "day",
        "days",
        "hour",
        "hours",
        "minute",
        "minutes",
        "second",
        "seconds",
        "millisecond",
        "milliseconds",
        "microsecond",
        "microseconds",
        "to",
    ]
)


class ExpressionError(ValueError):
    """An expression the tokenizer cannot read (e.g. an unterminated string)."""


def _tokens(expression: str) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    position = 0
    while position < len(expression):
        match = _TOKEN.match(expression, position)
        if match is None or match.end() == position:
            raise ExpressionError(f"cannot read {expression!r} at position {position}")
        kind = match.lastgroup or ""
        if kind != "space":
            out.append((kind, match.group()))
        position = match.end()
    return out


def _lambda_parameters(tokens: list[tuple[str, str]]) -> set[str]:
    params: set[str] = set()
    for index, (kind, _text) in enumerate(tokens):
        if kind != "arrow" or index == 0:
            continue
        previous_kind, previous = tokens[index - 1]
        if previous_kind == "ident":
            params.add(previous.lower())
        elif previous == ")":
            cursor = index - 2
            while cursor >= 0 and tokens[cursor][1] != "(":
                if tokens[cursor][0] == "ident":
                    params.add(tokens[cursor][1].lower())
                cursor -= 1
    return params


def referenced_columns(expression: str) -> tuple[str, ...]:
    """Top-level column names ``expression`` reads, lower-cased and sorted.

    Raises:
        ExpressionError: the expression cannot be tokenized.
    """
    tokens = _tokens(expression)
    params = _lambda_parameters(tokens)
    found: set[str] = set()
    for index, (kind, text) in enumerate(tokens):
        if kind not in ("ident", "quoted"):
            continue
        name = text[1:-1].replace("``", "`") if kind == "quoted" else text
        lower = name.lower()
        previous = tokens[index - 1] if index > 0 else ("", "")
        following = tokens[index + 1] if index + 1 < len(tokens) else ("", "")
        if previous[1] == "." or following[1] == "(":
            continue  # struct field, or a function / parameterised type name
        if kind == "ident":
            if lower in _KEYWORDS or lower in params:
                continue
            if previous[1].lower() == "as":
                continue  # a type name in CAST(x AS type) or an alias
            if lower in _TYPED_LITERALS and following[0] == "string":
                continue
            if lower in _UNITS and previous[0] in ("number", "string", "ident"):
                continue
        found.add(lower)
    return tuple(sorted(found))
