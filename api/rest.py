"""The seed's REST API (docs/seed.md), under `/api/crm`.

The 16 routes of that list keep the seed's paths, methods, JSON field names and status codes, so the
seed's frontend (`crmService.ts`) works unchanged; they call the same services as the
GraphQL resolvers, so every rule (validation, timeline, conversion, cascade delete) is the
same on both doors. Shapes are pydantic models derived from the documents' fields (stored
names as aliases); `/api/crm/openapi.json` (OpenAPI 3.1) is built from the same table.

Errors are FastAPI's shapes: `{"detail": "…", "code": "NOT_FOUND"}`, and for invalid input
`{"detail": [{"loc": ["body", "email"], "msg": "…", "type": "value_error"}]}` with 422.
Domain errors map to status codes in one place (`STATUS_BY_CODE`).
"""

import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Annotated, Any

import orjson
from bson import Decimal128, ObjectId
from pydantic import BaseModel, ConfigDict, Field, ValidationError, create_model
from pydantic.json_schema import models_json_schema
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route, Router

from api.auth import TokenService
from api.errors import DATABASE_DOWN
from api.limits import RequestGuard
from api.rate_limit import RateLimited
from config import Limits
from models.base import CrmDocument
from models.call import CallDocument
from models.deal import DealDocument
from models.email import EmailDocument
from models.fields import LeadStatus, specs
from models.lead import NORMALIZED_KEYS, LeadDocument
from models.note import NoteDocument
from models.task import TaskDocument
from observability.request_id import current_request_id
from services import leads, policy
from services.calls import log_call
from services.children import children_of
from services.conversion import convert_lead
from services.deletion import delete_lead
from services.emails import send_email
from services.errors import (
    BadUserInput,
    DomainError,
    ErrorCode,
    FieldError,
    ServiceUnavailable,
)
from services.leads import LeadOrderField
from services.notes import create_note
from services.pagination import MAX_PAGE_SIZE, Order, encode_cursor
from services.policy import Action
from services.tasks import create_task, update_task
from services.validation import object_id
from services.viewer import Viewer

log = logging.getLogger("crm.rest")

PREFIX = "/api/crm"
JSON = "application/json"

# One place: a domain error's code → the HTTP status the seed's API used for it.
STATUS_BY_CODE: dict[ErrorCode, int] = {
    ErrorCode.UNAUTHENTICATED: 401,
    ErrorCode.FORBIDDEN: 403,
    ErrorCode.NOT_FOUND: 404,
    ErrorCode.BAD_USER_INPUT: 422,
    # FastAPI apps answer "already converted" and the like with 400 (docs/seed.md lists no 409).
    ErrorCode.CONFLICT: 400,
    ErrorCode.RATE_LIMITED: 429,
    ErrorCode.BAD_REQUEST: 400,
    ErrorCode.SERVICE_UNAVAILABLE: 503,
    ErrorCode.UNREADABLE_DOCUMENT: 500,
    ErrorCode.INTERNAL_SERVER_ERROR: 500,
}
PATH_FIELDS = ("lead_id", "task_id")
NEWEST_FIRST = Order(stored_field=LeadOrderField.CREATED_AT.value, descending=True)


# --- shapes ---------------------------------------------------------------------------------

INPUT_CONFIG = ConfigDict(extra="ignore", populate_by_name=False)
OUTPUT_CONFIG = ConfigDict(extra="allow", populate_by_name=False)


def _field_type(document: type[CrmDocument], name: str) -> Any:
    info = document.model_fields[name]
    return Annotated[info.annotation, *info.metadata] if info.metadata else info.annotation


def _stored_name(document: type[CrmDocument], name: str) -> str:
    return document.model_fields[name].alias or name


def input_model(
    title: str,
    document: type[CrmDocument],
    names: tuple[str, ...],
    *,
    required: tuple[str, ...] = (),
    overrides: Mapping[str, Any] | None = None,
) -> type[BaseModel]:
    """A request body: `document`'s fields `names` under their stored names, all optional
    but `required`; fields the request has that it does not know are ignored (FastAPI's way).
    The values' rules (lengths, formats) are the services' own, reported as 422."""
    fields: dict[str, Any] = {}
    for name in names:
        kind = (overrides or {}).get(name, _field_type(document, name))
        alias = _stored_name(document, name)
        if name in required:
            fields[name] = (kind, Field(alias=alias))
        else:
            fields[name] = (kind | None, Field(default=None, alias=alias))
    model: type[BaseModel] = create_model(title, __config__=INPUT_CONFIG, **fields)
    return model


def output_model(
    title: str, document: type[CrmDocument], *, without: tuple[str, ...] = (), **extra: Any
) -> type[BaseModel]:
    """A stored document as the seed served it: `id` (the ObjectId as text) and its fields
    under their stored names (fields this server does not know are served too)."""
    fields: dict[str, Any] = {"id": (str, Field(description="The document's ObjectId, as hex"))}
    for name in document.model_fields:
        if name in ("id", "revision_id", *without):
            continue
        alias = _stored_name(document, name)
        description = document.model_fields[name].description
        fields[name] = (_field_type(document, name), Field(alias=alias, description=description))
    fields.update(extra)
    model: type[BaseModel] = create_model(title, __config__=OUTPUT_CONFIG, **fields)
    return model


# What a client may set on a lead: the catalog's writable fields (models/fields.py).
LEAD_INPUT = tuple(specs(LeadDocument, writable=True))
LeadIn = input_model("Lead", LeadDocument, LEAD_INPUT, required=("first_name",))
LeadUpdate = input_model("LeadUpdate", LeadDocument, LEAD_INPUT)
StatusIn = input_model("StatusUpdate", LeadDocument, ("status",))
EmailIn = input_model(
    "Email", EmailDocument, ("to", "cc", "bcc", "subject", "body"), required=("subject", "body")
)
CallIn = input_model(
    "Call",
    CallDocument,
    ("type", "duration", "to", "phone", "timestamp", "status"),
    required=("duration",),
)
TASK_FIELDS = ("title", "description", "status", "assigned_to", "due_date", "priority")
TaskIn = input_model("Task", TaskDocument, TASK_FIELDS, required=("title",))
TaskUpdate = input_model("TaskUpdate", TaskDocument, TASK_FIELDS)
NoteIn = input_model("Note", NoteDocument, ("title", "content"), required=("content",))
# Ids of an existing organization / contact arrive as text (24 hex digits).
ConvertIn = input_model(
    "ConvertToDeal",
    DealDocument,
    ("organization_id", "contact_id", "deal_owner"),
    overrides={"organization_id": str, "contact_id": str},
)

LeadOut = output_model(
    "LeadDetail",
    LeadDocument,
    without=NORMALIZED_KEYS,
    activitiesCount=(int, Field(description="Timeline length")),
)
LeadListItem = output_model(
    "LeadListItem",
    LeadDocument,
    without=(*NORMALIZED_KEYS, "activities"),
    activitiesCount=(int, Field(description="Timeline length")),
)
EmailOut = output_model("EmailOut", EmailDocument)
CallOut = output_model("CallOut", CallDocument)
TaskOut = output_model("TaskOut", TaskDocument)
NoteOut = output_model("NoteOut", NoteDocument)


class Message(BaseModel):
    """What a write answers (the seed's `{"message", "lead_id", "id"}`)."""

    message: str
    lead_id: str
    id: str | None = Field(default=None, description="ObjectId of the document written")


class StatusMessage(Message):
    status: LeadStatus


class DeletedCounts(BaseModel):
    emails: int
    calls: int
    tasks: int
    notes: int


class DeleteMessage(Message):
    deleted: DeletedCounts


class ConvertMessage(Message):
    deal_id: str
    organization_id: str | None = Field(alias="organizationId")
    contact_id: str | None = Field(alias="contactId")


class ErrorDetail(BaseModel):
    loc: list[str | int]
    msg: str
    type: str


class ErrorBody(BaseModel):
    detail: str | list[ErrorDetail]
    code: str | None = None
    request_id: str | None = Field(default=None, alias="requestId")


# --- serving --------------------------------------------------------------------------------


def _json_default(value: object) -> object:
    if isinstance(value, ObjectId | Decimal128):
        return str(value)
    if isinstance(value, bytes):
        return value.hex()
    raise TypeError


def json_response(content: object, status: int = 200, **headers: str) -> Response:
    body = orjson.dumps(content, default=_json_default, option=orjson.OPT_UTC_Z)
    return Response(body, status_code=status, media_type=JSON, headers=headers or None)


def served(document: CrmDocument, *, without: tuple[str, ...] = ()) -> dict[str, Any]:
    """A document with the seed's field names and `id`; unknown stored fields included."""
    shown: dict[str, Any] = document.model_dump(
        by_alias=True, exclude={"id", "revision_id", *without}
    )
    return {"id": str(document.id), **shown}


def served_lead(lead: LeadDocument, *, timeline: bool) -> dict[str, Any]:
    hidden = NORMALIZED_KEYS if timeline else (*NORMALIZED_KEYS, "activities")
    shown = served(lead, without=hidden)
    shown["activitiesCount"] = lead.activities_count
    return shown


def error_response(error: Exception) -> Response:
    if isinstance(error, DATABASE_DOWN):
        log.warning("database unavailable: %s", error)
        error = ServiceUnavailable("The database is unavailable; retry shortly")
    if isinstance(error, BadUserInput):
        detail = [
            {
                "loc": ["path" if problem.field in PATH_FIELDS else "body", problem.field],
                "msg": problem.message,
                "type": "value_error",
            }
            for problem in error.field_errors
        ]
        return json_response({"detail": detail, "code": error.code.value}, 422)
    if isinstance(error, DomainError):
        status = STATUS_BY_CODE.get(error.code, 500)
        body: dict[str, Any] = {"detail": error.message, "code": error.code.value}
        headers = {"WWW-Authenticate": "Bearer"} if status == 401 else {}
        if isinstance(error, RateLimited):
            headers["Retry-After"] = str(error.retry_after)
        if status >= 500:  # (an unreadable document was logged where it was read)
            body["requestId"] = current_request_id()
        return json_response(body, status, **headers)
    log.error("unexpected error in a REST request", exc_info=error)
    body = {
        "detail": "Internal server error",
        "code": ErrorCode.INTERNAL_SERVER_ERROR.value,
        "requestId": current_request_id(),
    }
    return json_response(body, 500)


def bad_input(field: str, message: str) -> BadUserInput:
    return BadUserInput([FieldError(field, message)])


def _invalid(loc: list[str | int], message: str, kind: str) -> Response:
    detail = [{"loc": loc, "msg": message, "type": kind}]
    return json_response({"detail": detail, "code": ErrorCode.BAD_USER_INPUT.value}, 422)


@dataclass(frozen=True)
class Call:
    """One REST request, authenticated and parsed."""

    viewer: Viewer
    path: Mapping[str, str]
    query: Mapping[str, str]
    body: BaseModel | None

    def values(self) -> dict[str, object]:
        """The body's fields the client gave (Python names; explicit nulls kept)."""
        return {} if self.body is None else self.body.model_dump(exclude_unset=True)


Handler = Callable[[Call], Awaitable[object]]


@dataclass(frozen=True)
class Endpoint:
    method: str
    path: str
    summary: str
    handler: Handler
    response: type[BaseModel]
    body: type[BaseModel] | None = None
    many: bool = False
    """The answer is a JSON array of `response`."""
    query: tuple[tuple[str, str], ...] = ()
    """Query parameters: (name, description)."""
    errors: tuple[int, ...] = (401, 403, 404, 422)

    @property
    def operation_id(self) -> str:
        return self.handler.__name__.strip("_")

    async def serve(self, request: Request) -> Response:
        """Authenticate, parse the body, run the handler, answer JSON (or the error)."""
        try:
            viewer = await tokens(request).authenticate(request.headers.get("authorization"))
            request.app.state.rate_limiter.check(viewer)
            # Every route reads leads; the services check the rest (and the record scope).
            policy.require(viewer, Action.READ)
            body = None
            if self.body is not None:
                raw = await request.body()
                try:
                    data = orjson.loads(raw) if raw.strip() else {}
                except orjson.JSONDecodeError:
                    return _invalid(["body"], "JSON decode error", "json_invalid")
                if not isinstance(data, dict):
                    return _invalid(["body"], "Input should be a JSON object", "model_type")
                try:
                    body = self.body.model_validate(data)
                except ValidationError as error:
                    detail = [
                        {
                            "loc": ["body", *problem["loc"]],
                            "msg": problem["msg"],
                            "type": problem["type"],
                        }
                        for problem in error.errors(include_url=False, include_input=False)
                    ]
                    return json_response({"detail": detail, "code": "BAD_USER_INPUT"}, 422)
            call = Call(viewer, request.path_params, request.query_params, body)
            return json_response(await self.handler(call))
        except Exception as error:  # noqa: BLE001 - every error is answered, masked if unexpected
            return error_response(error)


def tokens(request: Request) -> TokenService:
    service: TokenService = request.app.state.tokens
    return service


# --- the seed's endpoints -------------------------------------------------------------------


async def list_all_leads(call: Call) -> list[dict[str, Any]]:
    """Every lead, newest first, without timelines (`activitiesCount` instead)."""
    found: list[dict[str, Any]] = []
    after: str | None = None
    while True:
        page = await leads.list_leads(
            call.viewer,
            first=MAX_PAGE_SIZE,
            after=after,
            filters={},
            order=NEWEST_FIRST,
            with_timeline=False,
        )
        found.extend(served_lead(lead, timeline=False) for lead in page.documents)
        if not page.has_next_page or not page.documents:
            return found
        after = encode_cursor(page.documents[-1], NEWEST_FIRST)


async def get_lead(call: Call) -> dict[str, Any]:
    return served_lead(await leads.get_lead(call.viewer, call.path["lead_id"]), timeline=True)


async def create_lead(call: Call) -> dict[str, Any]:
    lead = await leads.create_lead(call.viewer, call.values())
    return {"message": "Lead created successfully", "lead_id": lead.lead_id, "id": str(lead.id)}


async def update_lead(call: Call) -> dict[str, Any]:
    lead = await leads.update_lead(call.viewer, call.path["lead_id"], call.values())
    return {"message": "Lead updated successfully", "lead_id": lead.lead_id, "id": str(lead.id)}


async def update_lead_status(call: Call) -> dict[str, Any]:
    # The status in the body (`{"status": "Contacted"}`) or, FastAPI-style, as `?status=`.
    status = call.values().get("status")
    if status is None and "status" in call.query:
        try:
            status = LeadStatus(call.query["status"])
        except ValueError:
            labels = ", ".join(repr(s.value) for s in LeadStatus)
            raise bad_input("status", f"must be one of {labels}") from None
    if not isinstance(status, LeadStatus):
        raise bad_input("status", "is required (in the body or as ?status=)")
    lead = await leads.update_lead_status(call.viewer, call.path["lead_id"], status)
    return {
        "message": "Lead status updated successfully",
        "lead_id": lead.lead_id,
        "id": str(lead.id),
        "status": lead.status.value,
    }


async def delete_lead_and_related(call: Call) -> dict[str, Any]:
    deleted = await delete_lead(call.viewer, call.path["lead_id"])
    return {
        "message": "Lead and related data deleted successfully",
        "lead_id": deleted.lead_id,
        "deleted": {
            "emails": deleted.deleted_emails,
            "calls": deleted.deleted_calls,
            "tasks": deleted.deleted_tasks,
            "notes": deleted.deleted_notes,
        },
    }


def children_endpoint(document: type[CrmDocument], newest_first_by: str, kind: str) -> Handler:
    async def handler(call: Call) -> list[dict[str, Any]]:
        lead = await leads.get_lead(call.viewer, call.path["lead_id"])  # 404: none, or not theirs
        found = await children_of(document, [lead.lead_id], newest_first_by)
        return [served(child) for child in found.get(lead.lead_id, [])]

    handler.__name__ = f"get_lead_{kind}"
    return handler


def added(message: str, child: CrmDocument, lead: LeadDocument) -> dict[str, Any]:
    return {"message": message, "lead_id": lead.lead_id, "id": str(child.id)}


type AddChild = Callable[
    [Viewer, str, Mapping[str, object]], Awaitable[tuple[CrmDocument, LeadDocument]]
]


def add_child(service: AddChild, message: str) -> Handler:
    """`POST /leads/{lead_id}/<kind>`: the service adds the email, call, task or note."""

    async def handler(call: Call) -> dict[str, Any]:
        child, lead = await service(call.viewer, call.path["lead_id"], call.values())
        return added(message, child, lead)

    return handler


async def update_lead_task(call: Call) -> dict[str, Any]:
    object_id(call.path["task_id"], field="task_id")  # a malformed id is the path's fault
    task, lead = await update_task(call.viewer, call.path["task_id"], call.values())
    return added("Task updated successfully", task, lead)


async def convert_to_deal(call: Call) -> dict[str, Any]:
    lead, deal = await convert_lead(call.viewer, call.path["lead_id"], call.values())
    return {
        "message": "Lead converted to deal successfully",
        "lead_id": lead.lead_id,
        "id": str(deal.id),
        "deal_id": deal.deal_id,
        "organizationId": None if deal.organization_id is None else str(deal.organization_id),
        "contactId": None if deal.contact_id is None else str(deal.contact_id),
    }


LEAD = "/leads/{lead_id}"


def child_list(
    name: str, document: type[CrmDocument], newest_first_by: str, shape: type[BaseModel]
) -> Endpoint:
    """`GET /leads/{lead_id}/<name>`: the seed's "Get all <name> for a lead"."""
    return Endpoint(
        "GET",
        f"{LEAD}/{name}",
        f"Get all {name} for a lead",
        children_endpoint(document, newest_first_by, name),
        shape,
        many=True,
        errors=(401, 403, 404),
    )


ENDPOINTS: tuple[Endpoint, ...] = (
    Endpoint(
        "GET", "/leads", "Get all leads", list_all_leads, LeadListItem, many=True, errors=(401, 403)
    ),
    Endpoint("GET", LEAD, "Get specific lead", get_lead, LeadOut, errors=(401, 403, 404)),
    Endpoint(
        "POST", "/leads", "Create new lead", create_lead, Message, LeadIn, errors=(401, 403, 422)
    ),
    Endpoint("PUT", LEAD, "Update lead", update_lead, Message, LeadUpdate),
    Endpoint(
        "PUT",
        f"{LEAD}/status",
        "Update lead status",
        update_lead_status,
        StatusMessage,
        StatusIn,
        query=(("status", "The new status, when the body has none (FastAPI-style)"),),
    ),
    Endpoint(
        "DELETE",
        LEAD,
        "Delete lead and related data",
        delete_lead_and_related,
        DeleteMessage,
        errors=(401, 403, 404),
    ),
    child_list("emails", EmailDocument, "timestamp", EmailOut),
    Endpoint(
        "POST",
        f"{LEAD}/emails",
        "Send email to lead",
        add_child(send_email, "Email sent successfully"),
        Message,
        EmailIn,
    ),
    child_list("calls", CallDocument, "timestamp", CallOut),
    Endpoint(
        "POST",
        f"{LEAD}/calls",
        "Log a call with lead",
        add_child(log_call, "Call logged successfully"),
        Message,
        CallIn,
    ),
    child_list("tasks", TaskDocument, "createdAt", TaskOut),
    Endpoint(
        "POST",
        f"{LEAD}/tasks",
        "Create task for lead",
        add_child(create_task, "Task created successfully"),
        Message,
        TaskIn,
    ),
    Endpoint(
        "PUT",
        "/tasks/{task_id}",
        "Update task",
        update_lead_task,
        Message,
        TaskUpdate,
        errors=(400, 401, 403, 404, 422),
    ),
    child_list("notes", NoteDocument, "createdAt", NoteOut),
    Endpoint(
        "POST",
        f"{LEAD}/notes",
        "Create note for lead",
        add_child(create_note, "Note created successfully"),
        Message,
        NoteIn,
    ),
    Endpoint(
        "POST",
        f"{LEAD}/convert-to-deal",
        "Convert lead to deal",
        convert_to_deal,
        ConvertMessage,
        ConvertIn,
        errors=(400, 401, 403, 404, 422),
    ),
)


# --- OpenAPI 3.1 ----------------------------------------------------------------------------

ERROR_MEANINGS = {
    400: "Token in the URL, or a conflict (already converted; busy record: retry)",
    401: "Missing, invalid or expired bearer token (or API key)",
    403: "The caller's role may not do this (README: Teams)",
    404: "No such lead or task, or not in the caller's scope",
    413: "Body larger than CRM_MAX_BODY_BYTES",
    422: "Invalid input: every bad field in `detail`",
    500: "A stored document this server cannot read, or an unexpected error (see requestId)",
    429: "Over the rate limit (CRM_RATE_LIMIT_PER_MINUTE): retry after `Retry-After` seconds",
    503: "The database is unavailable; retry shortly",
}
ALWAYS = (400, 413, 429, 500, 503)


def openapi_document() -> dict[str, Any]:
    """The routes above as OpenAPI 3.1, their shapes from the same pydantic models."""
    bodies = {endpoint.body for endpoint in ENDPOINTS if endpoint.body is not None}
    answers = {ErrorBody} | {endpoint.response for endpoint in ENDPOINTS}
    _, definitions = models_json_schema(
        [(model, "validation") for model in bodies]
        + [(model, "serialization") for model in answers],
        ref_template="#/components/schemas/{model}",
    )
    schemas = definitions.get("$defs", {})

    def ref(model: type[BaseModel]) -> dict[str, Any]:
        return {"$ref": f"#/components/schemas/{model.__name__}"}

    def json_content(schema: dict[str, Any]) -> dict[str, Any]:
        return {"content": {JSON: {"schema": schema}}}

    paths: dict[str, dict[str, Any]] = {}
    for endpoint in ENDPOINTS:
        answer = ref(endpoint.response)
        schema = {"type": "array", "items": answer} if endpoint.many else answer
        parameters: list[dict[str, Any]] = [
            {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
            for name in ("lead_id", "task_id")
            if "{" + name + "}" in endpoint.path
        ]
        parameters += [
            {
                "name": name,
                "in": "query",
                "required": False,
                "description": text,
                "schema": {"type": "string", "enum": [s.value for s in LeadStatus]},
            }
            for name, text in endpoint.query
        ]
        operation: dict[str, Any] = {
            "operationId": endpoint.operation_id,
            "summary": endpoint.summary,
            "parameters": parameters,
            "responses": {
                "200": {"description": "OK", **json_content(schema)},
                **{
                    str(status): {
                        "description": ERROR_MEANINGS[status],
                        **json_content(ref(ErrorBody)),
                    }
                    for status in sorted({*endpoint.errors, *ALWAYS})
                },
            },
        }
        if endpoint.body is not None:
            operation["requestBody"] = {
                "required": endpoint.body is not StatusIn,
                **json_content(ref(endpoint.body)),
            }
        paths.setdefault(PREFIX + endpoint.path, {})[endpoint.method.lower()] = operation
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "CRM leads: the seed's REST API",
            "version": "1.0.0",
            "description": "The seed backend's routes, served beside GraphQL (/graphql) over "
            "the same services. Every route needs a bearer token (or API key) whose role may "
            "do it; a sales user's routes reach only their own leads (README: Teams).",
        },
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}
            },
        },
        "security": [{"bearer": []}],
    }


def rest_app(limits: Limits) -> RequestGuard:
    """The routes under `/api/crm`, behind the same body and URL-token limits as /graphql."""
    document = orjson.dumps(openapi_document())

    async def openapi(request: Request) -> Response:
        return Response(document, media_type=JSON)

    routes = [
        Route(endpoint.path, endpoint.serve, methods=[endpoint.method], name=endpoint.operation_id)
        for endpoint in ENDPOINTS
    ]
    router = Router(routes=[*routes, Route("/openapi.json", openapi)])
    return RequestGuard(router, limits, lambda _accept: JSON, error_body=lambda m: {"detail": m})


async def routing_error(request: Request, error: Exception) -> Response:
    """Starlette's own answers, for any path: no route matches it (404), or its route does not
    take the method (405); in this API's JSON error shape rather than plain text."""
    assert isinstance(error, HTTPException)
    code = ErrorCode.NOT_FOUND if error.status_code == 404 else ErrorCode.BAD_REQUEST
    body = {"detail": error.detail, "code": code.value}
    return json_response(body, error.status_code, **(error.headers or {}))
