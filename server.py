"""The ASGI app: `/graphql` (Strawberry on Starlette), `/healthz`, `/readyz`, `/metrics`.

`crm serve` (see cli.py) runs it; so does `python server.py` (the same code path), and
`uvicorn server:app` serves the module-level app.
"""

import logging
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.routing import Mount, Route, WebSocketRoute

import playground
from api import files
from api.auth import TokenService
from api.graphql import GraphQLEndpoint, negotiate_media_type
from api.health import debug_stats, healthz, readyz
from api.limits import RequestGuard
from api.rate_limit import RateLimiter
from api.rest import PREFIX as REST_PREFIX
from api.rest import rest_app, routing_error
from config import Settings
from models.database import Database
from models.lead import LeadDocument
from observability.metrics import metrics_endpoint, record_http_request
from observability.request_id import HEADER as REQUEST_ID_HEADER
from observability.request_id import RequestIdMiddleware
from services.events import hub
from services.imports import ImportRunner
from services.migration import migrate

log = logging.getLogger("crm.server")


def create_app(settings: Settings | None = None) -> Starlette:
    settings = settings or Settings()
    database = Database(settings)
    tokens = TokenService(settings)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await database.connect()
        await migrate()  # backfills what this server adds to existing (seed) documents
        if (await database.capabilities()).change_streams:
            await hub.start(LeadDocument.get_pymongo_collection())
        else:
            log.info("no change streams: live events reach this instance only")
        # Import jobs: runs queued ones and resumes those a stopped server left (README).
        imports = ImportRunner(settings.import_limits)
        imports.start()
        app.state.imports = imports
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
            await imports.stop()
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
                allow_methods=["GET", "POST", "PUT", "DELETE"],  # PUT, DELETE: REST
                allow_headers=["Authorization", "Content-Type", REQUEST_ID_HEADER],
                expose_headers=[REQUEST_ID_HEADER],
            )
        )
    # Query-string tokens and oversized bodies are refused before the endpoint sees them.
    # One bucket per principal, shared by every door (api/rate_limit.py).
    rate_limiter = RateLimiter(settings.rate_limit_per_minute)
    graphql = RequestGuard(
        GraphQLEndpoint(tokens, settings.limits, rate_limiter),
        settings.limits,
        negotiate_media_type,
        uploads=True,  # startImport's multipart bodies: CRM_MAX_UPLOAD_BYTES
    )
    app = Starlette(
        routes=[
            Route("/graphql", graphql, methods=["GET", "POST"]),
            WebSocketRoute("/graphql", graphql),
            # The seed's REST routes, over the same services (and the same limits).
            Mount(REST_PREFIX, rest_app(settings.limits)),
            # Export and import files (REST-style errors; the same auth as REST).
            *files.routes,
            Route("/healthz", healthz),
            Route("/readyz", readyz),
            *playground.routes,
            # Unauthenticated: keep it reachable from an internal network only.
            *([Route("/metrics", metrics_endpoint)] if settings.metrics else []),
            *([Route("/debug/stats", debug_stats)] if settings.bench else []),
        ],
        middleware=middleware,
        # Unknown paths and methods answer in JSON, like every other error here.
        exception_handlers={404: routing_error, 405: routing_error},
        lifespan=lifespan,
    )
    app.state.database = database
    app.state.tokens = tokens
    app.state.import_limits = settings.import_limits
    app.state.rate_limiter = rate_limiter
    app.state.dev_token = None
    return app


if __name__ == "__main__":
    # `python server.py [--help]` is `crm serve`: the same start-up checks, logging, uvicorn.
    from cli import main

    main(["serve", *sys.argv[1:]])
else:
    app = create_app()
