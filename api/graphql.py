"""`/graphql` over HTTP and WebSocket: Strawberry's ASGI view with bearer auth, error codes,
media-type negotiation and batching (the GraphQL-over-HTTP rules)."""

import logging
from dataclasses import replace
from datetime import timedelta
from typing import Any

import orjson
from cross_web import HTTPException, StarletteRequestAdapter
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send
from starlette.websockets import WebSocket
from strawberry.asgi import GraphQL
from strawberry.exceptions import ConnectionRejectionError
from strawberry.http import GraphQLHTTPResponse, GraphQLRequestProtocol
from strawberry.subscriptions import GRAPHQL_TRANSPORT_WS_PROTOCOL
from strawberry.types import ExecutionResult, SubscriptionExecutionResult
from strawberry.types.unset import UnsetType

import playground
from api.auth import TokenService
from api.errors import is_request_error, public_error
from config import Limits
from resolvers.context import Context
from resolvers.dataloaders import Loaders
from schema.root import schema
from services.errors import ErrorCode, Unauthenticated

log = logging.getLogger("crm.graphql")

GRAPHQL_RESPONSE = "application/graphql-response+json"
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


class GraphQLEndpoint(GraphQL[Context, None]):
    """Strawberry's ASGI view, plus bearer auth, error codes and the GraphQL-over-HTTP rules."""

    def __init__(self, tokens: TokenService, limits: Limits | None = None) -> None:
        super().__init__(
            schema,
            graphql_ide="graphiql",
            subscription_protocols=[GRAPHQL_TRANSPORT_WS_PROTOCOL],
            connection_init_wait_timeout=timedelta(seconds=10),
        )
        self.tokens = tokens
        self.limits = limits or Limits()

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

    def decode_json(self, data: str | bytes) -> object:
        return orjson.loads(data)  # several times faster than json; same errors (a subclass)

    def encode_json(self, data: object) -> str:
        # Text, not bytes: WebSocket messages must go out as text frames for graphql-ws.
        return orjson.dumps(data).decode()

    async def get_context(self, request: Any, response: Any) -> Context:
        if isinstance(request, WebSocket):
            return Context(viewer=None, limits=self.limits)  # authenticated by on_ws_connect
        if isinstance(request, Request) and self.should_render_graphql_ide(
            StarletteRequestAdapter(request)
        ):
            return Context(viewer=None, limits=self.limits)
        viewer = self.tokens.verify(request.headers.get("authorization"))
        return Context(viewer=viewer, limits=self.limits)

    async def on_ws_connect(self, context: Context) -> UnsetType:
        """A WebSocket carries its token in the connection_init payload, checked like HTTP's."""
        params = context.connection_params
        authorization = params.get("Authorization", params.get("authorization"))
        try:
            context.viewer = self.tokens.verify(
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
        return [
            await self.execute_single(
                request=request,
                request_adapter=request_adapter,
                sub_response=sub_response,
                context=replace(context, loaders=Loaders()),
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
