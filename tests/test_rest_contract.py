"""The seed's REST API against its own OpenAPI document: Schemathesis (OpenAPI mode, as
tests/test_fuzz.py drives its GraphQL mode) generates valid and invalid requests for every
operation of a live `crm serve` and checks each response: below 500, a documented status
code and content type, a body that matches the documented schema. Path ids are real ones
most of the time, so requests also reach existing records."""

import time
from collections import Counter, defaultdict
from collections.abc import Iterator
from random import Random
from typing import Any

import pytest
import requests
import schemathesis
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.fuzzing import GeneratedCase, fuzz_every_operation
from tests.live_server import LiveServer, serve

POSITIVE_EXAMPLES = 20
NEGATIVE_EXAMPLES = 5
SWAP_RATE = 0.7
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]

# Values that get past the services' validation, so generated bodies also succeed.
VALID_VALUES: dict[str, list[Any]] = {
    **{name: ["Ada", "Follow up: Q3 pricing"] for name in ("firstName", "subject", "body")},
    **{name: ["Call notes", "x"] for name in ("title", "content")},
    **{name: ["ann@example.com", None] for name in ("email",)},
    **{name: ["ann@example.com", "a@x.io, b@y.org"] for name in ("to", "cc", "bcc")},
    **{name: ["+1 555 0100", None] for name in ("mobile", "phone")},
    "duration": [0, 90, 86_400],
    "annualRevenue": [0, 2_500_000.5, None],
    "organizationId": [None],
    "contactId": [None],
}


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    with serve(tmp_path_factory.mktemp("rest-contract")) as server:
        yield server


class RealIds:
    """Lead and task ids that exist on the live server (topped up before each operation:
    deletes and conversions use leads up)."""

    def __init__(self, server: LiveServer) -> None:
        self.url = f"{server.base_url}/api/crm"
        self.session = requests.Session()
        self.session.headers["Authorization"] = f"Bearer {server.dev_token()}"
        self.ids: dict[str, list[str]] = {"lead_id": [], "task_id": []}

    def refresh(self) -> None:
        leads = self.session.get(f"{self.url}/leads", timeout=60).json()
        open_leads = [lead["lead_id"] for lead in leads if not lead.get("convertedToDeal")]
        for n in range(3 - len(open_leads)):
            created = self.session.post(
                f"{self.url}/leads", json={"firstName": f"Contract{n}", "email": "c@example.com"}
            ).json()
            self.session.post(
                f"{self.url}/leads/{created['lead_id']}/tasks", json={"title": "Call back"}
            )
            open_leads.append(created["lead_id"])
        tasks = [
            task["id"]
            for lead_id in open_leads
            for task in self.session.get(f"{self.url}/leads/{lead_id}/tasks").json()
        ]
        self.ids = {"lead_id": open_leads, "task_id": tasks}

    def swap_into(self, case: GeneratedCase, random: Random) -> None:
        """Most path ids by real ones, most known body fields by values that pass validation."""
        for name, choices in self.ids.items():
            path = case.path_parameters or {}
            if name in path and choices and random.random() < SWAP_RATE:
                path[name] = random.choice(choices)
        if isinstance(case.body, dict):
            for name, values in VALID_VALUES.items():
                if name in case.body and random.random() < SWAP_RATE:
                    case.body[name] = random.choice(values)


def test_rest_api_keeps_its_openapi_contract(live: LiveServer) -> None:
    token = live.dev_token()
    auth = {"Authorization": f"Bearer {token}"}
    schema = schemathesis.openapi.from_url(f"{live.base_url}/api/crm/openapi.json", timeout=30)
    assert schema.raw_schema["openapi"] == "3.1.0"
    real = RealIds(live)
    session = requests.Session()
    outcomes: dict[str, Counter[int]] = defaultdict(Counter)

    def send(case: GeneratedCase, random: Random, _: object) -> None:
        valid = case.meta is None or case.meta.generation.mode.is_positive
        if valid:
            real.swap_into(case, random)
        response = case.call(base_url=live.base_url, session=session, headers=auth, timeout=60)
        case.validate_response(response, checks=CHECKS, headers=auth)
        outcomes[case.operation.label][response.status_code] += 1

    started = time.monotonic()
    operations = fuzz_every_operation(
        schema,
        send,
        positive=POSITIVE_EXAMPLES,
        negative=NEGATIVE_EXAMPLES,
        before_each=real.refresh,
    )

    total = sum(sum(counter.values()) for counter in outcomes.values())
    seconds = time.monotonic() - started
    print(f"\nREST contract: {operations} operations, {total} requests in {seconds:.1f} s")
    for label, counter in sorted(outcomes.items()):
        print(f"  {label:<50} {dict(sorted(counter.items()))}")
    assert operations == 16, outcomes  # every route of the seed's "Endpoints Added" list
    # Real ids reached the success paths of every operation.
    assert all(counter[200] for counter in outcomes.values()), outcomes
    log = "".join(live.output)
    assert "Traceback" not in log, log[-5000:]
