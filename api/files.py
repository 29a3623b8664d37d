"""File doors: `GET /export/leads.csv|.xlsx|.jsonl` and `GET /imports/<id>/errors.csv`.

Authenticated like the REST routes (bearer token or API key, the same rate limit), answered
with their error shapes (`{"detail", "code"}`, internals masked: `api.rest.error_response`).
Export query parameters: `filter` (a LeadFilter as JSON, GraphQL names), `orderBy`
(`{"field": "CREATED_AT", "direction": "DESC"}` as JSON; default newest first) and `fields`
(GraphQL names, comma-separated; default every lead field).
"""

import dataclasses
from collections.abc import AsyncGenerator, AsyncIterator
from datetime import datetime
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from api.rest import error_response, tokens
from config import ImportLimits
from models.fields import LeadStatus
from schema.common import _parse_datetime
from schema.lead import LeadFilter
from services import exports, imports
from services.errors import BadUserInput, FieldError
from services.leads import LeadOrderField
from services.pagination import Order
from services.viewer import Viewer

NEWEST_FIRST = Order(stored_field=LeadOrderField.CREATED_AT.value, descending=True)


async def _viewer(request: Request) -> Viewer:
    viewer = await tokens(request).authenticate(request.headers.get("authorization"))
    request.app.state.rate_limiter.check(viewer)
    return viewer


def _json_parameter(request: Request, name: str) -> Any:
    text = request.query_params.get(name)
    if text is None or not text.strip():
        return None
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        raise BadUserInput([FieldError(name, "must be JSON")]) from None


def _status(value: object) -> LeadStatus:
    for status in LeadStatus:
        if value in (status.name, status.value):
            return status
    raise BadUserInput([FieldError("filter.status", f"{value!r} is not a LeadStatus")])


def parse_filter(value: object) -> dict[str, object]:
    """A LeadFilter given as JSON (GraphQL names) → the services' filter values."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise BadUserInput([FieldError("filter", "must be a JSON object (a LeadFilter)")])
    by_label = {_camel(field.name): field.name for field in dataclasses.fields(LeadFilter)}
    filters: dict[str, object] = {}
    for label, given in value.items():
        name = by_label.get(label)
        if name is None:
            raise BadUserInput([FieldError(f"filter.{label}", "is not a LeadFilter field")])
        if given is None:
            continue
        if name == "status":
            if not isinstance(given, list):
                raise BadUserInput([FieldError("filter.status", "must be a list")])
            filters[name] = [_status(item) for item in given]
        elif name in ("created_after", "created_before"):
            try:
                filters[name] = _parse_datetime(given)
            except ValueError as error:
                raise BadUserInput([FieldError(f"filter.{label}", str(error))]) from None
        elif name == "converted_to_deal":
            if not isinstance(given, bool):
                raise BadUserInput([FieldError(f"filter.{label}", "must be true or false")])
            filters[name] = given
        else:
            if not isinstance(given, str):
                raise BadUserInput([FieldError(f"filter.{label}", "must be a string")])
            filters[name] = given
    return filters


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)


def parse_order(value: object) -> Order:
    if value is None:
        return NEWEST_FIRST
    if not isinstance(value, dict):
        raise BadUserInput([FieldError("orderBy", "must be a JSON object (a LeadOrder)")])
    try:
        field = LeadOrderField[str(value.get("field", "CREATED_AT"))]
    except KeyError:
        names = ", ".join(item.name for item in LeadOrderField)
        raise BadUserInput([FieldError("orderBy.field", f"must be one of {names}")]) from None
    direction = str(value.get("direction", "ASC")).upper()
    if direction not in ("ASC", "DESC"):
        raise BadUserInput([FieldError("orderBy.direction", "must be ASC or DESC")])
    return Order(stored_field=field.value, descending=direction == "DESC")


async def export_leads(request: Request) -> Response:
    file_format = request.path_params["format"]
    try:
        viewer = await _viewer(request)
        if file_format not in exports.FORMATS:
            raise BadUserInput([FieldError("format", "must be csv, xlsx or jsonl")])
        names = request.query_params.get("fields")
        fields = exports.columns(
            [name.strip() for name in names.split(",") if name.strip()] if names else None
        )
        body = await exports.export_leads(
            viewer,
            file_format,
            filters=parse_filter(_json_parameter(request, "filter")),
            order=parse_order(_json_parameter(request, "orderBy")),
            fields=fields,
        )
        first = await _first(body)
    except Exception as error:  # noqa: BLE001 - every error is answered, masked if unexpected
        return error_response(error)
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    return StreamingResponse(
        _chain(first, body),
        media_type=exports.MEDIA_TYPES[file_format],
        headers={"Content-Disposition": f'attachment; filename="leads-{stamp}.{file_format}"'},
    )


async def failed_rows(request: Request) -> Response:
    limits: ImportLimits = request.app.state.import_limits
    try:
        viewer = await _viewer(request)
        body = await imports.failed_rows_csv(viewer, request.path_params["job_id"], limits)
        first = await _first(body)
    except Exception as error:  # noqa: BLE001 - every error is answered, masked if unexpected
        return error_response(error)
    job_id = request.path_params["job_id"]
    return StreamingResponse(
        _chain(first, body),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="import-{job_id}-errors.csv"'},
    )


async def _first(body: AsyncIterator[bytes]) -> bytes:
    """The first piece, so errors before it (a bad filter, the database) get a status code."""
    return await anext(body, b"")


async def _chain(first: bytes, rest: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    try:
        yield first
        async for piece in rest:
            yield piece
    finally:
        # A client gone before the end: the body's cursor is closed now, not when collected.
        if isinstance(rest, AsyncGenerator):
            await rest.aclose()


routes = [
    Route("/export/leads.{format}", export_leads, methods=["GET"]),
    Route("/imports/{job_id}/errors.csv", failed_rows, methods=["GET"]),
]
