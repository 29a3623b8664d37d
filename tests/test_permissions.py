"""Roles and record scope (README "Teams"): the permission matrix, and the scope-leak hunt.

The matrix is generated from the schema: every Query, Mutation and Subscription field x every
role (the four, and an unknown one) x a lead owned by the caller, by another user, and by no
one. Each root field must declare its action (resolvers/permissions.py) and have a case here
(`CASES`): an operation added without either fails `test_every_operation_declares_its_action`.
The expected outcome comes from the README's "Teams" table as written below (`TABLE`), not from
services/policy.py, so the two are checked against each other.

Everything runs in-process against the real app and database with real JWTs: HTTP through
httpx's ASGI transport, subscriptions over graphql-transport-ws (tests/test_websocket.py's
Socket).
"""

import asyncio
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from graphql import GraphQLField
from starlette.applications import Starlette
from strawberry.types.field import StrawberryField

from models.fields import LeadStatus
from models.lead import LeadDocument
from resolvers.permissions import ACTION_KEY
from schema.root import schema
from services import api_keys, conversion, leads, tasks
from services.policy import Action
from services.viewer import Viewer
from tests.conftest import mint
from tests.test_websocket import Closed, Socket

ROLES = ("admin", "manager", "sales", "viewer", "guest")  # guest: a role the server does not know
OWNERSHIPS = ("own", "other", "unowned")
OTHER_OWNER = "u-other"
NO_SUCH_ID = "0" * 24
ADMIN = Viewer(id="u-setup", name="Setup Admin", email=None, role="admin")

# README "Teams", "may" x role: "all", "own" (leads the caller owns), "yes", or "no".
TABLE: dict[Action, dict[str, str]] = {
    Action.IDENTIFY: dict.fromkeys(ROLES, "yes"),  # `me`: any valid token
    Action.READ: {"admin": "all", "manager": "all", "sales": "own", "viewer": "all"},
    Action.CREATE: {"admin": "yes", "manager": "yes", "sales": "yes", "viewer": "no"},
    Action.WRITE: {"admin": "all", "manager": "all", "sales": "own", "viewer": "no"},
    Action.ASSIGN: {"admin": "yes", "manager": "yes", "sales": "no", "viewer": "no"},
    Action.DELETE: {"admin": "yes", "manager": "yes", "sales": "no", "viewer": "no"},
    Action.MANAGE_KEYS: {"admin": "yes", "manager": "no", "sales": "no", "viewer": "no"},
}


def sub_of(role: str) -> str:
    return f"u-{role}"


def expected(action: Action, role: str, ownership: str) -> str:
    """OK, FORBIDDEN or NOT_FOUND (for a list: the lead is absent) for one case."""
    may = TABLE[action].get(role, "no")  # any other role: FORBIDDEN for all but `me`
    if may == "no":
        return "FORBIDDEN"
    if may == "own" and ownership != "own":
        return "NOT_FOUND"
    return "OK"


# --- the operations -------------------------------------------------------------------------


@dataclass
class Target:
    """What a case works on: a lead with the owner the case needs, and what hangs off it."""

    lead_id: str
    name: str
    deal_id: str | None = None
    task_id: str | None = None
    key_id: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Case:
    """How to run one root field against a target, and read its outcome."""

    action: Action
    document: str
    variables: Callable[[Target, str], dict[str, Any]] = lambda target, sub: {}
    needs: tuple[str, ...] = ("lead",)
    lists: Callable[[Any, Target], bool] | None = None
    """For lists: whether the target is in the answer (absent counts as NOT_FOUND)."""
    check: Callable[[Any, Target, str], None] | None = None
    """Extra assertions on a successful answer."""
    gate_only: bool = False
    """Only whether the permission lets the caller through is compared (not FORBIDDEN:
    PASSES): for operations on other records than leads, with ids no one has here."""
    upload: bool = False
    """Sent as a GraphQL multipart request with a one-row CSV as `$file`."""


def lead_id_of(target: Target, sub: str) -> dict[str, Any]:
    return {"id": target.lead_id}


def owned_by_caller(data: Any, target: Target, sub: str) -> None:
    assert data["createLead"]["lead"]["leadOwnerId"] == sub


CASES: dict[str, Case] = {
    "me": Case(Action.IDENTIFY, "{ me { id role } }", needs=()),
    "lead": Case(Action.READ, "query($id: String!) { lead(leadId: $id) { leadId } }", lead_id_of),
    "leads": Case(
        Action.READ,
        "query($s: String!) { leads(filter: {search: $s}) { totalCount nodes { leadId } } }",
        lambda target, sub: {"s": target.name},
        lists=lambda data, target: (
            [node["leadId"] for node in data["leads"]["nodes"]] == [target.lead_id]
            and data["leads"]["totalCount"] == 1
        ),
    ),
    "deal": Case(
        Action.READ,
        "query($id: String!) { deal(dealId: $id) { dealId } }",
        lambda target, sub: {"id": target.deal_id},
        needs=("lead", "deal"),
    ),
    "deals": Case(
        Action.READ,
        "{ deals { totalCount nodes { dealId leadId } } }",
        needs=("lead", "deal"),
        lists=lambda data, target: (
            target.deal_id in [node["dealId"] for node in data["deals"]["nodes"]]
            and data["deals"]["totalCount"] == len(data["deals"]["nodes"])
        ),
    ),
    "apiKeys": Case(Action.MANAGE_KEYS, "{ apiKeys { id } }", needs=()),
    "createLead": Case(
        Action.CREATE,
        'mutation { createLead(input: {firstName: "New"}) { lead { leadId leadOwnerId } } }',
        needs=(),
        check=owned_by_caller,
    ),
    "updateLead": Case(
        Action.WRITE,
        'mutation($id: String!) { updateLead(leadId: $id, input: {jobTitle: "CTO"}) '
        "{ lead { jobTitle } } }",
        lead_id_of,
    ),
    "updateLeadStatus": Case(
        Action.WRITE,
        "mutation($id: String!) { updateLeadStatus(leadId: $id, status: CONTACTED) "
        "{ lead { status } } }",
        lead_id_of,
    ),
    "deleteLead": Case(
        Action.DELETE, "mutation($id: String!) { deleteLead(leadId: $id) { leadId } }", lead_id_of
    ),
    "assignLead": Case(
        Action.ASSIGN,
        'mutation($id: String!) { assignLead(leadId: $id, ownerId: "u-new", ownerName: "New") '
        "{ lead { leadOwnerId } } }",
        lead_id_of,
    ),
    "assignLeads": Case(
        Action.ASSIGN,
        "mutation($s: String!) { assignLeads(filter: {search: $s}, ownerId: "
        '"u-new", ownerName: "New") { count } }',
        lambda target, sub: {"s": target.name},
        lists=lambda data, target: data["assignLeads"]["count"] == 1,
    ),
    "sendEmail": Case(
        Action.WRITE,
        'mutation($id: String!) { sendEmail(leadId: $id, input: {subject: "Hi", body: "Hello"}) '
        "{ email { id } } }",
        lead_id_of,
    ),
    "logCall": Case(
        Action.WRITE,
        "mutation($id: String!) { logCall(leadId: $id, input: {duration: 60}) { call { id } } }",
        lead_id_of,
    ),
    "createTask": Case(
        Action.WRITE,
        'mutation($id: String!) { createTask(leadId: $id, input: {title: "Call"}) '
        "{ task { id } } }",
        lead_id_of,
    ),
    "updateTask": Case(
        Action.WRITE,
        'mutation($id: ID!) { updateTask(id: $id, input: {title: "Call again"}) '
        "{ task { title } } }",
        lambda target, sub: {"id": target.task_id},
        needs=("lead", "task"),
    ),
    "createNote": Case(
        Action.WRITE,
        'mutation($id: String!) { createNote(leadId: $id, input: {content: "Met"}) '
        "{ note { id } } }",
        lead_id_of,
    ),
    "convertLeadToDeal": Case(
        Action.WRITE,
        "mutation($id: String!) { convertLeadToDeal(leadId: $id) { deal { dealId } } }",
        lead_id_of,
    ),
    "createApiKey": Case(
        Action.MANAGE_KEYS,
        'mutation { createApiKey(input: {name: "Script", role: "viewer"}) { secret } }',
        needs=(),
    ),
    "revokeApiKey": Case(
        Action.MANAGE_KEYS,
        "mutation($id: ID!) { revokeApiKey(id: $id) { revokedAt } }",
        lambda target, sub: {"id": target.key_id},
        needs=("key",),
    ),
    # Import jobs (README "Import and export") go with delete; their own tests cover what they do.
    "importJob": Case(
        Action.DELETE,
        "query($id: ID!) { importJob(id: $id) { id } }",
        lambda target, sub: {"id": NO_SUCH_ID},
        needs=(),
        gate_only=True,
    ),
    "importJobs": Case(Action.DELETE, "{ importJobs { nodes { id } } }", needs=(), gate_only=True),
    "startImport": Case(
        Action.DELETE,
        "mutation($file: Upload!) { startImport(input: {file: $file, dryRun: true}) { id } }",
        needs=(),
        gate_only=True,
        upload=True,
    ),
    "revertImport": Case(
        Action.DELETE,
        "mutation($id: ID!) { revertImport(id: $id) { id } }",
        lambda target, sub: {"id": NO_SUCH_ID},
        needs=(),
        gate_only=True,
    ),
    "importProgress": Case(
        Action.DELETE,
        "subscription($id: ID!) { importProgress(id: $id) { id } }",
        lambda target, sub: {"id": NO_SUCH_ID},
        needs=(),
        gate_only=True,
    ),
    "searchLeads": Case(
        Action.READ,
        "query($s: String!) { searchLeads(query: $s) { lead { leadId } } }",
        lambda target, sub: {"s": target.name},
        lists=lambda data, target: (
            target.lead_id in [hit["lead"]["leadId"] for hit in data["searchLeads"]]
        ),
    ),
    "findDuplicates": Case(
        Action.READ,
        "query($id: String!) { findDuplicates(leadId: $id) { lead { leadId } } }",
        lead_id_of,
    ),
    "mergeLeads": Case(
        Action.DELETE,
        "mutation($id: String!, $d: [String!]!) "
        "{ mergeLeads(primaryLeadId: $id, duplicateLeadIds: $d) { mergedLeadIds } }",
        lambda target, sub: {"id": target.lead_id, "d": [target.extra["duplicate"]]},
        needs=("lead", "duplicate"),
    ),
    "unmergeLeads": Case(
        Action.DELETE,
        "mutation($id: ID!) { unmergeLeads(mergeId: $id) { lead { leadId } } }",
        lambda target, sub: {"id": NO_SUCH_ID},
        needs=(),
        gate_only=True,
    ),
    "leadActivity": Case(
        Action.READ,
        "subscription($id: String) { leadActivity(leadId: $id) { lead { leadId } } }",
        lead_id_of,
    ),
}


def root_fields() -> list[tuple[str, str, GraphQLField]]:
    """(operation type, field name, field) of every root field of the served schema."""
    found = []
    for kind in ("Query", "Mutation", "Subscription"):
        graphql_type = schema._schema.get_type(kind)
        assert graphql_type is not None
        for name, graphql_field in graphql_type.fields.items():  # type: ignore[attr-defined]
            found.append((kind, name, graphql_field))
    return found


def declared_action(graphql_field: GraphQLField) -> Action | None:
    definition = graphql_field.extensions.get("strawberry-definition")
    assert isinstance(definition, StrawberryField)
    action = definition.metadata.get(ACTION_KEY)
    return action if isinstance(action, Action) else None


def test_every_operation_declares_its_action() -> None:
    fields = root_fields()
    undeclared = [
        name for _, name, graphql_field in fields if declared_action(graphql_field) is None
    ]
    assert not undeclared, f"root fields without a permission (permission_field): {undeclared}"
    without_case = [name for _, name, _ in fields if name not in CASES]
    assert not without_case, f"root fields without a case in test_permissions.CASES: {without_case}"
    for _, name, graphql_field in fields:
        assert declared_action(graphql_field) is CASES[name].action, name


# One test per root field (a clean database each), its cases: every role x every ownership.
OPERATIONS = [name for _, name, _ in root_fields() if name in CASES]
MATRIX_SIZE = len(OPERATIONS) * len(ROLES) * len(OWNERSHIPS)


async def make_target(ownership: str, role: str, needs: tuple[str, ...], tag: str) -> Target:
    """A lead with the case's owner (created by an admin through the services), and what the
    case needs hanging off it."""
    name = f"Matrix{tag}"
    target = Target(lead_id="LEAD-NONE", name=name)
    if "lead" in needs:
        owner = {"own": sub_of(role), "other": OTHER_OWNER, "unowned": None}[ownership]
        values = {"first_name": name, "email": "m@example.com", "lead_owner": "Owner"}
        copies = 2 if "duplicate" in needs else 1  # the same person again, same owner
        created = [
            await leads.create_lead(ADMIN, values, owner_id=owner or ADMIN.id)
            for _ in range(copies)
        ]
        if owner is None:  # a lead from before ownership (seed data): no leadOwnerId at all
            await LeadDocument.get_pymongo_collection().update_many(
                {"_id": {"$in": [lead.id for lead in created]}}, {"$unset": {"leadOwnerId": ""}}
            )
        target.lead_id = created[0].lead_id
        if copies == 2:
            target.extra["duplicate"] = created[1].lead_id
    if "deal" in needs:
        _, deal = await conversion.convert_lead(ADMIN, target.lead_id, {})
        target.deal_id = deal.deal_id
    if "task" in needs:
        task, _ = await tasks.create_task(ADMIN, target.lead_id, {"title": "Call"})
        target.task_id = str(task.id)
    if "key" in needs:
        key, _ = await api_keys.create_api_key(ADMIN, "Old script", "viewer")
        target.key_id = str(key.id)
    return target


def outcome(body: dict[str, Any]) -> tuple[str, Any]:
    errors = body.get("errors")
    if errors:
        codes = {error["extensions"]["code"] for error in errors}
        assert len(codes) == 1, errors
        return codes.pop(), errors
    return "OK", body["data"]


async def run_subscription(
    app: Starlette, token: str, case: Case, target: Target, sub: str
) -> tuple[str, Any]:
    """Subscribe over graphql-transport-ws; for a subscription that starts, write an activity
    on the target and wait for its event."""
    socket = Socket(app)
    try:
        await socket.connect(token)
        await socket.subscribe("1", case.document, case.variables(target, sub))
        # A refused subscription answers at once; a started one waits for events.
        first = asyncio.ensure_future(socket.receive())
        done, _ = await asyncio.wait({first}, timeout=0.3)
        if not done and "lead" in case.needs:
            await leads.update_lead_status(ADMIN, target.lead_id, LeadStatus.NURTURE)
        elif not done:
            return "PASSES", None  # started, and waiting for events: the gate let it through
        message = await first
        assert not isinstance(message, Closed), message
        if message["type"] == "error":
            return outcome({"errors": message["payload"]})
        assert message["type"] == "next", message
        return outcome(message["payload"])
    finally:
        await socket.close()


@pytest.mark.parametrize("name", OPERATIONS)
async def test_permission_matrix(name: str, app: Starlette, http: httpx.AsyncClient) -> None:
    """`name` as every role, on a lead of the caller, of another user, of no one."""
    wrong = []
    for role in ROLES:
        for ownership in OWNERSHIPS:
            want, got, data = await run_case(name, role, ownership, app, http)
            if got != want:
                wrong.append(
                    f"{name} as {role}, lead owned by {ownership}: {got} (want {want}) {data}"
                )
    assert not wrong, "\n".join(wrong)


async def run_case(
    name: str, role: str, ownership: str, app: Starlette, http: httpx.AsyncClient
) -> tuple[str, str, Any]:
    """(expected outcome, outcome, answer) of one case."""
    case = CASES[name]
    want = expected(case.action, role, ownership)
    sub = sub_of(role)
    token = mint(app, sub=sub, name=f"{role.title()} User", role=role)
    target = await make_target(ownership, role, case.needs, tag=f"{name}{role}{ownership}")

    if case.document.startswith("subscription"):
        got, data = await run_subscription(app, token, case, target, sub)
    elif case.upload:
        operations = {"query": case.document, "variables": {"file": None}}
        response = await http.post(
            "/graphql",
            data={"operations": json.dumps(operations), "map": '{"0": ["variables.file"]}'},
            files={"0": ("leads.csv", b"firstName\nAda\n", "text/csv")},
            headers={"authorization": f"Bearer {token}", "apollo-require-preflight": "true"},
        )
        assert response.status_code == 200, response.text
        got, data = outcome(response.json())
    else:
        response = await http.post(
            "/graphql",
            json={"query": case.document, "variables": case.variables(target, sub)},
            headers={"authorization": f"Bearer {token}"},
        )
        assert response.status_code == 200, response.text
        got, data = outcome(response.json())

    if case.gate_only:
        want = "FORBIDDEN" if want == "FORBIDDEN" else "PASSES"
        got = "FORBIDDEN" if got == "FORBIDDEN" else "PASSES"
    if case.lists is not None and got == "OK":
        got = "OK" if case.lists(data, target) else "NOT_FOUND"
    if got == want == "OK" and case.check is not None:
        case.check(data, target, sub)
    if got == want == "OK" and name == "leadActivity":
        assert data["leadActivity"]["lead"]["leadId"] == target.lead_id
    return want, got, data


# --- scope leaks ----------------------------------------------------------------------------


class Rep:
    """A sales user's GraphQL client."""

    def __init__(self, http: httpx.AsyncClient, app: Starlette, sub: str, name: str) -> None:
        self.http = http
        self.token = mint(app, sub=sub, name=name, role="sales")

    async def body(self, query: str, variables: dict[str, Any] | None = None) -> Any:
        response = await self.http.post(
            "/graphql",
            json={"query": query, "variables": variables or {}},
            headers={"authorization": f"Bearer {self.token}"},
        )
        return response.json()

    async def batch(self, operations: list[dict[str, Any]]) -> Any:
        response = await self.http.post(
            "/graphql", json=operations, headers={"authorization": f"Bearer {self.token}"}
        )
        return response.json()


async def owned_lead(owner: str, first_name: str, **values: Any) -> LeadDocument:
    values = {"first_name": first_name, "lead_owner": owner.title(), **values}
    return await leads.create_lead(ADMIN, values, owner_id=owner)


def lead_ids(body: Any) -> set[str]:
    """Every leadId anywhere in a response body."""
    found: set[str] = set()

    def walk(value: Any) -> None:
        if isinstance(value, dict):
            for key, item in value.items():
                if key == "leadId" and isinstance(item, str):
                    found.add(item)
                walk(item)
        elif isinstance(value, list):
            for item in value:
                walk(item)

    walk(body)
    return found


async def test_no_query_shape_reaches_another_owners_lead(
    app: Starlette, http: httpx.AsyncClient
) -> None:
    alice = Rep(http, app, "u-alice", "Alice")
    mine = await owned_lead("u-alice", "Mine", email="shared@example.com", organization="Acme")
    theirs = await owned_lead("u-bob", "Theirs", email="shared@example.com", organization="Acme")
    await conversion.convert_lead(ADMIN, theirs.lead_id, {})
    unowned = await leads.create_lead(ADMIN, {"first_name": "Seed", "lead_owner": "Shariq"})
    await LeadDocument.get_pymongo_collection().update_one(
        {"_id": unowned.id}, {"$unset": {"leadOwnerId": ""}}
    )
    hidden = {theirs.lead_id, unowned.lead_id}

    # Filters and search, also naming the other owner, and every order.
    for query, variables in [
        ("{ leads { totalCount nodes { leadId } } }", {}),
        ('{ leads(filter: {leadOwnerId: "u-bob"}) { totalCount nodes { leadId } } }', {}),
        ('{ leads(filter: {leadOwner: "U-Bob"}) { totalCount nodes { leadId } } }', {}),
        ('{ leads(filter: {search: "shared acme"}) { totalCount nodes { leadId } } }', {}),
        ("query($s: String) { leads(filter: {search: $s}) { totalCount } }", {"s": "Theirs"}),
        ("{ leads(filter: {convertedToDeal: true}) { totalCount nodes { leadId } } }", {}),
        (
            "{ leads(orderBy: {field: LEAD_ID, direction: ASC}) "
            "{ totalCount edges { node { leadId } } } }",
            {},
        ),
    ]:
        body = await alice.body(query, variables)
        assert "errors" not in body, body
        assert not lead_ids(body) & hidden, (query, body)
        counts = [page["totalCount"] for page in body["data"].values()]
        assert counts in ([0], [1]), (query, body)

    # A cursor from another user's page (an admin's, which has every lead) leads only to
    # Alice's leads after it.
    admin = mint(app, sub="u-boss", role="admin")
    page = await http.post(
        "/graphql",
        json={
            "query": "{ leads(first: 1, orderBy: {field: LEAD_ID, direction: ASC}) "
            "{ pageInfo { endCursor } } }"
        },
        headers={"authorization": f"Bearer {admin}"},
    )
    cursor = page.json()["data"]["leads"]["pageInfo"]["endCursor"]
    body = await alice.body(
        "query($after: String) { leads(after: $after, orderBy: {field: LEAD_ID, direction: ASC}) "
        "{ nodes { leadId } } }",
        {"after": cursor},
    )
    assert not lead_ids(body) & hidden, body

    # Aliases and fragments asking for the other lead directly: null + NOT_FOUND each.
    body = await alice.body(
        "fragment F on Lead { leadId emails { subject } deal { dealId leadId } } "
        "query($a: String!, $b: String!, $c: String!) { a: lead(leadId: $a) { ...F } "
        "b: lead(leadId: $b) { ... on Lead { leadId } } mine: lead(leadId: $c) { leadId } }",
        {"a": theirs.lead_id, "b": unowned.lead_id, "c": mine.lead_id},
    )
    assert body["data"] == {"a": None, "b": None, "mine": {"leadId": mine.lead_id}}, body
    assert {error["extensions"]["code"] for error in body["errors"]} == {"NOT_FOUND"}

    # Nested deal → lead: the other owner's deal is not found, nor listed.
    converted = await LeadDocument.find_one({"lead_id": theirs.lead_id})
    assert converted is not None
    assert converted.deal_id is not None
    body = await alice.body(
        "query($d: String!) { deal(dealId: $d) { dealId leadId } deals { totalCount nodes "
        "{ dealId leadId } } }",
        {"d": converted.deal_id},
    )
    assert body["data"] is None or body["data"].get("deal") is None, body
    assert not lead_ids(body) & hidden, body

    # Every mutation on the other lead: NOT_FOUND, nothing written.
    before = await LeadDocument.find_one({"lead_id": theirs.lead_id})
    for mutation in [
        'updateLead(leadId: $id, input: {jobTitle: "X"}) { lead { leadId } }',
        "updateLeadStatus(leadId: $id, status: JUNK) { lead { leadId } }",
        'sendEmail(leadId: $id, input: {subject: "s", body: "b"}) { lead { leadId } }',
        "logCall(leadId: $id, input: {duration: 1}) { lead { leadId } }",
        'createTask(leadId: $id, input: {title: "t"}) { lead { leadId } }',
        'createNote(leadId: $id, input: {content: "c"}) { lead { leadId } }',
        "convertLeadToDeal(leadId: $id) { lead { leadId } }",
    ]:
        for lead_id in hidden:
            body = await alice.body(f"mutation($id: String!) {{ {mutation} }}", {"id": lead_id})
            assert [error["extensions"]["code"] for error in body["errors"]] == ["NOT_FOUND"]
    after = await LeadDocument.find_one({"lead_id": theirs.lead_id})
    assert before is not None
    assert after is not None
    assert after.activities == before.activities
    assert after.updated_at == before.updated_at

    # A task of the other lead, updated by its id: NOT_FOUND.
    task, _ = await tasks.create_task(ADMIN, theirs.lead_id, {"title": "Bob's"})
    body = await alice.body(
        'mutation($id: ID!) { updateTask(id: $id, input: {title: "Mine now"}) { task { id } } }',
        {"id": str(task.id)},
    )
    assert [error["extensions"]["code"] for error in body["errors"]] == ["NOT_FOUND"]

    # Batched requests: each operation is scoped on its own.
    body = await alice.batch(
        [
            {
                "query": "query($id: String!) { lead(leadId: $id) { leadId } }",
                "variables": {"id": theirs.lead_id},
            },
            {"query": "{ leads { nodes { leadId } } }"},
        ]
    )
    assert body[0]["data"] == {"lead": None}
    assert lead_ids(body) == {mine.lead_id}


async def test_a_subscription_without_a_lead_id_carries_only_own_leads(
    app: Starlette, http: httpx.AsyncClient
) -> None:
    mine = await owned_lead("u-alice", "Mine")
    theirs = await owned_lead("u-bob", "Theirs")
    socket = Socket(app)
    try:
        await socket.connect(mint(app, sub="u-alice", name="Alice", role="sales"))
        await socket.subscribe(
            "1", "subscription { leadActivity { lead { leadId } activity { type } } }"
        )
        await asyncio.sleep(0.1)
        await leads.update_lead_status(ADMIN, theirs.lead_id, LeadStatus.JUNK)
        await leads.update_lead_status(ADMIN, mine.lead_id, LeadStatus.CONTACTED)
        message = await socket.receive()
        assert isinstance(message, dict), message
        assert message["type"] == "next", message
        assert message["payload"]["data"]["leadActivity"]["lead"]["leadId"] == mine.lead_id
        # Assigned away: the ASSIGNED entry reaches Alice, then nothing more of that lead.
        await leads_assign(mine.lead_id, "u-bob")
        message = await socket.receive()
        assert isinstance(message, dict), message
        event = message["payload"]["data"]["leadActivity"]
        assert event == {"lead": {"leadId": mine.lead_id}, "activity": {"type": "ASSIGNED"}}
        await leads.update_lead_status(ADMIN, mine.lead_id, LeadStatus.JUNK)
        back = await owned_lead("u-alice", "Later")
        message = await socket.receive()
        assert isinstance(message, dict), message
        assert message["payload"]["data"]["leadActivity"]["lead"]["leadId"] == back.lead_id
    finally:
        await socket.close()


async def leads_assign(lead_id: str, owner: str) -> None:
    from services.assignment import assign_lead

    await assign_lead(ADMIN, lead_id, owner, owner.title())
