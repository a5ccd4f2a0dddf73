"""Request ids, body size limit, and the one JSON error shape for every 4xx/5xx.

Shape: ``{"error": {"code": str, "message": str, "details": any, "request_id": str}}``.
"""

from __future__ import annotations

import json
import logging
import re
import traceback
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from cctv_gov.errors import AppError
from cctv_gov.kit.context import current_request_id, request_id_var
from cctv_gov.kit.ids import accept_request_id

log = logging.getLogger("cctv_gov.http")

_HTTP_CODES = {
    400: "bad_request",
    401: "unauthenticated",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    409: "conflict",
    413: "body_too_large",
    415: "unsupported_media_type",
    422: "invalid_input",
    429: "too_many_requests",
    500: "internal_error",
    503: "unavailable",
}


def error_body(code: str, message: str, details: Any = None, request_id: str | None = None) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "details": details, "request_id": request_id}}


def error_response(status: int, code: str, message: str, details: Any = None) -> JSONResponse:
    # The X-Request-ID header itself is added by RequestContextMiddleware to every response.
    return JSONResponse(error_body(code, message, details, current_request_id()), status_code=status)


class RequestContextMiddleware:
    """Gives every request an id (the caller's ``X-Request-ID`` if it is plain, else a new one), echoes it, and
    refuses bodies larger than the limit before the route reads them (declared length or counted)."""

    def __init__(
        self, app: ASGIApp, *, max_body_bytes: int, large_bodies: tuple[str, int] | None = None
    ) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        # (path regex, limit): the footage upload route takes bodies far larger than any JSON.
        self._large = None if large_bodies is None else (re.compile(large_bodies[0]), large_bodies[1])

    def _limit(self, path: str) -> int:
        if self._large is not None and self._large[0].match(path):
            return self._large[1]
        return self.max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        rid = accept_request_id(headers.get(b"x-request-id", b"").decode("latin-1") or None)
        token = request_id_var.set(rid)
        limit = self._limit(scope.get("path", ""))
        try:
            declared = headers.get(b"content-length")
            if declared is not None and (not declared.isdigit() or int(declared) > limit):
                await _send_json(send, 413, rid, f"request body larger than {limit} bytes")
                return
            received = 0

            async def limited_receive() -> Message:
                nonlocal received
                message = await receive()
                if message["type"] == "http.request":
                    received += len(message.get("body", b""))
                    if received > limit:
                        raise BodyTooLarge(f"request body larger than {limit} bytes")
                return message

            started = False

            async def send_with_id(message: Message) -> None:
                nonlocal started
                if message["type"] == "http.response.start":
                    started = True
                    message.setdefault("headers", [])
                    message["headers"] = [*message["headers"], (b"x-request-id", rid.encode())]
                await send(message)

            try:
                await self.app(scope, limited_receive, send_with_id)
            except Exception as exc:  # noqa: BLE001 - the last line of defence: answer 500, never drop the request
                # Only the type and the stack: an exception's text can carry data (a path, a value, a key).
                log.error(
                    "unhandled %s in request %s\n%s",
                    type(exc).__name__,
                    rid,
                    "".join(traceback.format_tb(exc.__traceback__)),
                )
                if not started:
                    await _send_json(send, 500, rid, "an internal error occurred; quote the request id")
        finally:
            request_id_var.reset(token)


class BodyTooLarge(Exception):
    """Raised from ``receive`` once a streamed body passes the limit; answered with 413."""


async def _send_json(send: Send, status: int, rid: str, message: str) -> None:
    body = json.dumps(error_body(_HTTP_CODES[status], message, None, rid)).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"x-request-id", rid.encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(AppError)
    async def _app_error(_request: Request, exc: AppError) -> JSONResponse:
        return error_response(exc.status, exc.code, exc.message, exc.details)

    @app.exception_handler(RequestValidationError)
    async def _validation(_request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = exc.errors()
        if any(e.get("type") == "json_invalid" for e in errors):
            return error_response(400, "malformed_json", "the request body is not valid JSON")
        details = [
            {"loc": list(e.get("loc", ())), "type": e.get("type"), "message": e.get("msg")} for e in errors
        ]
        if any(e.get("type") == "extra_forbidden" for e in errors):
            return error_response(
                422, "unknown_field", "the request has fields this endpoint does not take", details
            )
        return error_response(422, "invalid_input", "the request does not match the expected shape", details)

    @app.exception_handler(BodyTooLarge)
    async def _too_large(_request: Request, exc: BodyTooLarge) -> JSONResponse:
        return error_response(413, "body_too_large", str(exc))

    @app.exception_handler(StarletteHTTPException)
    async def _http(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
        if isinstance(exc.__cause__, BodyTooLarge):  # FastAPI wraps errors raised while it parses the body
            return error_response(413, "body_too_large", str(exc.__cause__))
        code = _HTTP_CODES.get(exc.status_code, "http_error")
        return error_response(exc.status_code, code, str(exc.detail))


_PLAYBACK_LINK = re.compile(r"/v1/playback/[^\s?\"]+")


class RedactLinks(logging.Filter):
    """Access logs must not carry playback links: each is a credential while it lives."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(
                _PLAYBACK_LINK.sub("/v1/playback/<redacted>", a) if isinstance(a, str) else a
                for a in record.args
            )
        return True
