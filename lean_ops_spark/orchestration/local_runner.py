"""A small Amazon States Language executor for running the rendered definition locally.

``lean-ops pipeline`` walks the *same* definition that is deployed to Step Functions, with
each Task bound to a local Python callable instead of Lambda/Glue/CloudWatch. It covers
the JSONPath-mode subset the definition uses:

* states: Task, Choice, Pass, Succeed, Fail (Map, Parallel and Wait are refused);
* InputPath, Parameters, ResultSelector, ResultPath, OutputPath (each incl. ``null``);
  ``.$`` keys with paths (``$.a.b[0]``), the context object (``$$.Execution.Name``) and
  the intrinsics States.Format, States.Array, States.MathAdd, States.JsonToString,
  States.StringToJson;
* Choice rules: And, Or, Not, BooleanEquals, IsPresent, IsNull, and String/Numeric
  Equals, LessThan, GreaterThan, LessThanEquals, GreaterThanEquals;
* Retry (ErrorEquals, IntervalSeconds, MaxAttempts, BackoffRate) and Catch (ErrorEquals,
  ResultPath); Fail with Error/Cause or ErrorPath/CausePath.

Bindings: a mapping from a **state name** (checked first) or a **Resource ARN** to a
callable taking a :class:`TaskCall` and returning what the AWS integration would return
(``{"Payload": ...}`` for lambda:invoke, a JobRun for glue:startJobRun.sync). Raise
:class:`TaskFailed` to fail with a given ASL error name; any other exception fails the
task with the exception's class name as the error (as a Lambda's ``errorType`` does),
except a :class:`~lean_ops_spark.errors.RuntimeSetupError`: the local runtime itself is
incomplete (no jars), which no task on AWS could hit, so it ends the run and propagates.
"""

from __future__ import annotations

import copy
import json
import re
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from lean_ops_spark.errors import LeanOpsError, RuntimeSetupError

__all__ = [
    "ExecutionEvent",
    "ExecutionResult",
    "LocalExecutor",
    "TaskBinding",
    "TaskCall",
    "TaskFailed",
    "TaskNotAvailable",
    "glue_job_binding",
    "lambda_binding",
    "metric_binding",
]


class TaskFailed(Exception):
    """A bound task failed with an ASL error name (e.g. ``Glue.ConcurrentRunsExceededException``)."""

    def __init__(self, error: str, cause: str = "") -> None:
        super().__init__(f"{error}: {cause}")
        self.error = error
        self.cause = cause


class TaskNotAvailable(LeanOpsError):
    """No local implementation is bound to a task (yet)."""


class DefinitionError(LeanOpsError):
    """The definition uses something this executor does not implement, or is malformed."""


class _StatesError(Exception):
    """An ASL runtime error inside the executor (``States.Runtime`` and friends)."""

    def __init__(self, error: str, cause: str) -> None:
        super().__init__(f"{error}: {cause}")
        self.error = error
        self.cause = cause


@dataclass(frozen=True)
class TaskCall:
    """What a binding receives: the state, its resource and its effective parameters."""

    state_name: str
    resource: str
    parameters: Any
    context: Mapping[str, Any]


TaskBinding = Callable[[TaskCall], Any]


@dataclass(frozen=True)
class ExecutionEvent:
    """One progress event (``entered``, ``exited``, ``retry``, ``caught``, ``succeeded``, ``failed``)."""

    kind: str
    state: str | None
    detail: str = ""
    data: Any = None


@dataclass
class ExecutionResult:
    """How an execution ended, and the states it walked through in order."""

    name: str
    status: str  # SUCCEEDED | FAILED
    output: Any = None
    error: str | None = None
    cause: str | None = None
    path: list[str] = field(default_factory=list)

    @property
    def final_state(self) -> str | None:
        return self.path[-1] if self.path else None


# --------------------------------------------------------------------------- paths

_PATH_TOKEN = re.compile(r"\.([A-Za-z_][A-Za-z0-9_-]*)|\[(\d+)\]|\['([^']*)'\]")
_MISSING = object()  # "no default given": a missing path is an error
_ABSENT = object()  # the default IsPresent asks for


def _parse_path(path: str) -> tuple[bool, list[str | int]]:
    if path.startswith("$$"):
        context, rest = True, path[2:]
    elif path.startswith("$"):
        context, rest = False, path[1:]
    else:
        raise DefinitionError(f"not a JSONPath: {path!r}")
    parts: list[str | int] = []
    pos = 0
    while pos < len(rest):
        match = _PATH_TOKEN.match(rest, pos)
        if match is None:
            raise DefinitionError(f"unsupported JSONPath {path!r} (only .field, [n] and ['field'])")
        name, index, quoted = match.groups()
        parts.append(int(index) if index is not None else (name if name is not None else quoted))
        pos = match.end()
    return context, parts


def _get(document: Any, path: str, context: Mapping[str, Any], *, default: Any = _MISSING) -> Any:
    is_context, parts = _parse_path(path)
    value: Any = context if is_context else document
    for part in parts:
        in_list = isinstance(part, int) and isinstance(value, list) and -len(value) <= part < len(value)
        in_object = isinstance(part, str) and isinstance(value, Mapping) and part in value
        if in_list or in_object:
            value = value[part]
        else:
            if default is not _MISSING:
                return default
            raise _StatesError("States.Runtime", f"the JSONPath {path!r} could not be found in the input")
    return value


def _select(document: Any, path: str | None, context: Mapping[str, Any]) -> Any:
    """An InputPath or OutputPath: ``null`` selects nothing, i.e. ``{}`` (as on AWS)."""
    return {} if path is None else _get(document, path, context)


def _set(document: Any, path: str, value: Any) -> Any:
    _, parts = _parse_path(path)
    if not parts:
        return value
    root = copy.deepcopy(document) if isinstance(document, dict) else {}
    target = root
    for part in parts[:-1]:
        if not isinstance(part, str):
            raise DefinitionError(f"ResultPath {path!r}: only field names are supported")
        child = target.get(part)
        if not isinstance(child, dict):
            child = {}
            target[part] = child
        target = child
    last = parts[-1]
    if not isinstance(last, str):
        raise DefinitionError(f"ResultPath {path!r}: only field names are supported")
    target[last] = value
    return root


# --------------------------------------------------------------------------- intrinsic functions


class _IntrinsicParser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0

    def fail(self, what: str) -> DefinitionError:
        return DefinitionError(f"intrinsic {self.text!r}: {what} at position {self.pos}")

    def skip(self) -> None:
        while self.pos < len(self.text) and self.text[self.pos] == " ":
            self.pos += 1

    def parse(self) -> tuple[str, Any]:
        node = self.expression()
        self.skip()
        if self.pos != len(self.text):
            raise self.fail("unexpected text")
        return node

    def expression(self) -> tuple[str, Any]:
        self.skip()
        text, pos = self.text, self.pos
        if text.startswith("'", pos):
            return ("string", self.string())
        if text.startswith("$", pos):
            match = re.compile(r"\$\$?[^,) ]*").match(text, pos)
            assert match is not None
            self.pos = match.end()
            return ("path", match.group(0))
        match = re.compile(r"States\.[A-Za-z]+").match(text, pos)
        if match:
            self.pos = match.end()
            self.skip()
            if not text.startswith("(", self.pos):
                raise self.fail("expected '('")
            self.pos += 1
            args: list[tuple[str, Any]] = []
            self.skip()
            if text.startswith(")", self.pos):
                self.pos += 1
                return ("call", (match.group(0), args))
            while True:
                args.append(self.expression())
                self.skip()
                if text.startswith(",", self.pos):
                    self.pos += 1
                    continue
                if text.startswith(")", self.pos):
                    self.pos += 1
                    return ("call", (match.group(0), args))
                raise self.fail("expected ',' or ')'")
        match = re.compile(r"-?\d+(\.\d+)?|true|false|null").match(text, pos)
        if match:
            self.pos = match.end()
            return ("literal", json.loads(match.group(0)))
        raise self.fail("unexpected token")

    def string(self) -> str:
        """A quoted string's text as written, escapes kept: ``\\{`` is a literal brace in
        States.Format's template, so only the function that uses the string unescapes it."""
        self.pos += 1
        start = self.pos
        while self.pos < len(self.text):
            char = self.text[self.pos]
            if char == "\\" and self.pos + 1 < len(self.text):
                self.pos += 2
                continue
            if char == "'":
                self.pos += 1
                return self.text[start : self.pos - 1]
            self.pos += 1
        raise self.fail("unterminated string")


def _unescape(text: str) -> str:
    """A string literal's value: ``\\x`` is ``x`` (a quote, a brace, a backslash)."""
    return re.sub(r"\\(.)", r"\1", text, flags=re.DOTALL)


def _format_pieces(template: str) -> list[str]:
    """The literal text around each ``{}`` of a States.Format template as written (escapes
    kept): an escaped brace (``\\{``, ``\\}``) is text, not a placeholder."""
    pieces = [""]
    pos = 0
    while pos < len(template):
        if template[pos] == "\\" and pos + 1 < len(template):
            pieces[-1] += template[pos + 1]
            pos += 2
        elif template.startswith("{}", pos):
            pieces.append("")
            pos += 2
        else:
            pieces[-1] += template[pos]
            pos += 1
    return pieces


def _format_value(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bool) or value is None:
        return json.dumps(value)
    if isinstance(value, (int, float)):
        return str(value)
    return json.dumps(value, separators=(",", ":"))


def _evaluate_intrinsic(node: tuple[str, Any], document: Any, context: Mapping[str, Any]) -> Any:
    kind, value = node
    if kind == "literal":
        return value
    if kind == "string":
        return _unescape(value)
    if kind == "path":
        return _get(document, value, context)
    name, raw_args = value
    args = [_evaluate_intrinsic(a, document, context) for a in raw_args]
    if name == "States.Format":
        template, *values = args
        first_kind, first_value = raw_args[0] if raw_args else ("literal", "")
        # Placeholders are found in the template as written, before its escapes are undone.
        pieces = _format_pieces(first_value if first_kind == "string" else str(template))
        if len(pieces) - 1 != len(values):
            raise _StatesError(
                "States.IntrinsicFailure", f"States.Format: {len(values)} argument(s) for {template!r}"
            )
        out = pieces[0]
        for piece, item in zip(pieces[1:], values, strict=True):
            out += _format_value(item) + piece
        return out
    if name == "States.Array":
        return list(args)
    if name == "States.MathAdd":
        return int(args[0]) + int(args[1])
    if name == "States.JsonToString":
        return json.dumps(args[0], separators=(",", ":"))
    if name == "States.StringToJson":
        return json.loads(args[0])
    raise DefinitionError(f"intrinsic function {name} is not supported by the local executor")


def _resolve(template: Any, document: Any, context: Mapping[str, Any]) -> Any:
    """Apply a Parameters/ResultSelector template to ``document``."""
    if isinstance(template, Mapping):
        out: dict[str, Any] = {}
        for key, value in template.items():
            if key.endswith(".$"):
                if not isinstance(value, str):
                    raise DefinitionError(f"{key}: a '.$' key needs a path or intrinsic string")
                if value.startswith("States."):
                    out[key[:-2]] = _evaluate_intrinsic(_IntrinsicParser(value).parse(), document, context)
                else:
                    out[key[:-2]] = copy.deepcopy(_get(document, value, context))
            else:
                out[key] = _resolve(value, document, context)
        return out
    if isinstance(template, list):
        return [_resolve(v, document, context) for v in template]
    return template


# --------------------------------------------------------------------------- choice rules

_COMPARATORS: dict[str, Callable[[Any, Any], bool]] = {
    "Equals": lambda a, b: bool(a == b),
    "LessThan": lambda a, b: bool(a < b),
    "GreaterThan": lambda a, b: bool(a > b),
    "LessThanEquals": lambda a, b: bool(a <= b),
    "GreaterThanEquals": lambda a, b: bool(a >= b),
}


def _rule_matches(rule: Mapping[str, Any], document: Any, context: Mapping[str, Any]) -> bool:
    if "And" in rule:
        return all(_rule_matches(r, document, context) for r in rule["And"])
    if "Or" in rule:
        return any(_rule_matches(r, document, context) for r in rule["Or"])
    if "Not" in rule:
        return not _rule_matches(rule["Not"], document, context)
    variable = rule.get("Variable")
    if not isinstance(variable, str):
        raise DefinitionError(f"choice rule without Variable: {rule}")
    if "IsPresent" in rule:
        return (_get(document, variable, context, default=_ABSENT) is not _ABSENT) == bool(rule["IsPresent"])
    value = _get(document, variable, context)
    if "IsNull" in rule:
        return (value is None) == bool(rule["IsNull"])
    if "BooleanEquals" in rule:
        return isinstance(value, bool) and value == rule["BooleanEquals"]
    accepts_kind: tuple[tuple[str, Callable[[Any], bool]], ...] = (
        ("String", _is_string),
        ("Numeric", _is_number),
    )
    for kind, accepts in accepts_kind:
        for suffix, compare in _COMPARATORS.items():
            operator = f"{kind}{suffix}"
            if operator in rule:
                return bool(accepts(value)) and compare(value, rule[operator])
    raise DefinitionError(f"choice rule operator not supported locally: {sorted(rule)}")


def _is_string(value: Any) -> bool:
    return isinstance(value, str)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _error_matches(names: list[str], error: str) -> bool:
    if "States.ALL" in names or error in names:
        return True
    # States.TaskFailed matches any task error except a timeout
    return "States.TaskFailed" in names and not error.startswith("States.") and error != "States.Timeout"


# --------------------------------------------------------------------------- the executor


@dataclass
class LocalExecutor:
    """Runs a state machine definition with Task resources bound to local callables.

    Args:
        definition: the rendered ASL definition.
        bindings: ``{state name or Resource ARN: callable(TaskCall) -> result}``.
        on_event: progress callback (the CLI prints these).
        sleep: called with retry intervals in seconds (tests pass a recorder).
        max_transitions: a guard against definitions that never end.
    """

    definition: Mapping[str, Any]
    bindings: Mapping[str, TaskBinding]
    on_event: Callable[[ExecutionEvent], None] = lambda _event: None
    sleep: Callable[[float], None] = time.sleep
    max_transitions: int = 1000
    state_machine_name: str = "local"

    def run(self, execution_input: Any, name: str | None = None) -> ExecutionResult:
        """Run one execution to its end; never raises for a failed execution."""
        execution_name = name or uuid.uuid4().hex
        context: dict[str, Any] = {
            "Execution": {
                "Id": f"local:{self.state_machine_name}:{execution_name}",
                "Name": execution_name,
                "Input": copy.deepcopy(execution_input),
                "StartTime": datetime.now(timezone.utc).isoformat(),
            },
            "StateMachine": {"Id": f"local:{self.state_machine_name}", "Name": self.state_machine_name},
            "State": {},
        }
        result = ExecutionResult(execution_name, "RUNNING")
        states: Mapping[str, Any] = self.definition["States"]
        current: str | None = self.definition["StartAt"]
        document = copy.deepcopy(execution_input)
        for _ in range(self.max_transitions):
            assert current is not None
            if current not in states:
                return self._finish(result, "FAILED", None, "States.Runtime", f"unknown state {current!r}")
            state = states[current]
            result.path.append(current)
            context["State"] = {"Name": current, "EnteredTime": datetime.now(timezone.utc).isoformat()}
            self.on_event(ExecutionEvent("entered", current, state.get("Type", ""), document))
            try:
                outcome = self._step(current, state, document, context)
            except _StatesError as exc:
                return self._finish(result, "FAILED", None, exc.error, exc.cause)
            kind, payload = outcome
            if kind == "succeed":
                self.on_event(ExecutionEvent("exited", current, "", payload))
                return self._finish(result, "SUCCEEDED", payload)
            if kind == "fail":
                error, cause = payload
                return self._finish(result, "FAILED", None, error, cause)
            next_state, document = payload
            self.on_event(ExecutionEvent("exited", current, f"-> {next_state}", document))
            current = next_state
        return self._finish(
            result, "FAILED", None, "States.Runtime", f"more than {self.max_transitions} transitions"
        )

    def _finish(
        self,
        result: ExecutionResult,
        status: str,
        output: Any,
        error: str | None = None,
        cause: str | None = None,
    ) -> ExecutionResult:
        result.status, result.output, result.error, result.cause = status, output, error, cause
        detail = status if error is None else f"{status}: {error}: {cause}"
        self.on_event(
            ExecutionEvent("succeeded" if status == "SUCCEEDED" else "failed", None, detail, output)
        )
        return result

    def _step(
        self, name: str, state: Mapping[str, Any], document: Any, context: Mapping[str, Any]
    ) -> tuple[str, Any]:
        kind = state.get("Type")
        if kind == "Succeed":
            effective = _select(document, state.get("InputPath", "$"), context)
            return ("succeed", _select(effective, state.get("OutputPath", "$"), context))
        if kind == "Fail":
            error = (
                _get(document, state["ErrorPath"], context) if "ErrorPath" in state else state.get("Error")
            )
            cause = (
                _get(document, state["CausePath"], context) if "CausePath" in state else state.get("Cause")
            )
            return ("fail", (error, cause))
        if kind == "Choice":
            effective = _select(document, state.get("InputPath", "$"), context)
            output_path = state.get("OutputPath", "$")
            for rule in state.get("Choices", ()):
                if _rule_matches(rule, effective, context):
                    return ("next", (rule["Next"], _select(effective, output_path, context)))
            if "Default" in state:
                return ("next", (state["Default"], _select(effective, output_path, context)))
            raise _StatesError(
                "States.NoChoiceMatched", f"no choice rule of {name} matched and it has no Default"
            )
        if kind == "Pass":
            effective = self._input(state, document, context)
            result = state.get("Result", effective)
            return self._continue(state, document, result, context)
        if kind == "Task":
            return self._task(name, state, document, context)
        raise DefinitionError(f"{name}: state type {kind!r} is not supported by the local executor")

    def _input(self, state: Mapping[str, Any], document: Any, context: Mapping[str, Any]) -> Any:
        effective = _select(document, state.get("InputPath", "$"), context)
        if "Parameters" in state:
            effective = _resolve(state["Parameters"], effective, context)
        return effective

    def _continue(
        self, state: Mapping[str, Any], document: Any, result: Any, context: Mapping[str, Any]
    ) -> tuple[str, Any]:
        result_path = state.get("ResultPath", "$")
        combined = document if result_path is None else _set(document, result_path, result)
        output_path = state.get("OutputPath", "$")
        output = combined if output_path == "$" else _select(combined, output_path, context)
        if state.get("End"):
            return ("succeed", output)
        return ("next", (state["Next"], output))

    def _binding(self, name: str, resource: str) -> TaskBinding:
        binding = self.bindings.get(name) or self.bindings.get(resource)
        if binding is None:
            raise TaskNotAvailable(f"{name}: no local binding for the state or its resource {resource}")
        return binding

    def _task(
        self, name: str, state: Mapping[str, Any], document: Any, context: Mapping[str, Any]
    ) -> tuple[str, Any]:
        resource = state["Resource"]
        binding = self._binding(name, resource)
        attempts: dict[int, int] = {}
        while True:
            try:
                parameters = self._input(state, document, context)
                raw = binding(TaskCall(name, resource, parameters, context))
                result = _resolve(state["ResultSelector"], raw, context) if "ResultSelector" in state else raw
                return self._continue(state, document, result, context)
            except _StatesError as exc:
                if exc.error == "States.Runtime":  # never retried or caught, as on AWS
                    raise
                error, cause = exc.error, exc.cause
            except TaskFailed as exc:
                error, cause = exc.error, exc.cause
            except (DefinitionError, RuntimeSetupError):
                raise
            except Exception as exc:  # a binding's own error, named like a Lambda errorType
                error, cause = type(exc).__name__, str(exc)
            retry = self._retrier(state, error, attempts)
            if retry is not None:
                self.on_event(ExecutionEvent("retry", name, f"{error}: retry in {retry:g} s", None))
                self.sleep(retry)
                continue
            for catcher in state.get("Catch", ()):
                if _error_matches(catcher["ErrorEquals"], error):
                    self.on_event(ExecutionEvent("caught", name, f"{error}: {cause}", None))
                    path = catcher.get("ResultPath", "$")
                    caught = {"Error": error, "Cause": cause}
                    document = document if path is None else _set(document, path, caught)
                    return ("next", (catcher["Next"], document))
            raise _StatesError(error, cause)

    @staticmethod
    def _retrier(state: Mapping[str, Any], error: str, attempts: dict[int, int]) -> float | None:
        for index, retrier in enumerate(state.get("Retry", ())):
            if _error_matches(retrier["ErrorEquals"], error):
                done = attempts.get(index, 0)
                if done >= int(retrier.get("MaxAttempts", 3)):
                    return None
                attempts[index] = done + 1
                interval = float(retrier.get("IntervalSeconds", 1))
                return interval * float(retrier.get("BackoffRate", 2.0)) ** done
        return None


# --------------------------------------------------------------------------- binding adapters


def lambda_binding(function: Callable[[Any], Any]) -> TaskBinding:
    """Bind ``function(payload) -> result`` as ``lambda:invoke`` (the result wrapped in ``Payload``)."""

    def call(task: TaskCall) -> Any:
        parameters = task.parameters if isinstance(task.parameters, Mapping) else {}
        return {"StatusCode": 200, "Payload": function(parameters.get("Payload"))}

    return call


def glue_job_binding(job: Callable[[Mapping[str, str]], Any]) -> TaskBinding:
    """Bind ``job(arguments)`` as ``glue:startJobRun.sync``: a JobRun-shaped result.

    A :class:`LeanOpsError` (or any exception) from the job becomes ``States.TaskFailed``
    with the exception in the cause, as a failed Glue run does; :class:`TaskFailed` keeps
    its own error name (e.g. ``Glue.ConcurrentRunsExceededException``). A
    :class:`RuntimeSetupError` (no local Spark: jars missing) is not a job failure and
    propagates out of the execution.
    """

    def call(task: TaskCall) -> Any:
        parameters = task.parameters if isinstance(task.parameters, Mapping) else {}
        arguments = {str(k): str(v) for k, v in (parameters.get("Arguments") or {}).items()}
        started = time.monotonic()
        try:
            job(arguments)
        except (TaskFailed, RuntimeSetupError):
            raise
        except Exception as exc:
            raise TaskFailed("States.TaskFailed", f"{type(exc).__name__}: {exc}") from exc
        return {
            "Id": f"jr_local_{uuid.uuid4().hex[:16]}",
            "JobName": parameters.get("JobName"),
            "JobRunState": "SUCCEEDED",
            "Arguments": arguments,
            "ExecutionTime": int(time.monotonic() - started),
        }

    return call


def metric_binding(emit: Callable[[str, Mapping[str, Any]], None]) -> TaskBinding:
    """Bind ``aws-sdk:cloudwatch:putMetricData`` to ``emit(namespace, metric_datum)`` per datum."""

    def call(task: TaskCall) -> Any:
        parameters = task.parameters if isinstance(task.parameters, Mapping) else {}
        for datum in parameters.get("MetricData", ()):
            emit(str(parameters.get("Namespace", "")), datum)
        return {}

    return call
