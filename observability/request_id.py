"""A request id for every HTTP request and WebSocket, and one access log line per request.

The id is the client's `X-Request-ID` when that is a short safe token, else a new uuid4 hex.
It is returned as the `X-Request-ID` response header and held in a context variable for the
request, so every log record made while serving it carries it (`record.request_id`), and so
do the errors that tell a client to contact support (`api.errors.public_error`).

A pure ASGI middleware (not Starlette's BaseHTTPMiddleware), so WebSockets pass through.
"""

import logging
import re
import time
import uuid
from collections.abc import Callable, Sequence
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

HEADER = "X-Request-ID"
_HEADER_KEY = HEADER.lower().encode("latin-1")
SAFE_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")

access_log = logging.getLogger("crm.access")


@dataclass
class RequestInfo:
    """What is known about the request being served."""

    request_id: str
    log_fields: dict[str, Any] = field(default_factory=dict)
    """Added to the request's access log line (e.g. the GraphQL operation name)."""


_current: ContextVar[RequestInfo | None] = ContextVar("crm_request", default=None)


def current_request_id() -> str | None:
    """The id of the request being served, or None outside a request."""
    info = _current.get()
    return info.request_id if info else None


def annotate_request(**fields: Any) -> None:
    """Add fields to the current request's access log line (nothing outside a request)."""
    if info := _current.get():
        info.log_fields.update(fields)


def request_id_from(scope: Scope) -> str:
    """The client's id when it is a short safe token (1-64 of [A-Za-z0-9._-]), else a new one."""
    for key, value in scope.get("headers", ()):
        if key == _HEADER_KEY:
            candidate: str = value.decode("latin-1")
            if SAFE_ID.fullmatch(candidate):
                return candidate
            break
    return uuid.uuid4().hex


def install_log_record_factory() -> None:
    """Make every log record carry `request_id` (None outside a request). Idempotent.

    Set when the record is made, so any handler (also pytest's caplog, or a handler that
    formats later in another thread) sees the id of the request that logged it.
    """
    previous = logging.getLogRecordFactory()
    if getattr(previous, "adds_request_id", False):
        return

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = previous(*args, **kwargs)
        record.request_id = current_request_id()
        return record

    factory.adds_request_id = True  # type: ignore[attr-defined]
    logging.setLogRecordFactory(factory)


def _with_request_id(headers: Any, request_id: str) -> list[tuple[bytes, bytes]]:
    kept = [(key, value) for key, value in headers or () if key.lower() != _HEADER_KEY]
    return [*kept, (_HEADER_KEY, request_id.encode("latin-1"))]


# Told about every answered HTTP request: its scope, status and duration in seconds.
type ResponseObserver = Callable[[Scope, int, float], None]


class RequestIdMiddleware:
    """Assigns the request id, returns it as a header, and writes the access log line;
    `observers` (the HTTP metrics) hear of each response from the same one measurement."""

    def __init__(self, app: ASGIApp, observers: Sequence[ResponseObserver] = ()) -> None:
        self.app = app
        self.observers = tuple(observers)
        install_log_record_factory()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        info = RequestInfo(request_id_from(scope))
        token = _current.set(info)
        try:
            if scope["type"] == "http":
                await self._http(scope, receive, send, info)
            else:
                await self.app(scope, receive, self._websocket_send(send, info))
        finally:
            _current.reset(token)

    async def _http(self, scope: Scope, receive: Receive, send: Send, info: RequestInfo) -> None:
        started = time.perf_counter()
        status = 500  # unless the app sends a response

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = _with_request_id(message.get("headers"), info.request_id)
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            seconds = time.perf_counter() - started
            for observe in self.observers:
                observe(scope, status, seconds)
            duration_ms = round(seconds * 1000, 2)
            method, path = scope["method"], scope["path"]
            access_log.log(
                logging.WARNING if status >= 500 else logging.INFO,
                "%s %s %s %.2fms",
                method,
                path,
                status,
                duration_ms,
                extra={
                    "method": method,
                    "path": path,
                    "status": status,
                    "duration_ms": duration_ms,
                    **info.log_fields,
                },
            )

    @staticmethod
    def _websocket_send(send: Send, info: RequestInfo) -> Send:
        async def send_with_id(message: Message) -> None:
            if message["type"] == "websocket.accept":
                message["headers"] = _with_request_id(message.get("headers"), info.request_id)
            await send(message)

        return send_with_id
