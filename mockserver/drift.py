"""Drift: where an endpoint's answers and the schemas part ways, collected while the contract
suite runs or while the validating proxy watches real traffic.

The schemas accept extra fields on purpose (providers add fields without notice), so a passing
run can still hide news. This module walks each answer alongside its schema, through `$ref`,
`allOf` and the `anyOf`/`oneOf` branches that fit, and notes fields the schema does not declare
and required fields that are missing. Error cases add the statuses and envelopes they met.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from referencing._core import Resolver

from mockserver.schemas import BASE_URI, registry

Node = tuple[dict[str, Any], Resolver[Any]]
MAX_DEPTH = 64  # schema nesting is shallow; the bound only guards against a $ref cycle
EXAMPLE_CHARS = 80

JSON_TYPES: dict[type, str] = {
    dict: "object",
    list: "array",
    str: "string",
    bool: "boolean",
    type(None): "null",
    float: "number",
}


def json_type(value: object) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    return JSON_TYPES.get(type(value), "unknown")


def _type_fits(expected: object, instance: object) -> bool:
    allowed = expected if isinstance(expected, list) else [expected]
    actual = json_type(instance)
    return actual in allowed or (actual == "integer" and "number" in allowed)


def _unconditional(node: Node, depth: int = 0) -> Iterator[Node]:
    """The node and everything that applies whatever the instance: `$ref` and `allOf`."""
    schema, resolver = node
    if depth > MAX_DEPTH:
        return
    yield node
    ref = schema.get("$ref")
    if isinstance(ref, str):
        resolved = resolver.lookup(ref)
        if isinstance(resolved.contents, dict):
            yield from _unconditional((resolved.contents, resolved.resolver), depth + 1)
    for sub in schema.get("allOf", ()):
        if isinstance(sub, dict):
            yield from _unconditional((sub, resolver), depth + 1)


def _admits(node: Node, instance: object) -> bool:
    """A cheap fit test for choosing `anyOf` branches: type, const and enum, and the `const`
    of a property the instance has (a discriminator such as an event's `type`)."""
    for schema, _ in _unconditional(node):
        if "type" in schema and not _type_fits(schema["type"], instance):
            return False
        if "const" in schema and schema["const"] != instance:
            return False
        if "enum" in schema and instance not in schema["enum"]:
            return False
        properties = schema.get("properties")
        if isinstance(instance, dict) and isinstance(properties, dict):
            for name, sub in properties.items():
                pinned = isinstance(sub, dict) and "const" in sub and name in instance
                if pinned and instance[name] != sub["const"]:
                    return False
    return True


def applicable(node: Node, instance: object, depth: int = 0) -> list[Node]:
    """Every subschema that speaks about `instance`, branches chosen by what the instance is."""
    found: list[Node] = []
    for schema, resolver in _unconditional(node, depth):
        found.append((schema, resolver))
        for keyword in ("anyOf", "oneOf"):
            for sub in schema.get(keyword, ()):
                branch = (sub, resolver)
                if isinstance(sub, dict) and _admits(branch, instance) and depth < MAX_DEPTH:
                    found += applicable(branch, instance, depth + 1)
    return found


def _excerpt(value: object) -> str:
    text = json.dumps(value, ensure_ascii=False)
    return text if len(text) <= EXAMPLE_CHARS else text[: EXAMPLE_CHARS - 1] + "…"


@dataclass
class Findings:
    undeclared: dict[str, str] = field(default_factory=dict)  # path → example value
    missing: list[str] = field(default_factory=list)


def walk(nodes: list[Node], instance: object, path: str, out: Findings, depth: int = 0) -> None:
    if depth > MAX_DEPTH:
        return
    here = [n for node in nodes for n in applicable(node, instance)]
    if isinstance(instance, dict):
        declared: dict[str, list[Node]] = {}
        open_ended = False
        required: list[str] = []
        for schema, resolver in here:
            for key, sub in (schema.get("properties") or {}).items():
                if isinstance(sub, dict):
                    declared.setdefault(key, []).append((sub, resolver))
            # A schema for extra keys (maps such as logit_bias) declares them all.
            if isinstance(schema.get("additionalProperties"), dict) or schema.get(
                "patternProperties"
            ):
                open_ended = True
            required += [k for k in schema.get("required", ()) if k not in required]
        out.missing += [f"{path}.{key}" for key in required if key not in instance]
        for key, value in instance.items():
            if key in declared:
                walk(declared[key], value, f"{path}.{key}", out, depth + 1)
            elif not open_ended:
                out.undeclared.setdefault(f"{path}.{key}", _excerpt(value))
    elif isinstance(instance, list):
        items = [
            (schema["items"], resolver)
            for schema, resolver in here
            if isinstance(schema.get("items"), dict)
        ]
        for element in instance:
            walk(items, element, f"{path}[]", out, depth + 1)


def examine(schema_name: str, instance: object) -> Findings:
    """Fields of `instance` that `schema_name` does not declare, and required ones it lacks.

    Paths use `[]` for any array element, so findings from many chunks add up per field.
    """
    resolver = registry().resolver(base_uri=BASE_URI + schema_name)
    root = resolver.lookup(BASE_URI + schema_name)
    out = Findings()
    walk([(root.contents, root.resolver)], instance, "$", out)
    return out


def documented_values(schema_name: str, *path: str) -> set[str]:
    """The string `enum`/`const` values a schema allows at a property path ("[]" for array
    items), e.g. `documented_values(name, "choices", "[]", "finish_reason")`."""
    resolver = registry().resolver(base_uri=BASE_URI + schema_name)
    root = resolver.lookup(BASE_URI + schema_name)
    nodes: list[Node] = [(root.contents, root.resolver)]
    for step in path:
        expanded = [n for node in nodes for n in _everything(node)]
        if step == "[]":
            nodes = [(s["items"], r) for s, r in expanded if isinstance(s.get("items"), dict)]
        else:
            nodes = [
                (s["properties"][step], r)
                for s, r in expanded
                if isinstance((s.get("properties") or {}).get(step), dict)
            ]
    values: set[str] = set()
    for schema, _ in (n for node in nodes for n in _everything(node)):
        values.update(v for v in schema.get("enum", ()) if isinstance(v, str))
        if isinstance(schema.get("const"), str):
            values.add(schema["const"])
    return values


def _everything(node: Node, depth: int = 0) -> Iterator[Node]:
    """The node with every `$ref`, `allOf`, `anyOf` and `oneOf` member, instance or not."""
    if depth > MAX_DEPTH:
        return
    for schema, resolver in _unconditional(node, depth):
        yield schema, resolver
        for keyword in ("anyOf", "oneOf"):
            for sub in schema.get(keyword, ()):
                if isinstance(sub, dict):
                    yield from _everything((sub, resolver), depth + 1)


@dataclass
class StatusNote:
    target: str
    case: str
    expected: list[int]
    status: int
    content_type: str
    envelope_problems: list[str]

    @property
    def differs(self) -> bool:
        return self.status != self.expected[0] or bool(self.envelope_problems)


@dataclass
class TokenNote:
    """The prompt_tokens a target reported against what DeepSeek's tokenizer and the model's
    template predict for the same request."""

    target: str
    case: str
    model: str
    predicted: int
    reported: int


@dataclass
class Drift:
    """Everything noticed in one run, for the JSON report and the terminal summary."""

    targets: dict[str, str] = field(default_factory=dict)  # target id → base URL
    # (target, schema, path) → [times seen, an example]
    undeclared: dict[tuple[str, str, str], list[Any]] = field(default_factory=dict)
    missing: dict[tuple[str, str, str], int] = field(default_factory=dict)
    statuses: list[StatusNote] = field(default_factory=list)
    token_counts: list[TokenNote] = field(default_factory=list)
    checked: int = 0
    # (target, what, problem) → times seen: bodies a schema refuses, streams that break an
    # invariant (no [DONE], two finish reasons, ...): what the proxy finds beyond fields.
    problems: dict[tuple[str, str, str], int] = field(default_factory=dict)

    def problem(self, target: str, what: str, text: str) -> None:
        key = (target, what, text)
        self.problems[key] = self.problems.get(key, 0) + 1

    @property
    def drifted(self) -> bool:
        return bool(
            self.undeclared
            or self.missing
            or self.problems
            or any(note.differs for note in self.statuses)
        )

    def observe(self, target: str, schema_name: str, instance: object) -> None:
        self.record(target, schema_name, examine(schema_name, instance))

    def record(self, target: str, schema_name: str, found: Findings) -> None:
        """What `examine` found in one body, counted."""
        self.checked += 1
        for path, example in found.undeclared.items():
            seen = self.undeclared.setdefault((target, schema_name, path), [0, example])
            seen[0] += 1
        for path in found.missing:
            key = (target, schema_name, path)
            self.missing[key] = self.missing.get(key, 0) + 1

    def status(self, note: StatusNote) -> None:
        self.statuses.append(note)

    def tokens(self, note: TokenNote) -> None:
        self.token_counts.append(note)

    def report(self, requests: int) -> dict[str, Any]:
        return {
            "generated_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "targets": [{"target": t, "base_url": url} for t, url in sorted(self.targets.items())],
            "requests_sent": requests,
            "bodies_checked": self.checked,
            "undeclared_fields": [
                {"target": t, "schema": s, "path": p, "count": n, "example": example}
                for (t, s, p), (n, example) in sorted(self.undeclared.items())
            ],
            "missing_required_fields": [
                {"target": t, "schema": s, "path": p, "count": n}
                for (t, s, p), n in sorted(self.missing.items())
            ],
            "status_differences": [
                {
                    "target": n.target,
                    "case": n.case,
                    "expected_status": n.expected,
                    "status": n.status,
                    "content_type": n.content_type,
                    "envelope_problems": n.envelope_problems,
                }
                for n in self.statuses
                if n.differs
            ],
            "error_cases": [
                {"target": n.target, "case": n.case, "status": n.status} for n in self.statuses
            ],
            "problems": [
                {"target": t, "where": w, "problem": p, "count": n}
                for (t, w, p), n in sorted(self.problems.items())
            ],
            "prompt_token_differences": [
                {
                    "target": n.target,
                    "case": n.case,
                    "model": n.model,
                    "predicted": n.predicted,
                    "reported": n.reported,
                }
                for n in self.token_counts
                if n.predicted != n.reported
            ],
        }

    def write(self, path: Path, requests: int) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.report(requests), indent=2, ensure_ascii=False) + "\n")

    def summary(self, limit: int = 8) -> list[str]:
        """A few lines for the terminal: counts, then the first findings of each sort."""
        differing = [n for n in self.statuses if n.differs]
        counts = [n for n in self.token_counts if n.predicted != n.reported]
        lines = [
            f"{len(self.targets)} target(s), {self.checked} bodies checked: "
            f"{len(self.undeclared)} undeclared field(s), {len(self.missing)} missing required "
            f"field(s), {len(differing)} differing error case(s), "
            f"{len(counts)} prompt_tokens difference(s), {len(self.problems)} problem(s)"
        ]
        for (t, s, p), (n, _) in sorted(self.undeclared.items())[:limit]:
            lines.append(f"  undeclared  {t}  {s}  {p}  (x{n})")
        for (t, s, p), n in sorted(self.missing.items())[:limit]:
            lines.append(f"  missing     {t}  {s}  {p}  (x{n})")
        for (t, w, p), n in sorted(self.problems.items())[:limit]:
            lines.append(f"  problem     {t}  {w}  {p}  (x{n})")
        for tn in counts[:limit]:
            lines.append(
                f"  tokens      {tn.target}  {tn.case} ({tn.model}): reported {tn.reported}, "
                f"the tokenizer and template predict {tn.predicted}"
            )
        for note in differing[:limit]:
            detail = "; ".join(note.envelope_problems[:2]) or "envelope ok"
            lines.append(
                f"  status      {note.target}  {note.case}: got {note.status}, "
                f"documented {note.expected[0]} ({detail})"
            )
        return lines
