"""What DeepSeek documents about its Anthropic surface, per era: model names, what it ignores,
which content blocks it takes, and the texts it words differently (fixtures/anthropic/)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from typing import Any

import orjson

from mockserver.catalog import Check, Era, parse_date
from mockserver.resources import data_dir

Json = dict[str, Any]


@dataclass(frozen=True, slots=True, kw_only=True)
class Surface:
    """The Anthropic surface in one era."""

    era: Era  # the catalogue's era with this surface's texts in place of its own
    prefixes: tuple[tuple[str, str], ...]  # (name prefix, DeepSeek model), tried in order
    fallback: str | None  # the model an unmapped name gets; None: the unknown-model 400
    thinking: bool  # False: the request's `thinking` is ignored, as early docs say
    effort: bool  # output_config.effort is read
    blocks: frozenset[str]  # the optional content block types this era accepts
    texts: dict[str, Check]

    def model_for(self, name: str) -> str:
        """The DeepSeek model a requested name is served by (unchanged when nothing maps it:
        validation then answers with the era's unknown-model text)."""
        if name in self.era.models:
            return name
        for prefix, model in self.prefixes:
            if name.startswith(prefix):
                return model
        return self.fallback or name


@cache
def document() -> Json:
    data: Json = orjson.loads((data_dir("fixtures") / "anthropic" / "deepseek.json").read_bytes())
    return data


@cache
def _settings_by_date() -> tuple[tuple[datetime, Json], ...]:
    """Each entry's settings with those of the entries before it filled in, by start date."""
    merged: Json = {"map": [], "fallback": None, "thinking": "ignored", "effort": False}
    merged |= {"blocks": {}, "checks": {}}
    out = []
    for entry in document()["eras"]:
        merged = merged | {k: v for k, v in entry.items() if k not in ("blocks", "checks")}
        merged["blocks"] = merged["blocks"] | entry.get("blocks", {})
        merged["checks"] = merged["checks"] | entry.get("checks", {})
        out.append((parse_date(entry["from"]), dict(merged)))
    return tuple(out)


def _settings_for(era: Era) -> Json:
    """The settings in force when `era` starts (the first entry's before any)."""
    entries = _settings_by_date()
    found = entries[0][1]
    for start, settings in entries:
        if start <= era.start:
            found = settings
    return found


_MADE: dict[int, tuple[Era, Surface]] = {}  # by the era's identity: eras live as long as servers


def surface(era: Era) -> Surface:
    """The surface in `era` (made once per era: a request pays nothing for it)."""
    made = _MADE.get(id(era))
    if made is not None and made[0] is era:
        return made[1]
    result = _surface(era)
    _MADE[id(era)] = (era, result)
    return result


def _surface(era: Era) -> Surface:
    settings = _settings_for(era)
    checks = {
        name: Check(text["message"], int(text.get("status", 400)))
        for name, text in settings["checks"].items()
    }
    texts = {
        name: Check(text["message"], int(text.get("status", 400)))
        for name, text in document()["texts"].items()
    }
    return Surface(
        # Only rules the era applies get the surface's wording; a rule it lacks stays off.
        era=dataclasses.replace(
            era, checks={**era.checks, **{k: v for k, v in checks.items() if k in era.checks}}
        ),
        prefixes=tuple((rule["prefix"], rule["model"]) for rule in settings["map"]),
        fallback=settings["fallback"],
        thinking=settings["thinking"] == "supported",
        effort=bool(settings["effort"]),
        blocks=frozenset(name for name, on in settings["blocks"].items() if on),
        texts=texts,
    )


def model_schema(era: Era) -> Json:
    """The model names the surface answers in `era`, as JSON Schema: the era's own ids and the
    names its map takes by prefix, or any name when unmapped ones fall back to a model."""
    here = surface(era)
    if here.fallback is not None:
        return {"type": "string", "minLength": 1}
    served: list[Json] = [{"enum": sorted(era.models)}]
    for prefix, _ in here.prefixes:
        served.append({"type": "string", "pattern": "^" + _literal(prefix)})
    return {"anyOf": served}


def _literal(text: str) -> str:
    """`text` as a regular expression that matches it alone, in the dialect OpenAPI uses
    (ECMA-262), where escaping a character that needs none is an error."""
    return "".join("\\" + c if c in ".^$*+?()[]{}|\\/" else c for c in text)
