"""Command-line shortcuts for fault rules: one short string, one `Rule`.

503            every request gets a 503 in the dialect's envelope
503x2          the first two requests get 503, then answers are generated
429:retry_after=2       a 429 with `Retry-After: 2`
cut_after=5    streams end cleanly after 5 frames, without [DONE]
reset_after=3  the connection breaks after 3 frames
stall_after=2  2 frames, then silence until the client gives up
keep_alives=3  three keep-alive lines before each answer
"""

from __future__ import annotations

import re

from mockserver.delivery import Delivery
from mockserver.scenario import ErrorReply, Rule

_SPEC = re.compile(r"^(?P<body>[^x:]+?)(?:x(?P<times>\d+))?(?::(?P<options>.*))?$")
_ERROR_OPTIONS = {"retry_after": float, "retry_after_ms": float, "message": str, "code": str}


def parse_fault(spec: str) -> Rule:
    found = _SPEC.match(spec.strip())
    if found is None:
        raise ValueError("expected STATUS[xN][:key=value,...] or SETTING=N[xN], e.g. 503x2")
    body, options = found["body"], found["options"] or ""
    times = int(found["times"]) if found["times"] else None
    if body.isdigit():
        status = int(body)
        if not 400 <= status <= 599:
            raise ValueError(f"{status} is not an error status (400-599)")
        extra: dict[str, object] = {}
        for item in filter(None, (part.strip() for part in options.split(","))):
            key, _, value = item.partition("=")
            if key not in _ERROR_OPTIONS:
                raise ValueError(f"unknown option {key!r}; known: {', '.join(_ERROR_OPTIONS)}")
            extra[key] = _ERROR_OPTIONS[key](value)
        return Rule(name=f"--fault {spec}", reply=ErrorReply(status=status, **extra), times=times)  # type: ignore[arg-type]
    key, _, value = body.partition("=")
    if not value.isdigit():
        raise ValueError(f"{key} needs a whole number, e.g. {key}=3")
    n = int(value)
    deliveries = {
        "cut_after": Delivery(cut_after=n),
        "reset_after": Delivery(cut_after=n, reset=True),
        "stall_after": Delivery(stall_after=n),
        "keep_alives": Delivery(keep_alives=n),
    }
    if key not in deliveries:
        raise ValueError(f"unknown fault {key!r}; known: {', '.join(deliveries)} or an HTTP status")
    return Rule(name=f"--fault {spec}", delivery=deliveries[key], times=times)
