"""The README's example script, run against a real uvicorn serving the embedded database."""

import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def served(tmp_path: Path) -> Iterator[dict[str, str]]:
    """`python server.py` as the README says, with its own data dir and no MONGODB_URI."""
    port = free_port()
    env = {
        **{k: v for k, v in os.environ.items() if k != "MONGODB_URI"},
        "CRM_DATA_DIR": str(tmp_path),
        "CRM_PORT": str(port),
    }
    server = subprocess.Popen(
        [sys.executable, "server.py"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=1)
                break
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"server did not start: {server.stdout}") from None
                time.sleep(0.2)
        yield {**env, "CRM_URL": f"http://127.0.0.1:{port}/graphql"}
    finally:
        server.terminate()
        server.wait(timeout=10)


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
