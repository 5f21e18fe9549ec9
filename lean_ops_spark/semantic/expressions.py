"""Which curated columns a Spark SQL expression reads: a small tokenizer, no Spark.

The schema check of the state machine (a Lambda, no JVM) must name the curated columns a
semantic model needs, so the model's expressions are scanned here: identifiers that are
not function names, struct fields (after a dot), lambda parameters, SQL keywords (also
those of ``extract``, ``trim``, ``substring``, aggregate ``FILTER`` and window clauses),
functions Spark calls without parentheses (``current_date``), type names (after ``AS``),
typed-literal prefixes (``DATE '...'``), interval units or ``extract``'s unit. The
semantic job then selects exactly these columns before evaluating the expressions, so a
column the scan missed fails the run loudly instead of being read unnoticed.

The same tokens tell the loader what a semantic model cannot hold: a run recomputes only
the rows (or groups) whose curated inputs changed, so an expression must be a function of
those inputs alone. :func:`window_clauses` finds ``OVER (...)`` (a value over other rows),
:func:`volatile_functions` the functions whose value depends on when, where or by whom the
run happens (``current_date``, ``rand()``, ``uuid()``...), and :func:`plain_column` tells
whether an expression is just a column (what an entity's key must be).
"""

from __future__ import annotations

import re

__all__ = [
    "TIME_DEPENDENT_FUNCTIONS",
    "VOLATILE_FUNCTIONS",
    "ExpressionError",
    "normalized",
    "plain_column",
    "referenced_columns",
    "volatile_functions",
    "window_clauses",
]

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


#: Functions whose value depends on when the run happens (``unix_timestamp`` only without
#: arguments).
TIME_DEPENDENT_FUNCTIONS = frozenset(
    {
        "current_date",
        "current_timestamp",
        "current_time",
        "curdate",
        "now",
        "localtimestamp",
        "current_timezone",
        "unix_timestamp",
    }
)
#: Every function a semantic model refuses: the time-dependent ones, the random or
#: otherwise non-deterministic ones (Spark's ``Nondeterministic`` expressions), and those
#: that depend on who or where runs the job.
VOLATILE_FUNCTIONS = TIME_DEPENDENT_FUNCTIONS | frozenset(
    {
        "rand",
        "random",
        "randn",
        "randstr",
        "uniform",
        "uuid",
        "shuffle",
        "monotonically_increasing_id",
        "spark_partition_id",
        "input_file_name",
        "input_file_block_start",
        "input_file_block_length",
        "reflect",
        "java_method",
        "try_reflect",
        "current_user",
        "user",
        "session_user",
    }
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


def window_clauses(expression: str) -> int:
    """How many ``OVER`` clauses (window functions) ``expression`` has.

    Raises:
        ExpressionError: the expression cannot be tokenized.
    """
    tokens = _tokens(expression)
    return sum(
        1
        for index, (kind, text) in enumerate(tokens)
        if kind == "ident" and text.lower() == "over" and (index == 0 or tokens[index - 1][1] != ".")
    )


def volatile_functions(expression: str) -> tuple[str, ...]:
    """The functions of :data:`VOLATILE_FUNCTIONS` that ``expression`` calls (or names bare,
    for ``current_date``/``current_timestamp``/``current_user``), lower-cased and sorted.

    Raises:
        ExpressionError: the expression cannot be tokenized.
    """
    tokens = _tokens(expression)
    found: set[str] = set()
    for index, (kind, text) in enumerate(tokens):
        lower = text.lower()
        if kind != "ident" or lower not in VOLATILE_FUNCTIONS:
            continue
        if index > 0 and tokens[index - 1][1] == ".":
            continue  # a struct field
        following = tokens[index + 1][1] if index + 1 < len(tokens) else ""
        if following == "(":
            after = tokens[index + 2][1] if index + 2 < len(tokens) else ""
            if lower == "unix_timestamp" and after != ")":
                continue  # unix_timestamp(ts[, fmt]) converts its argument
            found.add(lower)
        elif lower in _BARE_FUNCTIONS:
            found.add(lower)
    return tuple(sorted(found))


def plain_column(expression: str) -> str | None:
    """The column ``expression`` is, when it is one column and nothing else (lower-cased),
    else None.

    Raises:
        ExpressionError: the expression cannot be tokenized.
    """
    tokens = _tokens(expression)
    if len(tokens) != 1 or tokens[0][0] not in ("ident", "quoted"):
        return None
    kind, text = tokens[0]
    name = text[1:-1].replace("``", "`") if kind == "quoted" else text
    lower = name.lower()
    if kind == "ident" and (lower in _KEYWORDS or lower in _BARE_FUNCTIONS):
        return None
    return lower


def normalized(expression: str) -> str:
    """``expression``'s tokens joined by single spaces: the same expression whatever its
    layout (a folded YAML string, extra spaces); what a model's fingerprint hashes.

    Raises:
        ExpressionError: the expression cannot be tokenized.
    """
    return " ".join(text for _, text in _tokens(expression))
