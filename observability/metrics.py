"""Prometheus metrics: HTTP requests by route, GraphQL operations and errors by name and code.

Every label is bounded: routes are the app's path templates ("other" for unknown paths),
methods a fixed set, operation names the first `MAX_OPERATION_NAMES` seen (then "other").
Metrics live in prometheus_client's process-wide default registry.
"""

import threading
import time
from collections.abc import Callable, Iterator
from functools import partial

from graphql import GraphQLError, OperationDefinitionNode
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, Counter, Histogram, generate_latest
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Scope
from strawberry.exceptions import MissingQueryError
from strawberry.extensions import SchemaExtension
from strawberry.schema.exceptions import CannotGetOperationTypeError, InvalidOperationTypeError
from strawberry.types.graphql import OperationType

from observability.request_id import annotate_request
from services.errors import ErrorCode

MAX_OPERATION_NAMES = 200
OTHER = "other"
ANONYMOUS = "anonymous"
# Raised out of the operation: no document, no such operation, or a mutation over GET.
REJECTED = (MissingQueryError, CannotGetOperationTypeError, InvalidOperationTypeError)
METHODS = frozenset({"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"})

HTTP_REQUESTS = Counter(
    "crm_http_requests_total", "HTTP requests served.", ["method", "route", "status"]
)
HTTP_DURATION = Histogram(
    "crm_http_request_duration_seconds",
    "Time to serve an HTTP request, until its response is sent.",
    ["method", "route"],
)
GRAPHQL_OPERATIONS = Counter(
    "crm_graphql_operations_total", "GraphQL operations run.", ["operation", "type"]
)
GRAPHQL_DURATION = Histogram(
    "crm_graphql_operation_duration_seconds",
    "Time to parse, validate and execute a GraphQL query or mutation.",
    ["operation", "type"],
)
GRAPHQL_ERRORS = Counter(
    "crm_graphql_errors_total",
    "Errors returned to GraphQL clients, by extensions.code.",
    ["operation", "code"],
)


class OperationNames:
    """Bounds the `operation` label: the first `limit` distinct names, then "other"."""

    def __init__(self, limit: int = MAX_OPERATION_NAMES) -> None:
        self.limit = limit
        self._seen: set[str] = set()
        self._lock = threading.Lock()

    def label(self, name: str | None) -> str:
        if not name:
            return ANONYMOUS
        with self._lock:
            if name in self._seen:
                return name
            if len(self._seen) < self.limit:
                self._seen.add(name)
                return name
        return OTHER


operation_names = OperationNames()


class GraphQLMetrics(SchemaExtension):
    """Counts and times each operation, and counts the errors its client gets, by code."""

    def __init__(self, *, error_code: Callable[[GraphQLError], str]) -> None:
        super().__init__()
        self.error_code = error_code

    def on_operation(self) -> Iterator[None]:
        started = time.perf_counter()
        raised: Exception | None = None
        try:
            yield
        except Exception as error:
            raised = error
            raise
        finally:
            self._record(time.perf_counter() - started, raised)

    def _record(self, duration: float, raised: Exception | None) -> None:
        context = self.execution_context
        name = self._operation_name()
        try:
            operation_type = context.operation_type.value
        except RuntimeError:  # the document did not parse
            operation_type = "unknown"
        annotate_request(operation=name or ANONYMOUS, operation_type=operation_type)
        label = operation_names.label(name)
        GRAPHQL_OPERATIONS.labels(label, operation_type).inc()
        if operation_type != OperationType.SUBSCRIPTION.value:  # a subscription's is its lifetime
            GRAPHQL_DURATION.labels(label, operation_type).observe(duration)
        if isinstance(raised, REJECTED):  # the HTTP view answers these itself (HTTP 400)
            GRAPHQL_ERRORS.labels(label, ErrorCode.BAD_REQUEST.value).inc()
            return
        if raised is not None:  # Strawberry turns it into the operation's one error
            errors = [GraphQLError(str(raised), original_error=raised)]
        elif context.result is not None:
            errors = context.result.errors or []
        else:
            errors = context.pre_execution_errors or []
        for error in errors:
            GRAPHQL_ERRORS.labels(label, self.error_code(error)).inc()

    def _operation_name(self) -> str | None:
        """The operation's name, if the document has an operation by that name."""
        context = self.execution_context
        name = context.operation_name
        document = context.graphql_document
        if name is None or document is None:
            return None
        for definition in document.definitions:
            if (
                isinstance(definition, OperationDefinitionNode)
                and definition.name
                and definition.name.value == name
            ):
                return name
        return None


def graphql_metrics(error_code: Callable[[GraphQLError], str]) -> Callable[[], SchemaExtension]:
    """The extension for `Schema(extensions=[...])`, with the function giving an error's code.

    (The code function comes from the schema package, which imports this module.)
    """
    return partial(GraphQLMetrics, error_code=error_code)


def route_of(scope: Scope) -> str:
    """The path template of the route that served `scope`, e.g. "/graphql", else "other"."""
    route = scope.get("route")
    if route is None and (app := scope.get("app")) is not None:
        # Requests answered before routing (a CORS preflight): match the routes ourselves.
        for candidate in getattr(app, "routes", ()):
            match, _ = candidate.matches(scope)
            if match.value:  # PARTIAL (wrong method) or FULL
                route = candidate
                break
    path = getattr(route, "path", None)
    return path if isinstance(path, str) and path else OTHER


def record_http_request(scope: Scope, status: int, seconds: float) -> None:
    """Counts and times one answered HTTP request by method, route template and status."""
    method = scope["method"] if scope["method"] in METHODS else OTHER
    route = route_of(scope)
    HTTP_REQUESTS.labels(method, route, str(status)).inc()
    HTTP_DURATION.labels(method, route).observe(seconds)


async def metrics_endpoint(request: Request) -> Response:
    """`GET /metrics`: the Prometheus text exposition format."""
    return Response(generate_latest(REGISTRY), media_type=CONTENT_TYPE_LATEST)
