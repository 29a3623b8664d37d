"""The README's example script, run against a real uvicorn serving the embedded database."""

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.live_server import ROOT, serve


@pytest.fixture
def served(tmp_path: Path) -> Iterator[dict[str, str]]:
    """`crm serve` as the README says, with its own data dir and the embedded database."""
    with serve(tmp_path) as live:
        yield {**live.env, "CRM_URL": live.url}


def test_seed_flows_example_runs_against_a_live_server(served: dict[str, str]) -> None:
    result = subprocess.run(
        [sys.executable, "examples/seed_flows.py"],
        cwd=ROOT,
        env=served,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "6. converted {'status': 'QUALIFIED', 'convertedToDeal': True}" in result.stdout
    assert "CONVERTED_TO_DEAL" in result.stdout
