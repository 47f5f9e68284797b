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
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

from mockserver.delivery import Delivery
from mockserver.errors import ApiError
from mockserver.scenario import ErrorReply, Rule

_SPEC = re.compile(r"^(?P<body>[^x:]+?)(?:x(?P<times>\d+))?(?::(?P<options>.*))?$")
_ERROR_OPTIONS: dict[str, Callable[[str], object]] = {
    "retry_after": float,
    "retry_after_ms": float,
    "message": str,
    "code": str,
    "plain": lambda value: value.strip().lower() in ("", "1", "true", "yes"),
}


def parse_fault(spec: str) -> Rule:
    found = _SPEC.match(spec.strip())
    if found is None:
        raise ValueError("expected STATUS[xN][:key=value,...] or SETTING=N[xN], e.g. 503x2")
    body, options = found["body"], found["options"] or ""
    times = int(found["times"]) if found["times"] else None
    if times == 0:
        raise ValueError("x0 would never answer: use x1 or more, or leave it out for every request")
    if body.isdigit():
        status = int(body)
        if not 400 <= status <= 599:
            raise ValueError(f"{status} is not an error status (400-599)")
        extra: dict[str, object] = {}
        for item in filter(None, (part.strip() for part in options.split(","))):
            key, _, value = item.partition("=")
            if key not in _ERROR_OPTIONS:
                raise ValueError(f"unknown option {key!r}; known: {', '.join(_ERROR_OPTIONS)}")
            try:
                extra[key] = _ERROR_OPTIONS[key](value)
            except ValueError:
                raise ValueError(f"{key} needs a number, e.g. {key}=2, not {value!r}") from None
        return Rule(name=f"--fault {spec}", reply=ErrorReply(status=status, **extra), times=times)  # type: ignore[arg-type]
    flags = {
        "duplicate_done": Delivery(duplicate_done=True),
        "empty_body": Delivery(body=""),
        "blank_body": Delivery(body="  \n"),
        "split_writes": Delivery(split_writes=True),
    }
    if body in flags:
        return Rule(name=f"--fault {spec}", delivery=flags[body], times=times)
    key, _, value = body.partition("=")
    counted = ("cut_after", "reset_after", "stall_after", "keep_alives", "malformed_at", "error_at")
    if key not in counted:
        raise ValueError(
            f"unknown fault {spec!r}; give an HTTP status (e.g. 503) or one of: "
            f"{', '.join(f'{name}=N' for name in counted)}, {', '.join(flags)}"
        )
    if not value.isdigit():
        raise ValueError(f"{key} needs a whole number, 0 or more, e.g. {key}=3, not {value!r}")
    n = int(value)
    deliveries = {
        "cut_after": Delivery(cut_after=n),
        "reset_after": Delivery(cut_after=n, reset=True),
        "stall_after": Delivery(stall_after=n),
        "keep_alives": Delivery(keep_alives=n),
        "malformed_at": Delivery(malformed_at=n),
        "error_at": Delivery(error_at=n),
    }
    return Rule(name=f"--fault {spec}", delivery=deliveries[key], times=times)


def broken_frames(frames: Iterable[bytes], how: Delivery, error_event: bytes) -> Iterable[bytes]:
    """The frames a faulty delivery asks for, before any timing is applied."""
    faulty = how.error_at is not None or how.malformed_at is not None or how.duplicate_done
    if how.body is None and not faulty:
        return frames  # the usual case: no generator between the frames and the wire
    return _broken(frames, how, error_event)


def _broken(frames: Iterable[bytes], how: Delivery, error_event: bytes) -> Iterator[bytes]:
    if how.body is not None:
        yield how.body.encode()
        return
    last = b""
    for i, frame in enumerate(frames):
        if i == how.error_at:
            yield error_event  # and nothing after it
            return
        if i == how.malformed_at:
            frame = _cut_mid_json(frame)
        yield frame
        last = frame
    if how.duplicate_done and last == b"data: [DONE]\n\n":
        yield last


def _cut_mid_json(frame: bytes) -> bytes:
    """The frame with its data's JSON cut half-way (after an `event:` line, if it has one: a
    cut at half the frame could fall before the JSON, and leave a `data:` with nothing)."""
    start = frame.find(b"data: ")
    start = 0 if start < 0 else start + len(b"data: ")
    end = len(frame.rstrip(b"\n"))
    return frame[: start + max((end - start) // 2, 1)] + b"\n\n"


IN_BAND_ERROR = {
    "error": {
        "message": "Internal error while generating the response",
        "type": "server_error",
        "param": None,
        "code": "internal_error",
    }
}


def error_event(dumps: Callable[[Any], bytes]) -> bytes:
    """An in-band error, OpenAI style: the openai SDK raises APIError when it reads one."""
    return b"data: " + dumps(IN_BAND_ERROR) + b"\n\n"


def check_single_frame(how: Delivery) -> None:
    """A non-streamed answer is one frame, frame 0: a fault asked for at a later frame could
    never happen, so it is refused rather than silently ignored. So is a cut or a stall after
    frame 0: the body would leave whole all the same."""
    asked = {
        "reset_after" if how.reset else "cut_after": how.cut_after,
        "stall_after": how.stall_after,
        "malformed_at": how.malformed_at,
        "error_at": how.error_at,
    }
    for name, n in asked.items():
        if n is not None and n > 0:
            raise ApiError(
                "invalid_request",
                f"{name}={n} is past the end of a non-streamed answer, which is one frame "
                f"(frame 0): use {name}=0, or ask for a stream",
            )


def broken_body(
    body: bytes,
    how: Delivery,
    dumps: Callable[[Any], bytes],
    in_band: Mapping[str, Any] = IN_BAND_ERROR,
) -> bytes:
    """Frame 0 of a non-streamed answer, broken as asked: `error_at=0` is the in-band error
    object (status 200), `malformed_at=0` the JSON cut mid-way."""
    if how.error_at == 0:
        return dumps(in_band)
    if how.malformed_at == 0:
        return body[: max(len(body) // 2, 1)]
    return body


FAULT_HEADER = "x-mock-fault"


def header_fault(headers: Mapping[str, str]) -> Rule | None:
    """`X-Mock-Fault: 503` (same words as --fault): a one-off fault for this request only."""
    spec = headers.get(FAULT_HEADER)
    if not spec:
        return None
    try:
        rule = parse_fault(spec)
    except ValueError as exc:
        raise ApiError("invalid_request", f"{FAULT_HEADER}: {exc}") from None
    if rule.times is not None:
        raise ApiError(
            "invalid_request",
            f"{FAULT_HEADER}: {spec!r}: xN counts requests, and this header is for its own "
            "request alone: leave xN out (--fault takes it, and a rule has times)",
        )
    return Rule(name=f"{FAULT_HEADER}: {spec}", reply=rule.reply, delivery=rule.delivery)


def error_words(reply: ErrorReply) -> str:
    """An error rule in the words of `--fault` (`503`, `429:retry_after=2`), for the journal."""
    options = [
        f"{name}={value:g}" if isinstance(value, float) else f"{name}={value}"
        for name in ("retry_after", "retry_after_ms", "code", "message")
        if (value := getattr(reply, name)) is not None
    ]
    if reply.plain:
        options.append("plain")
    return f"{reply.status}:{','.join(options)}" if options else str(reply.status)


def fault_words(how: Delivery) -> str | None:
    """The faults `how` asks for, in the words of `--fault` (`cut_after=3`, `error_at=2`, …),
    for the journal; None when the answer is delivered whole. Timing is not a fault."""
    if how.is_plain:
        return None
    words = []
    if how.keep_alives:
        words.append(f"keep_alives={how.keep_alives}")
    if how.cut_after is not None:
        words.append(f"{'reset' if how.reset else 'cut'}_after={how.cut_after}")
    for name in ("stall_after", "malformed_at", "error_at"):
        if (n := getattr(how, name)) is not None:
            words.append(f"{name}={n}")
    if how.duplicate_done:
        words.append("duplicate_done")
    if how.body is not None:
        words.append(
            "empty_body" if how.body == "" else "blank_body" if not how.body.strip() else "body"
        )
    if how.split_writes:
        words.append("split_writes")
    return ", ".join(words) or None
