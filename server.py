"""The ASGI app: `/graphql` (Strawberry on Starlette), `/healthz`, `/readyz`, `/metrics`.

`crm serve` (see cli.py) runs it; `uvicorn server:app` does too.
"""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.routing import Route, WebSocketRoute

import playground
from api.auth import TokenService
from api.graphql import GraphQLEndpoint, negotiate_media_type
from api.health import debug_stats, healthz, readyz
from api.limits import RequestGuard
from config import Settings
from models.database import Database
from models.lead import LeadDocument
from observability.metrics import metrics_endpoint, record_http_request
from observability.request_id import HEADER as REQUEST_ID_HEADER
from observability.request_id import RequestIdMiddleware
from services.events import hub


def create_app(settings: Settings | None = None) -> Starlette:
    settings = settings or Settings()
    database = Database(settings)
    tokens = TokenService(settings)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await database.connect()
        await hub.start(LeadDocument.get_pymongo_collection())
        if settings.dev_mode:
            token = tokens.mint(subject="dev-admin", name="Dev Admin", email="dev@localhost")
            app.state.dev_token = token  # prefilled in the GraphiQL page
            print(
                "Dev mode (no CRM_JWT_SECRET): use this admin token for 12 hours:\n"
                f"  Authorization: Bearer {token}",
                flush=True,
            )
        try:
            yield
        finally:
            await hub.stop()
            await database.close()

    # Outermost first: the request id (and its access log line) covers everything, CORS too.
    observers = [record_http_request] if settings.metrics else []
    middleware = [Middleware(RequestIdMiddleware, observers=observers)]
    if settings.cors_origins:
        middleware.append(
            Middleware(
                CORSMiddleware,
                allow_origins=settings.cors_origins,
                allow_methods=["GET", "POST"],
                allow_headers=["Authorization", "Content-Type", REQUEST_ID_HEADER],
                expose_headers=[REQUEST_ID_HEADER],
            )
        )
    # Query-string tokens and oversized bodies are refused before the endpoint sees them.
    graphql = RequestGuard(
        GraphQLEndpoint(tokens, settings.limits), settings.limits, negotiate_media_type
    )
    app = Starlette(
        routes=[
            Route("/graphql", graphql, methods=["GET", "POST"]),
            WebSocketRoute("/graphql", graphql),
            Route("/healthz", healthz),
            Route("/readyz", readyz),
            *playground.routes,
            # Unauthenticated: keep it reachable from an internal network only.
            *([Route("/metrics", metrics_endpoint)] if settings.metrics else []),
            *([Route("/debug/stats", debug_stats)] if settings.bench else []),
        ],
        middleware=middleware,
        lifespan=lifespan,
    )
    app.state.database = database
    app.state.tokens = tokens
    app.state.dev_token = None
    return app


app = create_app()
