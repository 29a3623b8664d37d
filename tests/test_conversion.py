"""The seed's Test Step 6: converting a lead into a deal, organization and contact."""

from typing import Any

from models.contact import ContactDocument
from models.deal import DealDocument
from models.lead import LeadDocument
from models.organization import OrganizationDocument
from tests.conftest import GraphQLClient
from tests.documents import CONVERT_LEAD, CREATE_LEAD, GET_LEAD

LEAD = {
    "salutation": "Ms",
    "firstName": "Jane",
    "lastName": "Roe",
    "email": "jane@acme.example",
    "mobile": "+1 555 0100",
    "organization": "Acme Corp",
    "website": "acme.example",
    "jobTitle": "VP Sales",
    "industry": "Manufacturing",
    "source": "Referral",
    "noOfEmployees": "500-1000",
    "annualRevenue": 2500000.5,
    "territory": "EMEA",
    "leadOwner": "Owner One",
}


async def count(collection: type[Any]) -> int:
    return int(await collection.get_pymongo_collection().count_documents({}))


async def create(gql: GraphQLClient, **fields: Any) -> str:
    data = await gql(CREATE_LEAD, {"input": {**LEAD, **fields}})
    return str(data["createLead"]["lead"]["leadId"])


async def test_convert_creates_deal_organization_and_contact(gql: GraphQLClient) -> None:
    lead_id = await create(gql)
    data = (await gql(CONVERT_LEAD, {"leadId": lead_id}))["convertLeadToDeal"]
    lead, deal = data["lead"], data["deal"]

    assert lead["status"] == "QUALIFIED"
    assert lead["convertedToDeal"] is True
    assert lead["deal"] == {"dealId": "DEAL-001"}
    assert [a["type"] for a in lead["activities"][:2]] == ["CONVERTED_TO_DEAL", "STATUS_CHANGED"]
    assert lead["activities"][0]["description"] == "Converted to deal DEAL-001"

    assert deal["dealId"] == "DEAL-001"
    assert deal["leadId"] == lead_id
    assert deal["status"] == "QUALIFICATION"
    assert deal["dealOwner"] == "Owner One"
    assert deal["createdBy"] == "Shariq Ansari"
    for field in ("annualRevenue", "website", "territory", "industry", "source", "noOfEmployees"):
        assert deal[field] == LEAD[field], field
    organization, contact = deal["organization"], deal["contact"]
    assert organization["name"] == "Acme Corp"
    assert organization["website"] == "acme.example"
    assert organization["annualRevenue"] == 2500000.5
    assert contact["firstName"] == "Jane"
    assert contact["email"] == "jane@acme.example"
    assert contact["jobTitle"] == "VP Sales"
    assert contact["organization"] == {"id": organization["id"], "name": "Acme Corp"}

    stored_lead = await LeadDocument.get_pymongo_collection().find_one({"lead_id": lead_id})
    assert stored_lead is not None
    assert (stored_lead["status"], stored_lead["convertedToDeal"], stored_lead["dealId"]) == (
        "Qualified",
        True,
        "DEAL-001",
    )
    assert stored_lead["activities"][-1]["type"] == "converted_to_deal"
    stored_deal = await DealDocument.get_pymongo_collection().find_one({"deal_id": "DEAL-001"})
    assert stored_deal is not None
    assert (stored_deal["lead_id"], stored_deal["status"], stored_deal["organization"]) == (
        lead_id,
        "Qualification",
        "Acme Corp",
    )
    assert str(stored_deal["organizationId"]) == organization["id"]
    assert str(stored_deal["contactId"]) == contact["id"]

    page = (await gql(GET_LEAD, {"leadId": lead_id}))["lead"]
    assert page["deal"]["dealId"] == "DEAL-001"
    assert page["deal"]["contact"]["organization"] == {"name": "Acme Corp"}


async def test_second_conversion_is_a_conflict_and_changes_nothing(gql: GraphQLClient) -> None:
    lead_id = await create(gql)
    await gql(CONVERT_LEAD, {"leadId": lead_id})
    errors = await gql.errors(CONVERT_LEAD, {"leadId": lead_id})
    assert errors[0]["extensions"]["code"] == "CONFLICT"
    assert (
        await count(DealDocument),
        await count(OrganizationDocument),
        await count(ContactDocument),
    ) == (1, 1, 1)


async def test_conversion_reuses_organization_by_name_and_contact_by_email(
    gql: GraphQLClient,
) -> None:
    first = await create(gql)
    second = await create(gql, firstName="Janet")  # same organization and email
    third = await create(gql, email="other@acme.example")  # same organization only
    deals = [
        (await gql(CONVERT_LEAD, {"leadId": lead_id}))["convertLeadToDeal"]["deal"]
        for lead_id in (first, second, third)
    ]
    assert [d["dealId"] for d in deals] == ["DEAL-001", "DEAL-002", "DEAL-003"]
    assert len({d["organization"]["id"] for d in deals}) == 1
    assert deals[0]["contact"]["id"] == deals[1]["contact"]["id"] != deals[2]["contact"]["id"]
    assert (await count(OrganizationDocument), await count(ContactDocument)) == (1, 2)


async def test_conversion_links_given_organization_and_contact(gql: GraphQLClient) -> None:
    source = await create(gql)
    linked = (await gql(CONVERT_LEAD, {"leadId": source}))["convertLeadToDeal"]["deal"]
    other = await create(gql, organization="Globex", email="x@globex.example")
    deal = (
        await gql(
            CONVERT_LEAD,
            {
                "leadId": other,
                "input": {
                    "organizationId": linked["organization"]["id"],
                    "contactId": linked["contact"]["id"],
                    "dealOwner": "Closer",
                },
            },
        )
    )["convertLeadToDeal"]["deal"]
    assert deal["organization"]["name"] == "Acme Corp"
    assert deal["contact"]["id"] == linked["contact"]["id"]
    assert deal["dealOwner"] == "Closer"
    assert (
        await OrganizationDocument.get_pymongo_collection().count_documents({"name": "Globex"}) == 0
    )


async def test_lead_without_organization_gets_no_organization(gql: GraphQLClient) -> None:
    lead_id = await create(gql, organization=None, email=None)
    deal = (await gql(CONVERT_LEAD, {"leadId": lead_id}))["convertLeadToDeal"]["deal"]
    assert deal["organization"] is None
    assert deal["contact"]["firstName"] == "Jane"
    assert deal["contact"]["email"] is None
    assert await count(OrganizationDocument) == 0


async def test_unknown_or_malformed_links_are_rejected_before_anything_is_written(
    gql: GraphQLClient,
) -> None:
    lead_id = await create(gql)
    missing = await gql.errors(
        CONVERT_LEAD, {"leadId": lead_id, "input": {"organizationId": "0" * 24}}
    )
    assert missing[0]["extensions"]["code"] == "NOT_FOUND"
    malformed = await gql.errors(CONVERT_LEAD, {"leadId": lead_id, "input": {"contactId": "xyz"}})
    assert malformed[0]["extensions"]["code"] == "BAD_USER_INPUT"
    assert malformed[0]["extensions"]["fieldErrors"][0]["field"] == "contactId"
    unknown_lead = await gql.errors(CONVERT_LEAD, {"leadId": "LEAD-404"})
    assert unknown_lead[0]["extensions"]["code"] == "NOT_FOUND"
    assert (await count(DealDocument), await count(ContactDocument)) == (0, 0)
    stored = await LeadDocument.get_pymongo_collection().find_one({"lead_id": lead_id})
    assert stored is not None
    assert stored["convertedToDeal"] is False


async def test_deal_queries(gql: GraphQLClient) -> None:
    for name in ("A", "B", "C"):
        await gql(CONVERT_LEAD, {"leadId": await create(gql, firstName=name)})
    data = await gql(
        """{ deal(dealId: "DEAL-002") { dealId leadId }
             deals(first: 2) { totalCount nodes { dealId } pageInfo { hasNextPage endCursor } } }"""
    )
    assert data["deal"] == {"dealId": "DEAL-002", "leadId": "LEAD-002"}
    assert data["deals"]["totalCount"] == 3
    assert [d["dealId"] for d in data["deals"]["nodes"]] == ["DEAL-003", "DEAL-002"]
    rest = await gql(
        """query($after: String) {
             deals(first: 2, after: $after) { nodes { dealId } pageInfo { hasNextPage } } }""",
        {"after": data["deals"]["pageInfo"]["endCursor"]},
    )
    assert rest["deals"] == {"nodes": [{"dealId": "DEAL-001"}], "pageInfo": {"hasNextPage": False}}
    errors = await gql.errors('{ deal(dealId: "DEAL-404") { dealId } }')
    assert errors[0]["extensions"]["code"] == "NOT_FOUND"
