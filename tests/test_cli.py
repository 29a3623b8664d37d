"""The `crm` console script, run as a user runs it: seed-demo, then the data through the API."""

import json
import subprocess
import urllib.request
from pathlib import Path
from typing import Any

from tests.live_server import CRM, ROOT, serve

DEMO_LEADS = """
query { leads(first: 100, orderBy: {field: LEAD_ID, direction: ASC}) {
  totalCount
  nodes { leadId status createdAt activitiesCount
          activities { type timestamp }
          emails { id } calls { id } tasks { id } notes { id } } } }
"""
CREATE_OWN_LEAD = 'mutation { createLead(input: {firstName: "Own"}) { lead { leadId } } }'


def crm(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [CRM, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )


def query(url: str, token: str, document: str) -> dict[str, Any]:
    request = urllib.request.Request(
        url,
        data=json.dumps({"query": document}).encode(),
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {token}"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        body: dict[str, Any] = json.load(response)
    assert "errors" not in body, body
    data: dict[str, Any] = body["data"]
    return data


def test_seed_demo_adds_leads_with_children_and_consistent_timelines(tmp_path: Path) -> None:
    with serve(tmp_path) as live:
        query(live.url, live.dev_token(), CREATE_OWN_LEAD)
        # The embedded database belongs to the running server: a second process is refused.
        refused = crm("seed-demo", "--leads", "1", env=live.env)
        env = live.env
    assert refused.returncode != 0
    assert "in use by another process" in refused.stderr
    assert "Traceback" not in refused.stderr

    seeded = crm("seed-demo", "--leads", "12", "--seed", "3", env=env)
    assert seeded.returncode == 0, seeded.stderr
    assert "12/12 leads" in seeded.stderr  # the progress bar's last frame
    assert "LEAD-002 … LEAD-013" in seeded.stdout  # after the lead made through the API

    with serve(tmp_path) as live:
        leads = query(live.url, live.dev_token(), DEMO_LEADS)["leads"]
    assert leads["totalCount"] == 13
    demo = leads["nodes"][1:]
    assert [lead["leadId"] for lead in demo] == [f"LEAD-{n:03d}" for n in range(2, 14)]
    children = 0
    for lead in demo:
        own = sum(len(lead[kind]) for kind in ("emails", "calls", "tasks", "notes"))
        children += own
        types = [entry["type"] for entry in lead["activities"]]
        assert types[-1] == "CREATED", lead  # newest first: creation is the oldest entry
        status_changes = types.count("STATUS_CHANGED")
        assert lead["activitiesCount"] == 1 + own + status_changes, lead
        assert (lead["status"] == "NEW") == (status_changes == 0), lead
        stamps = [entry["timestamp"] for entry in lead["activities"]]
        assert stamps == sorted(stamps, reverse=True), lead
        assert min(stamps) == lead["createdAt"]
    assert children > 12  # 0 to 10 per lead: a dozen leads without any would be a broken seeder


def test_export_schema_to_a_file(tmp_path: Path) -> None:
    target = tmp_path / "schema.graphql"
    exported = crm("export-schema", str(target), env={})
    assert exported.returncode == 0, exported.stderr
    assert "type Subscription" in target.read_text()
    assert "leadActivity(" in target.read_text()


def test_crm_duplicates_prints_the_groups(tmp_path: Path) -> None:
    with serve(tmp_path) as live:
        token = live.dev_token()
        for values in (
            'firstName: "Jane", lastName: "Doe", email: "jane@acme.com"',
            'firstName: "Jon", lastName: "Smith", mobile: "+1 415 555 0100"',
            'firstName: "JANE", lastName: "DOE", email: "Jane+news@Acme.com"',
            'firstName: "Other", lastName: "Person"',
            'firstName: "John", lastName: "Smith", mobile: "(415) 555-0100"',
        ):
            query(
                live.url,
                token,
                f"mutation {{ createLead(input: {{{values}}}) {{ lead {{ id }} }} }}",
            )
        env = live.env

    listed = crm("duplicates", env=env)
    as_json = crm("duplicates", "--json", env=env)

    assert listed.returncode == 0, listed.stderr
    assert listed.stdout.splitlines() == [
        "LEAD-001, LEAD-003  (DOMAIN, EMAIL, NAME)",
        "LEAD-002, LEAD-005  (NAME_SIMILAR, PHONE)",
    ]
    assert "2 groups of duplicates" in listed.stderr
    assert [json.loads(line) for line in as_json.stdout.splitlines()][1] == {
        "leadIds": ["LEAD-002", "LEAD-005"],
        "rules": ["NAME_SIMILAR", "PHONE"],
    }
