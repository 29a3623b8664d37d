"""Every documented way to start the server serves: `crm serve` (tests/live_server.py) and
`python server.py`, which must be the same code path, not a silent exit."""

import json
import sys
import urllib.request
from pathlib import Path

import pytest

from tests.live_server import ROOT, serve


@pytest.fixture(autouse=True)
def clean_database() -> None:
    """These tests run their own processes: no database (overrides conftest's fixture)."""


def test_python_server_py_serves_like_crm_serve(tmp_path: Path) -> None:
    with serve(tmp_path, command=[sys.executable, str(ROOT / "server.py")]) as live:
        with urllib.request.urlopen(f"{live.base_url}/healthz", timeout=10) as response:
            assert response.status == 200
        # `crm serve`'s start-up: dev mode prints an admin token, and it works.
        request = urllib.request.Request(
            live.url,
            data=json.dumps({"query": "{ me { id role } }"}).encode(),
            headers={
                "Content-Type": "application/json",
                "Authorization": f"Bearer {live.dev_token()}",
            },
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            body = json.load(response)
    assert body == {"data": {"me": {"id": "dev-admin", "role": "admin"}}}, body
