"""GraphQL over WebSocket follows HTTP's rules, operation by operation: the token's expiry,
error codes and masking (and logging), the request limits, and loaders of its own.

Each test speaks graphql-transport-ws to the real ASGI app (in this event loop, with the
real database); tests/clients/subscription.test.mjs does the same with the graphql-ws client.
"""

import asyncio
import json
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.types import ASGIApp, Message

from config import Settings
from models.lead import LeadDocument
from server import create_app
from services import leads
from tests.conftest import mint, websocket_scope
from tests.documents import CREATE_LEAD
from tests.test_limits import INTROSPECTION, aliased, nested, with_tokens

TIMEOUT = 5.0
# Valid at connection_init thanks to the 30 s leeway, expired (leeway included) 2 s later.
ALMOST_EXPIRED = timedelta(seconds=-28)
EMAILS = 'query Emails { lead(leadId: "LEAD-001") { emails { subject } } }'
SEND_EMAIL = """
mutation SendEmail { sendEmail(leadId: "LEAD-001", input: {subject: "Hi", body: "Hello"}) {
  email { subject } lead { emails { subject } } } }
"""
LEAD_ACTIVITY = "subscription { leadActivity { activity { type } } }"


@dataclass
class Closed:
    code: int
    reason: str


class Socket:
    """One graphql-transport-ws connection to an ASGI app, driven message by message."""

    def __init__(self, app: ASGIApp, request_id: str = "ws-test") -> None:
        self.incoming: asyncio.Queue[Message] = asyncio.Queue()
        self.outgoing: asyncio.Queue[Message] = asyncio.Queue()
        self.request_id = request_id
        scope = websocket_scope(request_id=request_id)

        async def serve() -> None:
            await app(scope, self.incoming.get, self.outgoing.put)

        self.task = asyncio.create_task(serve())

    async def connect(self, token: str) -> None:
        await self.incoming.put({"type": "websocket.connect"})
        accept = await self.raw()
        assert accept["type"] == "websocket.accept", accept
        await self.send(
            {"type": "connection_init", "payload": {"Authorization": f"Bearer {token}"}}
        )
        assert await self.receive() == {"type": "connection_ack"}

    async def send(self, message: dict[str, Any]) -> None:
        await self.incoming.put({"type": "websocket.receive", "text": json.dumps(message)})

    async def raw(self) -> Message:
        return await asyncio.wait_for(self.outgoing.get(), TIMEOUT)

    async def receive(self) -> dict[str, Any] | Closed:
        message = await self.raw()
        if message["type"] == "websocket.close":
            await self.incoming.put({"type": "websocket.disconnect", "code": message["code"]})
            return Closed(message["code"], message.get("reason", ""))
        assert message["type"] == "websocket.send", message
        received: dict[str, Any] = json.loads(message["text"])
        return received

    async def subscribe(self, id: str, query: str, variables: dict[str, Any] | None = None) -> None:
        payload = {"query": query, "variables": variables or {}}
        await self.send({"id": id, "type": "subscribe", "payload": payload})

    async def run(
        self, query: str, variables: dict[str, Any] | None = None, id: str = "1"
    ) -> list[dict[str, Any] | Closed]:
        """One operation's messages: its `next`s, then its `complete` or `error`."""
        await self.subscribe(id, query, variables)
        return await self.until_done(id)

    async def until_done(self, id: str) -> list[dict[str, Any] | Closed]:
        messages: list[dict[str, Any] | Closed] = []
        while True:
            message = await self.receive()
            messages.append(message)
            if isinstance(message, Closed) or message.get("type") in ("complete", "error"):
                assert isinstance(message, Closed) or message["id"] == id, messages
                return messages

    async def data(self, query: str, variables: dict[str, Any] | None = None) -> Any:
        """The `data` of an operation that must succeed."""
        messages = await self.run(query, variables)
        assert len(messages) == 2, messages
        result, complete = messages
        assert isinstance(result, dict), messages
        assert "errors" not in result["payload"], messages
        assert complete == {"id": "1", "type": "complete"}
        return result["payload"]["data"]

    async def close(self) -> None:
        await self.incoming.put({"type": "websocket.disconnect", "code": 1000})
        await asyncio.wait_for(self.task, TIMEOUT)


@pytest.fixture
async def socket(app: Starlette) -> AsyncIterator[Socket]:
    socket = Socket(app)
    yield socket
    await socket.close()


async def until_expired() -> None:
    """A token minted with ALMOST_EXPIRED is past its leeway after this."""
    await asyncio.sleep(2.1)


def codes(message: dict[str, Any] | Closed) -> list[str]:
    assert isinstance(message, dict), message
    errors = message["payload"] if message["type"] == "error" else message["payload"]["errors"]
    return [error["extensions"]["code"] for error in errors]


# --- the token's expiry ----------------------------------------------------------------


async def test_an_expired_token_runs_no_more_operations_on_its_socket(
    socket: Socket, app: Starlette
) -> None:
    await socket.connect(mint(app, ttl=ALMOST_EXPIRED))
    assert await socket.data("{ me { id } }") == {"me": {"id": "user-1"}}
    await until_expired()

    [error] = await socket.run(CREATE_LEAD, {"input": {"firstName": "Late"}})
    closed = await socket.receive()
    assert error == {
        "id": "1",
        "type": "error",
        "payload": [{"message": "Token has expired", "extensions": {"code": "UNAUTHENTICATED"}}],
    }
    assert closed == Closed(4403, "Token has expired")
    assert await LeadDocument.find_all().count() == 0


async def test_a_subscription_past_its_token_ends_unauthenticated_and_the_socket_closes(
    socket: Socket, app: Starlette, http: httpx.AsyncClient
) -> None:
    await socket.connect(mint(app, ttl=ALMOST_EXPIRED))
    await socket.subscribe("live", LEAD_ACTIVITY)
    await asyncio.sleep(0.2)  # subscribed (no acknowledgement in the protocol)
    await until_expired()
    headers = {"authorization": f"Bearer {mint(app)}"}
    body = {"query": CREATE_LEAD, "variables": {"input": {"firstName": "Written"}}}
    assert (await http.post("/graphql", json=body, headers=headers)).status_code == 200

    event, complete, closed = await socket.until_done("live") + [await socket.receive()]
    assert isinstance(event, dict)
    assert event["payload"]["data"] is None
    assert codes(event) == ["UNAUTHENTICATED"]
    assert complete == {"id": "live", "type": "complete"}
    assert closed == Closed(4403, "Token has expired")


# --- errors: the same codes, masked and logged -----------------------------------------


async def test_unexpected_failures_are_masked_and_logged_with_the_request_id(
    socket: Socket,
    app: Starlette,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """An unexpected failure reading the lead, as in test_errors.py."""

    async def broken(*args: object) -> LeadDocument:
        raise RuntimeError("pymongo validation detail that must stay in the log")

    monkeypatch.setattr(leads, "get_lead", broken)
    await socket.connect(mint(app))
    query = '{ lead(leadId: "LEAD-BAD") { id } }'
    subscription = 'subscription { leadActivity(leadId: "LEAD-BAD") { activity { id } } }'
    with caplog.at_level(logging.ERROR, logger="crm.errors"):
        answers = [await socket.run(query), await socket.run(subscription, id="2")]

    for result, complete in answers:
        assert isinstance(result, dict)
        assert result["type"] == "next", result
        [error] = result["payload"]["errors"]
        assert error["message"] == "Internal server error", result
        assert error["extensions"] == {"code": "INTERNAL_SERVER_ERROR", "requestId": "ws-test"}
        assert "validation" not in json.dumps(result).lower()
        assert complete == {"id": result["id"], "type": "complete"}
    logged = [r for r in caplog.records if r.message.startswith("unexpected error")]
    assert len(logged) == 2, caplog.records
    assert {getattr(r, "request_id", None) for r in logged} == {"ws-test"}
    assert all(r.exc_info for r in logged)


async def test_errors_carry_the_http_codes(socket: Socket, app: Starlette) -> None:
    await socket.connect(mint(app))
    cases = {
        "{ nope }": "GRAPHQL_VALIDATION_FAILED",
        "{ me { id }": "GRAPHQL_PARSE_FAILED",
        '{ lead(leadId: "LEAD-404") { id } }': "NOT_FOUND",
    }
    for query, code in cases.items():
        first, *_ = await socket.run(query)
        assert codes(first) == [code], (query, first)
    # A syntax error answered the operation; it did not close the socket.
    assert await socket.data("{ me { id } }") == {"me": {"id": "user-1"}}


# --- limits ----------------------------------------------------------------------------


async def test_limits_over_the_socket_are_the_errors_http_gives(
    app: Starlette, settings: Settings
) -> None:
    production = create_app(settings.model_copy(update={"introspection": None}))
    token = mint(app)
    queries = {
        "depth": nested(11),
        "aliases": aliased(31),
        "tokens": with_tokens(2001),
        "introspection": INTROSPECTION,
    }
    transport = httpx.ASGITransport(app=production)
    socket = Socket(production)
    await socket.connect(token)
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://crm.test") as http:
            for name, query in queries.items():
                response = await http.post(
                    "/graphql", json={"query": query}, headers={"authorization": f"Bearer {token}"}
                )
                (over_http,) = response.json()["errors"]
                messages = await socket.run(query)
                assert messages == [{"id": "1", "type": "error", "payload": [over_http]}], name
        assert await socket.data("{ me { id } }") == {"me": {"id": "user-1"}}
    finally:
        await socket.close()


# --- loaders ---------------------------------------------------------------------------


async def test_each_operation_on_a_socket_has_loaders_of_its_own(
    socket: Socket, app: Starlette
) -> None:
    await socket.connect(mint(app))
    await socket.data(CREATE_LEAD, {"input": {"firstName": "Ada", "email": "ada@example.com"}})
    assert await socket.data(EMAILS) == {"lead": {"emails": []}}  # cached by that query's loader

    sent = await socket.data(SEND_EMAIL)
    assert sent["sendEmail"]["lead"]["emails"] == [{"subject": "Hi"}]
    assert await socket.data(EMAILS) == {"lead": {"emails": [{"subject": "Hi"}]}}
