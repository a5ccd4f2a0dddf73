"""Errors that are part of the API: each has an HTTP status and a stable code clients can rely on."""

from __future__ import annotations

from typing import Any


class AppError(Exception):
    status: int = 400
    code: str = "bad_request"

    def __init__(
        self, message: str, *, code: str | None = None, status: int | None = None, details: Any = None
    ) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        if status is not None:
            self.status = status
        self.details = details


class InvalidInput(AppError):
    status = 422
    code = "invalid_input"


class Unauthenticated(AppError):
    status = 401
    code = "unauthenticated"


class Forbidden(AppError):
    status = 403
    code = "forbidden"

    #: Set by the authorization layer: what to record in the audit log once the request has rolled back.
    denial: Any = None


class NotFound(AppError):
    status = 404
    code = "not_found"


class Conflict(AppError):
    status = 409
    code = "conflict"


class ServiceUnavailable(AppError):
    status = 503
    code = "unavailable"
