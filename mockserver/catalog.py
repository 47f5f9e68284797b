"""Each provider's models and eras, read from fixtures/catalog/<dialect>.json.

Provider history is data: an era is a dated stretch in which the models, the request rules and
the error texts stayed the same, and `--era DATE` picks the one in force on that date. This
module only reads the files (schemas/catalog.schema.json says what they may hold) and resolves
them into one ready `Era` per date; the rules themselves live in `mockserver.rules`.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import Any

import orjson

from mockserver.errors import ApiError, Kind
from mockserver.resources import data_dir

Json = dict[str, Any]


@dataclass(frozen=True, slots=True, kw_only=True)
class ModelSpec:
    id: str
    family: str
    template: str  # "v3" or "v3.2": how the prompt is rendered before it is counted
    context: int  # the "maximum context length" quoted in the 400 for long prompts
    max_output: int  # the upper end of "the valid range of max_tokens is [1, N]"
    default_output: int  # max_tokens when the request leaves it out
    thinking: bool = False  # thinking on when the request does not say
    answers_as: str | None = None  # the name the response carries, when not the request's
    answers_as_non_thinking: str | None = None
    name: str = ""
    inputs: frozenset[str] = frozenset({"text"})
    efforts: tuple[str, ...] = ()
    default_effort: str | None = None
    fim: bool = False
    listed: bool = True
    owned_by: str = "deepseek"

    def response_model(self, thinking: bool) -> str:
        if not thinking and self.answers_as_non_thinking:
            return self.answers_as_non_thinking
        return self.answers_as or self.id


@dataclass(frozen=True, slots=True)
class Check:
    """One request rule's error: its text (with {placeholders}) and status."""

    message: str
    status: int = 400

    def text(self, **values: object) -> str:
        return self.message.format(**values) if values else self.message

    def error(self, **values: object) -> ApiError:
        kind: Kind = "invalid_parameters" if self.status == 422 else "invalid_request"
        return ApiError(kind, self.text(**values), status=self.status)


@dataclass(frozen=True, kw_only=True)
class Era:
    name: str
    start: datetime
    title: str
    models: Mapping[str, ModelSpec]
    roles: tuple[str, ...]
    checks: Mapping[str, Check]
    fingerprint: str | None = None
    listing: str = "basic"
    max_completion_tokens: str = "limit"  # or "ignore"
    top_p_exclusive_low: bool = False
    concurrency_message: str | None = None
    # A finish reason a rule asks for → what this provider answers instead (see the schema).
    finish_reasons: Mapping[str, str] = field(default_factory=dict)

    def check(self, name: str) -> Check | None:
        return self.checks.get(name)

    def refusal(self, rule: str, **values: object) -> ApiError | None:
        """This era's error for `rule`, or None when the era does not apply that rule."""
        check = self.checks.get(rule)
        return check.error(**values) if check is not None else None


@dataclass(frozen=True)
class Catalog:
    dialect: str
    default_model: str
    eras: tuple[Era, ...]
    starts: tuple[datetime, ...] = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "starts", tuple(era.start for era in self.eras))

    @property
    def newest(self) -> Era:
        return self.eras[-1]

    def at(self, when: datetime) -> Era:
        """The era in force at `when`; before the first era, the first one."""
        index = bisect.bisect_right(self.starts, when) - 1
        return self.eras[max(index, 0)]

    def named(self, name: str) -> Era | None:
        return next((era for era in self.eras if era.name == name), None)


_DATE = re.compile(r"^(\d{4}-\d{2}-\d{2})(?:T(\d{2}:\d{2}(?::\d{2})?)Z)?$")


def parse_date(text: str) -> datetime:
    """`2026-07-24` or `2026-07-24T15:59Z` (UTC) → an aware datetime."""
    found = _DATE.match(text.strip())
    if found is None:
        raise ValueError(f"{text!r} is not a date: use YYYY-MM-DD or YYYY-MM-DDTHH:MMZ (UTC)")
    day, time = found.groups()
    try:
        moment = datetime.fromisoformat(f"{day}T{time or '00:00'}")
    except ValueError as exc:
        raise ValueError(f"{text!r} is not a date: {exc}") from None
    return moment.replace(tzinfo=UTC)


def _models_at(entries: list[Json], families: Mapping[str, Json], when: datetime) -> dict:  # type: ignore[type-arg]
    served = [
        entry
        for entry in entries
        if parse_date(entry["from"]) <= when
        and ("until" not in entry or when < parse_date(entry["until"]))
    ]
    own = {entry["id"]: entry for entry in served if "alias_of" not in entry}
    models: dict[str, ModelSpec] = {}
    for entry in served:
        base = own.get(entry.get("alias_of", entry["id"]))
        if base is None:
            raise ValueError(
                f"model {entry['id']!r} is an alias of {entry['alias_of']!r}, "
                f"which is not served on {when:%Y-%m-%d %H:%M}"
            )
        merged = base | {k: v for k, v in entry.items() if k not in ("alias_of", "name")}
        if "alias_of" in entry:
            merged.setdefault("answers_as", base["id"])
            merged.setdefault("name", base.get("name", ""))
        models[entry["id"]] = _spec(merged, families)
    return models


def _spec(entry: Json, families: Mapping[str, Json]) -> ModelSpec:
    family = entry.get("family", "")
    if family not in families:
        raise ValueError(f"model {entry['id']!r}: unknown family {family!r}")
    limits = entry.get("max_tokens") or {}
    missing = [key for key in ("context", "max_tokens") if key not in entry]
    if missing:
        raise ValueError(f"model {entry['id']!r} lacks {', '.join(missing)}")
    return ModelSpec(
        id=entry["id"],
        family=family,
        template=families[family]["template"],
        context=int(entry["context"]),
        max_output=int(limits["max"]),
        default_output=int(limits["default"]),
        thinking=bool(entry.get("thinking", False)),
        answers_as=entry.get("answers_as"),
        answers_as_non_thinking=entry.get("answers_as_non_thinking"),
        name=entry.get("name", ""),
        inputs=frozenset(entry.get("input", ["text"])),
        efforts=tuple(entry.get("efforts", ())),
        default_effort=entry.get("default_effort"),
        fim=bool(entry.get("fim", False)),
        listed=bool(entry.get("listed", True)),
        owned_by=entry.get("owned_by", "deepseek"),
    )


_ERA_FIELDS = (
    "fingerprint",
    "listing",
    "roles",
    "max_completion_tokens",
    "top_p_exclusive_low",
    "concurrency_message",
)


def catalog_from_json(document: Json) -> Catalog:
    """Each era keeps the fields of the one before and lists what changed; its checks are
    merged into the previous era's, and a check set to null is no longer applied. A model may
    start or stop being served inside an era: the catalogue then holds one view per stretch in
    which nothing changed, each named for its era."""
    families = document["families"]
    entries = document["models"]
    fields: Json = {"listing": "basic", "max_completion_tokens": "limit"}
    checks: dict[str, Check] = {}
    finishes: dict[str, str] = {}
    starts: list[tuple[datetime, Json, dict[str, Check], dict[str, str]]] = []
    for raw in document["eras"]:
        fields = fields | {key: raw[key] for key in _ERA_FIELDS if key in raw}
        fields |= {"name": raw["name"], "title": raw["title"]}
        for name, text in (raw.get("checks") or {}).items():
            if text is None:
                checks.pop(name, None)
            else:
                checks[name] = Check(text["message"], int(text.get("status", 400)))
        for asked, answered in (raw.get("finish_reasons") or {}).items():
            if answered is None:
                finishes.pop(asked, None)
            else:
                finishes[asked] = answered["as"]
        if "roles" not in fields:
            raise ValueError(f"era {raw['name']!r}: the first era must list its roles")
        starts.append((parse_date(raw["from"]), fields, dict(checks), dict(finishes)))
    if [start for start, *_ in starts] != sorted({start for start, *_ in starts}):
        raise ValueError("eras must be listed oldest first, each with its own start")
    first = starts[0][0]
    changes = {parse_date(when) for when in _entries_changing_at(document)}
    moments = sorted({start for start, *_ in starts} | {when for when in changes if when > first})
    views = []
    for moment in moments:
        index = bisect.bisect_right([start for start, *_ in starts], moment) - 1
        _, era_fields, era_checks, era_finishes = starts[index]
        views.append(
            Era(
                name=era_fields["name"],
                start=moment,
                title=era_fields["title"],
                models=_models_at(entries, families, moment),
                roles=tuple(era_fields["roles"]),
                checks=era_checks,
                fingerprint=era_fields.get("fingerprint"),
                listing=era_fields["listing"],
                max_completion_tokens=era_fields["max_completion_tokens"],
                top_p_exclusive_low=bool(era_fields.get("top_p_exclusive_low", False)),
                concurrency_message=era_fields.get("concurrency_message"),
                finish_reasons=era_finishes,
            )
        )
    catalog = Catalog(document["dialect"], document.get("default_model", ""), tuple(views))
    if catalog.default_model and catalog.default_model not in catalog.newest.models:
        raise ValueError(f"default_model {catalog.default_model!r} is not served in the newest era")
    return catalog


def _entries_changing_at(document: Json) -> Iterable[str]:
    for entry in document["models"]:
        yield entry["from"]
        if "until" in entry:
            yield entry["until"]


def read_catalog(path: Path, *, validate: bool = True) -> tuple[Catalog, Json]:
    """A catalogue file, checked against catalog.schema.json (the packaged ones are checked
    by the test suite instead, which keeps jsonschema out of start-up)."""
    try:
        document = orjson.loads(path.read_bytes())
    except (OSError, orjson.JSONDecodeError) as exc:
        raise ValueError(f"{path}: cannot read the catalogue: {exc}") from None
    if validate:
        from mockserver.schemas import problems

        found = problems("catalog.schema.json", document)
        if found:
            raise ValueError(f"{path}: not a valid catalogue:\n  " + "\n  ".join(found))
    try:
        return catalog_from_json(document), document
    except (KeyError, ValueError) as exc:
        raise ValueError(f"{path}: {exc}") from None


@cache
def packaged(dialect: str) -> Catalog:
    return read_catalog(data_dir("fixtures") / "catalog" / f"{dialect}.json", validate=False)[0]


ERA_HEADER = "x-mock-era"


def era_moment(choice: str | None, catalogs: Iterable[Catalog]) -> datetime:
    """What `--era`, `Settings.era` and `X-Mock-Era` take: a date (YYYY-MM-DD, or with a UTC
    time), an era's name (`v3.2`, `v4`, …), or `newest`/None: the newest stretch of any
    catalogue, so that every model every catalogue lists is served."""
    catalogs = tuple(catalogs)
    if choice is None or choice.strip() in ("", "newest", "latest"):
        return max(catalog.newest.start for catalog in catalogs)
    for catalog in catalogs:
        era = catalog.named(choice.strip())
        if era is not None:
            return era.start
    try:
        return parse_date(choice)
    except ValueError:
        names = sorted({era.name for catalog in catalogs for era in catalog.eras})
        raise ValueError(
            f"unknown era {choice!r}: give a date (YYYY-MM-DD, UTC) or one of: "
            f"{', '.join(names)}, newest"
        ) from None
