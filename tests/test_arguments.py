"""The argument generator on its own: every keyword it honours, every bound it keeps, and the
byte-bounded cache. (tests/test_tool_arguments.py drives the same through a real server.)"""

from __future__ import annotations

import random
from typing import Any

import orjson
import pytest
from jsonschema import Draft202012Validator

from mockserver import arguments, caches
from mockserver.caches import ByteBoundedCache
from mockserver.errors import ApiError

Json = dict[str, Any]


def generate(parameters: Any, seed: int = 0) -> Any:
    return orjson.loads(
        arguments.arguments_for({"name": "f", "parameters": parameters}, random.Random(seed))
    )


def obj(**properties: Any) -> Json:
    return {"type": "object", "properties": properties, "required": list(properties)}


MET: list[tuple[str, Any]] = [
    ("prefixItems, items false", obj(a={"type": "array", "prefixItems": [{"type": "integer"}, {"const": "x"}], "items": False, "minItems": 2})),
    ("contains", obj(a={"type": "array", "contains": {"const": 7}, "minItems": 1})),
    ("unique items", obj(a={"type": "array", "uniqueItems": True, "minItems": 3, "items": {"type": "integer"}})),
    ("patternProperties", {"type": "object", "required": ["x_1"], "patternProperties": {"^x_": {"type": "integer"}}, "additionalProperties": False}),
    ("dependentRequired", {"type": "object", "properties": {"a": {"type": "string"}, "b": {"type": "string"}}, "required": ["a"], "dependentRequired": {"a": ["b"]}}),
    ("minProperties", {"type": "object", "minProperties": 3, "properties": {"a": {"type": "string"}}, "required": []}),
    ("additionalProperties schema", {"type": "object", "required": ["k"], "additionalProperties": {"type": "boolean"}}),
    ("fractional multipleOf", obj(a={"type": "number", "multipleOf": 0.25, "minimum": 1, "maximum": 2})),
    ("exclusive number bounds", obj(a={"type": "number", "exclusiveMinimum": 0, "exclusiveMaximum": 1e-6})),
    ("only a maximum", obj(a={"type": "integer", "maximum": -5}, b={"type": "number", "maximum": -5})),
    ("type list with null", obj(a={"type": ["null", "string"]})),
    ("oneOf", obj(a={"oneOf": [{"type": "string", "maxLength": 2}, {"type": "integer"}]})),
    ("const and enum", obj(a={"const": {"k": [1]}}, b={"enum": [None, 3]})),
    ("boolean schema", obj(a=True)),
    ("a $ref with siblings", {"$defs": {"n": {"type": "integer"}}, **obj(a={"$ref": "#/$defs/n", "minimum": 3})}),
    ("a $ref through a list", {"x-lists": [{"type": "string"}], **obj(a={"$ref": "#/x-lists/0"})}),
    ("escaped pointer", {"$defs": {"a/b~c": {"type": "boolean"}}, **obj(a={"$ref": "#/$defs/a~1b~0c"})}),
    ("no type at all", obj(a={"minLength": 2}, b={"minimum": 3}, c={"items": {"type": "null"}})),
    ("every format", obj(**{f.replace("-", "_"): {"type": "string", "format": f} for f in arguments.FORMATS})),
    ("short strings", obj(a={"type": "string", "maxLength": 1}, b={"type": "string", "minLength": 12, "maxLength": 12})),
    ("deep required objects", obj(a=obj(b=obj(c=obj(d=obj(e=obj(f={"type": "integer"}))))))),
    ("a true schema", True),
]  # fmt: skip


@pytest.mark.parametrize(("case", "schema"), MET, ids=[c[0] for c in MET])
def test_every_honoured_keyword_gives_a_valid_value(case: str, schema: Any) -> None:
    for seed in range(5):
        value = generate(schema, seed)
        validator = Draft202012Validator(schema, format_checker=Draft202012Validator.FORMAT_CHECKER)
        assert not list(validator.iter_errors(value)), (seed, value)


REFUSED: list[tuple[str, Any, str]] = [
    ("an empty enum", obj(a={"enum": []}), "empty enum"),
    ("a $ref to nothing", obj(a={"$ref": "#/$defs/missing"}), "points at nothing"),
    ("a $ref to a non-schema", {"x-n": 5, **obj(a={"$ref": "#/x-n"})}, "accepts no value"),
    ("a string too long", obj(a={"type": "string", "minLength": 5000}), "more than 1024 characters"),
    ("too many items", obj(a={"type": "array", "minItems": 500}), "more than 64 items"),
    ("too many properties", {"type": "object", "minProperties": 500}, "more than 64 properties"),
    ("no multiple in range", obj(a={"type": "integer", "multipleOf": 10, "minimum": 1, "maximum": 9}), "no multiple"),
    ("no fractional multiple", obj(a={"type": "number", "multipleOf": 0.5, "minimum": 0.1, "maximum": 0.2}), "no multiple"),
    ("a pattern rstr cannot invert", obj(a={"type": "string", "pattern": "a{200}"}), "cannot invert"),
    ("a pattern it cannot meet", obj(a={"type": "string", "pattern": "^a$", "minLength": 3}), "too short"),
    ("a number bound overflowing", obj(a={"type": "number", "multipleOf": 1e-300, "maximum": 1e300}), "out of range"),
    ("a $ref/allOf chain", {"$defs": {"a": {"$ref": "#/$defs/a"}}, **obj(x={"$ref": "#/$defs/a"})}, "chains longer"),
    ("too many values", obj(**{f"p{i}": obj(**{f"q{j}": {"type": "integer"} for j in range(60)}) for i in range(60)}), "parts"),
]  # fmt: skip


@pytest.mark.parametrize(("case", "schema", "hint"), REFUSED, ids=[c[0] for c in REFUSED])
def test_what_cannot_be_met_is_a_400_saying_why(case: str, schema: Any, hint: str) -> None:
    with pytest.raises(ApiError) as caught:
        generate(schema)
    assert caught.value.status == 400
    assert hint in (caught.value.message or "")


def test_a_large_schema_is_checked_without_being_cached() -> None:
    schema = obj(**{f"p{i}": {"type": "string", "description": "d" * 200} for i in range(400)})
    assert len(orjson.dumps(schema)) > arguments.CACHED_SCHEMA_BYTES
    assert arguments.checked(schema) is not arguments.checked(schema)
    small = obj(a={"type": "string"})
    assert arguments.checked(small) is arguments.checked(dict(small))


def test_check_tools_names_the_first_bad_tool() -> None:
    good = {"type": "function", "function": {"name": "a"}}
    bad = {"type": "function", "function": {"name": "b", "parameters": {"type": 5}}}
    arguments.check_tools([good])
    with pytest.raises(ApiError, match=r"tools\[1\]\.function\.parameters"):
        arguments.check_tools([good, bad])


def test_the_byte_bounded_cache_keeps_within_its_bound() -> None:
    cache: ByteBoundedCache[str, str] = ByteBoundedCache(100, lambda key, value: len(value))
    cache.put("a", "x" * 60)
    cache.put("a", "x" * 50)  # replacing a key counts it once
    assert cache.bytes == 50 and len(cache) == 1
    cache.put("b", "y" * 40)
    assert cache.get("a") is not None  # now the most recent
    cache.put("c", "z" * 30)  # over 100: the least recently used ("b") goes
    assert cache.get("b") is None and cache.get("a") and cache.get("c")
    cache.put("huge", "h" * 101)  # bigger than the whole bound: never kept
    assert cache.get("huge") is None and cache.bytes <= 100
    cache.clear()
    assert cache.bytes == 0 and len(cache) == 0


def test_a_doorkeeper_keeps_a_key_from_its_second_sighting_on() -> None:
    cache: ByteBoundedCache[str, str] = ByteBoundedCache(
        1000, lambda key, value: len(value), doorkeeper=True
    )
    cache.put("a", "x")
    assert cache.get("a") is None and cache.bytes == 0
    cache.put("a", "x")
    assert cache.get("a") == "x"
    cache.put("b", "y")
    cache.clear()  # forgets the sightings too
    cache.put("b", "y")
    assert cache.get("b") is None
    # The sightings are bounded: past DOORKEEPER_KEYS others, a key is new again.
    for n in range(caches.DOORKEEPER_KEYS):
        cache.put(f"k{n}", "")
    cache.put("b", "y")
    assert cache.get("b") is None
