"""The one exception the pipeline raises; each dialect renders it in its own envelope."""

from __future__ import annotations

from typing import Literal

# What went wrong, in words every dialect can map to its own status, type and code.
Kind = Literal[
    "invalid_request",  # malformed or invalid body, unknown model, out-of-range value
    "invalid_parameters",  # DeepSeek's 422 "Invalid Parameters"
    "missing_key",
    "invalid_key",
    "forbidden",
    "insufficient_balance",
    "not_found",
    "method_not_allowed",
    "too_large",
    "rate_limit",
    "server_error",
    "bad_gateway",
    "overloaded",
    "timeout",
]

STATUS: dict[Kind, int] = {
    "invalid_request": 400,
    "invalid_parameters": 422,
    "missing_key": 401,
    "invalid_key": 401,
    "forbidden": 403,
    "insufficient_balance": 402,
    "not_found": 404,
    "method_not_allowed": 405,
    "too_large": 413,
    "rate_limit": 429,
    "server_error": 500,
    "bad_gateway": 502,
    "overloaded": 503,
    "timeout": 504,
}

# A status asked for by a fault: 401 means a key that was given and refused, 400 a bad body.
KIND_OF_STATUS: dict[int, Kind] = {status: kind for kind, status in STATUS.items()} | {
    400: "invalid_request",
    401: "invalid_key",
}


class ApiError(Exception):
    """A documented API error. `status` defaults from `kind`; `code` overrides the dialect's
    own code (e.g. AceData's "token_mismatched"); `plain` asks for a text/plain body, as some
    DeepSeek 401/422 responses are."""

    def __init__(
        self,
        kind: Kind,
        message: str | None = None,
        *,
        status: int | None = None,
        code: str | None = None,
        param: str | None = None,
        plain: bool = False,
        headers: dict[str, str] | None = None,
    ) -> None:
        self.kind: Kind = kind
        self.status = status if status is not None else STATUS[kind]
        self.message = message
        self.code = code
        self.param = param
        self.plain = plain
        self.headers = dict(headers or {})
        super().__init__(f"{self.status} {kind}: {message or ''}".rstrip(": "))

    @classmethod
    def for_status(cls, status: int, message: str | None = None, **kw: object) -> ApiError:
        kind = KIND_OF_STATUS.get(status, "server_error" if status >= 500 else "invalid_request")
        return cls(kind, message, status=status, **kw)  # type: ignore[arg-type]
