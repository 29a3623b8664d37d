"""What one request may ask for, checked before anything runs (README "Limits and hardening").

Two halves, one module:

## Over HTTP and WebSocket (`RequestGuard`)

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

## In the GraphQL document (`QueryLimits`)

`QueryLimits` reads the app's `config.Limits` from the request's `Context` and refuses, with
one request error (no `data`, HTTP 400 under application/graphql-response+json):

- more than `max_tokens` tokens (comments included): the parser stops there;
- a selected operation deeper than `max_query_depth`: the longest chain of nested fields,
  leaf included (`{ me { id } }` is 2), through fragments; introspection fields (`__schema`,
  `__type`, `__typename`) and everything under them are left out, since graphql-core's
  `MaxIntrospectionDepthRule` bounds those, so GraphiQL's and Apollo's introspection
  queries pass;
- more than `max_aliases` aliased fields in the selected operation, a fragment counted as
  often as it is spread (aliases are what lets one query ask for the same field many times);
- `__schema` / `__type` when introspection is off.

Each is BAD_USER_INPUT (FORBIDDEN for introspection) with a message naming the setting.
The checks are linear in the document's size: a fragment is measured once however often it
is spread, so a fragment "bomb" costs no more to check than to read.
"""

import json
import logging
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl

from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    InlineFragmentNode,
    OperationDefinitionNode,
    SelectionSetNode,
)
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from strawberry.extensions import SchemaExtension

from config import Limits
from services.errors import ErrorCode

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


def graphql_error_body(message: str) -> object:
    return {"errors": [{"message": message, "extensions": {"code": ErrorCode.BAD_REQUEST.value}}]}


class RequestGuard:
    """Pure ASGI, so it streams nothing through itself and leaves WebSockets as they are.

    `media_type` picks the response's media type from the request's `Accept` header;
    `error_body` shapes a refusal's JSON body (GraphQL's `errors` unless given: the REST
    routes answer `{"detail": …}`).
    """

    def __init__(
        self,
        app: ASGIApp,
        limits: Limits,
        media_type: Callable[[str | None], str],
        error_body: Callable[[str], object] | None = None,
        *,
        uploads: bool = False,
    ) -> None:
        self.app = app
        self.limits = limits
        self.media_type = media_type
        self.error_body = error_body or graphql_error_body
        # With `uploads`, a multipart body (a file upload) has its own, larger limit.
        self.uploads = uploads

    async def _send_error(
        self,
        send: Send,
        headers: Headers,
        status: int,
        message: str,
        extra: list[tuple[bytes, bytes]],
    ) -> None:
        body = json.dumps(self.error_body(message), separators=(",", ":")).encode()
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
        limit, setting = self.limits.max_body_bytes, "CRM_MAX_BODY_BYTES"
        content_type = headers.get("content-type", "").lower()
        if self.uploads and content_type.startswith("multipart/form-data"):
            limit, setting = self.limits.max_upload_bytes, "CRM_MAX_UPLOAD_BYTES"
        too_large = f"Request body is larger than {limit} bytes, the limit ({setting})"
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


INTROSPECTION_FIELDS = frozenset({"__schema", "__type"})
# graphql-core's parser, stopped by `max_tokens`: "Syntax Error: Document contains more than
# 2000 tokens. Parsing aborted."
TOKEN_LIMIT = re.compile(r"^Syntax Error: Document contains more than \d+ tokens\b")
INTROSPECTION_DISABLED = (
    "Introspection is disabled on this server; set CRM_INTROSPECTION=true to enable it"
)


@dataclass(frozen=True)
class Shape:
    """What the limits look at in a selection set (or a fragment, or an operation)."""

    depth: int = 0
    aliases: int = 0
    introspection: bool = False

    def beside(self, other: "Shape") -> "Shape":
        """Two sets of selections at the same level."""
        return Shape(
            depth=max(self.depth, other.depth),
            aliases=self.aliases + other.aliases,
            introspection=self.introspection or other.introspection,
        )


def _measure_selections(
    selection_set: SelectionSetNode | None, fragments: Mapping[str, Shape]
) -> Shape:
    """A selection set's shape; `fragments` holds the shapes of the fragments it spreads.

    Recursion follows the document's nesting only, which graphql-core's parser bounds (200).
    """
    shape = Shape()
    for selection in selection_set.selections if selection_set else ():
        if isinstance(selection, FieldNode):
            inner = _measure_selections(selection.selection_set, fragments)
            name = selection.name.value
            aliases = inner.aliases + (selection.alias is not None)
            if name.startswith("__"):  # introspection: not counted toward depth
                field = Shape(aliases=aliases, introspection=name in INTROSPECTION_FIELDS)
            else:
                field = Shape(1 + inner.depth, aliases, inner.introspection)
            shape = shape.beside(field)
        elif isinstance(selection, InlineFragmentNode):
            shape = shape.beside(_measure_selections(selection.selection_set, fragments))
        elif isinstance(selection, FragmentSpreadNode):
            # Unknown fragments and cycles count as nothing: validation refuses them next.
            shape = shape.beside(fragments.get(selection.name.value, Shape()))
    return shape


def _spreads(selection_set: SelectionSetNode | None) -> Iterator[str]:
    """The names of the fragments a selection set spreads, at any depth."""
    for selection in selection_set.selections if selection_set else ():
        if isinstance(selection, FragmentSpreadNode):
            yield selection.name.value
        elif isinstance(selection, FieldNode | InlineFragmentNode):
            yield from _spreads(selection.selection_set)


def _measure_fragments(document: DocumentNode) -> dict[str, Shape]:
    """Every fragment's shape, each measured once, after the fragments it spreads.

    An explicit stack rather than recursion: a chain of fragments may be as long as the
    token limit allows.
    """
    definitions = {
        definition.name.value: definition
        for definition in document.definitions
        if isinstance(definition, FragmentDefinitionNode)
    }
    shapes: dict[str, Shape] = {}
    for root in definitions:
        if root in shapes:
            continue
        stack = [(root, iter(list(_spreads(definitions[root].selection_set))))]
        entered = {root}
        while stack:
            name, spreads = stack[-1]
            for spread in spreads:
                if spread in definitions and spread not in shapes and spread not in entered:
                    entered.add(spread)
                    stack.append((spread, iter(list(_spreads(definitions[spread].selection_set)))))
                    break
            else:
                stack.pop()
                shapes[name] = _measure_selections(definitions[name].selection_set, shapes)
    return shapes


def measure(document: DocumentNode, operation_name: str | None = None) -> Shape:
    """The shape of the operation that runs (every operation when none is picked out)."""
    fragments = _measure_fragments(document)
    operations = [
        definition
        for definition in document.definitions
        if isinstance(definition, OperationDefinitionNode)
    ]
    named = [op for op in operations if op.name and op.name.value == operation_name]
    shape = Shape()
    for operation in named or operations:
        measured = _measure_selections(operation.selection_set, fragments)
        shape = Shape(
            depth=max(shape.depth, measured.depth),
            aliases=max(shape.aliases, measured.aliases),
            introspection=shape.introspection or measured.introspection,
        )
    return shape


def limit_error(message: str) -> GraphQLError:
    """A BAD_USER_INPUT request error about the query as a whole."""
    return GraphQLError(message, extensions=_bad_query(message))


def _bad_query(message: str) -> dict[str, Any]:
    return {
        "code": ErrorCode.BAD_USER_INPUT.value,
        "fieldErrors": [{"field": "query", "message": message}],
    }


def check(
    document: DocumentNode, operation_name: str | None, limits: Limits
) -> GraphQLError | None:
    """The first limit the document breaks, as its one error; None when it keeps them all."""
    shape = measure(document, operation_name)
    if shape.introspection and not limits.introspection:
        return GraphQLError(INTROSPECTION_DISABLED, extensions={"code": ErrorCode.FORBIDDEN.value})
    if shape.depth > limits.max_query_depth:
        return limit_error(
            f"Query depth {shape.depth} exceeds the limit of {limits.max_query_depth}"
            " (CRM_MAX_QUERY_DEPTH)"
        )
    if shape.aliases > limits.max_aliases:
        return limit_error(
            f"Query has {shape.aliases} aliases, more than the limit of {limits.max_aliases}"
            " (CRM_MAX_ALIASES)"
        )
    return None


def token_limit_message(limits: Limits) -> str:
    return f"Query has more than {limits.max_tokens} tokens, the limit (CRM_MAX_TOKENS)"


class QueryLimits(SchemaExtension):
    """Applies the request's `Context.limits` (defaults without one) to every operation."""

    @property
    def limits(self) -> Limits:
        limits = getattr(self.execution_context.context, "limits", None)
        return limits if isinstance(limits, Limits) else Limits()

    def on_parse(self) -> Iterator[None]:
        context = self.execution_context
        context.parse_options["max_tokens"] = self.limits.max_tokens
        yield
        # Strawberry has already put the parser's error into the result it returns, so the
        # error is reworded in place (a hook cannot replace it without raising, which would
        # end a subscription's stream instead of answering it).
        for error in context.pre_execution_errors or ():
            if TOKEN_LIMIT.match(error.message):
                error.message = token_limit_message(self.limits)
                error.extensions = _bad_query(error.message)

    def on_validate(self) -> Iterator[None]:
        context = self.execution_context
        document = context.graphql_document
        if document is not None and context.pre_execution_errors is None:
            error = check(document, context.operation_name, self.limits)
            if error is not None:
                # Set before validation runs, so Strawberry skips it: one clear error.
                context.pre_execution_errors = [error]
        yield
