"""Hostile input: Schemathesis fuzzes every query and mutation of a live `crm serve`, and
over-long values get clear BAD_USER_INPUT errors without writing anything.

The fuzzer loads the schema by introspection from the running server, lets Schemathesis
(hypothesis-graphql underneath) generate valid and invalid documents for each root field,
puts real ids (and well-formed addresses, in-range numbers…) into most of the arguments that
take them, so that documents also reach existing records and the resolvers' success paths,
and sends them with an admin token, asking for either response media type. Every response
must be a GraphQL response without a server error: HTTP < 500, no INTERNAL_SERVER_ERROR, an
`extensions.code` on every error, no stack trace or database text. Runs are bounded and
derandomized, so CI sees the same examples.

Also here: every documented length limit refuses limit+1 characters with BAD_USER_INPUT
naming the field, writes nothing, and accepts the limit; very long arguments (search, ids,
cursors) get client errors.
"""

import os
import string
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta, timezone
from random import Random
from typing import Any, ClassVar, NamedTuple

import graphql
import httpx
import pytest
import requests
import schemathesis
from hypothesis import strategies as st
from schemathesis.graphql import nodes
from strawberry.utils.str_converters import to_camel_case

from models import DOCUMENT_MODELS
from models.fields import LeadFields, Text, specs
from tests.conftest import GraphQLClient
from tests.fuzzing import GeneratedCase, fuzz_every_operation
from tests.live_server import LiveServer, serve

# Examples per root field (15 of them): valid documents, then schema-invalid ones. Hypothesis
# may stop early for a field whose space of documents is small (`me`), hence a total minimum.
POSITIVE_EXAMPLES = 20
NEGATIVE_EXAMPLES = 8
MIN_TOTAL_EXAMPLES = 350
# How often an argument that has real values (ids, valid addresses…) gets one of them.
SWAP_RATE = 0.6


JSON = "application/json"
GRAPHQL_RESPONSE = "application/graphql-response+json"
# What a well-formed, authorized request may fail with; request errors only for invalid ones.
RESOLVER_CODES = {"NOT_FOUND", "BAD_USER_INPUT", "CONFLICT"}
REQUEST_CODES = {"GRAPHQL_PARSE_FAILED", "GRAPHQL_VALIDATION_FAILED", "BAD_REQUEST"}
# Text that must never reach a client (unless the request itself carried it).
LEAKS = ("Traceback", 'File "', "pymongo", "OperationFailure", "bson", "sqlite", "mongoeco")


def _date_times() -> st.SearchStrategy[graphql.ValueNode]:
    """DateTime literals: valid ones with all kinds of offsets, naive ones, and garbage."""
    offsets = st.timedeltas(min_value=-timedelta(hours=23), max_value=timedelta(hours=23)).map(
        lambda delta: timezone(timedelta(minutes=delta // timedelta(minutes=1)))
    )
    aware = st.datetimes(timezones=offsets).map(datetime.isoformat)
    naive = st.datetimes().map(datetime.isoformat)
    garbage = st.text(alphabet=string.printable, max_size=30)
    zulu = aware.map(lambda text: text.replace("+00:00", "Z"))
    return st.one_of(aware, zulu, aware, zulu, naive, garbage).map(nodes.String)  # 2/3 valid


schemathesis.graphql.scalar("DateTime", _date_times())
# startImport's file: a JSON document cannot carry one (that takes a multipart request), so
# any literal in its place must be refused as bad input (tests/test_imports.py uploads files).
schemathesis.graphql.scalar(
    "Upload", st.text(alphabet=string.printable, max_size=20).map(nodes.String)
)


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """`crm serve` in dev mode: the embedded database, or a throwaway database on MONGODB_URI.
    Schemathesis reads the schema by introspection (on in dev mode; asked for anyway)."""
    env = {"CRM_INTROSPECTION": "true"}
    uri = os.environ.get("MONGODB_URI")
    if uri:
        env |= {"MONGODB_URI": uri, "CRM_DB_NAME": f"crm_fuzz_{uuid.uuid4().hex[:8]}"}
    with serve(tmp_path_factory.mktemp("fuzz"), env) as server:
        yield server
    if uri:
        import pymongo

        with pymongo.MongoClient[dict[str, Any]](uri) as client:
            client.drop_database(env["CRM_DB_NAME"])


class RealValues:
    """Values that get past input validation, so that generated documents also reach the
    resolvers' success paths: ids of records that exist on the live server (topped up before
    each root field is fuzzed, as deleteLead and convertLeadToDeal use them up), page sizes
    and durations in range, non-blank texts, well-formed addresses and phone numbers."""

    FIXED: ClassVar[dict[str, list[graphql.ValueNode]]] = {
        "expectedUpdatedAt": [graphql.NullValueNode()],  # else almost always a CONFLICT
        "first": [graphql.IntValueNode(value=str(n)) for n in (0, 1, 5, 20, 100)],
        "duration": [graphql.IntValueNode(value=str(n)) for n in (0, 90, 86_400)],
        "annualRevenue": [graphql.FloatValueNode(value=v) for v in ("0.0", "2500000.5")],
        **{
            name: [graphql.StringValueNode(value=v) for v in ("Ada", "Follow up: Q3 pricing")]
            for name in ("firstName", "subject", "body", "content", "title")
        },
        **{
            name: [graphql.StringValueNode(value=v) for v in ("ann@example.com", "a@x.io, b@y.org")]
            for name in ("email", "to", "cc", "bcc")
        },
        **{
            name: [graphql.StringValueNode(value=v) for v in ("+1 555 0100", "(030) 123-45.67")]
            for name in ("mobile", "phone")
        },
    }

    def __init__(self, url: str, token: str) -> None:
        self.http = httpx.Client(headers={"authorization": f"Bearer {token}"}, timeout=60)
        self.url = url
        self.values: dict[str, list[graphql.ValueNode]] = dict(self.FIXED)
        self.created = 0

    def post(self, query: str, **variables: Any) -> Any:
        body = self.http.post(self.url, json={"query": query, "variables": variables}).json()
        assert "errors" not in body, body
        return body["data"]

    def refresh(self) -> None:
        open_leads = self.post(
            "{ leads(first: 5, filter: {convertedToDeal: false}) { nodes { leadId } } }"
        )["leads"]["nodes"]
        for _ in range(3 - len(open_leads)):
            self._add_lead()
        if not self.post("{ deals(first: 1) { nodes { id } } }")["deals"]["nodes"]:
            lead_id = self._add_lead()
            self.post(
                "mutation($id: String!) { convertLeadToDeal(leadId: $id) { deal { id } } }",
                id=lead_id,
            )
        leads = self.post("{ leads(first: 50) { edges { cursor node { leadId tasks { id } } } } }")[
            "leads"
        ]["edges"]
        deals = self.post(
            "{ deals(first: 20) { nodes { dealId organization { id } contact { id } } } }"
        )["deals"]["nodes"]
        found = {
            "leadId": [edge["node"]["leadId"] for edge in leads],
            "after": [edge["cursor"] for edge in leads],
            "id": [task["id"] for edge in leads for task in edge["node"]["tasks"]],
            "dealId": [deal["dealId"] for deal in deals],
            "organizationId": [
                deal["organization"]["id"] for deal in deals if deal["organization"]
            ],
            "contactId": [deal["contact"]["id"] for deal in deals if deal["contact"]],
        }
        self.values = {
            **self.FIXED,
            **{name: [graphql.StringValueNode(value=v) for v in found[name]] for name in found},
        }

    def _add_lead(self) -> str:
        self.created += 1
        n = self.created
        lead_id: str = self.post(
            "mutation($input: CreateLeadInput!) { createLead(input: $input) { lead { leadId } } }",
            input={
                "firstName": f"Fuzz{n}",
                "lastName": "Target",
                "email": f"fuzz{n}@example.com",
                "mobile": f"+1 555 {n:04d}",
                "organization": f"Fuzz Org {n}",
            },
        )["createLead"]["lead"]["leadId"]
        self.post(
            'mutation($id: String!) { createTask(leadId: $id, input: {title: "Call back"}) '
            "{ task { id } } }",
            id=lead_id,
        )
        return lead_id

    def swap_into(self, document: str, random: Random) -> str:
        """`document` with most arguments and input fields named in `values` set to one of
        those values, where a scalar literal or null was generated (ID and Float
        literals may be generated as Int ones)."""
        values = self.values
        swappable = (
            graphql.StringValueNode,
            graphql.IntValueNode,
            graphql.FloatValueNode,
            graphql.NullValueNode,
        )

        def swap(node: graphql.ArgumentNode | graphql.ObjectFieldNode) -> Any:
            choices = values.get(node.name.value)
            if choices and isinstance(node.value, swappable) and random.random() < SWAP_RATE:
                return type(node)(name=node.name, value=random.choice(choices))
            return None  # keep the generated value

        class Swap(graphql.Visitor):
            def enter_argument(self, node: graphql.ArgumentNode, *_: Any) -> Any:
                return swap(node)

            def enter_object_field(self, node: graphql.ObjectFieldNode, *_: Any) -> Any:
                return swap(node)

        return graphql.print_ast(graphql.visit(graphql.parse(document), Swap()))


def check_response(
    response: schemathesis.Response, document: str, accept: str, valid: bool, repro: str
) -> str:
    """The rules every response obeys, whatever was sent; the outcome ("ok" or the codes)."""
    where = f"\n{repro}\n-> HTTP {response.status_code}: {response.text[:2000]}"
    assert response.status_code < 500, where
    for leak in LEAKS:
        assert leak.lower() not in response.text.lower() or leak.lower() in document.lower(), where
    body = response.json()
    assert isinstance(body, dict), where
    errors = body.get("errors") or []
    codes = set()
    for error in errors:
        code = (error.get("extensions") or {}).get("code")
        assert isinstance(code, str), f"error without extensions.code{where}"
        codes.add(code)
        if code == "BAD_USER_INPUT":
            field_errors = error["extensions"].get("fieldErrors")
            assert field_errors, f"BAD_USER_INPUT without fieldErrors{where}"
            for field_error in field_errors:
                assert isinstance(field_error.get("field"), str), where
                assert isinstance(field_error.get("message"), str), where
    assert "INTERNAL_SERVER_ERROR" not in codes, where
    allowed = RESOLVER_CODES if valid else RESOLVER_CODES | REQUEST_CODES
    assert codes <= allowed, f"unexpected codes {codes - allowed}{where}"
    if not valid:
        assert errors, f"an invalid document was accepted{where}"
    if accept == JSON:
        assert response.status_code == 200, where  # the legacy application/json behaviour
    elif response.status_code == 400:
        assert "data" not in body, where  # a request error: nothing executed
        assert codes, where
        assert codes <= REQUEST_CODES | {"BAD_USER_INPUT"}, where
    else:
        assert response.status_code == 200, where
    if not errors:
        assert body.get("data") is not None, where
    return "+".join(sorted(codes)) or "ok"


def test_fuzzed_operations_never_fail_on_the_server(live: LiveServer) -> None:
    token = live.dev_token()
    auth = {"Authorization": f"Bearer {token}"}
    schema = schemathesis.graphql.from_url(live.url, headers=auth, timeout=30)
    real = RealValues(live.url, token)
    session = requests.Session()

    outcomes: dict[str, Counter[str]] = defaultdict(Counter)

    def send(case: GeneratedCase, random: Random, accept: str) -> None:
        assert isinstance(case.body, str)
        valid = case.meta is None or case.meta.generation.mode.is_positive
        if valid:  # an invalid document must stay invalid
            case.body = real.swap_into(case.body, random)
        headers = {**auth, "Accept": accept}
        response = case.call(base_url=live.url, session=session, headers=headers, timeout=60)
        repro = case.as_curl_command(headers={"Accept": accept}, base_url=live.url)
        outcome = check_response(response, case.body, accept, valid, repro)
        outcomes[f"{case.operation.label} {'valid' if valid else 'invalid'}"][outcome] += 1

    started = time.monotonic()
    operations = fuzz_every_operation(
        schema,
        send,
        positive=POSITIVE_EXAMPLES,
        negative=NEGATIVE_EXAMPLES,
        before_each=real.refresh,
        extra=st.sampled_from([JSON, GRAPHQL_RESPONSE]),  # the Accept header
    )

    total = sum(sum(counter.values()) for counter in outcomes.values())
    print(
        f"\nfuzzed {operations} operations: {total} examples in {time.monotonic() - started:.1f} s"
    )
    for label, counter in outcomes.items():
        summary = ", ".join(f"{n} {outcome}" for outcome, n in counter.most_common())
        print(f"  {label:<36} {sum(counter.values()):>3}: {summary}")
    assert operations >= 15, outcomes
    assert total >= MIN_TOTAL_EXAMPLES, outcomes
    # A masked internal error still logs its traceback: the server log must have none.
    log = "".join(live.output)
    assert "Traceback" not in log, log[-5000:]
    assert '"level":"ERROR"' not in log, log[-5000:]


# --- input size bounds ---------------------------------------------------------------------

LEAD_ID = "LEAD-001"


def text(length: int) -> str:
    return "x" * length


def address(length: int) -> str:
    return "a" * (length - len("@example.com")) + "@example.com"


class Bound(NamedTuple):
    """`mutation`'s input `field` takes at most `limit` characters."""

    mutation: str
    field: str
    limit: int
    others: dict[str, Any] = {}  # the other input fields the mutation needs
    value: Callable[[int], str] = text


def digits(length: int) -> str:
    return "5" * length


def lead_bounds() -> list[Bound]:
    """Every text field of the lead catalog, on create and on update."""
    values = {"email": address, "phone": digits}
    bounds = []
    for name, spec in specs(LeadFields, writable=True).items():
        if isinstance(spec, Text):
            field, value = to_camel_case(name), values.get(spec.format or "", text)
            others = {} if spec.required else {"firstName": "A"}
            bounds.append(Bound("createLead", field, spec.max_length, others, value))
            bounds.append(Bound("updateLead", field, spec.max_length, {}, value))
    return bounds


BOUNDS = [
    *lead_bounds(),
    Bound("sendEmail", "body", 100_000, {"subject": "Hello"}),
    Bound("sendEmail", "subject", 500, {"body": "Hello"}),
    Bound("sendEmail", "cc", 2000, {"subject": "Hello", "body": "Hello"}, address),
    Bound("createNote", "content", 100_000),
    Bound("createNote", "title", 200, {"content": "Met"}),
    Bound("createTask", "title", 200),
    Bound("createTask", "description", 10_000, {"title": "Call"}),
    Bound("updateTask", "title", 200),
    Bound("logCall", "to", 200, {"duration": 60}),
    Bound("convertLeadToDeal", "dealOwner", 200),
]

# Each takes $leadId (LEAD-001) or $id (its task) and $input; unused variables are ignored.
MUTATIONS = {
    "createLead": "mutation($input: CreateLeadInput!) "
    "{ createLead(input: $input) { lead { id } } }",
    "updateLead": "mutation($leadId: String!, $input: UpdateLeadInput!) "
    "{ updateLead(leadId: $leadId, input: $input) { lead { id } } }",
    "sendEmail": "mutation($leadId: String!, $input: SendEmailInput!) "
    "{ sendEmail(leadId: $leadId, input: $input) { email { id } } }",
    "createNote": "mutation($leadId: String!, $input: CreateNoteInput!) "
    "{ createNote(leadId: $leadId, input: $input) { note { id } } }",
    "createTask": "mutation($leadId: String!, $input: CreateTaskInput!) "
    "{ createTask(leadId: $leadId, input: $input) { task { id } } }",
    "updateTask": "mutation($id: ID!, $input: UpdateTaskInput!) "
    "{ updateTask(id: $id, input: $input) { task { id } } }",
    "logCall": "mutation($leadId: String!, $input: LogCallInput!) "
    "{ logCall(leadId: $leadId, input: $input) { call { id } } }",
    "convertLeadToDeal": "mutation($leadId: String!, $input: ConvertLeadInput) "
    "{ convertLeadToDeal(leadId: $leadId, input: $input) { deal { id } } }",
}


async def stored() -> dict[str, list[dict[str, Any]]]:
    """Every stored document by collection: equal before and after means nothing was written."""
    return {
        model.get_collection_name(): await model.get_pymongo_collection().find({}).to_list()
        for model in DOCUMENT_MODELS
    }


@pytest.fixture
async def task_id(gql: GraphQLClient) -> str:
    """LEAD-001, with an email address, and one task on it: the task's id."""
    lead = {"firstName": "Ada", "email": "ada@example.com"}
    await gql(MUTATIONS["createLead"], {"input": lead})
    task = await gql(MUTATIONS["createTask"], {"leadId": LEAD_ID, "input": {"title": "Call"}})
    return str(task["createTask"]["task"]["id"])


@pytest.mark.parametrize("bound", BOUNDS, ids=[f"{b.mutation}.{b.field}" for b in BOUNDS])
async def test_over_long_values_are_refused_and_nothing_is_written(
    gql: GraphQLClient, task_id: str, bound: Bound
) -> None:
    def variables(length: int) -> dict[str, Any]:
        value = bound.value(length)
        return {"leadId": LEAD_ID, "id": task_id, "input": {**bound.others, bound.field: value}}

    before = await stored()
    errors = await gql.errors(MUTATIONS[bound.mutation], variables(bound.limit + 1))
    assert len(errors) == 1, errors
    assert errors[0]["extensions"]["code"] == "BAD_USER_INPUT", errors
    assert errors[0]["extensions"]["fieldErrors"] == [
        {"field": bound.field, "message": f"must be at most {bound.limit} characters"}
    ]
    assert await stored() == before
    await gql(MUTATIONS[bound.mutation], variables(bound.limit))  # the limit itself is fine


async def test_every_over_long_field_is_named_at_once(gql: GraphQLClient) -> None:
    values = {"firstName": text(101), "jobTitle": text(201), "website": text(2049)}
    errors = await gql.errors(MUTATIONS["createLead"], {"input": values})
    assert {item["field"] for item in errors[0]["extensions"]["fieldErrors"]} == set(values)
    assert not (await stored())["leads"]


# --- very long arguments -------------------------------------------------------------------

LONG = "(x" * 50_000  # 100,000 characters, regex metacharacters included
LONG_ARGUMENTS = {
    "leads.search": "query($v: String) { leads(filter: {search: $v}) { totalCount nodes { id } } }",
    "leads.leadOwner": "query($v: String) { leads(filter: {leadOwner: $v}) { totalCount } }",
    "leads.after": "query($v: String) { leads(after: $v) { totalCount } }",
    "lead.leadId": "query($v: String!) { lead(leadId: $v) { id } }",
    "deal.dealId": "query($v: String!) { deal(dealId: $v) { id } }",
    "updateTask.id": "mutation($v: ID!) "
    '{ updateTask(id: $v, input: {title: "T"}) { task { id } } }',
    "createNote.leadId": "mutation($v: String!) "
    '{ createNote(leadId: $v, input: {content: "C"}) { note { id } } }',
    "deleteLead.leadId": "mutation($v: String!) { deleteLead(leadId: $v) { leadId } }",
}


@pytest.mark.parametrize("document", LONG_ARGUMENTS.values(), ids=LONG_ARGUMENTS.keys())
async def test_very_long_arguments_get_a_client_error(
    gql: GraphQLClient, task_id: str, document: str
) -> None:
    before = await stored()
    response = await gql.post(document, {"v": LONG})
    assert response.status_code == 200, response.text[:500]
    body = response.json()
    for error in body.get("errors", []):
        assert error["extensions"]["code"] in {"NOT_FOUND", "BAD_USER_INPUT"}, error
    assert await stored() == before


async def test_a_search_of_many_words_is_refused(gql: GraphQLClient, task_id: str) -> None:
    errors = await gql.errors(
        "query($v: String) { leads(filter: {search: $v}) { totalCount } }", {"v": "a " * 300}
    )
    assert errors[0]["extensions"]["code"] == "BAD_USER_INPUT", errors
    assert [item["field"] for item in errors[0]["extensions"]["fieldErrors"]] == ["search"]


async def test_a_very_long_lead_id_is_not_echoed_back(gql: GraphQLClient) -> None:
    response = await gql.post("query($v: String!) { lead(leadId: $v) { id } }", {"v": LONG})
    assert len(response.content) < 2000, response.text[:300]
