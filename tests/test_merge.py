"""mergeLeads and unmergeLeads: what moves, what is kept, and that neither can half-happen.

Each merge test builds leads with children through the API, then checks the stored documents
(the real embedded database, no mocks). The round trip compares every document of every
collection before the merge and after the unmerge.
"""

import asyncio
from typing import Any

import pytest

from models import DOCUMENT_MODELS
from models.email import EmailDocument
from models.lead import LeadDocument
from models.merge import LeadMergeDocument
from services import merge
from tests.conftest import GraphQLClient, mint
from tests.documents import (
    CONVERT_LEAD,
    CREATE_LEAD,
    CREATE_NOTE,
    CREATE_TASK,
    LOG_CALL,
    SEND_EMAIL,
    UPDATE_LEAD,
)
from tests.steps import CRASH, between, inject

MERGE = """
mutation Merge($primary: String!, $duplicates: [String!]!, $choices: [MergeFieldChoice!],
               $dryRun: Boolean) {
  mergeLeads(primaryLeadId: $primary, duplicateLeadIds: $duplicates, fieldChoices: $choices,
             dryRun: $dryRun) {
    mergeId mergedLeadIds movedEmails movedCalls movedTasks movedNotes movedDeals
    movedActivities changedFields dryRun
    lead { leadId firstName lastName email mobile organization convertedToDeal
           deal { dealId leadId }
           emails { subject } activities { id type description mergeId } }
  }
}
"""
UNMERGE = """
mutation Unmerge($id: ID!) {
  unmergeLeads(mergeId: $id) { lead { leadId email } restoredLeads { leadId email } }
}
"""
PRIMARY, FIRST, SECOND = "LEAD-001", "LEAD-002", "LEAD-003"


async def lead_with_children(gql: GraphQLClient, values: dict[str, Any], tag: str) -> str:
    created = await gql(CREATE_LEAD, {"input": values})
    lead_id: str = created["createLead"]["lead"]["leadId"]
    await gql(
        SEND_EMAIL,
        {
            "leadId": lead_id,
            "input": {"subject": f"hello {tag}", "body": "b", "to": "x@example.com"},
        },
    )
    await gql(LOG_CALL, {"leadId": lead_id, "input": {"duration": 60}})
    await gql(CREATE_TASK, {"leadId": lead_id, "input": {"title": f"task {tag}"}})
    await gql(CREATE_NOTE, {"leadId": lead_id, "input": {"content": f"note {tag}"}})
    return lead_id


@pytest.fixture
async def three(gql: GraphQLClient) -> None:
    """A primary without email or phone, and two duplicates that have them; the entries of
    all three interleave in time."""
    ids = [
        await lead_with_children(gql, {"firstName": "Jane", "lastName": "Doe"}, "a"),
        await lead_with_children(
            gql,
            {"firstName": "Jane", "lastName": "Doe", "email": "jane@acme.com"},
            "b",
        ),
        await lead_with_children(
            gql,
            {"firstName": "Jane", "lastName": "Doe", "mobile": "+1 415 555 0100"},
            "c",
        ),
    ]
    assert ids == [PRIMARY, FIRST, SECOND]
    await gql(UPDATE_LEAD, {"leadId": PRIMARY, "input": {"organization": "Acme"}})


async def everything() -> dict[str, list[dict[str, Any]]]:
    """Every stored document but the merge records, leads without `updatedAt`."""
    stored = {}
    for model in DOCUMENT_MODELS:
        if model is LeadMergeDocument:
            continue
        documents = await model.get_pymongo_collection().find({}).sort("_id", 1).to_list()
        if model is LeadDocument:
            documents = [{k: v for k, v in d.items() if k != "updatedAt"} for d in documents]
        stored[model.get_collection_name()] = documents
    return stored


async def do_merge(gql: GraphQLClient, **variables: Any) -> dict[str, Any]:
    body = {"primary": PRIMARY, "duplicates": [FIRST, SECOND], **variables}
    result: dict[str, Any] = (await gql(MERGE, body))["mergeLeads"]
    return result


@pytest.mark.usefixtures("three")
async def test_merge_moves_everything_to_the_primary_in_time_order(gql: GraphQLClient) -> None:
    before = await LeadDocument.get_pymongo_collection().find({}).sort("_id", 1).to_list()
    ids_before = {
        f"{lead['lead_id']}:{n}": entry["description"]
        for lead in before
        for n, entry in enumerate(lead["activities"], start=1)
    }

    merged = await do_merge(gql)

    assert merged["mergedLeadIds"] == [FIRST, SECOND]
    counts = [merged[f"moved{kind}"] for kind in ("Emails", "Calls", "Tasks", "Notes", "Deals")]
    assert counts == [2, 2, 2, 2, 0]
    lead = merged["lead"]
    # Empty primary fields take the first duplicate's value that is not empty.
    assert (lead["email"], lead["mobile"], lead["organization"]) == (
        "jane@acme.com",
        "+1 415 555 0100",
        "Acme",
    )
    assert sorted(merged["changedFields"]) == ["email", "mobile"]
    assert sorted(email["subject"] for email in lead["emails"]) == ["hello a", "hello b", "hello c"]
    # Newest first: the MERGED entry, then every entry of the three leads by time, each with
    # the id it had before (its own lead's id and place).
    entries = lead["activities"]
    assert entries[0]["type"] == "MERGED"
    assert entries[0]["mergeId"] == merged["mergeId"]
    assert {entry["id"]: entry["description"] for entry in entries[1:]} == ids_before
    stored = await LeadDocument.get_pymongo_collection().find_one({"lead_id": PRIMARY})
    assert stored is not None
    times = [entry["timestamp"] for entry in stored["activities"]]
    assert times == sorted(times)
    remaining = await LeadDocument.get_pymongo_collection().distinct("lead_id")
    assert remaining == [PRIMARY]
    # The merged lead is found by what the duplicates brought.
    hits = await gql('{ searchLeads(query: "+14155550100") { lead { leadId } } }')
    assert [hit["lead"]["leadId"] for hit in hits["searchLeads"]] == [PRIMARY]


@pytest.mark.usefixtures("three")
async def test_field_choices_pick_the_value(gql: GraphQLClient) -> None:
    await gql(UPDATE_LEAD, {"leadId": SECOND, "input": {"email": "jd@second.com"}})

    merged = await do_merge(gql, choices=[{"field": "email", "leadId": SECOND}])

    assert merged["lead"]["email"] == "jd@second.com"


@pytest.mark.usefixtures("three")
async def test_unmerge_restores_every_document_byte_for_byte(gql: GraphQLClient) -> None:
    before = await everything()
    merged = await do_merge(gql)

    undone = (await gql(UNMERGE, {"id": merged["mergeId"]}))["unmergeLeads"]

    assert [lead["leadId"] for lead in undone["restoredLeads"]] == [FIRST, SECOND]
    assert undone["lead"]["email"] is None
    assert await everything() == before
    again = await gql.errors(UNMERGE, {"id": merged["mergeId"]})
    assert again[0]["extensions"]["code"] == "CONFLICT"


@pytest.mark.usefixtures("three")
async def test_a_dry_run_says_what_would_happen_and_writes_nothing(gql: GraphQLClient) -> None:
    before = await everything()

    preview = await do_merge(gql, dryRun=True)

    assert preview["dryRun"] is True
    assert preview["mergeId"] is None
    assert [preview["movedEmails"], preview["movedNotes"], preview["movedActivities"]] == [2, 2, 10]
    assert preview["lead"]["email"] == "jane@acme.com"
    assert await everything() == before
    real = await do_merge(gql)
    keys = (
        "mergedLeadIds",
        "movedEmails",
        "movedCalls",
        "movedTasks",
        "movedNotes",
        "changedFields",
    )
    assert {key: real[key] for key in keys} == {key: preview[key] for key in keys}
    assert real["movedActivities"] == preview["movedActivities"]


@pytest.mark.parametrize("position", between(merge.STEPS).values(), ids=list(between(merge.STEPS)))
@pytest.mark.usefixtures("three")
async def test_an_interrupted_merge_finishes_when_called_again(
    gql: GraphQLClient, monkeypatch: pytest.MonkeyPatch, position: int
) -> None:
    steps = merge.STEPS
    inject(monkeypatch, merge, position, CRASH)
    crashed = await gql.errors(MERGE, {"primary": PRIMARY, "duplicates": [FIRST, SECOND]})
    assert crashed[0]["extensions"]["code"] == "INTERNAL_SERVER_ERROR"
    monkeypatch.setattr(merge, "STEPS", steps)

    merged = await do_merge(gql)

    assert (merged["movedEmails"], merged["movedActivities"]) == (2, 10)
    remaining = await LeadDocument.get_pymongo_collection().distinct("lead_id")
    assert remaining == [PRIMARY]
    lead = await LeadDocument.get_pymongo_collection().find_one({"lead_id": PRIMARY})
    assert lead is not None
    assert [e["type"] for e in lead["activities"]].count("merged") == 1
    assert len(lead["activities"]) == 6 + 10 + 1
    # And the finished merge is one that unmerges cleanly.
    await gql(UNMERGE, {"id": merged["mergeId"]})
    assert sorted(await LeadDocument.get_pymongo_collection().distinct("lead_id")) == [
        PRIMARY,
        FIRST,
        SECOND,
    ]


@pytest.mark.parametrize(
    "position", between(merge.UNMERGE_STEPS).values(), ids=list(between(merge.UNMERGE_STEPS))
)
@pytest.mark.usefixtures("three")
async def test_an_interrupted_unmerge_finishes_when_called_again(
    gql: GraphQLClient, monkeypatch: pytest.MonkeyPatch, position: int
) -> None:
    before = await everything()
    merged = await do_merge(gql)
    steps = merge.UNMERGE_STEPS
    inject(monkeypatch, merge, position, CRASH, name="UNMERGE_STEPS")
    crashed = await gql.errors(UNMERGE, {"id": merged["mergeId"]})
    assert crashed[0]["extensions"]["code"] == "INTERNAL_SERVER_ERROR"
    monkeypatch.setattr(merge, "UNMERGE_STEPS", steps)

    await gql(UNMERGE, {"id": merged["mergeId"]})

    assert await everything() == before


@pytest.mark.usefixtures("three")
async def test_writes_during_a_merge_are_not_lost(gql: GraphQLClient) -> None:
    async def send(lead_id: str, n: int) -> str | None:
        response = await gql.post(
            SEND_EMAIL,
            {
                "leadId": lead_id,
                "input": {"subject": f"race {n}", "body": "b", "to": "x@example.com"},
            },
        )
        body = response.json()
        return None if body.get("errors") else f"race {n}"

    sends = [send(lead_id, n) for n, lead_id in enumerate([FIRST, SECOND, PRIMARY] * 4)]
    results = await asyncio.gather(do_merge(gql), *sends)
    acknowledged = {subject for subject in results[1:] if isinstance(subject, str)}

    lead = await LeadDocument.get_pymongo_collection().find_one({"lead_id": PRIMARY})
    assert lead is not None
    emails = await (
        EmailDocument.get_pymongo_collection()
        .find({"subject": {"$in": sorted(acknowledged)}})
        .to_list()
    )
    # Every acknowledged email exists, on the primary, with its timeline entry there.
    assert {email["subject"] for email in emails} == acknowledged
    assert {email["lead_id"] for email in emails} <= {PRIMARY}
    logged = {entry["description"] for entry in lead["activities"]}
    assert {f"Email sent: {subject}" for subject in acknowledged} <= logged
    assert await LeadDocument.get_pymongo_collection().distinct("lead_id") == [PRIMARY]


async def test_a_converted_duplicate_keeps_its_deal_on_the_primary(gql: GraphQLClient) -> None:
    for values in ({"firstName": "Jane"}, {"firstName": "Jane", "email": "j@x.com"}):
        await gql(CREATE_LEAD, {"input": values})
    await gql(CONVERT_LEAD, {"leadId": FIRST})

    merged = (await gql(MERGE, {"primary": PRIMARY, "duplicates": [FIRST]}))["mergeLeads"]

    assert merged["movedDeals"] == 1
    assert merged["lead"]["convertedToDeal"] is True
    assert merged["lead"]["deal"] == {"dealId": "DEAL-001", "leadId": PRIMARY}
    await gql(UNMERGE, {"id": merged["mergeId"]})
    restored = (await gql('{ lead(leadId: "LEAD-002") { deal { leadId } } }'))["lead"]
    assert restored["deal"] == {"leadId": FIRST}
    primary = await gql('{ lead(leadId: "LEAD-001") { convertedToDeal deal { dealId } } }')
    assert primary["lead"] == {"convertedToDeal": False, "deal": None}


async def test_two_converted_leads_cannot_be_merged(gql: GraphQLClient) -> None:
    for _ in range(2):
        await gql(CREATE_LEAD, {"input": {"firstName": "Jane"}})
    for lead_id in (PRIMARY, FIRST):
        await gql(CONVERT_LEAD, {"leadId": lead_id})

    errors = await gql.errors(MERGE, {"primary": PRIMARY, "duplicates": [FIRST]})

    assert errors[0]["extensions"]["code"] == "CONFLICT"
    assert "DEAL-001" in errors[0]["message"]
    assert "DEAL-002" in errors[0]["message"]


@pytest.mark.parametrize(
    ("variables", "code"),
    [
        ({"duplicates": [PRIMARY]}, "BAD_USER_INPUT"),
        ({"duplicates": [FIRST, FIRST]}, "BAD_USER_INPUT"),
        ({"duplicates": []}, "BAD_USER_INPUT"),
        ({"duplicates": ["LEAD-404"]}, "NOT_FOUND"),
        (
            {"duplicates": [FIRST], "choices": [{"field": "secret", "leadId": FIRST}]},
            "BAD_USER_INPUT",
        ),
        (
            {"duplicates": [FIRST], "choices": [{"field": "email", "leadId": SECOND}]},
            "BAD_USER_INPUT",
        ),
        (
            {"duplicates": [FIRST], "choices": [{"field": "leadOwnerId", "leadId": FIRST}]},
            "BAD_USER_INPUT",
        ),
    ],
)
@pytest.mark.usefixtures("three")
async def test_bad_merges_are_refused_and_change_nothing(
    gql: GraphQLClient, variables: dict[str, Any], code: str
) -> None:
    before = await everything()

    errors = await gql.errors(MERGE, {"primary": PRIMARY, **variables})

    assert errors[0]["extensions"]["code"] == code
    assert await everything() == before


@pytest.mark.usefixtures("three")
async def test_a_sales_user_may_not_merge(gql: GraphQLClient, app: Any) -> None:
    sales = GraphQLClient(gql.http, mint(app, role="sales"))

    errors = await sales.errors(MERGE, {"primary": PRIMARY, "duplicates": [FIRST]})

    assert errors[0]["extensions"]["code"] == "FORBIDDEN"
