"""Which answer each request gets: ordered rules, the first live match wins.

A rule has one part per pipeline stage: `match` (which requests), `reply` or `error` (what is
said) and `delivery` (how the bytes arrive). Anything a reply leaves out is generated.
"""

from __future__ import annotations

import dataclasses
import hashlib
import re
import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from mockserver.delivery import PLAIN, Delivery
from mockserver.resources import data_dir
from mockserver.validation import ChatRequest


@dataclass(frozen=True, slots=True, kw_only=True)
class Match:
    """A predicate over requests. Fields left as None match anything."""

    model: str | None = None
    stream: bool | None = None
    prompt: re.Pattern[str] | None = None  # searched in the last user message
    headers: tuple[tuple[str, re.Pattern[str]], ...] = ()  # lower-case name, pattern on the value
    dialect: str | None = None

    def __call__(self, chat: ChatRequest, headers: Mapping[str, str], dialect: str) -> bool:
        return (
            (self.model is None or self.model == chat.model)
            and (self.stream is None or self.stream == chat.stream)
            and (self.dialect is None or self.dialect == dialect)
            and (self.prompt is None or self.prompt.search(chat.last_user_text) is not None)
            and (
                not self.headers  # the usual rule: no generator made for nothing
                or all(
                    pattern.search(headers.get(name, "")) is not None
                    for name, pattern in self.headers
                )
            )
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class ToolCall:
    name: str
    arguments: str = "{}"  # a JSON object, as text, exactly as it goes on the wire


@dataclass(frozen=True, slots=True, kw_only=True)
class Reply:
    """What the assistant says. Anything left as None is generated from the request."""

    content: str | None = None
    reasoning_content: str | None = None
    tool_calls: tuple[ToolCall, ...] | None = None
    finish_reason: str | None = None
    usage: Mapping[str, int] = field(default_factory=dict)  # figures that replace the counted ones

    def __post_init__(self) -> None:
        # A copy of its own: answers are kept by the reply they came from (templates.py), so
        # a caller's later change to the dict it passed must not reach this reply.
        object.__setattr__(self, "usage", dict(self.usage))


@dataclass(frozen=True, slots=True, kw_only=True)
class ErrorReply:
    """A documented API error; the dialect decides what its envelope looks like."""

    status: int
    message: str | None = None
    code: str | None = None  # the dialect's code, e.g. AceData "token_mismatched"
    plain: bool = False  # a text/plain body, as some DeepSeek 401/422 answers are
    retry_after: float | None = None  # seconds, sent as Retry-After
    retry_after_ms: float | None = None  # sent as retry-after-ms


@dataclass(frozen=True, slots=True, kw_only=True)
class Rule:
    name: str
    match: Match = field(default_factory=Match)
    reply: Reply | ErrorReply = field(default_factory=Reply)
    delivery: Delivery = PLAIN
    times: int | None = None  # None: every matching request; n: only the first n
    probability: float = 1.0  # chance that a matching request takes this rule (seeded)


GENERATED = Rule(name="generated")


def draw(seed: int, rule: str, n: int) -> float:
    """The n-th draw (from 0) of the rule named `rule`: the same in every run with this seed,
    whatever other rules or requests came in between. A SHA-1, so a Redis script computes the
    very same number (`redis.sha1hex`): the shared store decides as one process would."""
    digest = hashlib.sha1(f"{seed}\x00{rule}\x00{n}".encode()).hexdigest()
    return int(digest[:13], 16) / 2**52


class Scenario:
    """The server's rules. Read on the event loop, replaced from a test's thread.

    A `probability` rule decides the n-th request that reaches it and matches by its own n-th
    draw, so its outcomes do not shift when other rules' requests arrive in another order.
    """

    def __init__(self, rules: Sequence[Rule] = (), *, seed: int = 0) -> None:
        self._lock = threading.Lock()
        self._seed = seed
        self._rules: tuple[Rule, ...] = ()
        self._uses: list[int] = []
        self._draws: list[int] = []  # per rule: how many matching requests it has drawn for
        self.replace(rules)

    def replace(self, rules: Iterable[Rule]) -> None:
        with self._lock:
            self._rules = tuple(rules)
            self._uses = [0] * len(self._rules)
            self._draws = [0] * len(self._rules)

    def add(self, rule: Rule) -> None:
        """After the others; a rule with a name already in use replaces that rule where it
        stands (counting its uses from 0), so adding the same scenario twice changes nothing."""
        with self._lock:
            names = [existing.name for existing in self._rules]
            if rule.name in names:
                i = names.index(rule.name)
                self._rules = (*self._rules[:i], rule, *self._rules[i + 1 :])
                self._uses[i] = self._draws[i] = 0
            else:
                self._rules += (rule,)
                self._uses.append(0)
                self._draws.append(0)

    @property
    def rules(self) -> tuple[Rule, ...]:
        return self._rules

    def uses(self) -> dict[str, int]:
        """Uses by rule name (rules that share a name add up; see `usage()`)."""
        totals: dict[str, int] = {}
        for rule, used in self.usage():
            totals[rule.name] = totals.get(rule.name, 0) + used
        return totals

    def usage(self) -> list[tuple[Rule, int]]:
        """Each rule with how many requests it has answered, in order."""
        with self._lock:
            return list(zip(self._rules, self._uses, strict=True))

    def decide(self, chat: ChatRequest, headers: Mapping[str, str], dialect: str) -> Rule:
        with self._lock:
            for i, rule in enumerate(self._rules):
                if rule.times is not None and self._uses[i] >= rule.times:
                    continue
                if not rule.match(chat, headers, dialect):
                    continue
                if rule.probability < 1.0:
                    n = self._draws[i]
                    self._draws[i] += 1
                    if draw(self._seed, rule.name, n) >= rule.probability:
                        continue
                self._uses[i] += 1
                return rule
        return GENERATED


# ----------------------------------------------------------------------------------------------
# The file format (schemas/scenario.schema.json): JSON in, frozen rules out.


def _pattern(text: str, where: str) -> re.Pattern[str]:
    try:
        return re.compile(text)
    except re.error as exc:
        raise ValueError(f"{where}: {text!r} is not a valid regular expression: {exc}") from None


def _delivery(fields: Mapping[str, Any], where: str) -> Delivery:
    try:
        return Delivery(**fields)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{where}: {exc}") from None


def rule_from_json(data: Mapping[str, Any], index: int = 0) -> Rule:
    where = f"$.rules[{index}].match"
    match = data.get("match") or {}
    headers = tuple(
        (name.lower(), _pattern(pattern, f"{where}.headers.{name}"))
        for name, pattern in (match.get("headers") or {}).items()
    )
    prompt = match.get("prompt")
    reply: Reply | ErrorReply
    if "error" in data:
        error = data["error"]
        reply = ErrorReply(
            status=int(error["status"]),
            message=error.get("message"),
            code=error.get("code"),
            plain=bool(error.get("plain", False)),
            retry_after=error.get("retry_after"),
            retry_after_ms=error.get("retry_after_ms"),
        )
    else:
        given = data.get("reply") or {}
        calls = given.get("tool_calls")
        reply = Reply(
            content=given.get("content"),
            reasoning_content=given.get("reasoning_content"),
            tool_calls=None
            if calls is None
            else tuple(
                ToolCall(
                    name=call["name"],
                    arguments=call["arguments"]
                    if isinstance(call.get("arguments"), str)
                    else orjson.dumps(call.get("arguments", {})).decode(),
                )
                for call in calls
            ),
            finish_reason=given.get("finish_reason"),
            usage=dict(given.get("usage") or {}),
        )
    return Rule(
        name=str(data.get("name") or f"rule {index + 1}"),
        match=Match(
            model=match.get("model"),
            stream=match.get("stream"),
            prompt=_pattern(prompt, f"{where}.prompt") if prompt is not None else None,
            headers=headers,
            dialect=match.get("dialect"),
        ),
        reply=reply,
        delivery=_delivery(data.get("delivery") or {}, f"$.rules[{index}].delivery"),
        times=data.get("times"),
        probability=float(data.get("probability", 1.0)),
    )


def _given(*pairs: tuple[str, Any]) -> dict[str, Any]:
    """The pairs whose value is set, as a scenario file leaves the others out."""
    return {name: value for name, value in pairs if value is not None}


def rule_to_json(rule: Rule) -> dict[str, Any]:
    """The inverse of `rule_from_json`: a rule as a scenario file writes it (the shared store
    keeps rules this way)."""
    match = rule.match
    matched = _given(
        ("model", match.model),
        ("stream", match.stream),
        ("dialect", match.dialect),
        ("prompt", match.prompt.pattern if match.prompt is not None else None),
    )
    if match.headers:
        matched["headers"] = {name: pattern.pattern for name, pattern in match.headers}
    data: dict[str, Any] = {"name": rule.name}
    if matched:
        data["match"] = matched
    reply = rule.reply
    if isinstance(reply, ErrorReply):
        error = {k: v for k, v in dataclasses.asdict(reply).items() if v is not None}
        if not reply.plain:
            error.pop("plain")
        data["error"] = error
    else:
        given = _given(
            ("content", reply.content),
            ("reasoning_content", reply.reasoning_content),
            ("finish_reason", reply.finish_reason),
        )
        if reply.tool_calls is not None:
            given["tool_calls"] = [
                {"name": call.name, "arguments": call.arguments} for call in reply.tool_calls
            ]
        if reply.usage:
            given["usage"] = dict(reply.usage)
        data["reply"] = given
    delivery = {
        f.name: getattr(rule.delivery, f.name)
        for f in dataclasses.fields(rule.delivery)
        if getattr(rule.delivery, f.name) != f.default
    }
    if delivery:
        data["delivery"] = delivery
    if rule.times is not None:
        data["times"] = rule.times
    if rule.probability != 1.0:
        data["probability"] = rule.probability
    return data


def rules_from_json(document: Mapping[str, Any]) -> list[Rule]:
    """Validated against scenario.schema.json first, so a typo fails loudly, not silently."""
    from mockserver.schemas import problems  # jsonschema only when a file is actually loaded

    rules = document.get("rules") if isinstance(document, dict) else None
    both = [
        f"$.rules[{i}]: a rule has either a reply or an error, not both"
        for i, rule in enumerate(rules if isinstance(rules, list) else [])
        if isinstance(rule, dict) and "reply" in rule and "error" in rule
    ]
    found = both or problems("scenario.schema.json", document)
    if found:
        raise ValueError("not a valid scenario:\n  " + "\n  ".join(found))
    return [rule_from_json(rule, i) for i, rule in enumerate(document.get("rules", []))]


def resolve(path: Path) -> Path:
    """A path as given, or the name of a scenario that ships with the package ("flaky")."""
    if path.exists():
        return path
    bundled = data_dir("fixtures") / "scenarios"
    candidate = bundled / (path.name if path.suffix == ".json" else f"{path.name}.json")
    if len(path.parts) <= 3 and candidate.exists():  # "flaky", or fixtures/scenarios/flaky.json
        return candidate
    names = ", ".join(sorted(p.stem for p in bundled.glob("*.json")))
    raise ValueError(f"{path}: no such file or folder (bundled scenarios: {names})")


def load_rules(path: Path, *, validate: bool = True) -> list[Rule]:
    """One scenario file, or every *.json file of a folder in name order.

    `validate=False` is for the files that ship with the package: the test suite validates
    them, and skipping jsonschema here keeps it off the server's start-up path.
    """
    path = resolve(path)
    files = sorted(path.glob("*.json")) if path.is_dir() else [path]
    rules: list[Rule] = []
    for file in files:
        try:
            document = orjson.loads(file.read_bytes())
            if validate:
                rules += rules_from_json(document)
            else:
                rules += [rule_from_json(r, i) for i, r in enumerate(document.get("rules", []))]
        except (ValueError, OSError, orjson.JSONDecodeError) as exc:
            raise ValueError(f"{file}: {exc}") from None
    return rules
