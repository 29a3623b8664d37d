"""No N+1: a lead's nested lists and deal cost one database command per field, not per lead."""

from datetime import UTC, datetime, timedelta
from typing import Any

from models import DOCUMENT_MODELS
from models.call import CallDocument
from models.database import CommandCounter
from models.deal import DealDocument
from models.email import EmailDocument
from models.lead import LeadDocument
from models.note import NoteDocument
from models.task import TaskDocument
from tests.conftest import GraphQLClient
from tests.documents import (
    CONVERT_LEAD,
    CREATE_LEAD,
    CREATE_NOTE,
    CREATE_TASK,
    LOG_CALL,
    SEND_EMAIL,
)

NESTED = """
query Nested($first: Int) {
  leads(first: $first) {
    nodes {
      leadId
      emails { id leadId }
      calls { id leadId }
      tasks { id leadId }
      notes { id leadId }
      deal { dealId leadId }
    }
  }
}
"""

ONE_LEAD = """
query OneLead($leadId: String!) {
  lead(leadId: $leadId) {
    leadId
    emails { id leadId }
    calls { id leadId }
    tasks { id leadId }
    notes { id leadId }
    deal { dealId organization { name } contact { email organization { name } } }
  }
}
"""

BASE = datetime(2025, 1, 1, tzinfo=UTC)
MAX_COMMANDS = 8


def emails_of(i: int) -> int:
    return i % 3 + 1


def tasks_of(i: int) -> int:
    return i % 2 + 1


def is_converted(i: int) -> bool:
    return i % 4 == 0


async def seed(n: int) -> None:
    """Leads 1..n, lead i with emails_of(i) emails, one call, tasks_of(i) tasks, one note."""
    leads, emails, calls, tasks, notes, deals = [], [], [], [], [], []
    for i in range(1, n + 1):
        lead_id, at = f"LEAD-{i:03d}", BASE + timedelta(hours=i)
        deal_id = f"DEAL-{i:03d}" if is_converted(i) else None
        leads.append(
            {
                "lead_id": lead_id,
                "leadNumber": i,
                "firstName": f"Lead{i}",
                "status": "Qualified" if deal_id else "New",
                "createdAt": at,
                "updatedAt": at,
                "convertedToDeal": deal_id is not None,
                "dealId": deal_id,
                "activities": [],
            }
        )
        emails += [
            {
                "lead_id": lead_id,
                "to": "x@example.com",
                "subject": "Hi",
                "body": "...",
                "timestamp": at,
            }
            for _ in range(emails_of(i))
        ]
        calls.append({"lead_id": lead_id, "type": "Outbound Call", "duration": 60, "timestamp": at})
        tasks += [
            {"lead_id": lead_id, "title": "Follow up", "createdAt": at} for _ in range(tasks_of(i))
        ]
        notes.append({"lead_id": lead_id, "content": "Met at a fair", "createdAt": at})
        if deal_id:
            deals.append({"deal_id": deal_id, "dealNumber": i, "lead_id": lead_id, "createdAt": at})
    for document, rows in (
        (LeadDocument, leads),
        (EmailDocument, emails),
        (CallDocument, calls),
        (TaskDocument, tasks),
        (NoteDocument, notes),
        (DealDocument, deals),
    ):
        if rows:
            await document.get_pymongo_collection().insert_many(rows)


def check_nested(nodes: list[dict[str, Any]], n: int) -> None:
    """Every lead got its own children and deal, not another lead's and not none."""
    assert len(nodes) == n
    for node in nodes:
        lead_id = node["leadId"]
        i = int(lead_id.removeprefix("LEAD-"))
        lengths = [len(node[name]) for name in ("emails", "calls", "tasks", "notes")]
        assert lengths == [emails_of(i), 1, tasks_of(i), 1], lead_id
        for name in ("emails", "calls", "tasks", "notes"):
            assert {child["leadId"] for child in node[name]} == {lead_id}
        expected_deal = {"dealId": f"DEAL-{i:03d}", "leadId": lead_id} if is_converted(i) else None
        assert node["deal"] == expected_deal


async def cost_of_nested_page(gql: GraphQLClient, commands: CommandCounter, n: int) -> int:
    for document in DOCUMENT_MODELS:
        await document.get_pymongo_collection().delete_many({})
    await seed(n)
    commands.reset()

    data = await gql(NESTED, {"first": n})

    cost = commands.count
    print(f"\nleads(first: {n}) with nested lists: {cost} commands {commands.names}")
    check_nested(data["leads"]["nodes"], n)
    return cost


async def test_nested_lists_of_5_and_50_leads_cost_the_same_few_commands(
    gql: GraphQLClient, commands: CommandCounter
) -> None:
    five = await cost_of_nested_page(gql, commands, 5)
    fifty = await cost_of_nested_page(gql, commands, 50)

    assert five == fifty
    assert fifty <= MAX_COMMANDS


async def converted_lead_with_children(gql: GraphQLClient, children: int) -> str:
    """A lead made through the API, `children` of each kind, converted with org and contact."""
    lead = {"firstName": "Jane", "email": "jane@acme.com", "organization": "Acme Corp"}
    lead_id: str = (await gql(CREATE_LEAD, {"input": lead}))["createLead"]["lead"]["leadId"]
    for _ in range(children):
        await gql(SEND_EMAIL, {"leadId": lead_id, "input": {"subject": "Hi", "body": "..."}})
        await gql(LOG_CALL, {"leadId": lead_id, "input": {"duration": 30}})
        await gql(CREATE_TASK, {"leadId": lead_id, "input": {"title": "Call back"}})
        await gql(CREATE_NOTE, {"leadId": lead_id, "input": {"content": "Interested"}})
    await gql(CONVERT_LEAD, {"leadId": lead_id})
    return lead_id


async def cost_of_lead_page(
    gql: GraphQLClient, commands: CommandCounter, lead_id: str, children: int
) -> int:
    commands.reset()

    lead = (await gql(ONE_LEAD, {"leadId": lead_id}))["lead"]

    cost = commands.count
    print(f"\nlead() with {children} of each child: {cost} commands {commands.names}")
    for name in ("emails", "calls", "tasks", "notes"):
        assert [child["leadId"] for child in lead[name]] == [lead_id] * children
    assert lead["deal"]["organization"] == {"name": "Acme Corp"}
    assert lead["deal"]["contact"] == {
        "email": "jane@acme.com",
        "organization": {"name": "Acme Corp"},
    }
    return cost


async def test_single_lead_page_costs_a_constant_few_commands(
    gql: GraphQLClient, commands: CommandCounter
) -> None:
    few = await converted_lead_with_children(gql, 1)
    many = await converted_lead_with_children(gql, 4)

    cost_few = await cost_of_lead_page(gql, commands, few, 1)
    cost_many = await cost_of_lead_page(gql, commands, many, 4)

    assert cost_few == cost_many
    assert cost_many <= MAX_COMMANDS
