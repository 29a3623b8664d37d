"""Request ids, access logs, JSON logs and Prometheus metrics, through the real ASGI app."""

import io
import json
import logging
import re
import sys
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from starlette.applications import Starlette
from starlette.routing import WebSocketRoute
from starlette.types import Message
from starlette.websockets import WebSocket

from config import Settings
from models.database import EmbeddedMongo
from models.lead import LeadDocument
from observability import metrics
from observability.logs import JsonFormatter, configure_logging
from observability.metrics import OperationNames
from observability.request_id import RequestIdMiddleware
from server import create_app
from services import leads
from tests.conftest import JWT_SECRET, GraphQLClient, mint
from tests.documents import CREATE_LEAD
from tests.test_database import running

GENERATED_ID = re.compile(r"[0-9a-f]{32}")
LEADS_PAGE = "query LeadsPage { leads { totalCount } }"


# --- request ids ---------------------------------------------------------------------


async def test_every_response_carries_a_new_request_id(http: httpx.AsyncClient) -> None:
    first, second = await http.get("/healthz"), await http.get("/healthz")
    assert GENERATED_ID.fullmatch(first.headers["x-request-id"])
    assert first.headers["x-request-id"] != second.headers["x-request-id"]


@pytest.mark.parametrize("request_id", ["abc-123", "Trace.ID_7", "x" * 64])
async def test_a_safe_incoming_request_id_is_echoed(
    http: httpx.AsyncClient, request_id: str
) -> None:
    response = await http.get("/healthz", headers={"x-request-id": request_id})
    assert response.headers["x-request-id"] == request_id


@pytest.mark.parametrize(
    "request_id",
    [b"x" * 65, b"has space", b"line\nbreak", b"", b"<script>", "évil".encode()],
    ids=["too-long", "space", "newline", "empty", "markup", "non-ascii"],
)
async def test_an_unsafe_incoming_request_id_is_replaced(
    http: httpx.AsyncClient, request_id: bytes
) -> None:
    response = await http.get("/healthz", headers=[(b"x-request-id", request_id)])
    assert GENERATED_ID.fullmatch(response.headers["x-request-id"])


async def test_websockets_pass_through_with_a_request_id() -> None:
    """Pure ASGI: a WebSocket is accepted as before, with the id among its headers."""

    async def echo(websocket: WebSocket) -> None:
        await websocket.accept()
        await websocket.send_text(await websocket.receive_text())
        await websocket.close()

    app = RequestIdMiddleware(Starlette(routes=[WebSocketRoute("/ws", echo)]))
    incoming: list[Message] = [
        {"type": "websocket.connect"},
        {"type": "websocket.receive", "text": "ping"},
    ]
    sent: list[Message] = []

    async def receive() -> Message:
        return incoming.pop(0)

    async def send(message: Message) -> None:
        sent.append(message)

    scope = {
        "type": "websocket",
        "path": "/ws",
        "headers": [(b"x-request-id", b"ws-1")],
        "query_string": b"",
    }
    await app(scope, receive, send)
    accept, reply, close = sent
    assert (b"x-request-id", b"ws-1") in accept["headers"]
    assert (reply["type"], reply["text"], close["type"]) == (
        "websocket.send",
        "ping",
        "websocket.close",
    )


# --- logs ----------------------------------------------------------------------------


@pytest.fixture
def json_log(caplog: pytest.LogCaptureFixture) -> Iterator[io.StringIO]:
    """Everything logged at INFO and above during the test, as the JSON formatter writes it."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    caplog.set_level(logging.INFO)
    logging.getLogger().addHandler(handler)
    try:
        yield stream
    finally:
        logging.getLogger().removeHandler(handler)


def json_lines(stream: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def is_utc_timestamp(value: str) -> bool:
    return value.endswith("Z") and datetime.fromisoformat(value).utcoffset() is not None


async def test_log_lines_of_a_request_carry_its_id_and_internal_errors_return_it(
    gql: GraphQLClient,
    json_log: io.StringIO,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """An unexpected failure gives INTERNAL_SERVER_ERROR; its id leads to the logged details.
    (A stored lead the code cannot read is UNREADABLE_DOCUMENT: tests/test_seed_database.py.)"""

    async def broken(*args: object) -> LeadDocument:
        raise ValueError("ValidationError-like detail that must stay in the log")

    monkeypatch.setattr(leads, "get_lead", broken)
    response = await gql.post(
        'query BrokenLead { lead(leadId: "LEAD-BAD") { id } }', None, **{"x-request-id": "case-42"}
    )
    error = response.json()["errors"][0]
    assert error["extensions"] == {"code": "INTERNAL_SERVER_ERROR", "requestId": "case-42"}
    assert response.headers["x-request-id"] == "case-42"

    # Any handler sees the id on the record (caplog's too), the JSON formatter writes it.
    logged = [record for record in caplog.records if record.name == "crm.errors"]
    assert [record.request_id for record in logged] == ["case-42"]  # type: ignore[attr-defined]
    lines = json_lines(json_log)
    [failure] = [line for line in lines if line["logger"] == "crm.errors"]
    assert failure["level"] == "ERROR"
    assert failure["request_id"] == "case-42"
    assert failure["message"].startswith("unexpected error")
    assert "ValidationError" in failure["exception"]
    assert is_utc_timestamp(failure["timestamp"])

    [access] = [line for line in lines if line["logger"] == "crm.access"]
    assert access["request_id"] == "case-42"
    assert access["level"] == "INFO"
    assert (access["method"], access["path"], access["status"]) == ("POST", "/graphql", 200)
    assert (access["operation"], access["operation_type"]) == ("BrokenLead", "query")
    assert isinstance(access["duration_ms"], float)
    assert access["message"].startswith("POST /graphql 200 ")


async def test_database_down_errors_carry_the_request_id(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """SERVICE_UNAVAILABLE (the embedded database stopped, as in test_database) has it too."""
    database = EmbeddedMongo(tmp_path / "db")
    settings = Settings(
        MONGODB_URI=await database.start(),
        CRM_JWT_SECRET=JWT_SECRET,
        CRM_DATA_DIR=tmp_path,
        CRM_DB_TIMEOUT_MS=500,
    )
    async with running(settings) as (app, client):
        await database.stop()
        response = await client.post(
            "/graphql",
            json={"query": CREATE_LEAD, "variables": {"input": {"firstName": "Lost?"}}},
            headers={"authorization": f"Bearer {mint(app)}"},
        )
    request_id = response.headers["x-request-id"]
    error = response.json()["errors"][0]
    assert error["extensions"] == {"code": "SERVICE_UNAVAILABLE", "requestId": request_id}
    warnings = [record for record in caplog.records if record.name == "crm.errors"]
    assert [record.request_id for record in warnings] == [request_id]  # type: ignore[attr-defined]


def test_the_json_formatter_writes_extra_fields_and_exceptions() -> None:
    record = logging.getLogger("crm.test").makeRecord(
        "crm.test", logging.WARNING, __file__, 1, "lead %s", ("LEAD-001",), None
    )
    record.lead_id = "LEAD-001"
    record.color_message = "uvicorn's colored copy"
    try:
        raise ValueError("boom")
    except ValueError:
        record.exc_info = sys.exc_info()
    entry = json.loads(JsonFormatter().format(record))
    assert entry["message"] == "lead LEAD-001"
    assert (entry["level"], entry["logger"], entry["lead_id"]) == (
        "WARNING",
        "crm.test",
        "LEAD-001",
    )
    assert "ValueError: boom" in entry["exception"]
    assert "request_id" not in entry  # logged outside a request
    assert "color_message" not in entry
    assert is_utc_timestamp(entry["timestamp"])


@pytest.fixture
def restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    uvicorn = logging.getLogger("uvicorn.error")
    saved_uvicorn = uvicorn.handlers[:], uvicorn.propagate
    try:
        yield
    finally:
        root.handlers[:], root.level = saved[0], saved[1]
        uvicorn.handlers[:], uvicorn.propagate = saved_uvicorn


@pytest.mark.usefixtures("restore_logging")
def test_configure_logging_sends_uvicorn_and_the_app_through_one_handler() -> None:
    stream = io.StringIO()
    logging.getLogger("uvicorn.error").addHandler(logging.NullHandler())
    configure_logging("json", "DEBUG", stream)
    logging.getLogger("uvicorn.error").info(
        "Started server process [%d]", 7, extra={"color_message": "colored"}
    )
    logging.getLogger("crm.test").debug("detail", extra={"lead_id": "LEAD-001"})
    started, detail = json_lines(stream)
    assert started == {
        "timestamp": started["timestamp"],
        "level": "INFO",
        "logger": "uvicorn.error",
        "message": "Started server process [7]",
    }
    assert (detail["level"], detail["lead_id"]) == ("DEBUG", "LEAD-001")

    stream = io.StringIO()
    configure_logging("text", "INFO", stream)
    logging.getLogger("crm.test").info("plain")
    logging.getLogger("crm.test").debug("hidden")
    assert re.fullmatch(r"\S+ \S+ INFO crm\.test \[-\] plain\n", stream.getvalue())


# --- metrics -------------------------------------------------------------------------


async def scrape(http: httpx.AsyncClient) -> str:
    response = await http.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    return response.text


def value(text: str, name: str, **labels: str) -> float:
    """A sample's value in the exposition text; 0 when absent (metrics are process-wide)."""
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and sample.labels == labels:
                return float(sample.value)
    return 0.0


class Delta:
    """Compares samples before and after: `delta(name, **labels)` is how much one went up."""

    def __init__(self, before: str, after: str) -> None:
        self.before, self.after = before, after

    def __call__(self, name: str, **labels: str) -> float:
        return value(self.after, name, **labels) - value(self.before, name, **labels)


async def test_metrics_count_requests_operations_and_errors_by_code(
    http: httpx.AsyncClient, gql: GraphQLClient, app: Starlette
) -> None:
    before = await scrape(http)
    await gql(LEADS_PAGE)
    await gql(LEADS_PAGE)
    user = GraphQLClient(http, mint(app, role="user"))
    forbidden = await user.errors("query ForbiddenPage { leads { totalCount } }")
    assert forbidden[0]["extensions"]["code"] == "FORBIDDEN"
    bad = await gql.errors(CREATE_LEAD, {"input": {"firstName": " ", "email": "nope"}})
    assert bad[0]["extensions"]["code"] == "BAD_USER_INPUT"
    unparsable = await gql.errors("{ leads {")
    assert unparsable[0]["extensions"]["code"] == "GRAPHQL_PARSE_FAILED"
    assert (await http.post("/graphql", json={"query": LEADS_PAGE})).status_code == 401
    assert (await http.get("/no/such/page")).status_code == 404
    delta = Delta(before, await scrape(http))

    assert delta("crm_graphql_operations_total", operation="LeadsPage", type="query") == 2
    assert (
        delta("crm_graphql_operation_duration_seconds_count", operation="LeadsPage", type="query")
        == 2
    )
    assert delta("crm_graphql_operations_total", operation="CreateLead", type="mutation") == 1
    assert delta("crm_graphql_operations_total", operation="anonymous", type="unknown") == 1
    assert delta("crm_graphql_errors_total", operation="ForbiddenPage", code="FORBIDDEN") == 1
    assert delta("crm_graphql_errors_total", operation="CreateLead", code="BAD_USER_INPUT") == 1
    assert (
        delta("crm_graphql_errors_total", operation="anonymous", code="GRAPHQL_PARSE_FAILED") == 1
    )
    assert "LeadsPage" not in {
        sample.labels["operation"]
        for family in text_string_to_metric_families(delta.after)
        if family.name == "crm_graphql_errors"
        for sample in family.samples
    }

    # 5 GraphQL requests answered with 200 (errors included), 1 refused without a token.
    graphql = {"method": "POST", "route": "/graphql"}
    assert delta("crm_http_requests_total", **graphql, status="200") == 5
    assert delta("crm_http_requests_total", **graphql, status="401") == 1
    assert delta("crm_http_request_duration_seconds_count", **graphql) == 6
    assert delta("crm_http_requests_total", method="GET", route="other", status="404") == 1
    assert delta("crm_http_requests_total", method="GET", route="/metrics", status="200") == 1


async def test_operation_names_are_capped(
    http: httpx.AsyncClient, gql: GraphQLClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(metrics, "operation_names", OperationNames(limit=2))
    before = await scrape(http)
    for name in ("CapOne", "CapTwo", "CapThree", "CapFour", "CapOne"):
        await gql(f"query {name} {{ me {{ id }} }}")
    await gql("{ me { id } }")  # anonymous: no name to count against the cap
    # A name the document does not have is not a label either.
    response = await http.post(
        "/graphql",
        json={"query": "query CapFive { me { id } }", "operationName": "CapFake"},
        headers={"authorization": f"Bearer {gql.token}"},
    )
    delta = Delta(before, await scrape(http))

    ops = "crm_graphql_operations_total"
    assert delta(ops, operation="CapOne", type="query") == 2
    assert delta(ops, operation="CapTwo", type="query") == 1
    assert delta(ops, operation="CapThree", type="query") == 0
    assert delta(ops, operation="other", type="query") == 2
    assert delta(ops, operation="anonymous", type="query") == 1
    assert "CapFake" not in delta.after
    assert response.status_code == 400
    assert response.json()["errors"][0]["extensions"]["code"] == "BAD_REQUEST"
    assert delta("crm_graphql_errors_total", operation="anonymous", code="BAD_REQUEST") == 1


def test_operation_names_cap_unit() -> None:
    names = OperationNames(limit=1)
    assert [names.label(n) for n in (None, "A", "B", "A", "")] == [
        "anonymous",
        "A",
        "other",
        "A",
        "anonymous",
    ]


async def test_metrics_can_be_turned_off(settings: Settings) -> None:
    off = create_app(settings.model_copy(update={"metrics": False}))
    transport = httpx.ASGITransport(app=off)
    async with httpx.AsyncClient(transport=transport, base_url="http://crm.test") as client:
        response = await client.get("/metrics")
    assert response.status_code == 404
    assert GENERATED_ID.fullmatch(response.headers["x-request-id"])


def test_the_settings_read_any_case(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CRM_LOG_FORMAT", "TEXT")
    monkeypatch.setenv("CRM_LOG_LEVEL", "debug")
    monkeypatch.setenv("CRM_METRICS", "false")
    settings = Settings()
    assert (settings.log_format, settings.log_level, settings.metrics) == ("text", "DEBUG", False)
    defaults = {name: Settings.model_fields[name].default for name in ("log_format", "log_level")}
    assert defaults == {"log_format": "json", "log_level": "INFO"}
    assert Settings.model_fields["metrics"].default is True
