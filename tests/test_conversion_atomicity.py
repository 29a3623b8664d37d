"""convertLeadToDeal cannot wedge a lead: a failure injected between any two of its steps
(real writes before it, none after) leaves a conversion that converting again finishes,
returning the same deal, with one deal, organization and contact."""

from typing import Any

import pytest

from models.contact import ContactDocument
from models.counter import Counter
from models.deal import DealDocument
from models.lead import LeadDocument
from models.organization import OrganizationDocument
from services import conversion
from services.conversion import STEPS
from tests.conftest import GraphQLClient
from tests.documents import CONVERT_LEAD, CREATE_LEAD
from tests.steps import between, inject, restore

BETWEEN = between(STEPS)
WITH_EMAIL = {"firstName": "Jane", "email": "jane@acme.example", "organization": "Acme"}
WITHOUT_EMAIL = {"firstName": "Jane", "organization": "Acme"}  # the contact is made new
LEADS = {"with email": WITH_EMAIL, "without email": WITHOUT_EMAIL}


async def create(gql: GraphQLClient, lead: dict[str, Any]) -> str:
    data = await gql(CREATE_LEAD, {"input": lead})
    return str(data["createLead"]["lead"]["leadId"])


async def counts() -> tuple[int, int, int]:
    return (
        await DealDocument.get_pymongo_collection().count_documents({}),
        await OrganizationDocument.get_pymongo_collection().count_documents({}),
        await ContactDocument.get_pymongo_collection().count_documents({}),
    )


async def stored_lead(lead_id: str) -> dict[str, Any]:
    lead = await LeadDocument.get_pymongo_collection().find_one({"lead_id": lead_id})
    assert lead is not None
    return dict(lead)


async def error_code(gql: GraphQLClient, lead_id: str) -> str:
    errors = await gql.errors(CONVERT_LEAD, {"leadId": lead_id})
    return str(errors[0]["extensions"]["code"])


async def assert_converted_once(gql: GraphQLClient, lead_id: str, deal: dict[str, Any]) -> None:
    """One deal, organization, contact; the deal linked to both; the lead marked, with one
    conversion on its timeline; converting once more is CONFLICT."""
    assert deal["dealId"] == "DEAL-001"
    assert deal["organization"]["name"] == "Acme"
    assert deal["contact"]["firstName"] == "Jane"
    assert await counts() == (1, 1, 1)
    stored_deal = await DealDocument.get_pymongo_collection().find_one({})
    assert stored_deal is not None
    assert str(stored_deal["organizationId"]) == deal["organization"]["id"]
    assert str(stored_deal["contactId"]) == deal["contact"]["id"]
    lead = await stored_lead(lead_id)
    assert (lead["convertedToDeal"], lead["dealId"], lead["status"]) == (
        True,
        "DEAL-001",
        "Qualified",
    )
    kinds = [activity["type"] for activity in lead["activities"]]
    assert kinds == ["created", "status_changed", "converted_to_deal"]
    assert await error_code(gql, lead_id) == "CONFLICT"
    assert await counts() == (1, 1, 1)


async def test_a_deal_left_by_an_interrupted_conversion_is_finished_by_converting_again(
    gql: GraphQLClient,
) -> None:
    """What a conversion that died after inserting its deal left: a deal holding the lead's
    (unique) lead_id, the lead unconverted. Converting again completes that deal."""
    lead_id = await create(gql, WITH_EMAIL)
    await Counter.get_pymongo_collection().update_one(
        {"_id": "deal"}, {"$set": {"seq": 1}}, upsert=True
    )
    await DealDocument.get_pymongo_collection().insert_one(
        {
            "deal_id": "DEAL-001",
            "dealNumber": 1,
            "lead_id": lead_id,
            "status": "Qualification",
            "organization": "Acme",
            "createdAt": (await stored_lead(lead_id))["createdAt"],
            "createdBy": "Shariq Ansari",
        }
    )

    deal = (await gql(CONVERT_LEAD, {"leadId": lead_id}))["convertLeadToDeal"]["deal"]

    await assert_converted_once(gql, lead_id, deal)


@pytest.mark.usefixtures("ordered")
@pytest.mark.parametrize("lead", LEADS.values(), ids=LEADS.keys())
@pytest.mark.parametrize("position", BETWEEN.values(), ids=BETWEEN.keys())
async def test_a_crash_between_steps_is_finished_by_converting_again(
    gql: GraphQLClient, monkeypatch: pytest.MonkeyPatch, position: int, lead: dict[str, Any]
) -> None:
    lead_id = await create(gql, lead)
    inject(monkeypatch, conversion, position)

    assert await error_code(gql, lead_id) == "INTERNAL_SERVER_ERROR"

    assert (await stored_lead(lead_id))["convertedToDeal"] is False
    # The steps before the crash really ran; the ones after did not.
    contact_made_by = "link contact" if lead.get("email") else "create contact"
    ran = {step.name for step in STEPS[:position]}
    made = (int(name in ran) for name in ("create deal", "link organization", contact_made_by))
    assert await counts() == tuple(made)

    restore(monkeypatch, conversion, STEPS)
    deal = (await gql(CONVERT_LEAD, {"leadId": lead_id}))["convertLeadToDeal"]["deal"]
    await assert_converted_once(gql, lead_id, deal)


@pytest.mark.usefixtures("transactional")
@pytest.mark.parametrize("position", BETWEEN.values(), ids=BETWEEN.keys())
async def test_a_crash_inside_the_transaction_changes_nothing(
    gql: GraphQLClient, monkeypatch: pytest.MonkeyPatch, position: int
) -> None:
    lead_id = await create(gql, WITHOUT_EMAIL)
    before = await stored_lead(lead_id)
    inject(monkeypatch, conversion, position)

    assert await error_code(gql, lead_id) == "INTERNAL_SERVER_ERROR"

    assert await stored_lead(lead_id) == before
    assert await counts() == (0, 0, 0)
    restore(monkeypatch, conversion, STEPS)
    deal = (await gql(CONVERT_LEAD, {"leadId": lead_id}))["convertLeadToDeal"]["deal"]
    await assert_converted_once(gql, lead_id, deal)
