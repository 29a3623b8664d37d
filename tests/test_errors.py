"""Bad input is one BAD_USER_INPUT error naming every bad field, and writes nothing;
unexpected failures are masked; client strings are never query operators."""

import logging
from typing import Any

import pytest
from starlette.applications import Starlette

from models.email import EmailDocument
from models.lead import LeadDocument
from services import leads
from tests.conftest import GraphQLClient
from tests.documents import CREATE_LEAD, LIST_LEADS, LOG_CALL, SEND_EMAIL, UPDATE_LEAD


async def lead_count() -> int:
    return int(await LeadDocument.get_pymongo_collection().count_documents({}))


def field_errors(error: dict[str, Any]) -> dict[str, str]:
    assert error["extensions"]["code"] == "BAD_USER_INPUT", error
    return {item["field"]: item["message"] for item in error["extensions"]["fieldErrors"]}


async def test_every_bad_field_is_reported_in_one_error(gql: GraphQLClient) -> None:
    errors = await gql.errors(
        CREATE_LEAD,
        {
            "input": {
                "firstName": "   ",
                "email": "not-an-email",
                "annualRevenue": -5,
                "mobile": "call me",
            }
        },
    )
    assert len(errors) == 1
    assert set(field_errors(errors[0])) == {"firstName", "email", "annualRevenue", "mobile"}
    assert await lead_count() == 0


async def test_too_long_values_are_refused(gql: GraphQLClient) -> None:
    errors = await gql.errors(CREATE_LEAD, {"input": {"firstName": "x" * 101}})
    assert field_errors(errors[0]) == {"firstName": "must be at most 100 characters"}
    assert await lead_count() == 0


async def test_control_characters_and_absurd_numbers_are_refused(gql: GraphQLClient) -> None:
    errors = await gql.errors(
        CREATE_LEAD,
        {"input": {"firstName": "Ada\u0000", "lastName": "Love\u001blace", "annualRevenue": 1e308}},
    )
    assert field_errors(errors[0]) == {
        "firstName": "must not contain control characters",
        "lastName": "must not contain control characters",
        "annualRevenue": "must be at most 1e+15",
    }
    assert await lead_count() == 0
    # Tabs and line breaks are text, not control: a multi-line note body stays as written.
    created = await gql(CREATE_LEAD, {"input": {"firstName": "Ada\tL."}})
    assert created["createLead"]["lead"]["firstName"] == "Ada\tL."


async def test_unknown_enum_in_variables_is_bad_user_input(gql: GraphQLClient) -> None:
    errors = await gql.errors(CREATE_LEAD, {"input": {"firstName": "A", "status": "HOT"}})
    assert set(field_errors(errors[0])) == {"status"}
    assert await lead_count() == 0


async def test_unknown_enum_in_the_document_is_bad_user_input(gql: GraphQLClient) -> None:
    errors = await gql.errors(
        'mutation { createLead(input: {firstName: "A", status: HOT}) { lead { id } } }'
    )
    assert set(field_errors(errors[0])) == {"status"}
    assert await lead_count() == 0


async def test_null_for_a_required_field_in_an_update(gql: GraphQLClient) -> None:
    await gql(CREATE_LEAD, {"input": {"firstName": "A"}})
    errors = await gql.errors(
        UPDATE_LEAD, {"leadId": "LEAD-001", "input": {"firstName": None, "status": None}}
    )
    assert set(field_errors(errors[0])) == {"firstName", "status"}
    stored = await LeadDocument.get_pymongo_collection().find_one({})
    assert stored is not None
    assert (stored["firstName"], len(stored["activities"])) == ("A", 1)


async def test_negative_call_duration_and_bad_email_lists(gql: GraphQLClient) -> None:
    await gql(CREATE_LEAD, {"input": {"firstName": "A", "email": "a@example.com"}})
    call = await gql.errors(LOG_CALL, {"leadId": "LEAD-001", "input": {"duration": -1}})
    assert set(field_errors(call[0])) == {"duration"}
    email = await gql.errors(
        SEND_EMAIL,
        {"leadId": "LEAD-001", "input": {"subject": "", "body": "b", "cc": "ok@example.com, nope"}},
    )
    assert set(field_errors(email[0])) == {"subject", "cc"}
    assert await EmailDocument.get_pymongo_collection().count_documents({}) == 0


async def test_datetime_without_offset_is_refused(gql: GraphQLClient) -> None:
    await gql(CREATE_LEAD, {"input": {"firstName": "A"}})
    errors = await gql.errors(
        LOG_CALL,
        {"leadId": "LEAD-001", "input": {"duration": 1, "timestamp": "2025-01-20T10:00:00"}},
    )
    assert errors[0]["extensions"]["code"] == "BAD_USER_INPUT"
    assert "offset" in errors[0]["message"]


@pytest.mark.parametrize("lead_id", ['{"$ne": null}', "LEAD-.*", "^"])
async def test_lead_ids_are_literal(gql: GraphQLClient, lead_id: str) -> None:
    await gql(CREATE_LEAD, {"input": {"firstName": "A"}})
    errors = await gql.errors("query($id: String!) { lead(leadId: $id) { id } }", {"id": lead_id})
    assert errors[0]["extensions"]["code"] == "NOT_FOUND"


async def test_an_operator_object_is_not_accepted_for_a_string(gql: GraphQLClient) -> None:
    await gql(CREATE_LEAD, {"input": {"firstName": "A"}})
    errors = await gql.errors(
        "query($id: String!) { lead(leadId: $id) { id } }", {"id": {"$ne": None}}
    )
    assert errors[0]["extensions"]["code"] == "BAD_USER_INPUT"


async def test_search_is_literal(gql: GraphQLClient) -> None:
    await gql(CREATE_LEAD, {"input": {"firstName": "Abc"}})
    for search in (".*", "a.c", "(", "[", "\\", "$where"):
        data = await gql(LIST_LEADS, {"filter": {"search": search}})
        assert data["leads"]["totalCount"] == 0, search


async def test_unexpected_failures_are_masked_and_logged(
    gql: GraphQLClient,
    app: Starlette,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A failure the code did not expect must not leak internals. (A stored document it
    cannot read is expected: UNREADABLE_DOCUMENT, tests/test_seed_database.py.)"""

    async def broken(*args: object) -> LeadDocument:
        raise RuntimeError("pymongo validation detail that must stay in the log")

    monkeypatch.setattr(leads, "get_lead", broken)
    with caplog.at_level(logging.ERROR, logger="crm.errors"):
        errors = await gql.errors('{ lead(leadId: "LEAD-BAD") { id } }')
    assert errors[0]["message"] == "Internal server error"
    assert errors[0]["extensions"].keys() == {"code", "requestId"}  # the id is for support
    assert errors[0]["extensions"]["code"] == "INTERNAL_SERVER_ERROR"
    assert "validation" not in str(errors).lower()
    assert any("unexpected error" in record.message for record in caplog.records)
