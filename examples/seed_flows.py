"""The seed's six test steps against a running server, through plain HTTP (stdlib only).

    uv run python examples/seed_flows.py            # server on http://127.0.0.1:8000
    CRM_URL=http://host:port/graphql CRM_TOKEN=... uv run python examples/seed_flows.py

Without CRM_TOKEN it mints one with `crm token` (same config as the server).
"""

import json
import os
import subprocess
import urllib.request
from typing import Any

URL = os.environ.get("CRM_URL", "http://127.0.0.1:8000/graphql")


def token() -> str:
    if given := os.environ.get("CRM_TOKEN"):
        return given
    minted = subprocess.run(
        ["crm", "token", "--name", "Example Script"],
        capture_output=True,
        text=True,
        check=True,
    )
    return minted.stdout.strip()


def graphql(query: str, **variables: Any) -> dict[str, Any]:
    request = urllib.request.Request(
        URL,
        data=json.dumps({"query": query, "variables": variables}).encode(),
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {TOKEN}"},
    )
    with urllib.request.urlopen(request) as response:
        body = json.load(response)
    if body.get("errors"):
        raise SystemExit(f"GraphQL errors: {body['errors']}")
    return dict(body["data"])


TOKEN = token()

# 1. Create a lead
lead = graphql(
    """mutation($input: CreateLeadInput!) {
         createLead(input: $input) { lead { leadId status } } }""",
    input={
        "firstName": "John",
        "lastName": "Doe",
        "email": "john@example.com",
        "mobile": "+1234567890",
        "organization": "Example Corp",
        "annualRevenue": 1000000,
    },
)["createLead"]["lead"]
lead_id = lead["leadId"]
print("1. created", lead_id, lead["status"])

# 2. Send an email (to defaults to the lead's email)
email = graphql(
    """mutation($leadId: String!, $input: SendEmailInput!) {
         sendEmail(leadId: $leadId, input: $input) {
           email { to subject } lead { activitiesCount } } }""",
    leadId=lead_id,
    input={"subject": "Follow up meeting", "body": "Email content..."},
)["sendEmail"]
print("2. emailed", email["email"]["to"], "- timeline entries:", email["lead"]["activitiesCount"])

# 3. Log a call
call = graphql(
    """mutation($leadId: String!, $input: LogCallInput!) {
         logCall(leadId: $leadId, input: $input) { call { type duration status } } }""",
    leadId=lead_id,
    input={"duration": 180},
)["logCall"]["call"]
print("3. call logged", call)

# 4. Create a task
task = graphql(
    """mutation($leadId: String!, $input: CreateTaskInput!) {
         createTask(leadId: $leadId, input: $input) { task { id title status priority } } }""",
    leadId=lead_id,
    input={"title": "Follow up call", "priority": "HIGH", "dueDate": "2030-01-25T14:00:00Z"},
)["createTask"]["task"]
print("4. task created", task)

# 5. Create a note
note = graphql(
    """mutation($leadId: String!, $input: CreateNoteInput!) {
         createNote(leadId: $leadId, input: $input) { note { title } } }""",
    leadId=lead_id,
    input={"title": "Call notes", "content": "Discussed project requirements..."},
)["createNote"]["note"]
print("5. note added", note)

# 6. Convert to a deal
converted = graphql(
    """mutation($leadId: String!) { convertLeadToDeal(leadId: $leadId) {
         lead { status convertedToDeal }
         deal { dealId status organization { name } contact { email } } } }""",
    leadId=lead_id,
)["convertLeadToDeal"]
print("6. converted", converted["lead"], converted["deal"])

# The lead page: everything in one request
page = graphql(
    """query($leadId: String!) { lead(leadId: $leadId) {
         fullName status emails { subject } calls { duration } tasks { title } notes { title }
         activities { type description by timestamp } } }""",
    leadId=lead_id,
)["lead"]
print("timeline, newest first:")
for activity in page["activities"]:
    print(f"  {activity['timestamp']}  {activity['type']:<18} {activity['description']}")
