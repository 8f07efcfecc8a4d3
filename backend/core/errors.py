"""The service's error model: services raise AppError subclasses, one handler renders them.

Every error body is ``{"type": <class name>, "detail": <human sentence>}`` so clients can
branch on ``type`` and show ``detail``.
"""

import logging
from typing import Any

from starlette.responses import JSONResponse

log = logging.getLogger("provenant.api")


class AppError(Exception):
    status_code: int = 400

    def __init__(self, detail: str, *, status_code: int | None = None, **extra: Any) -> None:
        super().__init__(detail)
        self.detail = detail
        if status_code is not None:
            self.status_code = status_code
        self.extra = extra

    @property
    def type(self) -> str:
        return type(self).__name__

    def to_body(self) -> dict[str, Any]:
        return {"type": self.type, "detail": self.detail, **self.extra}


class BadRequest(AppError):
    status_code = 400


class Unauthorized(AppError):
    status_code = 401


class Forbidden(AppError):
    status_code = 403


class NotFound(AppError):
    status_code = 404


class Conflict(AppError):
    status_code = 409


class PayloadTooLarge(AppError):
    status_code = 413


class UnsupportedMediaType(AppError):
    status_code = 415


class InvalidJSON(BadRequest):
    """A request body that is not JSON this service accepts (see backend/core/bodies.py)."""


class InvalidSignature(AppError):
    status_code = 400


class ChainUnavailable(AppError):
    """The RPC node cannot be reached or did not answer in time: worth retrying."""

    status_code = 503


class ChainRevert(AppError):
    """A contract reverted; ``error_name`` and ``args`` come from its custom error."""

    status_code = 409

    def __init__(self, error_name: str, args: dict[str, Any], *, tx_hash: str | None = None):
        rendered = ", ".join(f"{k}={v}" for k, v in args.items())
        super().__init__(f"contract reverted with {error_name}({rendered})")
        self.error_name = error_name
        self.error_args = args
        self.tx_hash = tx_hash

    def to_body(self) -> dict[str, Any]:
        return {"type": self.type, "detail": self.detail, "error": self.error_name}


class ConfigurationError(AppError):
    status_code = 500


# Error details often quote the input; a reply never echoes more than this much of it.
MAX_DETAIL_CHARS = 500


def truncate(text: str, limit: int = MAX_DETAIL_CHARS) -> str:
    """``text`` cut to ``limit`` characters, saying how much was left out."""
    if len(text) <= limit:
        return text
    return f"{text[:limit]}… ({len(text) - limit} more characters)"


def error_response(exc: AppError) -> JSONResponse:
    """The reply to a request that raised ``exc`` (the app's handler, the body guard of
    backend/core/bodies.py and the contributor's loop's fast lane, backend/tasks/fast_lane.py).
    Every string in the body is truncated: details quote input, and input can be megabytes."""
    if exc.status_code >= 500:
        log.error("%s: %s", exc.type, truncate(exc.detail))
    content = {k: truncate(v) if isinstance(v, str) else v for k, v in exc.to_body().items()}
    return JSONResponse(status_code=exc.status_code, content=content)


class ValidationError(AppError):
    """A request that does not match the endpoint's parameters or body schema."""

    status_code = 422


# Reasons of the framework's own HTTP errors (unknown route, wrong method), as error types.
_HTTP_TYPES = {
    400: "BadRequest",
    401: "Unauthorized",
    403: "Forbidden",
    404: "NotFound",
    405: "MethodNotAllowed",
    413: "PayloadTooLarge",
    415: "UnsupportedMediaType",
}
# At most this many of a request's problems are listed.
MAX_PROBLEMS = 10


def http_error_response(status_code: int, detail: Any, headers: Any = None) -> JSONResponse:
    """A Starlette/FastAPI HTTPException (404 for an unknown path, 405 for a wrong method) in
    the service's own error body."""
    kind = _HTTP_TYPES.get(status_code, "ServerError" if status_code >= 500 else "BadRequest")
    return JSONResponse(
        status_code=status_code,
        content={"type": kind, "detail": truncate(str(detail))},
        headers=headers,
    )


def validation_error(errors: Any) -> AppError:
    """FastAPI's validation errors as one AppError naming each problem (its place, then what
    is wrong); a body that is not JSON at all is an InvalidJSON (400)."""
    for err in errors:
        if err.get("type") == "json_invalid":
            reason = str(err.get("ctx", {}).get("error", "malformed JSON"))
            position = err["loc"][-1] if len(err.get("loc", ())) > 1 else "?"
            return InvalidJSON(f"invalid JSON body: {reason.lower()} at character {position}")
    problems = []
    for err in list(errors)[:MAX_PROBLEMS]:
        place = ".".join(truncate(str(p), 60) for p in err["loc"] if p != "body")
        what = truncate(str(err["msg"]), 200)
        problems.append(f"{place}: {what}" if place else what)
    more = len(errors) - MAX_PROBLEMS
    if more > 0:
        problems.append(f"and {more} more")
    return ValidationError("; ".join(problems), errors=problems)
