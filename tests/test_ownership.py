"""Lead ownership (README "Teams"): `leadOwnerId` at creation, `assignLead`, and the bulk
`assignLeads` that adopts the seed's leads; each move with its ASSIGNED entry, in one write."""

import asyncio
from typing import Any

import httpx
from starlette.applications import Starlette

from models.lead import LeadDocument
from tests.conftest import GraphQLClient, mint

CREATE = """
mutation($input: CreateLeadInput!, $owner: String) {
  createLead(input: $input, ownerId: $owner) { lead { leadId leadOwner leadOwnerId } }
}
"""
ASSIGN = """
mutation($id: String!, $owner: String!, $name: String!) {
  assignLead(leadId: $id, ownerId: $owner, ownerName: $name) {
    lead { leadId leadOwner leadOwnerId activities { type by field oldValue newValue description } }
  }
}
"""
ASSIGN_ALL = """
mutation($filter: LeadFilter!, $owner: String!, $name: String!) {
  assignLeads(filter: $filter, ownerId: $owner, ownerName: $name) { count }
}
"""


def client(
    http: httpx.AsyncClient, app: Starlette, role: str, sub: str, name: str
) -> GraphQLClient:
    return GraphQLClient(http, mint(app, sub=sub, name=name, role=role))


def codes(errors: list[dict[str, Any]]) -> list[str]:
    return [error["extensions"]["code"] for error in errors]


async def test_a_new_lead_is_owned_by_its_creator_or_the_owner_a_manager_gives(
    http: httpx.AsyncClient, app: Starlette
) -> None:
    rep = client(http, app, "sales", "u-rep", "Rep")
    manager = client(http, app, "manager", "u-boss", "Boss")

    own = (await rep(CREATE, {"input": {"firstName": "Mine"}}))["createLead"]["lead"]
    assert (own["leadOwnerId"], own["leadOwner"]) == ("u-rep", "Rep")
    given = await manager(
        CREATE, {"input": {"firstName": "Theirs", "leadOwner": "Rep"}, "owner": "u-rep"}
    )
    assert given["createLead"]["lead"]["leadOwnerId"] == "u-rep"
    listed = await rep("{ leads { nodes { leadId } } }")
    assert len(listed["leads"]["nodes"]) == 2

    # Another owner needs the assign permission, and that owner's name.
    refused = await rep.errors(
        CREATE, {"input": {"firstName": "X", "leadOwner": "Bob"}, "owner": "u-bob"}
    )
    assert codes(refused) == ["FORBIDDEN"]
    nameless = await manager.errors(CREATE, {"input": {"firstName": "X"}, "owner": "u-bob"})
    assert nameless[0]["extensions"]["fieldErrors"][0]["field"] == "leadOwner"


async def test_assign_lead_moves_it_with_an_assigned_entry(
    http: httpx.AsyncClient, app: Starlette
) -> None:
    manager = client(http, app, "manager", "u-boss", "Boss")
    rep = client(http, app, "sales", "u-rep", "Rep")
    lead_id = (await rep(CREATE, {"input": {"firstName": "Moving"}}))["createLead"]["lead"][
        "leadId"
    ]

    moved = (await manager(ASSIGN, {"id": lead_id, "owner": "u-ann", "name": "Ann"}))["assignLead"]
    lead = moved["lead"]
    assert (lead["leadOwnerId"], lead["leadOwner"]) == ("u-ann", "Ann")
    assert lead["activities"][0] == {
        "type": "ASSIGNED",
        "by": "Boss",
        "field": "leadOwnerId",
        "oldValue": "u-rep",
        "newValue": "u-ann",
        "description": "Assigned from Rep to Ann",
    }
    # The rep no longer sees it: NOT_FOUND, as if it never existed.
    gone = await rep.errors("query($id: String!) { lead(leadId: $id) { leadId } }", {"id": lead_id})
    assert codes(gone) == ["NOT_FOUND"]
    # The same owner again: nothing written.
    again = (await manager(ASSIGN, {"id": lead_id, "owner": "u-ann", "name": "Ann"}))["assignLead"]
    assert len(again["lead"]["activities"]) == len(lead["activities"])
    blank = await manager.errors(ASSIGN, {"id": lead_id, "owner": " ", "name": ""})
    assert {e["field"] for e in blank[0]["extensions"]["fieldErrors"]} == {"ownerId", "ownerName"}
    missing = await manager.errors(ASSIGN, {"id": "LEAD-999", "owner": "u-ann", "name": "Ann"})
    assert codes(missing) == ["NOT_FOUND"]


async def test_concurrent_assignments_each_record_the_true_previous_owner(
    http: httpx.AsyncClient, app: Starlette
) -> None:
    manager = client(http, app, "manager", "u-boss", "Boss")
    lead_id = (await manager(CREATE, {"input": {"firstName": "Busy"}}))["createLead"]["lead"][
        "leadId"
    ]
    owners = [f"u-{n}" for n in range(6)]
    await asyncio.gather(
        *(manager(ASSIGN, {"id": lead_id, "owner": owner, "name": owner}) for owner in owners)
    )
    stored = await LeadDocument.find_one({"lead_id": lead_id})
    assert stored is not None
    chain = [entry for entry in stored.activities if entry.type.value == "assigned"]
    assert len(chain) == len(owners)
    previous: str | None = "u-boss"
    for entry in chain:  # oldest first: each entry starts where the one before ended
        assert entry.old_value == previous
        previous = entry.new_value
    assert stored.lead_owner_id == previous


async def test_assign_leads_adopts_seed_leads_by_owner_name(
    http: httpx.AsyncClient, app: Starlette
) -> None:
    admin = client(http, app, "admin", "u-admin", "Admin")
    for name, owner in [("A", "Shariq Ansari"), ("B", "Shariq Ansari"), ("C", "Someone")]:
        await admin(CREATE, {"input": {"firstName": name, "leadOwner": owner}})
    # As the seed stored them: no leadOwnerId at all.
    await LeadDocument.get_pymongo_collection().update_many({}, {"$unset": {"leadOwnerId": ""}})
    viewer = client(http, app, "viewer", "u-viewer", "Viewer")
    rep = client(http, app, "sales", "u-shariq", "Shariq Ansari")
    assert (await viewer("{ leads { totalCount } }"))["leads"]["totalCount"] == 3
    assert (await rep("{ leads { totalCount } }"))["leads"]["totalCount"] == 0

    variables = {
        "filter": {"leadOwner": "Shariq Ansari"},
        "owner": "u-shariq",
        "name": "Shariq Ansari",
    }
    assert (await admin(ASSIGN_ALL, variables))["assignLeads"]["count"] == 2
    assert (await admin(ASSIGN_ALL, variables))["assignLeads"]["count"] == 0  # already theirs
    mine = await rep("{ leads { nodes { firstName activities { type oldValue newValue } } } }")
    assert sorted(lead["firstName"] for lead in mine["leads"]["nodes"]) == ["A", "B"]
    for lead in mine["leads"]["nodes"]:
        assert lead["activities"][0] == {
            "type": "ASSIGNED",
            "oldValue": None,
            "newValue": "u-shariq",
        }
    refused = await rep.errors(ASSIGN_ALL, variables)
    assert codes(refused) == ["FORBIDDEN"]
