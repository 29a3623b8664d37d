"""`/graphql` over HTTP and WebSocket: Strawberry's ASGI view with bearer auth, error codes,
media-type negotiation and batching (the GraphQL-over-HTTP rules), and a graphql-transport-ws
handler that applies the same rules to every operation on a socket."""

import logging
from contextlib import suppress
from datetime import timedelta
from typing import Any, cast

import orjson
from cross_web import HTTPException, StarletteRequestAdapter
from graphql import GraphQLError, GraphQLFormattedError
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send
from starlette.websockets import WebSocket
from strawberry.asgi import GraphQL
from strawberry.exceptions import ConnectionRejectionError
from strawberry.http import GraphQLHTTPResponse, GraphQLRequestProtocol
from strawberry.schema.exceptions import CannotGetOperationTypeError
from strawberry.subscriptions import GRAPHQL_TRANSPORT_WS_PROTOCOL
from strawberry.subscriptions.protocols.graphql_transport_ws.handlers import (
    BaseGraphQLTransportWSHandler,
    Operation,
)
from strawberry.subscriptions.protocols.graphql_transport_ws.types import NextMessagePayload
from strawberry.types import ExecutionResult, SubscriptionExecutionResult
from strawberry.types.execution import PreExecutionError
from strawberry.types.unset import UnsetType
from strawberry.utils.aio import aclosing

import playground
from api.auth import TokenService
from api.errors import is_request_error, public_error
from api.rate_limit import RateLimited, RateLimiter
from config import Limits
from resolvers.context import Context
from schema.root import schema
from services import api_keys
from services.errors import ErrorCode, Unauthenticated
from services.viewer import Viewer

log = logging.getLogger("crm.graphql")

GRAPHQL_RESPONSE = "application/graphql-response+json"
PREFLIGHT_HEADERS = ("apollo-require-preflight", "x-apollo-operation-name")
JSON = "application/json"


def negotiate_media_type(accept: str | None) -> str:
    """GraphQL-over-HTTP: the new media type when the client prefers it, else legacy JSON."""
    quality = {GRAPHQL_RESPONSE: -1.0, JSON: -1.0}
    for entry in (accept or "").split(","):
        media_type, *params = (part.strip() for part in entry.split(";"))
        q = 1.0
        for param in params:
            name, _, value = param.partition("=")
            if name.strip() == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        if media_type in quality:
            quality[media_type] = max(quality[media_type], q)
    if quality[GRAPHQL_RESPONSE] > 0 and quality[GRAPHQL_RESPONSE] >= quality[JSON]:
        return GRAPHQL_RESPONSE
    return JSON


# graphql-ws: "Forbidden"; its clients may then reconnect (with fresh connectionParams).
TOKEN_EXPIRED_CLOSE = 4403
BAD_REQUEST_CLOSE = 4400


def public_errors(errors: list[GraphQLError]) -> list[GraphQLFormattedError]:
    """A socket's errors, as HTTP shows them: codes, internals masked and logged."""
    return [cast("GraphQLFormattedError", public_error(error)) for error in errors]


def expiry_of(viewer: Viewer | None) -> Unauthenticated | None:
    """Unauthenticated when the caller's token has expired since it was checked (else None)."""
    try:
        if viewer is not None:
            viewer.require_unexpired()
    except Unauthenticated as error:
        return error
    return None


async def lapse_of(viewer: Viewer | None) -> Unauthenticated | None:
    """`expiry_of`, and for an API key whether it has been revoked (or has expired) since the
    socket was opened: checked before and after every operation on a socket."""
    try:
        if viewer is not None:
            await api_keys.require_active(viewer)
    except Unauthenticated as error:
        return error
    return None


class _SocketClosed(Exception):
    """An operation closed the socket instead of completing."""


class OperationHandler(BaseGraphQLTransportWSHandler[Context, None]):
    """graphql-transport-ws, with HTTP's rules applied to each operation on the socket.

    A socket also carries queries and mutations, and lives longer than its token. Strawberry
    runs every operation with the one context the connection got and formats errors itself;
    here each `subscribe` message, like an HTTP request:

    - is refused when the token has expired since `connection_init`: an UNAUTHENTICATED
      error for the operation, then the socket is closed with 4403 (so is a socket whose
      subscription just ended with UNAUTHENTICATED at an event after the expiry);
    - is refused the same way when its API key has been revoked (or has expired) since
      (`lapse_of`), and with RATE_LIMITED (the socket stays open) when its caller is over
      the rate limit: each operation takes a token, as an HTTP request does;
    - runs with a context of its own (`Context.for_operation`): same caller and limits
      (`api.limits.QueryLimits` reads them), its own loaders;
    - has its errors made public by `api.errors.public_error`: the same codes, internals
      masked and logged (with the socket's request id);
    - gets request errors (a parse error, the token limit, validation) as an `error`
      message, as HTTP answers them, rather than Strawberry's close for a syntax error.
    """

    closing = False

    async def run_operation(self, operation: Operation[Context, None]) -> None:
        """Strawberry's operation task, with a context and an expiry check per operation."""
        context = self.context.for_operation()
        try:
            limited = None
            if expired := await lapse_of(context.viewer):
                log.info("operation %r on a socket refused: %s", operation.id, expired.message)
                await self.send_errors(
                    operation, [GraphQLError(expired.message, original_error=expired)]
                )
            elif limited := self.rate_limited(context):
                await self.send_errors(
                    operation, [GraphQLError(limited.message, original_error=limited)]
                )
            else:
                result_source = await self.schema.stream(
                    operation.query,
                    variable_values=operation.variables,
                    context_value=context,
                    root_value=self.root_value,
                    operation_name=operation.operation_name,
                )
                async with aclosing(result_source):
                    await self._send_result_stream(operation, result_source)
                await operation.send_operation_message({"id": operation.id, "type": "complete"})
            if not limited and (lapsed := await lapse_of(context.viewer)):
                # Told UNAUTHENTICATED (just now, or by a subscription's last event): nothing
                # more runs on this token (or revoked key).
                await self.close(TOKEN_EXPIRED_CLOSE, lapsed.message)
        except _SocketClosed:
            return
        except Exception as error:
            await self.handle_task_exception(error)
            with suppress(Exception):
                await operation.send_operation_message({"id": operation.id, "type": "complete"})
            self.operations.pop(operation.id, None)
            raise

    def rate_limited(self, context: Context) -> RateLimited | None:
        """Each operation on a socket takes a token of its caller's bucket (api/rate_limit.py)."""
        limiter: RateLimiter | None = getattr(self.view, "rate_limiter", None)
        try:
            if limiter is not None and context.viewer is not None:
                limiter.check(context.viewer)
        except RateLimited as error:
            return error
        return None

    async def close(self, code: int, reason: str) -> None:
        """Close the socket once, however many operations find a reason to."""
        if not self.closing:
            self.closing = True
            await self.websocket.close(code=code, reason=reason)

    async def send_errors(
        self, operation: Operation[Context, None], errors: list[GraphQLError]
    ) -> None:
        """The operation's final `error` message."""
        await operation.send_operation_message(
            {"id": operation.id, "type": "error", "payload": public_errors(errors)}
        )

    async def _send_result_stream(
        self, operation: Operation[Context, None], result_source: Any
    ) -> None:
        first = True
        async for result in result_source:
            if first and isinstance(result, PreExecutionError):
                await self._handle_pre_execution_error(operation, result)
                return
            if not isinstance(result, ExecutionResult):  # incremental delivery (@defer)
                message = "Incremental delivery is not supported over graphql-transport-ws"
                await self.send_errors(operation, [GraphQLError(message)])
                return
            payload: NextMessagePayload = {"data": result.data}
            if result.errors:
                payload["errors"] = public_errors(result.errors)
            if result.extensions:
                payload["extensions"] = result.extensions
            await operation.send_operation_message(
                {"id": operation.id, "type": "next", "payload": payload}
            )
            first = False

    async def _handle_pre_execution_error(
        self, operation: Operation[Context, None], result: PreExecutionError
    ) -> None:
        assert result.errors
        original = result.errors[0].original_error
        if isinstance(original, CannotGetOperationTypeError):
            # No operation to run (or none of that name): HTTP's 400; a protocol error here.
            self.operations.pop(operation.id, None)
            await self.close(BAD_REQUEST_CLOSE, original.as_http_error_reason())
            raise _SocketClosed
        await self.send_errors(operation, result.errors)


class GraphQLEndpoint(GraphQL[Context, None]):
    """Strawberry's ASGI view, plus bearer auth, error codes and the GraphQL-over-HTTP rules."""

    graphql_transport_ws_handler_class = OperationHandler

    def __init__(
        self,
        tokens: TokenService,
        limits: Limits | None = None,
        rate_limiter: RateLimiter | None = None,
    ) -> None:
        super().__init__(
            schema,
            graphql_ide="graphiql",
            subscription_protocols=[GRAPHQL_TRANSPORT_WS_PROTOCOL],
            connection_init_wait_timeout=timedelta(seconds=10),
            # File uploads (startImport): the GraphQL multipart request spec.
            multipart_uploads_enabled=True,
        )
        self.tokens = tokens
        self.limits = limits or Limits()
        self.rate_limiter = rate_limiter or RateLimiter(0)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await super().__call__(scope, receive, send)
            return
        request = Request(scope, receive)
        try:
            response = await self.run(request)
        except Unauthenticated as error:
            response = self._error_response(request, error.message, error.code, 401)
            response.headers["WWW-Authenticate"] = "Bearer"
        except RateLimited as error:
            response = self._error_response(request, error.message, error.code, 429)
            response.headers["Retry-After"] = str(error.retry_after)
        except HTTPException as error:
            response = self._error_response(
                request, error.reason, ErrorCode.BAD_REQUEST, error.status_code
            )
        await response(scope, receive, send)

    def _error_response(
        self, request: Request, message: str, code: ErrorCode, status: int
    ) -> Response:
        body = {"errors": [{"message": message, "extensions": {"code": code.value}}]}
        media_type = negotiate_media_type(request.headers.get("accept"))
        return Response(self.encode_json(body), status_code=status, media_type=media_type)

    async def parse_multipart(self, request: Any) -> dict[str, str]:
        """A multipart request only with a preflight header (CSRF: a browser form cannot send
        one), as Apollo Server asks: `Apollo-Require-Preflight` or `X-Apollo-Operation-Name`."""
        if not any(request.headers.get(name) for name in PREFLIGHT_HEADERS):
            raise HTTPException(
                400,
                "A multipart request needs a non-empty 'Apollo-Require-Preflight' (or "
                "'X-Apollo-Operation-Name') header, so a browser form cannot send it (CSRF)",
            )
        return await super().parse_multipart(request)

    def decode_json(self, data: str | bytes) -> object:
        return orjson.loads(data)  # several times faster than json; same errors (a subclass)

    def encode_json(self, data: object) -> str:
        # Text, not bytes: WebSocket messages must go out as text frames for graphql-ws.
        return orjson.dumps(data).decode()

    async def get_context(self, request: Any, response: Any) -> Context:
        if isinstance(request, WebSocket):
            # The connection's: authenticated by on_ws_connect, copied for each operation.
            return Context(viewer=None, limits=self.limits)
        if isinstance(request, Request) and self.should_render_graphql_ide(
            StarletteRequestAdapter(request)
        ):
            return Context(viewer=None, limits=self.limits)
        viewer = await self.tokens.authenticate(request.headers.get("authorization"))
        self.rate_limiter.check(viewer)  # a batch's other operations: execute_operation
        return Context(viewer=viewer, limits=self.limits)

    async def on_ws_connect(self, context: Context) -> UnsetType:
        """A WebSocket carries its token in the connection_init payload, checked like HTTP's."""
        params = context.connection_params
        authorization = params.get("Authorization", params.get("authorization"))
        try:
            context.viewer = await self.tokens.authenticate(
                authorization if isinstance(authorization, str) else None
            )
        except Unauthenticated as error:
            raise ConnectionRejectionError({"message": error.message}) from error
        return UnsetType()  # the singleton UNSET: acknowledge without a payload

    async def render_graphql_ide(self, request: Request) -> Response:
        # Our GraphiQL page, its scripts served by us rather than a CDN (see playground/).
        dev_token: str | None = request.app.state.dev_token
        return playground.render_page(request, dev_token)

    async def get_sub_response(self, request: Any) -> Response:
        sub_response = await super().get_sub_response(request)
        sub_response.media_type = negotiate_media_type(request.headers.get("accept"))
        request.state.sub_response = sub_response
        request.state.batch = False
        return sub_response

    def _validate_batch_request(
        self, request_data: list[Any], protocol: GraphQLRequestProtocol
    ) -> None:
        """A JSON array body: at most `max_batch` operations, each an object (else HTTP 400).

        Replaces Strawberry's check, which reads the limit from the (module-level) schema.
        """
        count, limit = len(request_data), self.limits.max_batch
        if limit == 0:
            raise HTTPException(400, "Batching is disabled on this server (CRM_MAX_BATCH=0)")
        if count > limit:
            raise HTTPException(
                400, f"Batch of {count} operations exceeds the limit of {limit} (CRM_MAX_BATCH)"
            )
        if count == 0:
            raise HTTPException(400, "A batch needs at least one operation")
        if protocol != "http":
            raise HTTPException(400, "Batches are not supported over streaming transports")
        if not all(isinstance(item, dict) for item in request_data):
            raise HTTPException(400, "Each operation in a batch must be a JSON object")

    async def execute_operation(
        self,
        request: Request,
        request_adapter: Any,
        request_data: Any,
        context: Context,
        root_value: None,
        sub_response: Response,
    ) -> ExecutionResult | list[ExecutionResult] | SubscriptionExecutionResult:
        """A batch runs its operations in order, each as if sent alone (with its own loaders,
        so it sees the writes before it), all as the caller the one header authenticated."""
        if not isinstance(request_data, list):
            return await super().execute_operation(
                request, request_adapter, request_data, context, root_value, sub_response
            )
        request.state.batch = True
        if len(request_data) > 1:
            self.rate_limiter.check(context.user, cost=len(request_data) - 1)
        return [
            await self.execute_single(
                request=request,
                request_adapter=request_adapter,
                sub_response=sub_response,
                context=context.for_operation(),
                root_value=root_value,
                request_data=data,
            )
            for data in request_data
        ]

    async def process_result(
        self, request: Request, result: ExecutionResult
    ) -> GraphQLHTTPResponse:
        if not result.errors:
            return {"data": result.data}
        response: GraphQLHTTPResponse = {"errors": [public_error(e) for e in result.errors]}
        if result.data is None and all(is_request_error(e) for e in result.errors):
            # A request error has no `data`; the new media type also says so with a 400.
            # (In a batch, the other operations' results still stand: 200.)
            sub_response = request.state.sub_response
            if sub_response.media_type == GRAPHQL_RESPONSE and not request.state.batch:
                sub_response.status_code = 400
            return response
        return {"data": result.data, **response}

    def create_response(
        self,
        response_data: GraphQLHTTPResponse | list[GraphQLHTTPResponse],
        sub_response: Response,
    ) -> Response:
        response = Response(
            self.encode_json(response_data),
            status_code=sub_response.status_code or 200,
            media_type=sub_response.media_type,
        )
        response.headers.raw.extend(sub_response.headers.raw)
        return response
