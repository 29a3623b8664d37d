"""searchLeads, LeadFilter.search and duplicate detection, on the stored normalized keys.

What a salesperson types (part of a name, a typo, a phone in any format, an email with a
+tag) finds the lead; every lead writer stores the keys; every query is index-served;
`findDuplicates` is measured for precision and recall on a generated set of near-duplicates.
"""

import random
import re
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from models.database import CommandCounter
from models.lead import NORMALIZED_KEYS, LeadDocument
from schema.root import schema
from services import leads, normalize, search
from services.migration import migrate
from services.viewer import Viewer
from tests.conftest import GraphQLClient, mint
from tests.documents import CREATE_LEAD, LIST_LEADS, UPDATE_LEAD, UPDATE_LEAD_STATUS
from tests.test_imports import csv_bytes, run_import
from tests.test_indexes import explain, stages

SEARCH = """
query Search($q: String!, $first: Int) {
  searchLeads(query: $q, first: $first) {
    lead { leadId } score matchedField highlight
  }
}
"""
DUPLICATES = """
query Duplicates($id: String!) {
  findDuplicates(leadId: $id) { lead { leadId } score rules }
}
"""
CREATE_WITH_DUPLICATES = """
mutation Create($input: CreateLeadInput!) {
  createLead(input: $input) { lead { leadId } duplicates { lead { leadId } score rules } }
}
"""
GRAPHQL_SCHEMA = schema._schema
ADMIN = Viewer(id="tester", name="Tester", email=None, role="admin")


async def create(gql: GraphQLClient, **values: Any) -> str:
    lead_id: str = (await gql(CREATE_LEAD, {"input": values}))["createLead"]["lead"]["leadId"]
    return lead_id


async def hits(gql: GraphQLClient, query: str, first: int = 20) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = (await gql(SEARCH, {"q": query, "first": first}))["searchLeads"]
    return found


@pytest.fixture
async def people(gql: GraphQLClient) -> None:
    await create(
        gql,
        firstName="Zoë",
        lastName="Müller",
        email="Zoe.Mueller@Gmail.com",
        mobile="+1 (415) 555-0100",
        organization="Acme, Inc.",
    )
    await create(gql, firstName="John", lastName="Smith", email="john@globex.com")
    await create(gql, firstName="Smith", lastName="Johnson", organization="Initech")
    await create(gql, firstName="Johnny", lastName="Smithers", organization="Smith & Sons")


@pytest.mark.usefixtures("people")
@pytest.mark.parametrize(
    ("query", "lead_id", "field", "score"),
    [
        ("zoe.mueller+crm@gmail.com", "LEAD-001", "email", 1.0),  # +tag, case, dots
        ("415.555.0100", "LEAD-001", "mobile", 1.0),  # any phone format
        ("(415) 555 0100", "LEAD-001", "mobile", 1.0),
        ("muller zoe", "LEAD-001", "fullName", 0.9),  # exact name, any order, accents
        ("ZOE MÜLLER", "LEAD-001", "fullName", 0.9),
        ("mül", "LEAD-001", "fullName", None),  # a prefix
        ("acme", "LEAD-001", "organization", None),
        ("mueller", "LEAD-001", "email", None),
        ("lead-001", "LEAD-001", "leadId", None),
        ("mullr", "LEAD-001", "fullName", None),  # a letter missing
        ("zoe mulletr", "LEAD-001", "fullName", None),  # a letter too many
    ],
)
async def test_search_finds_the_lead_first(
    gql: GraphQLClient, query: str, lead_id: str, field: str, score: float | None
) -> None:
    found = await hits(gql, query)

    assert found[0]["lead"]["leadId"] == lead_id, found
    assert found[0]["matchedField"] == field
    if score is not None:
        assert found[0]["score"] == score


@pytest.mark.usefixtures("people")
async def test_search_ranks_exact_names_then_whole_words_then_fragments(
    gql: GraphQLClient,
) -> None:
    found = await hits(gql, "john smith")

    # The exact name first; then names whose words start with them, the closer the better:
    # Smith Johnson (one whole word) before Johnny Smithers (two fragments).
    assert [hit["lead"]["leadId"] for hit in found] == ["LEAD-002", "LEAD-003", "LEAD-004"]
    scores = [hit["score"] for hit in found]
    assert scores[0] == 0.9
    assert scores == sorted(scores, reverse=True)
    assert len(set(scores)) == 3
    assert found[2]["highlight"] == "<mark>Johnny</mark> <mark>Smithers</mark>"


@pytest.mark.usefixtures("people")
async def test_a_highlight_is_html_escaped(gql: GraphQLClient) -> None:
    await create(gql, firstName="Bob", organization="<b>Tags</b> & Co")

    found = await hits(gql, "tags")

    assert found[0]["highlight"] == "&lt;b&gt;<mark>Tags</mark>&lt;/b&gt; &amp; Co"


@pytest.mark.usefixtures("people")
async def test_search_stays_in_the_callers_scope(gql: GraphQLClient, app: Any) -> None:
    sales = GraphQLClient(gql.http, mint(app, sub="sam", role="sales", name="Sam"))
    await sales(CREATE_LEAD, {"input": {"firstName": "Zoe", "lastName": "Sales"}})

    found = await hits(sales, "zoe")

    assert [hit["lead"]["leadId"] for hit in found] == ["LEAD-005"]


async def test_a_hit_s_lead_shows_its_whole_timeline(
    gql: GraphQLClient, commands: CommandCounter
) -> None:
    for name in ("Ada", "Alan", "Grace"):
        lead_id = await create(gql, firstName=name, lastName="Hopper")
        for status in ("CONTACTED", "NURTURE")[: len(name) - 3]:
            await gql(UPDATE_LEAD_STATUS, {"leadId": lead_id, "status": status})
    query = """{ searchLeads(query: "hopper") {
      lead { leadId activitiesCount activities { type } } } }"""

    commands.reset()
    found = (await gql(query))["searchLeads"]

    timelines = {hit["lead"]["leadId"]: hit["lead"]["activities"] for hit in found}
    assert {lead: [entry["type"] for entry in entries] for lead, entries in timelines.items()} == {
        "LEAD-001": ["CREATED"],
        "LEAD-002": ["STATUS_CHANGED", "CREATED"],
        "LEAD-003": ["STATUS_CHANGED", "STATUS_CHANGED", "CREATED"],
    }
    assert all(
        hit["lead"]["activitiesCount"] == len(timelines[hit["lead"]["leadId"]]) for hit in found
    )
    assert commands.count <= 4  # the search's look-ups, then the timelines of all hits at once


@pytest.mark.parametrize(
    ("variables", "field"),
    [
        ({"q": "a " * 11}, "query"),
        ({"q": "x" * 201}, "query"),
        ({"q": "zoe", "first": 0}, "first"),
        ({"q": "zoe", "first": 101}, "first"),
    ],
)
async def test_bad_searches_are_refused(
    gql: GraphQLClient, variables: dict[str, Any], field: str
) -> None:
    errors = await gql.errors(SEARCH, variables)

    assert errors[0]["extensions"]["code"] == "BAD_USER_INPUT"
    assert [e["field"] for e in errors[0]["extensions"]["fieldErrors"]] == [field]


@pytest.mark.usefixtures("people")
async def test_search_costs_the_same_few_commands_however_many_leads(
    gql: GraphQLClient, commands: CommandCounter
) -> None:
    costs = []
    for extra in (0, 40):
        for n in range(extra):
            await leads.create_lead(ADMIN, {"first_name": f"Zed{n}", "last_name": "Smith"})
        commands.reset()
        await hits(gql, "smtih")  # all three tiers run: exact name, prefixes, typos
        costs.append(commands.count)

    assert costs[0] == costs[1] <= 3, costs


# --- the keys, written by every path ---------------------------------------------------------


async def stored(lead_id: str) -> dict[str, Any]:
    raw = await LeadDocument.get_pymongo_collection().find_one({"lead_id": lead_id})
    assert raw is not None
    return dict(raw)


async def test_every_writer_stores_the_keys_of_what_it_wrote(gql: GraphQLClient) -> None:
    lead_id = await create(gql, firstName="Ada", email="ada@example.com")
    assert (await stored(lead_id))["emailKey"] == "ada@example.com"

    await gql(UPDATE_LEAD, {"leadId": lead_id, "input": {"email": "Ada+x@GMail.com"}})
    keys = await stored(lead_id)
    assert keys["emailKey"] == "ada@gmail.com"
    assert "e:ada@example.com" not in keys["searchKeys"]
    assert [hit["lead"]["leadId"] for hit in await hits(gql, "ada@gmail.com")] == [lead_id]

    # A lead stored by the seed's backend (no keys) gets them from the start-up migration.
    await LeadDocument.get_pymongo_collection().insert_one(
        {
            "lead_id": "LEAD-050",
            "firstName": "Grace",
            "lastName": "Hopper",
            "createdAt": "2025-01-20T10:00:00",
            "updatedAt": "2025-01-20T10:00:00",
            "activities": [],
        }
    )
    assert await hits(gql, "hopper") == []
    report = await migrate()
    assert report.changed["leads.keys"] == 1
    assert (await stored("LEAD-050"))["nameKey"] == "grace hopper"
    assert [hit["lead"]["leadId"] for hit in await hits(gql, "hopper")] == ["LEAD-050"]


# --- index-served ------------------------------------------------------------------------------


def query_shapes() -> dict[str, dict[str, Any]]:
    """Every filter search and duplicate detection send (services/search.py, leads.py)."""
    terms = normalize.search_terms("jane do")
    keys = normalize.lead_keys({"first_name": "Jane", "last_name": "Doe", "email": "j@x.com"})
    return {
        "exact": search._in(search._exact_keys("jane@acme.com")),
        "prefixes": {"searchKeys": {"$all": [normalize.WORD + term for term in terms]}},
        "typos": search.typo_query(["jane", "smtih"]) or {},
        "duplicates": search._in(search.duplicate_keys(keys)),
        "filter": leads.lead_query({"search": "jane do"}),
    }


@pytest.mark.parametrize("shape", list(query_shapes()))
async def test_every_search_query_is_served_by_the_keys_index(shape: str) -> None:
    for n in range(30):  # an engine may not plan an empty collection
        await leads.create_lead(ADMIN, {"first_name": f"Jane{n}", "last_name": "Doe"})

    plan = await explain(query_shapes()[shape], None)

    if "queryPlanner" in plan:  # MongoDB
        winning = plan["queryPlanner"]["winningPlan"]
        assert "COLLSCAN" not in stages(winning), plan
        assert "searchKeys_1" in str(winning), plan
    else:  # the embedded engine: SQLite's plan
        details = plan["details"]["engine_details"]
        assert not any(re.match(r"SCAN documents\b", step) for step in details), details
        # The keys' index is the keyword table (docs/embedded-engine.md §33): a MATCH.
        matches = [s for s in details if re.search(r"crm_keywords VIRTUAL TABLE INDEX \d+:M", s)]
        assert matches, details


async def test_the_filter_matches_word_starts_with_the_keys(gql: GraphQLClient) -> None:
    await create(gql, firstName="Jane", lastName="Doe", email="jd@mail.example.com")
    await create(gql, firstName="Janet", organization="Example Ltd")

    async def found(text: str) -> list[str]:
        nodes = (await gql(LIST_LEADS, {"filter": {"search": text}}))["leads"]["nodes"]
        return sorted(node["leadId"] for node in nodes)

    assert await found("jan") == ["LEAD-001", "LEAD-002"]
    assert await found("example") == ["LEAD-001", "LEAD-002"]
    assert await found("jane mail") == ["LEAD-001"]
    assert await found("ane") == []  # words match from their start


# --- duplicates --------------------------------------------------------------------------------


async def test_create_lead_reports_duplicates(gql: GraphQLClient) -> None:
    await create(gql, firstName="Jon", lastName="Smith", email="jon@acme.com", organization="Acme")
    await create(gql, firstName="Jon", lastName="Smithe", website="https://www.acme.com/about")

    created = await gql(
        CREATE_WITH_DUPLICATES,
        {"input": {"firstName": "John", "lastName": "Smith", "email": "JON+crm@acme.com"}},
    )

    candidates = created["createLead"]["duplicates"]
    assert [(c["lead"]["leadId"], c["rules"]) for c in candidates] == [
        ("LEAD-001", ["EMAIL", "NAME_SIMILAR", "DOMAIN"]),
        ("LEAD-002", ["NAME_SIMILAR", "DOMAIN"]),
    ]
    assert candidates[0]["score"] > candidates[1]["score"] >= 0.5


async def test_a_shared_phone_or_free_mail_domain_is_no_evidence(gql: GraphQLClient) -> None:
    for n in range(7):  # a switchboard number on a whole office's leads
        await create(gql, firstName=f"Clerk{n}", lastName="Office", mobile="+1 212 555 0000")
    await create(gql, firstName="Amy", email="amy@gmail.com")
    lead_id = await create(gql, firstName="Bea", email="bea@gmail.com", mobile="212-555-0000")

    found = (await gql(DUPLICATES, {"id": lead_id}))["findDuplicates"]

    assert found == []


async def test_find_duplicates_of_an_unknown_lead_is_not_found(gql: GraphQLClient) -> None:
    errors = await gql.errors(DUPLICATES, {"id": "LEAD-404"})

    assert errors[0]["extensions"]["code"] == "NOT_FOUND"


# --- precision and recall on generated near-duplicates ----------------------------------------

FIRST_NAMES = ["Anna", "Björn", "Carlos", "Dana", "Émile", "Fatima", "Gustav", "Hana",
               "Igor", "Julia", "Kenji", "Léa", "Mohammed", "Nora", "Oscar", "Priya",
               "Quentin", "Rosa", "Søren", "Tomás"]  # fmt: skip
LAST_NAMES = ["Andersen", "Bianchi", "Castillo", "Dubois", "Eriksson", "Fischer", "García",
              "Hoffmann", "Ivanova", "Jansen", "Kowalski", "Lefèvre", "Moreau", "Novak",
              "Okafor", "Petrov", "Quinn", "Rossi", "Schröder", "Tanaka"]  # fmt: skip
COMPANIES = ["Acme", "Globex", "Initech", "Umbrella", "Hooli", "Vandelay", "Stark", "Wayne"]


def plain(text: str) -> str:
    return "".join(
        c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c)
    ).lower()


@dataclass
class Person:
    first: str
    last: str
    company: str
    phone: str


def typo(word: str, rng: random.Random) -> str:
    i = rng.randrange(1, len(word) - 1)
    kind = rng.choice(["drop", "swap", "double"])
    if kind == "drop":
        return word[:i] + word[i + 1 :]
    if kind == "swap":
        return word[:i] + word[i + 1] + word[i] + word[i + 2 :]
    return word[:i] + word[i] + word[i:]


def variants(person: Person, rng: random.Random) -> Iterator[dict[str, Any]]:
    """The original record, and how the same person arrives again from forms and imports."""
    email = f"{plain(person.first)}.{plain(person.last)}@{person.company.lower()}.com"
    digits = person.phone
    yield {"firstName": person.first, "lastName": person.last, "email": email,
           "mobile": f"+1 {digits[:3]} {digits[3:6]} {digits[6:]}",
           "organization": person.company}  # fmt: skip
    kind = rng.choice(["typo", "swapped", "phone", "tag", "accents"])
    if kind == "typo":  # a misspelt surname, same work email
        yield {"firstName": person.first, "lastName": typo(person.last, rng), "email": email}
    elif kind == "swapped":  # first and last swapped, phone written another way
        yield {"firstName": person.last, "lastName": person.first,
               "mobile": f"({digits[:3]}) {digits[3:6]}-{digits[6:]}"}  # fmt: skip
    elif kind == "phone":  # another email, the phone with its country code
        yield {"firstName": person.first, "lastName": person.last,
               "email": f"{plain(person.first)}{rng.randint(1, 99)}@gmail.com",
               "mobile": f"+1{digits}"}  # fmt: skip
    elif kind == "tag":  # a +tag and upper case in the email
        local, domain = email.split("@")
        yield {"firstName": person.first.upper(), "email": f"{local}+news@{domain.upper()}"}
    else:  # accents dropped, typo in the first name, same company
        yield {"firstName": typo(plain(person.first), rng), "lastName": plain(person.last),
               "organization": f"{person.company} Inc."}  # fmt: skip


async def test_find_duplicates_precision_and_recall(gql: GraphQLClient) -> None:
    rng = random.Random(7)
    names = rng.sample([(f, last) for f in FIRST_NAMES for last in LAST_NAMES], 120)
    people = [
        Person(
            *names[n],
            rng.choice(COMPANIES),
            f"{rng.randint(200, 989)}555{rng.randint(1000, 9999)}",
        )
        for n in range(120)
    ]
    owner_of: dict[str, int] = {}
    for number, person in enumerate(people):
        records = list(variants(person, rng))
        if number % 3:  # a third of the people come once only: distractors
            records = records[:1]
        for values in records:
            lead = await leads.create_lead(ADMIN, {
                {"firstName": "first_name", "lastName": "last_name", "email": "email",
                 "mobile": "mobile", "organization": "organization"}[k]: v
                for k, v in values.items()
            })  # fmt: skip
            owner_of[lead.lead_id] = number
    # Namesakes: the same name at another company, with their own email and phone. A shared
    # name alone is not a duplicate (NAME weighs 0.4, under the 0.5 reported).
    for n, person in enumerate(people[:20]):
        namesake = await leads.create_lead(ADMIN, {
            "first_name": person.first, "last_name": person.last,
            "email": f"{plain(person.first)}@namesake{n}.org", "organization": f"Namesake {n}",
        })  # fmt: skip
        owner_of[namesake.lead_id] = -1 - n
    truth = {
        frozenset((a, b))
        for a in owner_of
        for b in owner_of
        if a < b and owner_of[a] == owner_of[b]
    }
    # Two people that happen to share name and company are the same person to any rule:
    # counted as true pairs only if the generator made them one person.
    found: set[frozenset[str]] = set()
    for lead_id in owner_of:
        for candidate in await search.find_duplicates(ADMIN, lead_id):
            found.add(frozenset((lead_id, candidate.lead.lead_id)))

    true_positives = len(found & truth)
    precision = true_positives / len(found)
    recall = true_positives / len(truth)
    print(f"\nfindDuplicates: {len(truth)} true pairs among {len(owner_of)} leads; "
          f"precision {precision:.3f}, recall {recall:.3f}")  # fmt: skip

    ranks = []
    for a, b in truth:
        duplicate = await LeadDocument.get_pymongo_collection().find_one({"lead_id": b})
        assert duplicate is not None
        query = " ".join(p for p in (duplicate.get("firstName"), duplicate.get("lastName")) if p)
        # not the query's own lead; a namesake with the very same score ranks with it
        scores = {
            hit.lead.lead_id: hit.score for hit in await search.search_leads(ADMIN, query, 20)
        }
        scores.pop(b, None)
        better = sum(1 for score in scores.values() if a in scores and score > scores[a])
        ranks.append(better + 1 if a in scores else None)
    top3 = sum(1 for rank in ranks if rank is not None and rank <= 3) / len(ranks)
    print(f"searchLeads by the duplicate's name: original in the top 3 for {top3:.0%}; "
          f"ranks {sorted(r for r in ranks if r)}")  # fmt: skip

    assert precision >= 0.95
    assert recall >= 0.9
    assert top3 >= 0.9


IMPORT_DUPLICATES = """
query Duplicates($id: ID!, $after: String) {
  importJob(id: $id) {
    duplicates(first: 1, after: $after) {
      totalCount pageInfo { hasNextPage endCursor }
      nodes { row leadId candidates { lead { leadId } score rules } }
    }
  }
}
"""


@pytest.mark.parametrize("dry_run", [False, True])
async def test_import_rows_report_their_duplicates(
    http: httpx.AsyncClient, gql: GraphQLClient, dry_run: bool
) -> None:
    await create(gql, firstName="Jane", lastName="Doe", email="jane@acme.com")
    await create(gql, firstName="Omar", lastName="Haddad", mobile="+44 20 7946 0958")
    content = csv_bytes(
        [
            ["First Name", "Last Name", "Email", "Phone"],
            ["Jane", "Doe", "JANE+x@acme.com", ""],  # row 2: the email, with a tag
            ["Ann", "Other", "ann@other.com", ""],  # row 3: nobody
            ["Omar", "Hadad", "", "+44 20-7946-0958"],  # row 4: the phone; the name one off
        ]
    )

    job = await run_import(http, gql, content, "people.csv", dryRun=dry_run)

    pages, after = [], None
    while True:
        found = (await gql(IMPORT_DUPLICATES, {"id": job["id"], "after": after}))["importJob"]
        page = found["duplicates"]
        pages += page["nodes"]
        if not page["pageInfo"]["hasNextPage"]:
            break
        after = page["pageInfo"]["endCursor"]
    assert page["totalCount"] == 2
    assert [(node["row"], node["leadId"]) for node in pages] == [
        (2, None if dry_run else "LEAD-003"),
        (4, None if dry_run else "LEAD-005"),
    ]
    assert [[(c["lead"]["leadId"], c["rules"]) for c in node["candidates"]] for node in pages] == [
        [("LEAD-001", ["EMAIL", "NAME", "DOMAIN"])],
        [("LEAD-002", ["PHONE", "NAME_SIMILAR"])],
    ]


async def test_the_keys_leave_by_no_door(http: httpx.AsyncClient, gql: GraphQLClient) -> None:
    lead_id = await create(gql, firstName="Ada", email="ada@example.com", mobile="+1 415 555 0100")
    auth = {"authorization": f"Bearer {gql.token}"}

    one = (await http.get(f"/api/crm/leads/{lead_id}", headers=auth)).json()
    listed = (await http.get("/api/crm/leads", headers=auth)).json()

    stored = set(await stored_keys(lead_id))
    assert {"searchKeys", "emailKey", "keysVersion"} <= stored
    assert not stored & set(one)
    assert not stored & set(listed[0])
    lead_type = GRAPHQL_SCHEMA.get_type("Lead")
    assert lead_type is not None
    assert not {"searchKeys", "emailKey"} & set(lead_type.fields)  # type: ignore[attr-defined]


async def stored_keys(lead_id: str) -> list[str]:
    """The stored fields of the lead that are its normalized keys."""
    document = await stored(lead_id)
    return [
        name
        for name in document
        if name in {LeadDocument.model_fields[key].alias for key in NORMALIZED_KEYS}
    ]


async def test_the_duplicate_check_adds_one_query_to_create_lead(
    gql: GraphQLClient, commands: CommandCounter
) -> None:
    await create(gql, firstName="Jane", lastName="Doe", email="jane@acme.com")
    plain_create = """
    mutation Create($input: CreateLeadInput!) { createLead(input: $input) { lead { leadId } } }
    """
    variables = {"input": {"firstName": "Jane", "lastName": "Doe", "email": "jane@acme.com"}}

    commands.reset()
    await gql(plain_create, variables)
    without = commands.count
    commands.reset()
    created = await gql(CREATE_WITH_DUPLICATES, variables)
    with_duplicates = commands.count

    assert with_duplicates == without + 1
    assert [c["lead"]["leadId"] for c in created["createLead"]["duplicates"]] == [
        "LEAD-001",
        "LEAD-002",
    ]
