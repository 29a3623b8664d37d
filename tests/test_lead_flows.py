"""The seed's Test Steps 1-5 and the lead lifecycle, checked in GraphQL and in storage."""

from typing import Any

import pytest

from models.call import CallDocument
from models.email import EmailDocument
from models.lead import LeadDocument
from models.note import NoteDocument
from models.task import TaskDocument
from tests.conftest import GraphQLClient
from tests.documents import (
    CREATE_LEAD,
    CREATE_NOTE,
    CREATE_TASK,
    DELETE_LEAD,
    GET_LEAD,
    LOG_CALL,
    SEND_EMAIL,
    UPDATE_LEAD,
    UPDATE_LEAD_STATUS,
    UPDATE_TASK,
)

JOHN = {
    "salutation": "Mr",
    "firstName": "John",
    "lastName": "Doe",
    "email": "john@example.com",
    "mobile": "+1234567890",
    "organization": "Example Corp",
    "website": "www.example.com",
    "jobTitle": "CEO",
    "industry": "Technology",
    "source": "LinkedIn",
    "gender": "Male",
    "noOfEmployees": "100-500",
    "annualRevenue": 1000000,
    "territory": "USA",
}


async def stored(collection: type[Any], **query: Any) -> dict[str, Any]:
    document = await collection.get_pymongo_collection().find_one(query)
    assert document is not None, f"nothing stored in {collection.Settings.name} for {query}"
    return dict(document)


async def create_john(gql: GraphQLClient) -> dict[str, Any]:
    data = await gql(CREATE_LEAD, {"input": JOHN})
    return dict(data["createLead"]["lead"])


async def test_create_lead_returns_and_stores_the_seed_shape(gql: GraphQLClient) -> None:
    lead = await create_john(gql)

    assert lead["leadId"] == "LEAD-001"
    assert lead["fullName"] == "John Doe"
    assert lead["status"] == "NEW"
    assert lead["leadOwner"] == "Shariq Ansari"
    assert lead["createdBy"] == "user-1"
    assert lead["convertedToDeal"] is False
    assert lead["createdAt"].endswith("Z")
    assert lead["activities"] == [
        {
            "type": "CREATED",
            "description": "Lead created",
            "by": "Shariq Ansari",
            "timestamp": lead["createdAt"],
            "field": None,
            "oldValue": None,
            "newValue": None,
        }
    ]

    document = await stored(LeadDocument, lead_id="LEAD-001")
    for name, value in JOHN.items():
        assert document[name] == value, name
    assert document["status"] == "New"
    assert document["leadOwner"] == "Shariq Ansari"
    assert document["createdBy"] == "user-1"
    assert document["createdAt"].utcoffset().total_seconds() == 0
    assert document["activities"][0]["type"] == "created"
    assert document["activities"][0]["by"] == "Shariq Ansari"
    assert str(document["_id"]) == lead["id"]


async def test_lead_ids_count_up_and_grow_past_three_digits(gql: GraphQLClient) -> None:
    await (
        LeadDocument.get_pymongo_collection()
        .database["counters"]
        .update_one({"_id": "lead"}, {"$set": {"seq": 998}}, upsert=True)
    )
    ids = [
        (await gql(CREATE_LEAD, {"input": {"firstName": f"L{i}"}}))["createLead"]["lead"]["leadId"]
        for i in range(2)
    ]
    assert ids == ["LEAD-999", "LEAD-1000"]


async def test_lead_id_skips_numbers_already_taken_by_imported_leads(gql: GraphQLClient) -> None:
    await LeadDocument.get_pymongo_collection().insert_one(
        {"lead_id": "LEAD-001", "leadNumber": 1, "firstName": "Imported"}
    )
    lead = (await gql(CREATE_LEAD, {"input": {"firstName": "New"}}))["createLead"]["lead"]
    assert lead["leadId"] == "LEAD-002"


async def test_send_email_stores_it_and_logs_the_timeline(gql: GraphQLClient) -> None:
    await create_john(gql)
    data = await gql(
        SEND_EMAIL,
        {
            "leadId": "LEAD-001",
            "input": {"subject": "Follow up meeting", "body": "Email content..."},
        },
    )
    email, lead = data["sendEmail"]["email"], data["sendEmail"]["lead"]

    assert email["to"] == "john@example.com"  # defaults to the lead's email
    assert email["from"] == "admin@company.com"
    assert email["sentBy"] == "Shariq Ansari"
    assert email["status"] == "SENT"
    assert lead["activitiesCount"] == 2
    assert lead["activities"][0] == {
        "type": "EMAIL_SENT",
        "description": "Email sent: Follow up meeting",
        "by": "Shariq Ansari",
    }

    document = await stored(EmailDocument, lead_id="LEAD-001")
    assert {
        k: document[k] for k in ("from", "to", "cc", "bcc", "subject", "body", "status", "sentBy")
    } == {
        "from": "admin@company.com",
        "to": "john@example.com",
        "cc": None,
        "bcc": None,
        "subject": "Follow up meeting",
        "body": "Email content...",
        "status": "sent",
        "sentBy": "Shariq Ansari",
    }
    lead_document = await stored(LeadDocument, lead_id="LEAD-001")
    assert [a["type"] for a in lead_document["activities"]] == ["created", "email_sent"]


async def test_send_email_without_to_when_lead_has_no_email_is_bad_input(
    gql: GraphQLClient,
) -> None:
    await gql(CREATE_LEAD, {"input": {"firstName": "NoMail"}})
    errors = await gql.errors(
        SEND_EMAIL, {"leadId": "LEAD-001", "input": {"subject": "Hi", "body": "x"}}
    )
    assert errors[0]["extensions"]["code"] == "BAD_USER_INPUT"
    assert errors[0]["extensions"]["fieldErrors"][0]["field"] == "to"
    assert await EmailDocument.get_pymongo_collection().count_documents({}) == 0


async def test_log_call_uses_the_seed_defaults(gql: GraphQLClient) -> None:
    await create_john(gql)
    data = await gql(LOG_CALL, {"leadId": "LEAD-001", "input": {"duration": 180}})
    call, lead = data["logCall"]["call"], data["logCall"]["lead"]

    assert call["type"] == "OUTBOUND"
    assert call["status"] == "COMPLETED"
    assert call["duration"] == 180
    assert call["phone"] == "+1234567890"
    assert call["to"] == "John Doe"
    assert call["from"] == "Shariq Ansari"
    assert call["loggedBy"] == "Shariq Ansari"
    assert lead["activities"][0]["type"] == "CALL_LOGGED"
    assert "3m 0s" in lead["activities"][0]["description"]

    document = await stored(CallDocument, lead_id="LEAD-001")
    assert document["type"] == "Outbound Call"
    assert document["status"] == "completed"
    assert document["loggedBy"] == "Shariq Ansari"
    assert document["duration"] == 180


async def test_log_call_takes_given_values(gql: GraphQLClient) -> None:
    await create_john(gql)
    given = {
        "duration": 5,
        "type": "INBOUND",
        "status": "NO_ANSWER",
        "phone": "+44 20 7946 0958",
        "timestamp": "2025-01-20T10:00:00.123456+02:00",
    }
    call = (await gql(LOG_CALL, {"leadId": "LEAD-001", "input": given}))["logCall"]["call"]
    assert call["timestamp"] == "2025-01-20T08:00:00.123Z"  # UTC, milliseconds as stored
    assert (call["type"], call["status"], call["phone"]) == (
        "INBOUND",
        "NO_ANSWER",
        "+44 20 7946 0958",
    )
    document = await stored(CallDocument, lead_id="LEAD-001")
    assert document["status"] == "no-answer"
    assert document["type"] == "Inbound Call"
    assert document["timestamp"].isoformat() == "2025-01-20T08:00:00.123000+00:00"


async def test_create_task_and_update_it(gql: GraphQLClient) -> None:
    await create_john(gql)
    data = await gql(
        CREATE_TASK,
        {
            "leadId": "LEAD-001",
            "input": {
                "title": "Follow up call",
                "description": "Call to discuss proposal",
                "assignedTo": "Shariq Ansari",
                "dueDate": "2025-01-25T14:00:00Z",
                "priority": "HIGH",
            },
        },
    )
    task = data["createTask"]["task"]
    assert (task["status"], task["priority"]) == ("BACKLOG", "HIGH")
    assert task["createdBy"] == "Shariq Ansari"
    assert data["createTask"]["lead"]["activities"][0]["type"] == "TASK_CREATED"
    document = await stored(TaskDocument, lead_id="LEAD-001")
    assert (document["status"], document["priority"], document["assignedTo"]) == (
        "Backlog",
        "High",
        "Shariq Ansari",
    )

    updated = await gql(
        UPDATE_TASK, {"id": task["id"], "input": {"status": "DONE", "assignedTo": None}}
    )
    assert updated["updateTask"]["task"]["status"] == "DONE"
    assert updated["updateTask"]["task"]["assignedTo"] is None
    entry = updated["updateTask"]["lead"]["activities"][0]
    assert entry["type"] == "TASK_UPDATED"
    assert "Backlog → Done" in entry["description"]
    document = await stored(TaskDocument, lead_id="LEAD-001")
    assert (document["status"], document["assignedTo"]) == ("Done", None)


async def test_update_task_unknown_or_malformed_id(gql: GraphQLClient) -> None:
    missing = await gql.errors(UPDATE_TASK, {"id": "0" * 24, "input": {"status": "DONE"}})
    assert missing[0]["extensions"]["code"] == "NOT_FOUND"
    malformed = await gql.errors(UPDATE_TASK, {"id": "nope", "input": {"status": "DONE"}})
    assert malformed[0]["extensions"]["code"] == "BAD_USER_INPUT"


async def test_create_note(gql: GraphQLClient) -> None:
    await create_john(gql)
    data = await gql(
        CREATE_NOTE,
        {
            "leadId": "LEAD-001",
            "input": {"title": "Call notes", "content": "Discussed project requirements..."},
        },
    )
    assert data["createNote"]["note"]["createdBy"] == "Shariq Ansari"
    assert data["createNote"]["lead"]["activities"][0] == {
        "type": "NOTE_ADDED",
        "description": "Note added: Call notes",
        "by": "Shariq Ansari",
    }
    document = await stored(NoteDocument, lead_id="LEAD-001")
    assert (document["title"], document["content"], document["createdBy"]) == (
        "Call notes",
        "Discussed project requirements...",
        "Shariq Ansari",
    )


async def test_lead_page_shows_everything_newest_first(gql: GraphQLClient) -> None:
    await create_john(gql)
    for subject in ("first", "second"):
        await gql(SEND_EMAIL, {"leadId": "LEAD-001", "input": {"subject": subject, "body": "b"}})
    await gql(LOG_CALL, {"leadId": "LEAD-001", "input": {"duration": 60}})
    await gql(CREATE_TASK, {"leadId": "LEAD-001", "input": {"title": "t"}})
    await gql(CREATE_NOTE, {"leadId": "LEAD-001", "input": {"content": "n"}})

    lead = (await gql(GET_LEAD, {"leadId": "LEAD-001"}))["lead"]
    assert [e["subject"] for e in lead["emails"]] == ["second", "first"]
    assert len(lead["calls"]) == len(lead["tasks"]) == len(lead["notes"]) == 1
    assert [a["type"] for a in lead["activities"]] == [
        "NOTE_ADDED",
        "TASK_CREATED",
        "CALL_LOGGED",
        "EMAIL_SENT",
        "EMAIL_SENT",
        "CREATED",
    ]
    assert lead["activitiesCount"] == 6


async def test_update_lead_records_one_entry_per_changed_field(gql: GraphQLClient) -> None:
    await create_john(gql)
    data = await gql(
        UPDATE_LEAD,
        {
            "leadId": "LEAD-001",
            "input": {
                "jobTitle": "CTO",
                "website": None,
                "territory": "USA",
                "status": "CONTACTED",
            },
        },
    )
    lead = data["updateLead"]["lead"]
    assert lead["jobTitle"] == "CTO"
    assert lead["website"] is None
    assert lead["status"] == "CONTACTED"
    assert lead["firstName"] == "John"  # omitted: unchanged
    changes = {a["field"]: a for a in lead["activities"] if a["type"] != "CREATED"}
    assert set(changes) == {"jobTitle", "website", "status"}  # territory was already USA
    assert (changes["jobTitle"]["oldValue"], changes["jobTitle"]["newValue"]) == ("CEO", "CTO")
    assert (changes["website"]["oldValue"], changes["website"]["newValue"]) == (
        "www.example.com",
        None,
    )
    assert changes["status"]["type"] == "STATUS_CHANGED"
    assert (changes["status"]["oldValue"], changes["status"]["newValue"]) == ("New", "Contacted")
    assert lead["updatedAt"] > lead["createdAt"] or lead["updatedAt"] == lead["createdAt"]

    document = await stored(LeadDocument, lead_id="LEAD-001")
    assert (document["jobTitle"], document["website"], document["status"]) == (
        "CTO",
        None,
        "Contacted",
    )
    assert [a["type"] for a in document["activities"]].count("updated") == 2


async def test_update_without_changes_writes_nothing(gql: GraphQLClient) -> None:
    lead = await create_john(gql)
    data = await gql(UPDATE_LEAD, {"leadId": "LEAD-001", "input": {"jobTitle": "CEO"}})
    assert data["updateLead"]["lead"]["activitiesCount"] == 1
    assert data["updateLead"]["lead"]["updatedAt"] == lead["updatedAt"]


async def test_update_lead_status(gql: GraphQLClient) -> None:
    await create_john(gql)
    data = await gql(UPDATE_LEAD_STATUS, {"leadId": "LEAD-001", "status": "NURTURE"})
    lead = data["updateLeadStatus"]["lead"]
    assert lead["status"] == "NURTURE"
    assert lead["activities"][0]["type"] == "STATUS_CHANGED"
    assert lead["activities"][0]["description"] == "Status changed from New to Nurture"
    assert (await stored(LeadDocument, lead_id="LEAD-001"))["status"] == "Nurture"


async def test_setting_the_same_status_is_still_recorded(gql: GraphQLClient) -> None:
    await create_john(gql)
    data = await gql(UPDATE_LEAD_STATUS, {"leadId": "LEAD-001", "status": "NEW"})
    entry = data["updateLeadStatus"]["lead"]["activities"][0]
    assert (entry["type"], entry["oldValue"], entry["newValue"]) == ("STATUS_CHANGED", "New", "New")
    assert entry["description"] == "Status confirmed as New"


async def test_delete_lead_removes_its_children(gql: GraphQLClient) -> None:
    await create_john(gql)
    await gql(CREATE_LEAD, {"input": {"firstName": "Other", "email": "o@example.com"}})
    for lead_id in ("LEAD-001", "LEAD-002"):
        await gql(SEND_EMAIL, {"leadId": lead_id, "input": {"subject": "s", "body": "b"}})
        await gql(LOG_CALL, {"leadId": lead_id, "input": {"duration": 1}})
        await gql(CREATE_TASK, {"leadId": lead_id, "input": {"title": "t"}})
    await gql(CREATE_NOTE, {"leadId": "LEAD-001", "input": {"content": "n"}})
    await gql(CREATE_NOTE, {"leadId": "LEAD-001", "input": {"content": "m"}})

    data = await gql(DELETE_LEAD, {"leadId": "LEAD-001"})
    assert data["deleteLead"] == {
        "leadId": "LEAD-001",
        "deletedEmails": 1,
        "deletedCalls": 1,
        "deletedTasks": 1,
        "deletedNotes": 2,
    }
    for collection in (EmailDocument, CallDocument, TaskDocument, NoteDocument):
        assert (
            await collection.get_pymongo_collection().count_documents({"lead_id": "LEAD-001"}) == 0
        )
    assert await LeadDocument.get_pymongo_collection().count_documents({}) == 1
    assert (
        await EmailDocument.get_pymongo_collection().count_documents({"lead_id": "LEAD-002"}) == 1
    )

    errors = await gql.errors(GET_LEAD, {"leadId": "LEAD-001"})
    assert errors[0]["extensions"]["code"] == "NOT_FOUND"
    again = await gql.errors(DELETE_LEAD, {"leadId": "LEAD-001"})
    assert again[0]["extensions"]["code"] == "NOT_FOUND"


async def test_interrupted_delete_is_completed_by_a_retry(gql: GraphQLClient) -> None:
    """A delete stopped after the children went leaves the lead; deleting again finishes."""
    await create_john(gql)
    await gql(SEND_EMAIL, {"leadId": "LEAD-001", "input": {"subject": "s", "body": "b"}})
    await EmailDocument.get_pymongo_collection().delete_many({"lead_id": "LEAD-001"})
    data = await gql(DELETE_LEAD, {"leadId": "LEAD-001"})
    assert data["deleteLead"]["deletedEmails"] == 0
    assert await LeadDocument.get_pymongo_collection().count_documents({}) == 0


@pytest.mark.parametrize(
    "mutation",
    [
        (SEND_EMAIL, {"input": {"subject": "s", "body": "b", "to": "x@example.com"}}),
        (LOG_CALL, {"input": {"duration": 1}}),
        (CREATE_TASK, {"input": {"title": "t"}}),
        (CREATE_NOTE, {"input": {"content": "c"}}),
        (UPDATE_LEAD, {"input": {"jobTitle": "x"}}),
        (UPDATE_LEAD_STATUS, {"status": "JUNK"}),
    ],
    ids=["sendEmail", "logCall", "createTask", "createNote", "updateLead", "updateLeadStatus"],
)
async def test_mutations_on_an_unknown_lead_are_not_found_and_write_nothing(
    gql: GraphQLClient, mutation: tuple[str, dict[str, Any]]
) -> None:
    document, variables = mutation
    errors = await gql.errors(document, {"leadId": "LEAD-404", **variables})
    assert errors[0]["extensions"]["code"] == "NOT_FOUND"
    assert "LEAD-404" in errors[0]["message"]
    for collection in (EmailDocument, CallDocument, TaskDocument, NoteDocument, LeadDocument):
        assert await collection.get_pymongo_collection().count_documents({}) == 0
