"""The wire contract: every JSON Schema under `schemas/`, loaded once and shared.

The server checks incoming requests and its own output with these schemas, the unit tests check
the recorded captures with them, and the contract suite checks mock and live responses with them.
A schema is named by its path under `schemas/` (for example
`"deepseek/chat-completion.schema.json"`); the files carry no `$id`, so a relative `$ref` such as
`"../common/usage.schema.json"` resolves against the URI each file is registered under here.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mockserver.resources import data_dir

if TYPE_CHECKING:
    from jsonschema import Draft202012Validator
    from jsonschema.exceptions import ValidationError
    from referencing import Registry

# jsonschema and referencing are imported when a schema is first checked: serving requests
# needs neither (the OpenAPI documents read the files as plain JSON), and they are megabytes.

# `.invalid` is a reserved TLD: the URIs can never point anywhere, and the registry below has no
# `retrieve` hook, so a `$ref` to a missing file fails as Unresolvable instead of going online.
BASE_URI = "https://schemas.deepseek-mock.invalid/"
SUFFIX = ".schema.json"


def schema_dir() -> Path:
    """The folder that holds the schema files (top-level `schemas/` in a checkout)."""
    return data_dir("schemas")


def names() -> list[str]:
    """Every schema name, sorted: the paths of the `*.schema.json` files under `schemas/`."""
    root = schema_dir()
    return sorted(path.relative_to(root).as_posix() for path in root.rglob(f"*{SUFFIX}"))


@cache
def load(name: str) -> dict[str, Any]:
    """The raw schema as stored, for tools that take a plain dict (fastjsonschema, hypothesis).

    Callers get the cached dict itself; copy it before changing it.
    """
    root = schema_dir()
    path = (root / name).resolve()
    # Names come from tests and scenario files: keep them inside schemas/.
    if not name.endswith(SUFFIX) or not path.is_file() or not path.is_relative_to(root.resolve()):
        raise KeyError(f"no schema named {name!r} under {root}")
    contents = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(contents, dict):
        raise TypeError(f"{name}: a schema file must hold a JSON object")
    return contents


@cache
def registry() -> Registry[Any]:
    """All schemas, each registered under `BASE_URI + <name>`."""
    from jsonschema import Draft202012Validator
    from referencing import Registry, Resource
    from referencing.jsonschema import DRAFT202012

    resources: list[tuple[str, Resource[Any]]] = []
    for name in names():
        contents = load(name)
        # A broken schema should fail here, once, with its name, rather than mid-test later.
        Draft202012Validator.check_schema(contents)
        resource = Resource.from_contents(contents, default_specification=DRAFT202012)
        resources.append((BASE_URI + name, resource))
    return Registry().with_resources(resources).crawl()


@cache
def validator(name: str) -> Draft202012Validator:
    """A validator for the schema at `name`, e.g. `"acedata/error.schema.json"`."""
    from jsonschema import Draft202012Validator

    load(name)  # unknown names fail with a KeyError that says where we looked
    # Validating against a one-line `$ref` wrapper, rather than the file's own dict, gives the
    # file its registered URI as base, which its relative `$ref`s need.
    return Draft202012Validator({"$ref": BASE_URI + name}, registry=registry())


def _leaves(errors: Iterable[ValidationError]) -> Iterator[ValidationError]:
    """anyOf/oneOf failures only say "not valid under any"; the reasons sit in `.context`."""
    for error in errors:
        if error.context:
            yield from _leaves(error.context)
        else:
            yield error


def problems(name: str, instance: object) -> list[str]:
    """Why `instance` breaks the schema `name`, most specific first; `[]` when it conforms.

    Each entry reads like `"$.usage.prompt_tokens: -1 is less than the minimum of 0"`.
    """
    from jsonschema.exceptions import relevance

    # `relevance` orders deeper paths first, then siblings in document order.
    leaves = sorted(_leaves(validator(name).iter_errors(instance)), key=relevance)
    found: list[str] = []
    for error in leaves:
        line = f"{error.json_path}: {error.message}"
        if line not in found:  # the same leaf can be reached through several branches
            found.append(line)
    return found


def assert_valid(name: str, instance: object) -> None:
    """Raise AssertionError listing every problem when `instance` does not conform to `name`."""
    __tracebackhide__ = True  # pytest then points at the caller's line, not at this helper
    found = problems(name, instance)
    if found:
        raise AssertionError(f"{name} does not accept the instance:\n  " + "\n  ".join(found))
