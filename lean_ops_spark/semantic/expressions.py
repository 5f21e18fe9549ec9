"""Which curated columns a Spark SQL expression reads: a small tokenizer, no Spark.

The schema check of the state machine (a Lambda, no JVM) must name the curated columns a
semantic model needs, so the model's expressions are scanned here: identifiers that are
not function names, struct fields (after a dot), lambda parameters, SQL keywords (also
those of ``extract``, ``trim``, ``substring``, aggregate ``FILTER`` and window clauses),
functions Spark calls without parentheses (``current_date``), type names (after ``AS``),
typed-literal prefixes (``DATE '...'``), interval units or ``extract``'s unit. The
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
        # IS [NOT] DISTINCT FROM, extract/substring/overlay/position's own syntax
        "from",
        "for",
        "placing",
        # aggregate FILTER (WHERE ...), IGNORE/RESPECT NULLS, window specifications
        "where",
        "filter",
        "ignore",
        "respect",
        "nulls",
        "over",
        "unbounded",
        "preceding",
        "following",
    ]
)
#: Functions Spark calls without parentheses (names no curated column plausibly has).
_BARE_FUNCTIONS = frozenset({"current_date", "current_timestamp", "current_user"})
#: Keywords only before the word given: ``PARTITION BY``, ``ORDER BY``, ``CURRENT ROW``.
_KEYWORDS_BEFORE = {"partition": "by", "order": "by", "current": "row"}
#: Keywords only after the word given: ``PARTITION BY`` / ``ORDER BY``, ``NULLS FIRST|LAST``,
#: ``CURRENT ROW``, ``ROWS|RANGE BETWEEN``.
_KEYWORDS_AFTER = {"by": {"partition", "order"}, "first": {"nulls"}, "last": {"nulls"}, "row": {"current"}}
_FRAMES = frozenset({"rows", "range"})
#: Keywords only where they follow an expression (``ORDER BY ts DESC``): a column may be
#: called ``desc``.
_SORT_DIRECTIONS = frozenset({"asc", "desc"})
#: ``trim``'s own keywords, only as the first word of its parentheses.
_TRIM_SIDES = frozenset({"both", "leading", "trailing"})
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
            if lower in _KEYWORDS or lower in params or lower in _BARE_FUNCTIONS:
                continue
            if _KEYWORDS_BEFORE.get(lower) == following[1].lower():
                continue
            if previous[1].lower() in _KEYWORDS_AFTER.get(lower, ()):
                continue
            if lower in _FRAMES and following[1].lower() in ("between", "unbounded", "current"):
                continue
            opener = tokens[index - 2][1].lower() if previous[1] == "(" and index > 1 else ""
            if opener == "extract" or (opener == "trim" and lower in _TRIM_SIDES):
                continue  # the unit of EXTRACT(unit FROM x), the side of TRIM(BOTH ... FROM x)
            if lower in _SORT_DIRECTIONS and (
                previous[0] in ("ident", "quoted", "number") or previous[1] == ")"
            ):
                continue
            if previous[1].lower() == "as":
                continue  # a type name in CAST(x AS type) or an alias
            if lower in _TYPED_LITERALS and following[0] == "string":
                continue
            if lower in _UNITS and previous[0] in ("number", "string", "ident"):
                continue
        found.add(lower)
    return tuple(sorted(found))
