"""A database as the seed's FastAPI backend left it (the seed's document
structures), with the quirks real data has:

- no field this server adds: no `leadNumber`, no `dealId`, no `field`/`oldValue`/`newValue`;
- timestamps as ISO strings without offset (`"2025-01-20T10:00:00"`, the seed's examples)
  and as BSON datetimes (what Motor stores for a Python datetime), mixed in one collection;
- optional fields absent, or `null`;
- fields this server does not know (`customField`, `tags`, a nested `meta`);
- the seed's labels: `"New"`, `"Outbound Call"`, `"no-answer"`, `"created"`, `"Backlog"`;
- its recommended indexes under other names than MongoDB's defaults.

Twelve leads, LEAD-001 … LEAD-012 (the next one created must be LEAD-013).
"""

from datetime import datetime, timedelta
from typing import Any

from bson import ObjectId

STATUSES = ("New", "Contacted", "Nurture", "Qualified", "Unqualified", "Junk")
UNKNOWN = {"customField": "kept", "tags": ["vip", "2025"], "meta": {"importedFrom": "sheet"}}
SEED_LEAD_KEYS = {
    "_id", "lead_id", "salutation", "firstName", "lastName", "email", "mobile", "organization",
    "website", "jobTitle", "industry", "source", "status", "gender", "noOfEmployees",
    "annualRevenue", "territory", "leadOwner", "createdAt", "createdBy", "updatedAt",
    "activities",
}  # fmt: skip
# What this server may add to a seed lead (docs/seed.md and README "Stored documents").
# What this server adds to a seed lead: ids, conversion, ownership, and normalized keys.
KEY_FIELDS = {"emailKey", "phoneKey", "nameKey", "organizationKey", "domainKey", "searchKeys"}
ADDED_LEAD_KEYS = {
    "leadNumber",
    "convertedToDeal",
    "dealId",
    "leadOwnerId",
    "keysVersion",
} | KEY_FIELDS


def stamp(day: int, as_string: bool) -> Any:
    moment = datetime(2025, 1, 1, 10, 0, 0) + timedelta(days=day - 1)
    return moment.isoformat() if as_string else moment


def seed_lead(n: int) -> dict[str, Any]:
    """LEAD-00n; odd leads have string timestamps, even ones datetimes."""
    as_string = n % 2 == 1
    lead: dict[str, Any] = {
        "lead_id": f"LEAD-{n:03d}",
        "salutation": "Mr",
        "firstName": ["John", "Jane", "Ada", "Alan"][n % 4],
        "lastName": f"Doe{n}",
        "email": f"lead{n}@example.com",
        "mobile": "+1234567890",
        "organization": f"Example Corp {n % 3}",
        "website": "www.example.com",
        "jobTitle": "CEO",
        "industry": "Technology",
        "source": "LinkedIn",
        "status": STATUSES[n % len(STATUSES)],
        "gender": "Male",
        "noOfEmployees": "100-500",
        "annualRevenue": 1_000_000 * n,
        "territory": "USA",
        "leadOwner": "Shariq Ansari",
        "createdAt": stamp(n, as_string),
        "createdBy": "user_id",
        "updatedAt": stamp(n, as_string),
        "activities": [
            {
                "type": "created",
                "description": "Lead created",
                "by": "Shariq Ansari",
                "timestamp": stamp(n, as_string),
            }
        ],
    }
    if n == 1:
        lead["status"] = "New"  # the seed doc's own example, exactly
    if n % 3 == 0:  # absent optional fields
        for name in ("salutation", "website", "gender", "territory", "annualRevenue"):
            del lead[name]
    if n % 4 == 0:  # explicit nulls
        lead.update(jobTitle=None, industry=None, noOfEmployees=None)
    if n in (2, 5):
        lead.update(UNKNOWN)
    if n == 7:
        del lead["activities"]  # a lead the seed stored without a timeline
    return lead


def seed_children(lead_id: str, day: int) -> dict[str, dict[str, Any]]:
    when = stamp(day, True)
    return {
        "lead_emails": {
            "lead_id": lead_id,
            "from": "admin@company.com",
            "to": "john@example.com",
            "cc": None,
            "bcc": None,
            "subject": "Follow up meeting",
            "body": "Email content...",
            "timestamp": when,
            "status": "sent",
            "sentBy": "Shariq Ansari",
            "customField": "kept",
        },
        "lead_calls": {
            "lead_id": lead_id,
            "type": "Outbound Call",
            "duration": 180,
            "from": "Shariq Ansari",
            "to": "John Doe",
            "phone": "+1234567890",
            "timestamp": stamp(day, False),
            "status": "no-answer",
            "loggedBy": "Shariq Ansari",
        },
        "lead_tasks": {
            "lead_id": lead_id,
            "title": "Follow up call",
            "description": "Call to discuss proposal",
            "status": "Backlog",
            "assignedTo": "Shariq Ansari",
            "dueDate": (datetime(2025, 1, day) + timedelta(days=5)).isoformat(),
            "priority": "High",
            "createdAt": when,
            "createdBy": "Shariq Ansari",
        },
        "lead_notes": {
            "lead_id": lead_id,
            "title": "Call notes",
            "content": "Discussed project requirements...",
            "createdAt": when,
            "createdBy": "Shariq Ansari",
        },
    }


def seed_database(leads: int = 12) -> dict[str, list[dict[str, Any]]]:
    """Every collection's documents; each lead has one email, call, task and note."""
    collections: dict[str, list[dict[str, Any]]] = {
        "leads": [],
        "lead_emails": [],
        "lead_calls": [],
        "lead_tasks": [],
        "lead_notes": [],
    }
    for n in range(1, leads + 1):
        lead = {"_id": ObjectId(), **seed_lead(n)}
        collections["leads"].append(lead)
        for name, child in seed_children(lead["lead_id"], (n % 28) + 1).items():
            collections[name].append({"_id": ObjectId(), **child})
    return collections


# The seed's recommended indexes (docs/seed.md), as an
# operator may have created them: same keys, their own names.
SEED_INDEXES: dict[str, list[tuple[list[tuple[str, int]], dict[str, Any]]]] = {
    "leads": [
        ([("lead_id", 1)], {"unique": True, "name": "lead_id_unique"}),
        ([("email", 1)], {"name": "by_email"}),
        ([("status", 1)], {"name": "by_status"}),
        ([("createdAt", -1)], {"name": "newest_first"}),
    ],
    **{
        name: [([("lead_id", 1)], {"name": "by_lead"})]
        for name in ("lead_emails", "lead_calls", "lead_tasks", "lead_notes")
    },
}


async def load_seed_database(database: Any, leads: int = 12) -> dict[str, list[dict[str, Any]]]:
    """Write the fixture into `database` (a PyMongo async database), indexes first."""
    for name, indexes in SEED_INDEXES.items():
        for keys, options in indexes:
            await database[name].create_index(keys, **options)
    documents = seed_database(leads)
    for name, items in documents.items():
        if items:
            await database[name].insert_many(items)
    return documents
