"""The ASGI app: `/graphql` (Strawberry on Starlette), `/healthz`, `/readyz`.

`crm serve` (see cli.py) runs it; `uvicorn server:app` does too.
"""

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from cross_web import HTTPException, StarletteRequestAdapter
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send
from strawberry.asgi import GraphQL
from strawberry.http import GraphQLHTTPResponse
from strawberry.types import ExecutionResult

from config import Settings
from models.database import Database
from resolvers.auth import TokenService
from resolvers.context import Context
from resolvers.services.errors import ErrorCode, Unauthenticated
from schema import schema
from schema.errors import is_request_error, public_error

log = logging.getLogger("crm.server")

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

    def __init__(self, tokens: TokenService) -> None:
        super().__init__(schema, graphql_ide="graphiql")
        self.tokens = tokens

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

    async def get_context(self, request: Any, response: Any) -> Context:
        if isinstance(request, Request) and self.should_render_graphql_ide(
            StarletteRequestAdapter(request)
        ):
            return Context(viewer=None)
        return Context(viewer=self.tokens.verify(request.headers.get("authorization")))

    async def get_sub_response(self, request: Any) -> Response:
        sub_response = await super().get_sub_response(request)
        sub_response.media_type = negotiate_media_type(request.headers.get("accept"))
        request.state.sub_response = sub_response
        return sub_response

    async def process_result(
        self, request: Request, result: ExecutionResult
    ) -> GraphQLHTTPResponse:
        if not result.errors:
            return {"data": result.data}
        response: GraphQLHTTPResponse = {"errors": [public_error(e) for e in result.errors]}
        if result.data is None and all(is_request_error(e) for e in result.errors):
            # A request error has no `data`; the new media type also says so with a 400.
            sub_response = request.state.sub_response
            if sub_response.media_type == GRAPHQL_RESPONSE:
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


async def healthz(request: Request) -> Response:
    return JSONResponse({"status": "ok"})


async def readyz(request: Request) -> Response:
    database: Database = request.app.state.database
    try:
        await database.ping()
    except Exception as error:  # noqa: BLE001 - any failure means "not ready"
        log.warning("readiness check failed: %s", error)
        return JSONResponse({"status": "unavailable"}, status_code=503)
    return JSONResponse({"status": "ok"})


def create_app(settings: Settings | None = None) -> Starlette:
    settings = settings or Settings()
    database = Database(settings)
    tokens = TokenService(settings)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await database.connect()
        if settings.dev_mode:
            token = tokens.mint(subject="dev-admin", name="Dev Admin", email="dev@localhost")
            print(
                "Dev mode (no CRM_JWT_SECRET): use this admin token for 12 hours:\n"
                f"  Authorization: Bearer {token}",
                flush=True,
            )
        try:
            yield
        finally:
            await database.close()

    middleware = []
    if settings.cors_origins:
        middleware.append(
            Middleware(
                CORSMiddleware,
                allow_origins=settings.cors_origins,
                allow_methods=["GET", "POST"],
                allow_headers=["Authorization", "Content-Type"],
            )
        )
    app = Starlette(
        routes=[
            Route("/graphql", GraphQLEndpoint(tokens), methods=["GET", "POST"]),
            Route("/healthz", healthz),
            Route("/readyz", readyz),
        ],
        middleware=middleware,
        lifespan=lifespan,
    )
    app.state.database = database
    app.state.tokens = tokens
    return app


app = create_app()
