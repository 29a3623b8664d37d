"""Request limits (README "Limits and hardening"): depth, aliases, tokens, introspection,
batches and body size, each refused with one clear error before anything runs."""

import socket
from collections.abc import AsyncIterator, Iterable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from graphql import get_introspection_query, parse
from starlette.applications import Starlette
from strawberry.types import ExecutionResult

from api.limits import measure
from config import Limits, Settings
from resolvers.context import Context
from schema.root import schema
from server import create_app
from services.viewer import Viewer
from tests.conftest import GraphQLClient, mint
from tests.documents import CREATE_LEAD
from tests.live_server import LiveServer, serve

GRAPHQL_RESPONSE = "application/graphql-response+json"
JSON = "application/json"
ME = "{ me { id } }"
MIB = 1024 * 1024
# GraphiQL's and Apollo's schema query: graphql-js' getIntrospectionQuery with every option on.
INTROSPECTION = get_introspection_query(
    descriptions=True,
    specified_by_url=True,
    directive_is_repeatable=True,
    schema_description=True,
    input_value_deprecation=True,
    one_of=True,
)


def nested(depth: int) -> str:
    """A query whose longest chain of fields is `depth` long (unknown fields past `me`)."""
    assert depth >= 2
    return "{ me { " + "f { " * (depth - 2) + "id" + " }" * (depth - 1) + " }"


def aliased(count: int) -> str:
    return "{ " + " ".join(f"a{i}: me {{ id }}" for i in range(count)) + " }"


def with_tokens(count: int) -> str:
    """A valid query of exactly `count` tokens: `{ leads(filter: {status: [NEW …]}) … }`."""
    assert count >= 17
    statuses = " ".join(["NEW"] * (count - 16))
    return f"{{ leads(filter: {{status: [{statuses}]}}) {{ totalCount }} }}"


def error_of(response: httpx.Response) -> dict[str, Any]:
    """The one error of a request error (no `data`)."""
    body = response.json()
    assert "data" not in body, body
    assert len(body["errors"]) == 1, body["errors"]
    error: dict[str, Any] = body["errors"][0]
    return error


@pytest.fixture
def headers(app: Starlette) -> dict[str, str]:
    return {"authorization": f"Bearer {mint(app)}", "accept": GRAPHQL_RESPONSE}


async def post(http: httpx.AsyncClient, body: Any, headers: dict[str, str]) -> httpx.Response:
    return await http.post("/graphql", json=body, headers=headers)


# --- depth -----------------------------------------------------------------------------


async def test_query_deeper_than_10_is_one_bad_user_input_error(
    http: httpx.AsyncClient, headers: dict[str, str]
) -> None:
    # Its unknown fields would each be a validation error: the limit comes first, alone.
    response = await post(http, {"query": nested(11)}, headers)
    assert response.status_code == 400, response.text
    error = error_of(response)
    assert error["message"] == "Query depth 11 exceeds the limit of 10 (CRM_MAX_QUERY_DEPTH)"
    assert error["extensions"]["code"] == "BAD_USER_INPUT"
    assert error["extensions"]["fieldErrors"] == [{"field": "query", "message": error["message"]}]


async def test_query_of_depth_10_passes_the_depth_check(
    http: httpx.AsyncClient, headers: dict[str, str]
) -> None:
    response = await post(http, {"query": nested(10)}, headers)
    # On to validation, which refuses the made-up fields.
    assert error_of(response)["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"


async def test_depth_counts_through_fragments(
    http: httpx.AsyncClient, headers: dict[str, str]
) -> None:
    # me, then 9 levels in the fragment (the inline fragment adds none), then id: 11.
    inner = "f { " * 8 + "id" + " }" * 8
    query = f"{{ me {{ ...Deep }} }} fragment Deep on Viewer {{ f {{ ... on X {{ {inner} }} }} }}"
    error = error_of(await post(http, {"query": query}, headers))
    assert error["message"].startswith("Query depth 11 exceeds the limit of 10")


async def test_deepest_real_query_is_well_within_the_limit(gql: GraphQLClient) -> None:
    query = """{ leads { edges { node { deal { contact { organization { name } } } } } } }"""
    assert measure(parse(query)).depth == 7
    assert (await gql(query))["leads"]["edges"] == []


# --- aliases ---------------------------------------------------------------------------


async def test_30_aliases_pass_and_31_are_refused(
    http: httpx.AsyncClient, headers: dict[str, str]
) -> None:
    allowed = await post(http, {"query": aliased(30)}, headers)
    assert allowed.status_code == 200, allowed.text
    assert len(allowed.json()["data"]) == 30

    refused = await post(http, {"query": aliased(31)}, headers)
    assert refused.status_code == 400, refused.text
    error = error_of(refused)
    assert error["message"] == "Query has 31 aliases, more than the limit of 30 (CRM_MAX_ALIASES)"
    assert error["extensions"]["code"] == "BAD_USER_INPUT"


async def test_aliases_in_fragments_count_once_per_spread_and_are_measured_fast(
    http: httpx.AsyncClient, headers: dict[str, str]
) -> None:
    # F0 has one alias, each F(n) spreads F(n-1) twice: 2**40 aliases in 400 tokens. Walking
    # every spread (as Strawberry's own limiters do) would never finish.
    fragments = ["fragment F0 on Viewer { a: id }"] + [
        f"fragment F{n} on Viewer {{ ...F{n - 1} ...F{n - 1} }}" for n in range(1, 41)
    ]
    query = "{ me { ...F40 } } " + " ".join(fragments)
    error = error_of(await post(http, {"query": query}, headers))
    assert error["message"].startswith(f"Query has {2**40} aliases")


async def test_only_the_selected_operation_is_measured(
    http: httpx.AsyncClient, headers: dict[str, str]
) -> None:
    document = f"query Small {ME} query Big {aliased(31)}"
    response = await post(http, {"query": document, "operationName": "Small"}, headers)
    assert response.status_code == 200, response.text
    assert response.json() == {"data": {"me": {"id": "user-1"}}}


# --- tokens ----------------------------------------------------------------------------


async def test_2000_tokens_pass_and_2001_are_refused(
    http: httpx.AsyncClient, headers: dict[str, str]
) -> None:
    allowed = await post(http, {"query": with_tokens(2000)}, headers)
    assert allowed.status_code == 200, allowed.text

    refused = await post(http, {"query": with_tokens(2001)}, headers)
    assert refused.status_code == 400, refused.text
    error = error_of(refused)
    assert error["message"] == "Query has more than 2000 tokens, the limit (CRM_MAX_TOKENS)"
    assert error["extensions"]["code"] == "BAD_USER_INPUT"


async def test_comments_count_as_tokens(http: httpx.AsyncClient, headers: dict[str, str]) -> None:
    query = "#\n" * 2000 + ME
    error = error_of(await post(http, {"query": query}, headers))
    assert "CRM_MAX_TOKENS" in error["message"]


@pytest.mark.parametrize(
    ("accept", "status"), [(GRAPHQL_RESPONSE, 400), (JSON, 200)], ids=["graphql-response", "json"]
)
@pytest.mark.parametrize(
    "query", [nested(11), aliased(31), with_tokens(2001)], ids=["depth", "aliases", "tokens"]
)
async def test_limit_errors_are_request_errors_under_both_media_types(
    http: httpx.AsyncClient, app: Starlette, query: str, accept: str, status: int
) -> None:
    headers = {"authorization": f"Bearer {mint(app)}", "accept": accept}
    response = await post(http, {"query": query}, headers)
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(accept)
    assert error_of(response)["extensions"]["code"] == "BAD_USER_INPUT"


async def test_limits_apply_over_get_too(http: httpx.AsyncClient, headers: dict[str, str]) -> None:
    response = await http.get("/graphql", params={"query": aliased(31)}, headers=headers)
    assert response.status_code == 400, response.text
    assert "CRM_MAX_ALIASES" in error_of(response)["message"]


async def test_limits_apply_to_subscriptions() -> None:
    viewer = Viewer(id="u", name=None, email=None, role="admin")
    context = Context(viewer=viewer, limits=Limits(max_query_depth=2))
    stream = await schema.subscribe(
        'subscription { leadActivity(leadId: "LEAD-1") { lead { deal { id } } } }',
        context_value=context,
    )
    assert not isinstance(stream, ExecutionResult)
    results = [result async for result in stream]
    assert len(results) == 1
    assert [error.message for error in results[0].errors or []] == [
        "Query depth 4 exceeds the limit of 2 (CRM_MAX_QUERY_DEPTH)"
    ]


# --- introspection ---------------------------------------------------------------------


async def test_graphiql_introspection_query_passes_the_default_limits(
    http: httpx.AsyncClient, headers: dict[str, str]
) -> None:
    # The conftest app turns introspection on. TypeRef nests ofType 8 deep: still allowed.
    response = await post(http, {"query": INTROSPECTION}, headers)
    assert response.status_code == 200, response.text
    types = {type_["name"] for type_ in response.json()["data"]["__schema"]["types"]}
    assert {"Lead", "Query", "Mutation", "Subscription"} <= types


async def test_introspection_depth_is_still_bounded(
    http: httpx.AsyncClient, headers: dict[str, str]
) -> None:
    # Left out of the depth limit, introspection is bounded by graphql-core's own rule.
    query = "{ __schema { types { fields { type { fields { type { fields { name } } } } } } } }"
    error = error_of(await post(http, {"query": query}, headers))
    assert error["message"] == "Maximum introspection depth exceeded"
    assert error["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"


@pytest.fixture
async def production_http(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    """An app with a secret and CRM_INTROSPECTION unset (no lifespan: no database needed)."""
    production = create_app(settings.model_copy(update={"introspection": None}))
    transport = httpx.ASGITransport(app=production)
    async with httpx.AsyncClient(transport=transport, base_url="http://crm.test") as client:
        yield client


@pytest.mark.parametrize(
    "query",
    [
        INTROSPECTION,
        '{ __type(name: "Lead") { name } }',
        "{ me { ...F } } fragment F on Viewer { id __schema { queryType { name } } }",
    ],
    ids=["graphiql", "__type", "in-a-fragment"],
)
async def test_introspection_is_off_in_production_by_default(
    production_http: httpx.AsyncClient, headers: dict[str, str], query: str
) -> None:
    response = await post(production_http, {"query": query}, headers)
    assert response.status_code == 400, response.text
    error = error_of(response)
    assert error["message"] == (
        "Introspection is disabled on this server; set CRM_INTROSPECTION=true to enable it"
    )
    assert error["extensions"]["code"] == "FORBIDDEN"


async def test_typename_works_without_introspection(
    production_http: httpx.AsyncClient, headers: dict[str, str]
) -> None:
    response = await post(
        production_http, {"query": "{ __typename me { __typename id } }"}, headers
    )
    assert response.status_code == 200, response.text
    assert response.json()["data"] == {
        "__typename": "Query",
        "me": {"__typename": "Viewer", "id": "user-1"},
    }


@pytest.mark.parametrize(
    ("secret", "introspection", "enabled"),
    [
        (None, None, True),  # dev mode: on
        ("s" * 32, None, False),  # production: off
        ("s" * 32, "true", True),
        (None, "false", False),
        ("s" * 32, "", False),  # empty is unset
    ],
)
def test_introspection_setting(
    tmp_path: Path, secret: str | None, introspection: str | None, enabled: bool
) -> None:
    settings = Settings(
        _env_file=None,
        CRM_DATA_DIR=tmp_path,
        CRM_JWT_SECRET=secret,
        CRM_INTROSPECTION=introspection,
    )
    assert settings.limits.introspection is enabled


# --- configured limits -----------------------------------------------------------------


def test_defaults_and_environment_names(monkeypatch: pytest.MonkeyPatch) -> None:
    assert Settings(_env_file=None).limits == Limits(
        max_query_depth=10,
        max_aliases=30,
        max_tokens=2000,
        max_batch=10,
        max_body_bytes=MIB,
        introspection=True,
    )
    for name, value in {
        "CRM_MAX_QUERY_DEPTH": "3",
        "CRM_MAX_ALIASES": "1",
        "CRM_MAX_TOKENS": "20",
        "CRM_MAX_BATCH": "2",
        "CRM_MAX_BODY_BYTES": "512",
        "CRM_INTROSPECTION": "false",
    }.items():
        monkeypatch.setenv(name, value)
    assert Settings(_env_file=None).limits == Limits(3, 1, 20, 2, 512, False)


@pytest.mark.parametrize("name", ["CRM_MAX_QUERY_DEPTH", "CRM_MAX_TOKENS", "CRM_MAX_BODY_BYTES"])
def test_a_limit_below_one_is_refused(monkeypatch: pytest.MonkeyPatch, name: str) -> None:
    monkeypatch.setenv(name, "0")
    with pytest.raises(ValueError, match=name):
        Settings(_env_file=None)


@pytest.fixture
async def tight_http(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    """An app with small limits, for requests that never reach the database."""
    limits = {"max_query_depth": 3, "max_aliases": 1, "max_tokens": 20, "max_batch": 2}
    tight = create_app(settings.model_copy(update={**limits, "max_body_bytes": 512}))
    transport = httpx.ASGITransport(app=tight)
    async with httpx.AsyncClient(transport=transport, base_url="http://crm.test") as client:
        yield client


async def test_configured_limits_are_applied(
    tight_http: httpx.AsyncClient, headers: dict[str, str]
) -> None:
    async def refusal(body: Any, status: int = 400) -> str:
        response = await post(tight_http, body, headers)
        assert response.status_code == status, response.text
        message: str = error_of(response)["message"]
        return message

    ok = await post(tight_http, {"query": "{ a: me { id } }"}, headers)
    assert ok.json() == {"data": {"a": {"id": "user-1"}}}
    # Depth 3 passes on to validation (an unknown field); 4 does not.
    assert (await refusal({"query": "{ me { a { id } } }"})).startswith("Cannot query field")
    assert (await refusal({"query": "{ me { a { b { id } } } }"})).startswith(
        "Query depth 4 exceeds the limit of 3"
    )
    assert (await refusal({"query": "{ a: me { id } b: me { id } }"})).startswith(
        "Query has 2 aliases, more than the limit of 1"
    )
    assert (await refusal({"query": with_tokens(21)})).startswith("Query has more than 20 tokens")
    assert (await refusal([{"query": ME}] * 3)).startswith(
        "Batch of 3 operations exceeds the limit of 2"
    )
    assert (await refusal({"query": ME, "pad": "x" * 512}, 413)).startswith(
        "Request body is larger than 512 bytes"
    )


async def test_a_document_validated_once_still_meets_every_app_s_limits(
    http: httpx.AsyncClient, tight_http: httpx.AsyncClient, headers: dict[str, str]
) -> None:
    """A text that passed validation is not validated again (api/validation.py): its limits
    are still checked per request, and an invalid text is refused every time."""
    two_aliases = "{ a: me { id } b: me { id } }"
    for _ in range(2):
        response = await post(http, {"query": two_aliases}, headers)
        assert response.json() == {"data": {"a": {"id": "user-1"}, "b": {"id": "user-1"}}}
    refused = error_of(await post(tight_http, {"query": two_aliases}, headers))
    assert refused["message"].startswith("Query has 2 aliases, more than the limit of 1")
    for _ in range(2):
        error = error_of(await post(http, {"query": "{ me { nope } }"}, headers))
        assert error["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"
        assert error["message"].startswith("Cannot query field 'nope' on type 'Viewer'.")


# --- page size -------------------------------------------------------------------------


async def test_deals_page_size_over_100_is_bad_user_input(gql: GraphQLClient) -> None:
    errors = await gql.errors("{ deals(first: 101) { totalCount } }")
    assert errors[0]["extensions"]["code"] == "BAD_USER_INPUT"
    assert errors[0]["extensions"]["fieldErrors"][0]["field"] == "first"


# --- batches ---------------------------------------------------------------------------


async def test_batch_of_two_operations(http: httpx.AsyncClient, headers: dict[str, str]) -> None:
    body = [{"query": ME}, {"query": "query Who { me { name role } }", "operationName": "Who"}]
    response = await post(http, body, headers)
    assert response.status_code == 200, response.text
    assert response.json() == [
        {"data": {"me": {"id": "user-1"}}},
        {"data": {"me": {"name": "Shariq Ansari", "role": "admin"}}},
    ]


async def test_batch_needs_the_authorization_header(http: httpx.AsyncClient) -> None:
    response = await post(http, [{"query": ME}, {"query": ME}], {"accept": GRAPHQL_RESPONSE})
    assert response.status_code == 401, response.text
    assert error_of(response)["extensions"]["code"] == "UNAUTHENTICATED"


async def test_batch_of_10_passes_and_11_is_refused(
    http: httpx.AsyncClient, headers: dict[str, str]
) -> None:
    allowed = await post(http, [{"query": ME}] * 10, headers)
    assert allowed.status_code == 200, allowed.text
    assert len(allowed.json()) == 10

    refused = await post(http, [{"query": ME}] * 11, headers)
    assert refused.status_code == 400, refused.text
    error = error_of(refused)
    assert error["message"] == "Batch of 11 operations exceeds the limit of 10 (CRM_MAX_BATCH)"
    assert error["extensions"]["code"] == "BAD_REQUEST"


async def test_batch_runs_in_order_each_seeing_the_writes_before_it(
    http: httpx.AsyncClient, headers: dict[str, str]
) -> None:
    count = {"query": "{ leads { totalCount } }"}
    create = {"query": CREATE_LEAD, "variables": {"input": {"firstName": "Batch"}}}
    response = await post(http, [count, create, count, create, count], headers)
    assert response.status_code == 200, response.text
    results = response.json()
    assert [result["data"]["leads"]["totalCount"] for result in results[::2]] == [0, 1, 2]


async def test_request_error_in_a_batch_keeps_the_other_results(
    http: httpx.AsyncClient, headers: dict[str, str]
) -> None:
    response = await post(http, [{"query": ME}, {"query": aliased(31)}], headers)
    assert response.status_code == 200, response.text
    first, second = response.json()
    assert first == {"data": {"me": {"id": "user-1"}}}
    assert second["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ([], "A batch needs at least one operation"),
        ([{"query": ME}, "{ me { id } }"], "Each operation in a batch must be a JSON object"),
    ],
    ids=["empty", "not-an-object"],
)
async def test_malformed_batch_is_400(
    http: httpx.AsyncClient, headers: dict[str, str], body: Any, message: str
) -> None:
    response = await post(http, body, headers)
    assert response.status_code == 400, response.text
    assert error_of(response)["message"] == message


async def test_batching_can_be_turned_off(settings: Settings, headers: dict[str, str]) -> None:
    no_batches = create_app(settings.model_copy(update={"max_batch": 0}))
    transport = httpx.ASGITransport(app=no_batches)
    async with httpx.AsyncClient(transport=transport, base_url="http://crm.test") as client:
        response = await post(client, [{"query": ME}], headers)
        single = await post(client, {"query": ME}, headers)
    assert response.status_code == 400, response.text
    assert "CRM_MAX_BATCH=0" in error_of(response)["message"]
    assert single.status_code == 200, single.text


# --- body size -------------------------------------------------------------------------


def padded(size: int) -> bytes:
    """A valid GraphQL request body of exactly `size` bytes."""
    body = b'{"query": "{ me { id } }"}'
    return body[:-1] + b" " * (size - len(body)) + b"}"


async def chunks(body: bytes, size: int = 64 * 1024) -> AsyncIterator[bytes]:
    for start in range(0, len(body), size):
        yield body[start : start + size]


async def test_body_of_exactly_the_limit_is_accepted(
    http: httpx.AsyncClient, headers: dict[str, str]
) -> None:
    response = await http.post(
        "/graphql", content=padded(MIB), headers={**headers, "content-type": JSON}
    )
    assert response.status_code == 200, response.text
    # And streamed without a Content-Length:
    response = await http.post(
        "/graphql", content=chunks(padded(MIB)), headers={**headers, "content-type": JSON}
    )
    assert response.status_code == 200, response.text


async def test_content_length_over_the_limit_is_413_before_anything_else(
    http: httpx.AsyncClient,
) -> None:
    # No token: the size alone decides, before authentication or reading the body.
    response = await http.post(
        "/graphql",
        content=padded(MIB + 1),
        headers={"content-type": JSON, "accept": GRAPHQL_RESPONSE},
    )
    assert response.status_code == 413, response.text
    assert response.headers["content-type"].startswith(GRAPHQL_RESPONSE)
    assert response.json() == {
        "errors": [
            {
                "message": "Request body is larger than 1048576 bytes, the limit"
                " (CRM_MAX_BODY_BYTES)",
                "extensions": {"code": "BAD_REQUEST"},
            }
        ]
    }


async def test_streamed_body_over_the_limit_is_413(
    http: httpx.AsyncClient, headers: dict[str, str]
) -> None:
    sent = 0

    async def counted() -> AsyncIterator[bytes]:
        nonlocal sent
        async for chunk in chunks(padded(4 * MIB)):
            sent += len(chunk)
            yield chunk

    response = await http.post(
        "/graphql", content=counted(), headers={**headers, "content-type": JSON}
    )
    assert response.status_code == 413, response.text
    assert "CRM_MAX_BODY_BYTES" in error_of(response)["message"]
    assert response.headers["connection"] == "close"
    assert sent < 2 * MIB, "the rest of the body was not read"


async def test_largest_email_body_fits_the_default_limit(gql: GraphQLClient) -> None:
    lead = await gql(CREATE_LEAD, {"input": {"firstName": "Big", "email": "big@example.com"}})
    lead_id = lead["createLead"]["lead"]["leadId"]
    # 100 000 characters, each 4 bytes in UTF-8 (a JSON body of about 400 kB).
    body = "\U0001f600" * 100_000
    data = await gql(
        """mutation($leadId: String!, $input: SendEmailInput!) {
             sendEmail(leadId: $leadId, input: $input) { email { id } } }""",
        {"leadId": lead_id, "input": {"subject": "Hi", "body": body}},
    )
    assert data["sendEmail"]["email"]["id"]


# --- against a real uvicorn ------------------------------------------------------------


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    with serve(tmp_path_factory.mktemp("limits-data")) as server:
        yield server


def raw_request(live: LiveServer, head: str, body_chunks: Iterable[bytes] = ()) -> str:
    """Send a raw HTTP/1.1 request, then read the response until the server closes."""
    host, port = live.base_url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as connection:
        connection.sendall(head.replace("\n", "\r\n").encode() + b"\r\n")
        for chunk in body_chunks:
            connection.sendall(chunk)
        received = b""
        while data := connection.recv(65536):
            received += data
    return received.decode()


def test_live_server_refuses_a_declared_oversized_body_without_reading_it(
    live: LiveServer,
) -> None:
    head = (
        "POST /graphql HTTP/1.1\nHost: crm.test\nContent-Type: application/json\n"
        f"Content-Length: {MIB + 1}\n"
    )
    # Nothing of the body is sent: the answer comes from the header alone, and the server
    # closes the connection rather than wait for the body.
    response = raw_request(live, head)
    assert response.startswith("HTTP/1.1 413 "), response
    assert "CRM_MAX_BODY_BYTES" in response


def test_live_server_refuses_a_chunked_body_once_it_passes_the_limit(live: LiveServer) -> None:
    head = (
        "POST /graphql HTTP/1.1\nHost: crm.test\nContent-Type: application/json\n"
        f"Authorization: Bearer {live.dev_token()}\nTransfer-Encoding: chunked\n"
    )
    piece = b" " * (64 * 1024)
    # 16 chunks of 64 KiB make 1 MiB, one more byte passes it; the last chunk never comes.
    # (Sending no more than that lets the server read all that was sent: a server that
    # closes with unread data resets the connection, and the answer may be lost with it.)
    chunked = [b"%x\r\n%s\r\n" % (len(piece), piece)] * 16 + [b"1\r\n \r\n"]
    response = raw_request(live, head, chunked)
    assert response.startswith("HTTP/1.1 413 "), response
    assert "CRM_MAX_BODY_BYTES" in response
