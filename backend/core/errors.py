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


def error_response(exc: AppError) -> JSONResponse:
    """The reply to a request that raised ``exc`` (the app's handler, and the contributor's
    loop's fast lane, backend/tasks/fast_lane.py)."""
    if exc.status_code >= 500:
        log.error("%s: %s", exc.type, exc.detail)
    return JSONResponse(status_code=exc.status_code, content=exc.to_body())
