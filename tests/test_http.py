"""The HTTP surface (docs/api.md): probes, GraphiQL, GraphQL-over-HTTP, CORS."""

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette

from config import Settings
from server import create_app
from tests.conftest import GraphQLClient, mint

GRAPHQL_RESPONSE = "application/graphql-response+json"
JSON = "application/json"
APOLLO_ACCEPT = f"{GRAPHQL_RESPONSE}, {JSON};q=0.9"

ME = "{ me { id } }"
SYNTAX_ERROR = "{ leads {"
UNKNOWN_FIELD = "{ me { id shoeSize } }"
LEADS_BY_STATUS = """
query LeadsByStatus($status: LeadStatus!) {
  leads(filter: { status: [$status] }) { totalCount }
}
"""
MISSING_LEAD = '{ lead(leadId: "LEAD-999") { leadId } }'
TYPE_FIELDS = """
query TypeFields($name: String!) { __type(name: $name) { fields { name } } }
"""
ENTITY_TYPES = [
    "Lead",
    "Email",
    "Call",
    "Task",
    "Note",
    "Deal",
    "Organization",
    "Contact",
    "Viewer",
]

REQUEST_ERRORS = [
    pytest.param({"query": SYNTAX_ERROR}, "GRAPHQL_PARSE_FAILED", id="syntax"),
    pytest.param({"query": UNKNOWN_FIELD}, "GRAPHQL_VALIDATION_FAILED", id="validation"),
    pytest.param(
        {"query": LEADS_BY_STATUS, "variables": {"status": "NOPE"}},
        "BAD_USER_INPUT",
        id="variables",
    ),
]

ALLOWED_ORIGIN = "https://app.example"


def media_type(response: httpx.Response) -> str:
    return response.headers["content-type"].split(";")[0].strip()


@pytest.fixture
def auth(app: Starlette) -> dict[str, str]:
    return {"authorization": f"Bearer {mint(app)}"}


async def post(http: httpx.AsyncClient, body: Any, **headers: str) -> httpx.Response:
    return await http.post("/graphql", json=body, headers=headers)


# --- probes and playground -------------------------------------------------------------


async def test_healthz(http: httpx.AsyncClient) -> None:
    response = await http.get("/healthz")
    assert response.status_code == 200


async def test_readyz_while_the_database_is_up(http: httpx.AsyncClient) -> None:
    response = await http.get("/readyz")
    assert response.status_code == 200, response.text


async def test_browser_gets_graphiql_without_a_token(http: httpx.AsyncClient) -> None:
    response = await http.get("/graphql", headers={"accept": "text/html"})
    assert response.status_code == 200
    assert media_type(response) == "text/html"
    assert "graphiql" in response.text.lower()


async def test_query_over_get(http: httpx.AsyncClient, auth: dict[str, str]) -> None:
    response = await http.get("/graphql", params={"query": ME}, headers=auth)
    assert response.status_code == 200, response.text
    assert response.json() == {"data": {"me": {"id": "user-1"}}}


# --- media types -----------------------------------------------------------------------


async def test_graphql_response_media_type_when_preferred(
    http: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    response = await post(http, {"query": ME}, accept=APOLLO_ACCEPT, **auth)
    assert response.status_code == 200, response.text
    assert media_type(response) == GRAPHQL_RESPONSE
    assert response.json() == {"data": {"me": {"id": "user-1"}}}


@pytest.mark.parametrize("accept", [JSON, None], ids=["json", "no-accept"])
async def test_json_media_type_for_legacy_clients(
    http: httpx.AsyncClient, auth: dict[str, str], accept: str | None
) -> None:
    headers = {**auth, "accept": accept} if accept else auth
    response = await http.post("/graphql", json={"query": ME}, headers=headers)
    assert response.status_code == 200, response.text
    assert media_type(response) == JSON


# --- request errors --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("accept", "status"),
    [(GRAPHQL_RESPONSE, 400), (JSON, 200)],
    ids=["graphql-response-clients-get-400", "json-clients-keep-200"],
)
@pytest.mark.parametrize(("body", "code"), REQUEST_ERRORS)
async def test_request_errors_have_no_data(
    http: httpx.AsyncClient,
    auth: dict[str, str],
    body: dict[str, Any],
    code: str,
    accept: str,
    status: int,
) -> None:
    response = await post(http, body, accept=accept, **auth)
    assert response.status_code == status, response.text
    assert media_type(response) == accept
    payload = response.json()
    assert "data" not in payload
    assert payload["errors"][0]["extensions"]["code"] == code


async def test_unparsable_json_body_is_400(http: httpx.AsyncClient, auth: dict[str, str]) -> None:
    response = await http.post(
        "/graphql",
        content=b'{"query": "{ me { id } }"',
        headers={**auth, "content-type": JSON, "accept": JSON},
    )
    assert response.status_code == 400, response.text
    assert response.json()["errors"][0]["extensions"]["code"] == "BAD_REQUEST"


async def test_field_error_keeps_200_and_data(
    http: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    response = await post(http, {"query": MISSING_LEAD}, accept=GRAPHQL_RESPONSE, **auth)
    assert response.status_code == 200, response.text
    payload = response.json()
    assert payload["data"] == {"lead": None}
    assert payload["errors"][0]["extensions"]["code"] == "NOT_FOUND"


async def test_request_extensions_are_accepted(
    http: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    body = {
        "query": ME,
        "extensions": {"clientLibrary": {"name": "@apollo/client", "version": "4.0.0"}},
    }
    response = await post(http, body, accept=APOLLO_ACCEPT, **auth)
    assert response.status_code == 200, response.text
    assert response.json() == {"data": {"me": {"id": "user-1"}}}


# --- schema ----------------------------------------------------------------------------


@pytest.mark.parametrize("type_name", ENTITY_TYPES)
async def test_every_entity_type_has_an_id(gql: GraphQLClient, type_name: str) -> None:
    data = await gql(TYPE_FIELDS, {"name": type_name})
    assert data["__type"] is not None, f"{type_name} is not in the schema"
    assert "id" in {field["name"] for field in data["__type"]["fields"]}


# --- CORS ------------------------------------------------------------------------------


@pytest.fixture
async def cors_http(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    """A second app that lets one browser origin call it."""
    cors_settings = Settings(
        MONGODB_URI=settings.mongodb_uri,
        CRM_DB_NAME=settings.db_name,
        CRM_DATA_DIR=settings.data_dir,
        CRM_JWT_SECRET=settings.jwt_secret,
        CRM_CORS_ORIGINS=ALLOWED_ORIGIN,  # the environment's comma-separated form
    )
    cors_app = create_app(cors_settings)
    transport = httpx.ASGITransport(app=cors_app)
    async with (
        cors_app.router.lifespan_context(cors_app),
        httpx.AsyncClient(transport=transport, base_url="http://crm.test") as client,
    ):
        yield client


def preflight(origin: str) -> dict[str, str]:
    return {
        "origin": origin,
        "access-control-request-method": "POST",
        "access-control-request-headers": "authorization, content-type",
    }


async def test_cors_preflight_from_an_allowed_origin(cors_http: httpx.AsyncClient) -> None:
    response = await cors_http.options("/graphql", headers=preflight(ALLOWED_ORIGIN))
    assert response.status_code == 200, response.text
    assert response.headers["access-control-allow-origin"] == ALLOWED_ORIGIN


async def test_cors_preflight_from_another_origin(cors_http: httpx.AsyncClient) -> None:
    response = await cors_http.options("/graphql", headers=preflight("https://evil.example"))
    assert "access-control-allow-origin" not in response.headers


async def test_cors_lets_a_browser_send_and_read_the_request_id(
    cors_http: httpx.AsyncClient,
) -> None:
    headers = {**preflight(ALLOWED_ORIGIN), "access-control-request-headers": "x-request-id"}
    allowed = await cors_http.options("/graphql", headers=headers)
    assert allowed.status_code == 200, allowed.text
    response = await cors_http.get("/healthz", headers={"origin": ALLOWED_ORIGIN})
    assert response.headers["access-control-allow-origin"] == ALLOWED_ORIGIN
    assert "x-request-id" in response.headers["access-control-expose-headers"].lower()
    assert response.headers["x-request-id"]


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        ("GET", "/api/crm/nowhere", 404),
        ("PUT", "/api/crm/leads/%0A/status", 404),  # a lead id no route takes (found by fuzzing)
        ("PATCH", "/api/crm/leads", 405),
    ],
)
async def test_rest_paths_and_methods_it_lacks_answer_in_json(
    http: httpx.AsyncClient, method: str, path: str, status: int
) -> None:
    response = await http.request(method, path)
    assert response.status_code == status
    assert response.headers["content-type"].startswith("application/json")
    assert response.json()["code"] == ("NOT_FOUND" if status == 404 else "BAD_REQUEST")
