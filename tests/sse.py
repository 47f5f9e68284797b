"""Reading a raw SSE body the way a strict client would, frame by frame."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Stream:
    events: list[str]  # every `data:` payload, in order, [DONE] included
    comments: list[str]  # `:` lines (keep-alives)

    @property
    def chunks(self) -> list[dict[str, Any]]:
        return [json.loads(e) for e in self.events if e != "[DONE]"]


def parse(body: bytes) -> Stream:
    text = body.decode("utf-8")
    assert "\r" not in text, "frames are separated by bare LF, as the live API sends them"
    events: list[str] = []
    comments: list[str] = []
    for block in text.split("\n\n"):
        if not block:
            continue
        lines = block.split("\n")
        assert len(lines) == 1, f"one line per event, got {lines!r}"
        line = lines[0]
        if line.startswith(":"):
            comments.append(line)
        else:
            assert line.startswith("data: "), f"not an SSE data line: {line!r}"
            events.append(line[len("data: ") :])
    assert text.endswith("\n\n"), "the body ends with a blank line"
    return Stream(events, comments)
