"""The HTTP half of the request limits (README "Limits and hardening"), around `/graphql`.

`RequestGuard` wraps the GraphQL endpoint (HTTP and WebSocket) and refuses, before the
endpoint sees the request:

- a token in the query string (`?access_token=`, `?token=`, `?jwt=`, … in any case): HTTP
  400, or a refused WebSocket handshake. The token is already in access logs and browser
  history by then, so it is refused even beside a valid `Authorization` header (RFC 6750
  §2.3 and RFC 8725 discourage URL tokens; this API takes headers only);
- a body over `max_body_bytes`: HTTP 413, at once when `Content-Length` says so, else as
  soon as a streamed (chunked) body passes the limit, without reading the rest.

Both answer with a GraphQL error body (`extensions.code` BAD_REQUEST) in the media type the
client asked for.
"""

import json
import logging
from collections.abc import Callable
from urllib.parse import parse_qsl

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from config import Limits
from resolvers.services.errors import ErrorCode

log = logging.getLogger("crm.limits")

TOKEN_PARAMETERS = frozenset(
    {"access_token", "token", "jwt", "id_token", "authorization", "auth", "bearer"}
)
USE_THE_HEADER = (
    "Tokens are not accepted in the URL (query parameter {name!r}): a URL ends up in logs "
    "and browser history. Send the token in the header 'Authorization: Bearer <token>'"
)
# A WebSocket's close reason has room for 123 bytes.
USE_CONNECTION_INIT = (
    "Tokens are not accepted in the URL; send {Authorization: Bearer <token>} in connection_init"
)


class BodyTooLarge(Exception):
    """Raised from `receive` when a streamed body passes the limit."""


def token_parameter(query_string: bytes) -> str | None:
    """The first query parameter that looks like it carries a token."""
    for name, _ in parse_qsl(query_string.decode("latin-1"), keep_blank_values=True):
        if name.strip().lower() in TOKEN_PARAMETERS:
            return name
    return None


class RequestGuard:
    """Pure ASGI, so it streams nothing through itself and leaves WebSockets as they are.

    `media_type` picks the response's media type from the request's `Accept` header.
    """

    def __init__(
        self, app: ASGIApp, limits: Limits, media_type: Callable[[str | None], str]
    ) -> None:
        self.app = app
        self.limits = limits
        self.media_type = media_type

    async def _send_error(
        self,
        send: Send,
        headers: Headers,
        status: int,
        message: str,
        extra: list[tuple[bytes, bytes]],
    ) -> None:
        error = {"message": message, "extensions": {"code": ErrorCode.BAD_REQUEST.value}}
        body = json.dumps({"errors": [error]}, separators=(",", ":")).encode()
        response_headers = [
            (b"content-type", self.media_type(headers.get("accept")).encode()),
            (b"content-length", str(len(body)).encode()),
            *extra,
        ]
        start = {"type": "http.response.start", "status": status, "headers": response_headers}
        await send(start)
        await send({"type": "http.response.body", "body": body})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        if name := token_parameter(scope.get("query_string", b"")):
            if scope["type"] == "websocket":
                # Closing before accepting refuses the handshake (HTTP 403).
                await send({"type": "websocket.close", "code": 1008, "reason": USE_CONNECTION_INIT})
                return
            message = USE_THE_HEADER.format(name=name)
            challenge = b'Bearer error="invalid_request", error_description="token in URL"'
            await self._send_error(send, headers, 400, message, [(b"www-authenticate", challenge)])
            return
        if scope["type"] == "websocket":
            await self.app(scope, receive, send)
            return
        await self._http(scope, receive, send, headers)

    async def _http(self, scope: Scope, receive: Receive, send: Send, headers: Headers) -> None:
        limit = self.limits.max_body_bytes
        too_large = f"Request body is larger than {limit} bytes, the limit (CRM_MAX_BODY_BYTES)"
        # A close tells the client (and any proxy) that the rest of the body is not read.
        close = [(b"connection", b"close")]
        declared = headers.get("content-length")
        if declared is not None:
            if not declared.strip().isdigit():
                await self._send_error(send, headers, 400, "Invalid Content-Length header", close)
                return
            if int(declared) > limit:
                await self._send_error(send, headers, 413, too_large, close)
                return

        received = 0
        started = False

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise BodyTooLarge
            return message

        async def watched_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, limited_receive, watched_send)
        except BodyTooLarge:
            if started:  # the endpoint answered before reading all of the body
                log.warning("request body passed %d bytes after the response started", limit)
                return
            await self._send_error(send, headers, 413, too_large, close)
