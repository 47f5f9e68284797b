"""Tool-call arguments: generated from the function's `parameters` schema with bounded work,
then checked against that same schema before they are sent.

A tool schema is whatever a client put in its request, so nothing here trusts it. The schema is
first checked against JSON Schema's meta-schema (2020-12); generation then stops at a depth, a
number of values, a string length, an array size and a deadline; and the result must pass the
schema's own validator, formats included. A schema that is not valid, or that cannot be
satisfied within those bounds, is a 400 that names the function and says why.

No library does this part for us at run time: hypothesis-jsonschema needs hypothesis (a test
tool), and jsf draws from the global `random` and Faker, so its output would not follow the
server's seed. Strings for `pattern` come from rstr's regex inverter, drawn from our own
generator and cut off by a budget.
"""

from __future__ import annotations

import math
import random
import re
import sys
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import orjson
from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError, best_match
from referencing.exceptions import Unresolvable
from rstr.xeger import Xeger

from mockserver.errors import ApiError
from mockserver.nesting import deeper_than

MAX_DEPTH = 64  # nesting of the generated value, and of a schema we agree to check
SHALLOW = 4  # past this depth, arrays get their fewest items and objects only what is required
MAX_VALUES = 2_000  # values generated in one attempt
MAX_STRING = 1_024  # characters in one generated string
MAX_ITEMS = 64  # items in one array, properties in one object
MAX_PATTERN_STEPS = 4_096  # regex nodes expanded for one `pattern`
ATTEMPTS = 6  # fresh draws before a schema is called unsatisfiable
# CPU seconds of this thread for all attempts on one call: what bounds the mock's own work.
# Wall time would also count a thread waiting for the GIL or a core, which on a loaded machine
# could cut off a schema's first attempt before it found the real reason it cannot be met.
TIME_BUDGET = 0.2
SAFE_INTEGER = 2**53  # integers beyond this do not survive a round trip through most JSON tools
CACHED_SCHEMA_BYTES = 64 * 1024  # larger schemas are checked afresh each time, not kept
WORDS = ("Paris", "42", "hello", "mock value", "2026-11-23", "blue", "Tokyo", "yes")


class Unsatisfiable(Exception):
    """The bounds ran out, or the schema asks for something the generator cannot make."""


class OutOfTime(Unsatisfiable):
    """The time budget ran out: on a busy machine, perhaps before an attempt found the real
    reason, so an earlier attempt's reason is the one to tell."""


@dataclass(frozen=True, slots=True)
class Checked:
    """A tool schema checked once: its validator, or why it is not a valid schema."""

    validator: Draft202012Validator | None
    problem: str | None = None


def _build(schema: Any) -> Checked:
    # The meta-schema check recurses several frames per level: bound the depth before it.
    if deeper_than(schema, MAX_DEPTH):
        return Checked(None, f"$: the schema nests deeper than {MAX_DEPTH} levels")
    try:
        Draft202012Validator.check_schema(schema)
    except SchemaError as exc:
        return Checked(None, f"{exc.json_path}: {exc.message}")
    return Checked(Draft202012Validator(schema, format_checker=Draft202012Validator.FORMAT_CHECKER))


# Keyed by the schema's canonical bytes: a test suite sends the same tools again and again, and
# building a validator costs far more than using one. At most 128 × 64 KiB of keys are kept.
@lru_cache(maxsize=128)
def _cached(canonical: bytes) -> Checked:
    return _build(orjson.loads(canonical))


def checked(schema: Any) -> Checked:
    canonical = orjson.dumps(schema, option=orjson.OPT_SORT_KEYS)
    return _build(schema) if len(canonical) > CACHED_SCHEMA_BYTES else _cached(canonical)


def _parameters(function: dict[str, Any]) -> Any:
    parameters = function.get("parameters")
    return {"type": "object", "properties": {}} if parameters is None else parameters


def check_tools(tools: Sequence[dict[str, Any]]) -> None:
    """A 400 for the first tool whose `parameters` is not a valid JSON Schema."""
    for i, tool in enumerate(tools):
        found = checked(_parameters(tool["function"])).problem
        if found is not None:
            raise ApiError(
                "invalid_request",
                f"Invalid 'tools[{i}].function.parameters': not a valid JSON Schema: {found}",
                param=f"tools[{i}].function.parameters",
            )


def arguments_for(function: dict[str, Any], rng: random.Random) -> str:
    """Arguments for a call of `function` (a request's `tools[i].function`): a JSON object its
    `parameters` accept, as the live API sends them."""
    schema = _parameters(function)
    check = checked(schema)
    name = function.get("name")
    if check.validator is None:
        raise ApiError(
            "invalid_request", f"Invalid parameters of function {name!r}: {check.problem}"
        )
    deadline = time.thread_time() + TIME_BUDGET
    reason = "no attempt was made"
    for _ in range(ATTEMPTS):
        try:
            value = _Run(schema, rng, deadline).top()
            encoded = orjson.dumps(value)
            error = best_match(check.validator.iter_errors(value))
        except OutOfTime as exc:
            if reason == "no attempt was made":
                reason = str(exc)
        except Unsatisfiable as exc:
            reason = str(exc)
        except (Unresolvable, orjson.JSONEncodeError) as exc:
            reason = str(exc) or type(exc).__name__
            break
        else:
            if error is None:
                return encoded.decode()
            reason = f"{error.json_path}: {error.message}"
        if time.thread_time() > deadline:
            break
    raise ApiError(
        "invalid_request",
        f"Cannot generate arguments for function {name!r} that its parameters accept: {reason}",
        param="tools",
    )


def _merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    """`allOf` and an `anyOf` branch folded into their parent: enough for generation, and the
    validator judges the result anyway."""
    out = dict(base)
    for key, value in extra.items():
        if key == "properties" and isinstance(out.get(key), dict) and isinstance(value, dict):
            out[key] = out[key] | value
        elif key == "required" and isinstance(out.get(key), list) and isinstance(value, list):
            out[key] = out[key] + [name for name in value if name not in out[key]]
        else:
            out[key] = value
    return out


def _pointer(root: Any, ref: str) -> Any:
    if ref != "#" and not ref.startswith("#/"):
        raise Unsatisfiable(f"only local $ref pointers ('#/...') are followed, not {ref!r}")
    node = root
    for part in ref[2:].split("/") if ref != "#" else ():
        part = part.replace("~1", "/").replace("~0", "~")
        if isinstance(node, dict) and part in node:
            node = node[part]
        elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            raise Unsatisfiable(f"$ref {ref!r} points at nothing")
    return node


class _Xeger(Xeger):
    """rstr's regex inverter with a step budget: nested repeats cannot grow without end."""

    def __init__(self, rng: random.Random) -> None:
        super().__init__(rng)
        self.steps = 0

    def _handle_state(self, state: Any) -> Any:
        self.steps += 1
        if self.steps > MAX_PATTERN_STEPS:
            raise Unsatisfiable(f"pattern needs more than {MAX_PATTERN_STEPS} steps to invert")
        return super()._handle_state(state)


def _formats() -> dict[str, Callable[[random.Random], str]]:
    def date(rng: random.Random) -> str:
        return f"2026-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}"

    def clock(rng: random.Random) -> str:
        return f"{rng.randint(0, 23):02d}:{rng.randint(0, 59):02d}:{rng.randint(0, 59):02d}Z"

    def host(rng: random.Random) -> str:
        return f"host{rng.randint(1, 99)}.example.com"

    return {
        "date": date,
        "time": clock,
        "date-time": lambda rng: f"{date(rng)}T{clock(rng)}",
        "duration": lambda rng: f"P{rng.randint(1, 30)}D",
        "email": lambda rng: f"user{rng.randint(1, 99)}@example.com",
        "idn-email": lambda rng: f"user{rng.randint(1, 99)}@example.com",
        "hostname": host,
        "idn-hostname": host,
        "ipv4": lambda rng: f"192.0.2.{rng.randint(1, 254)}",
        "ipv6": lambda rng: f"2001:db8::{rng.randint(1, 0xFFFF):x}",
        "uri": lambda rng: f"https://{host(rng)}/{rng.choice(WORDS[:3]).lower()}",
        "iri": lambda rng: f"https://{host(rng)}/item",
        "uri-reference": lambda rng: f"/items/{rng.randint(1, 99)}",
        "iri-reference": lambda rng: f"/items/{rng.randint(1, 99)}",
        "uri-template": lambda rng: "https://example.com/items/{id}",
        "uuid": lambda rng: str(uuid.UUID(int=rng.getrandbits(128), version=4)),
        "json-pointer": lambda rng: "/items/0",
        "relative-json-pointer": lambda rng: "0/items",
        "regex": lambda rng: "^[a-z]+$",
    }


FORMATS = _formats()
NUMERIC = ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "multipleOf")


def _kind_of(schema: dict[str, Any], default: str) -> str:
    """The type a schema without `type` most likely wants, from the keywords it uses."""
    if any(k in schema for k in ("properties", "required", "additionalProperties")):
        return "object"
    if any(k in schema for k in ("items", "prefixItems", "minItems", "maxItems", "contains")):
        return "array"
    if any(k in schema for k in NUMERIC):
        return "number"
    if any(k in schema for k in ("minLength", "maxLength", "pattern", "format")):
        return "string"
    return default


@dataclass(slots=True)
class _Run:
    """One attempt: draws from the request's generator and counts what it has made."""

    root: Any
    rng: random.Random
    deadline: float
    values: int = 0

    def top(self) -> dict[str, Any]:
        value = self.value(self.root, 0, default="object")
        if not isinstance(value, dict):
            raise Unsatisfiable("parameters must describe a JSON object (type: object)")
        return value

    def spend(self, depth: int) -> None:
        self.values += 1
        if depth > MAX_DEPTH:
            raise Unsatisfiable(f"the value would nest deeper than {MAX_DEPTH} levels")
        if self.values > MAX_VALUES:
            raise Unsatisfiable(f"the value would need more than {MAX_VALUES} parts")
        if self.values % 64 == 0 and time.thread_time() > self.deadline:
            raise OutOfTime(f"generation took longer than {TIME_BUDGET} s of CPU")

    def resolve(self, schema: Any, depth: int) -> dict[str, Any]:
        """`$ref` followed and `allOf` folded in, until neither is left."""
        for _ in range(MAX_DEPTH):
            if schema is True:
                return {}
            if not isinstance(schema, dict):
                raise Unsatisfiable("a `false` schema (or a $ref to a non-schema) accepts no value")
            if "$ref" in schema:
                rest = {k: v for k, v in schema.items() if k != "$ref"}
                target = _pointer(self.root, schema["$ref"])
                schema = _merge(target, rest) if isinstance(target, dict) else target
            elif "allOf" in schema:
                rest = {k: v for k, v in schema.items() if k != "allOf"}
                for part in schema["allOf"]:
                    rest = _merge(rest, self.resolve(part, depth + 1))
                schema = rest
            else:
                return schema
        raise Unsatisfiable(f"$ref/allOf chains longer than {MAX_DEPTH} are not followed")

    def value(self, schema: Any, depth: int, default: str = "string") -> Any:
        self.spend(depth)
        node = self.resolve(schema, depth)
        if "const" in node:
            return node["const"]
        if "enum" in node:
            if not node["enum"]:
                raise Unsatisfiable("an empty enum accepts no value")
            return self.rng.choice(node["enum"])
        for key in ("anyOf", "oneOf"):
            if key in node:
                rest = {k: v for k, v in node.items() if k != key}
                branch = self.resolve(self.rng.choice(node[key]), depth + 1)
                return self.value(_merge(rest, branch), depth + 1, default)
        kind = node.get("type")
        if isinstance(kind, list):
            kinds = [k for k in kind if k != "null"] or kind
            kind = self.rng.choice(kinds)
        if kind is None:
            kind = _kind_of(node, default)
        make = getattr(self, f"make_{kind}", None)
        if make is None:
            raise Unsatisfiable(f"unknown type {kind!r}")
        return make(node, depth)

    def make_null(self, node: dict[str, Any], depth: int) -> None:
        return None

    def make_boolean(self, node: dict[str, Any], depth: int) -> bool:
        return self.rng.random() < 0.5

    def make_object(self, node: dict[str, Any], depth: int) -> dict[str, Any]:
        properties = node.get("properties", {})
        required = node.get("required", list(properties) if depth < SHALLOW else [])
        extra = node.get("additionalProperties", {})
        patterns = node.get("patternProperties", {})
        names = list(required)
        out: dict[str, Any] = {}
        wanted = max(node.get("minProperties", 0), len(set(names)))
        if wanted > MAX_ITEMS:
            raise Unsatisfiable(f"an object would need more than {MAX_ITEMS} properties")
        for name in names:
            if name not in out:
                sub = self.schema_for(name, properties, patterns, extra)
                out[name] = self.value(sub, depth + 1)
                for dependent in node.get("dependentRequired", {}).get(name, ()):
                    names.append(dependent)
        spare = [n for n in properties if n not in out]
        while len(out) < wanted:
            name = spare.pop(0) if spare else f"field_{len(out)}"
            out[name] = self.value(self.schema_for(name, properties, patterns, extra), depth + 1)
        return out

    def schema_for(
        self, name: str, properties: dict[str, Any], patterns: dict[str, Any], extra: Any
    ) -> Any:
        if name in properties:
            return properties[name]
        for pattern, schema in patterns.items():
            if _search(pattern, name):
                return schema
        return extra

    def make_array(self, node: dict[str, Any], depth: int) -> list[Any]:
        prefix = node.get("prefixItems", [])
        items = node.get("items", {})
        low = node.get("minItems", 0)
        if low > MAX_ITEMS:
            raise Unsatisfiable(f"an array would need more than {MAX_ITEMS} items")
        high = min(node.get("maxItems", low + 2), low + 2 if depth < SHALLOW else low)
        if items is False:
            high = min(high, len(prefix))
        count = self.rng.randint(max(low, min(1, high)), max(high, low))
        out: list[Any] = []
        if "contains" in node and count:
            out.append(self.value(node["contains"], depth + 1))
        while len(out) < count:
            index = len(out)
            item = self.value(prefix[index] if index < len(prefix) else items, depth + 1)
            if node.get("uniqueItems") and item in out:
                if self.values > MAX_VALUES // 2:
                    raise Unsatisfiable("cannot draw enough distinct items")
                continue
            out.append(item)
        return out

    def make_string(self, node: dict[str, Any], depth: int) -> str:
        low = node.get("minLength", 0)
        if low > MAX_STRING:
            raise Unsatisfiable(f"a string would need more than {MAX_STRING} characters")
        high = min(node.get("maxLength", max(low, 24)), max(low, MAX_STRING))
        if "pattern" in node:
            try:
                return str(_Xeger(self.rng).xeger(node["pattern"]))
            except Unsatisfiable:
                raise
            except Exception as exc:  # rstr fails in many ways on patterns it cannot invert
                raise Unsatisfiable(f"cannot invert pattern {node['pattern']!r}: {exc}") from None
        make = FORMATS.get(node.get("format", ""))
        if make is not None:
            return make(self.rng)
        fits = [w for w in WORDS if low <= len(w) <= high]
        if fits:
            return self.rng.choice(fits)
        size = self.rng.randint(low, max(low, min(high, low + 16)))
        return "".join(self.rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(size))

    def make_integer(self, node: dict[str, Any], depth: int) -> int:
        low, high = _bounds(node, integer=True)
        step = node.get("multipleOf")
        if isinstance(step, int):
            first, last = -(-low // step), high // step
            if first > last:
                raise Unsatisfiable(f"no multiple of {step} lies within the bounds")
            return self.rng.randint(first, last) * step
        if step is not None:  # a fractional step: the validator decides whether it fits
            return int(self.make_number(node, depth))
        return self.rng.randint(int(low), int(high))

    def make_number(self, node: dict[str, Any], depth: int) -> float:
        low, high = _bounds(node, integer=False)
        step = node.get("multipleOf")
        try:
            if step is not None:
                first, last = math.ceil(low / step), math.floor(high / step)
                if first > last:
                    raise Unsatisfiable(f"no multiple of {step} lies within the bounds")
                return float(self.rng.randint(first, last) * step)
            # Halves first: high - low can overflow to infinity when both are huge.
            value = low / 2 + high / 2 + (high / 2 - low / 2) * (2 * self.rng.random() - 1)
        except (OverflowError, ValueError, ZeroDivisionError) as exc:
            raise Unsatisfiable(f"numeric bounds out of range: {exc}") from None
        value = min(max(value, low), high)
        rounded = round(value, 2)
        return float(rounded if low <= rounded <= high else value)


def _bounds(node: dict[str, Any], *, integer: bool) -> tuple[Any, Any]:
    """The closed range a number may take; one side open gets 100 on the other."""
    low: Any = node.get("minimum")
    high: Any = node.get("maximum")
    above, below = node.get("exclusiveMinimum"), node.get("exclusiveMaximum")
    limit = SAFE_INTEGER if integer else sys.float_info.max
    try:
        if integer:
            low = None if low is None else math.ceil(low)
            high = None if high is None else math.floor(high)
            if above is not None:
                low = max(low if low is not None else -math.inf, math.floor(above) + 1)
            if below is not None:
                high = min(high if high is not None else math.inf, math.ceil(below) - 1)
        else:
            # An exclusive bound is stepped past by one part in 10¹² (or 10⁻⁹ near zero).
            if above is not None:
                nudged = above + max(abs(above) * 1e-12, 1e-9)
                low = nudged if low is None else max(low, nudged)
            if below is not None:
                nudged = below - max(abs(below) * 1e-12, 1e-9)
                high = nudged if high is None else min(high, nudged)
    except (OverflowError, ValueError) as exc:
        raise Unsatisfiable(f"numeric bounds out of range: {exc}") from None
    if low is None and high is None:
        low, high = 0, 100
    elif low is None:
        low = high - 100
    elif high is None:
        high = low + 100
    low, high = max(low, -limit), min(high, limit)
    if low > high:
        kind = "integer" if integer else "number"
        raise Unsatisfiable(f"no {kind} within ±{limit:g} satisfies the bounds")
    return low, high


def _search(pattern: str, text: str) -> bool:
    try:
        return re.search(pattern, text) is not None
    except re.error:
        return False
