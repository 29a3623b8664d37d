"""Lead lists read only what they show: a lead's timeline is read only when asked for."""

from services.leads import list_leads
from services.pagination import Order
from services.viewer import Viewer
from tests.conftest import GraphQLClient

CREATE = 'mutation { createLead(input: {firstName: "Pat"}) { lead { leadId } } }'
STATUS = """
mutation($id: String!, $s: LeadStatus!) {
  updateLeadStatus(leadId: $id, status: $s) { lead { id } }
}
"""
COUNTS_ONLY = "{ leads(first: 10) { nodes { leadId activitiesCount } } }"
WITH_TIMELINE = "{ leads(first: 10) { nodes { leadId activitiesCount activities { type } } } }"
TIMELINE_IN_FRAGMENT = """
{ leads(first: 10) { edges { node { ...Row } } } }
fragment Row on Lead { leadId activitiesCount activities { type } }
"""
NEWEST_FIRST = Order(stored_field="createdAt", descending=True)


async def seed(gql: GraphQLClient) -> dict[str, int]:
    """Three leads with 1, 2 and 4 timeline entries."""
    expected = {}
    for changes in (0, 1, 3):
        lead_id = (await gql(CREATE))["createLead"]["lead"]["leadId"]
        for status in ("CONTACTED", "NURTURE", "QUALIFIED")[:changes]:
            await gql(STATUS, {"id": lead_id, "s": status})
        expected[lead_id] = 1 + changes
    return expected


async def test_a_list_without_timelines_counts_them_in_the_database(gql: GraphQLClient) -> None:
    expected = await seed(gql)

    page = await list_leads(
        Viewer(id="user-1", name=None, email=None, role="admin"),
        first=10,
        after=None,
        filters={},
        order=NEWEST_FIRST,
        with_timeline=False,
    )

    assert {lead.lead_id: lead.activities_count for lead in page.documents} == expected
    assert all(lead.activities == [] for lead in page.documents)  # never sent, never decoded


async def test_counts_are_the_same_with_or_without_the_timeline(gql: GraphQLClient) -> None:
    expected = await seed(gql)

    counted = (await gql(COUNTS_ONLY))["leads"]["nodes"]
    loaded = (await gql(WITH_TIMELINE))["leads"]["nodes"]
    in_fragment = [edge["node"] for edge in (await gql(TIMELINE_IN_FRAGMENT))["leads"]["edges"]]

    assert {lead["leadId"]: lead["activitiesCount"] for lead in counted} == expected
    for rows in (loaded, in_fragment):
        assert {lead["leadId"]: len(lead["activities"]) for lead in rows} == expected
        assert {lead["leadId"]: lead["activitiesCount"] for lead in rows} == expected
