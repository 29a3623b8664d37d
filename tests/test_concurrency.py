"""Concurrent mutations: ids never repeat, timelines stay consistent, a lead converts once."""

import asyncio
from typing import Any

from models.contact import ContactDocument
from models.deal import DealDocument
from models.email import EmailDocument
from models.lead import LeadDocument
from models.organization import OrganizationDocument
from tests.conftest import GraphQLClient
from tests.documents import CONVERT_LEAD, CREATE_LEAD, GET_LEAD, SEND_EMAIL, UPDATE_LEAD_STATUS


async def new_lead(gql: GraphQLClient) -> str:
    lead = {"firstName": "Jane", "email": "jane@acme.com", "organization": "Acme Corp"}
    return str((await gql(CREATE_LEAD, {"input": lead}))["createLead"]["lead"]["leadId"])


async def bodies(
    gql: GraphQLClient, query: str, variables: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """Response bodies of the requests, all sent at once."""
    responses = await asyncio.gather(*(gql.post(query, v) for v in variables))
    return [response.json() for response in responses]


def error_codes(body: dict[str, Any]) -> list[str]:
    return [error["extensions"]["code"] for error in body.get("errors", [])]


async def test_concurrent_creates_get_consecutive_unique_lead_ids(gql: GraphQLClient) -> None:
    inputs = [{"input": {"firstName": f"Lead {i}"}} for i in range(40)]

    results = await bodies(gql, CREATE_LEAD, inputs)

    assert [error_codes(body) for body in results] == [[]] * 40
    lead_ids = sorted(body["data"]["createLead"]["lead"]["leadId"] for body in results)
    assert lead_ids == [f"LEAD-{n:03d}" for n in range(1, 41)]
    assert await LeadDocument.get_pymongo_collection().count_documents({}) == 40


async def test_concurrent_status_changes_leave_a_consistent_timeline(gql: GraphQLClient) -> None:
    lead_id = await new_lead(gql)
    statuses = ["CONTACTED", "NURTURE"] * 10

    results = await bodies(
        gql, UPDATE_LEAD_STATUS, [{"leadId": lead_id, "status": s} for s in statuses]
    )

    assert [error_codes(body) for body in results] == [[]] * 20
    assert [body["data"]["updateLeadStatus"]["lead"]["status"] for body in results] == statuses
    lead = (await gql(GET_LEAD, {"leadId": lead_id}))["lead"]
    changes = [a for a in reversed(lead["activities"]) if a["type"] == "STATUS_CHANGED"]
    assert len(changes) == 20  # every call leaves its entry
    assert [change["oldValue"] for change in changes] == [
        "New",
        *(change["newValue"] for change in changes[:-1]),
    ]
    assert lead["status"] == changes[-1]["newValue"].upper()


async def test_concurrent_conversions_convert_a_lead_exactly_once(gql: GraphQLClient) -> None:
    lead_id = await new_lead(gql)

    results = await bodies(gql, CONVERT_LEAD, [{"leadId": lead_id}] * 10)

    assert sorted(error_codes(body) for body in results) == [[]] + [["CONFLICT"]] * 9
    (converted,) = [body["data"]["convertLeadToDeal"] for body in results if "errors" not in body]
    assert converted["lead"]["deal"] == {"dealId": converted["deal"]["dealId"]}
    for document in (DealDocument, OrganizationDocument, ContactDocument):
        assert await document.get_pymongo_collection().count_documents({}) == 1, document


async def test_concurrent_emails_are_all_stored_and_logged(gql: GraphQLClient) -> None:
    lead_id = await new_lead(gql)
    emails = [
        {"leadId": lead_id, "input": {"subject": f"Mail {i}", "body": "Hi"}} for i in range(10)
    ]

    results = await bodies(gql, SEND_EMAIL, emails)

    assert [error_codes(body) for body in results] == [[]] * 10
    lead = (await gql(GET_LEAD, {"leadId": lead_id}))["lead"]
    assert sorted(email["subject"] for email in lead["emails"]) == sorted(
        f"Mail {i}" for i in range(10)
    )
    assert [a["type"] for a in lead["activities"]].count("EMAIL_SENT") == 10
    assert await EmailDocument.get_pymongo_collection().count_documents({}) == 10
