"""Real JavaScript clients against a live server: Apollo Client 4 (HTTP, InMemoryCache,
GraphQLWsLink, apollo-upload-client's UploadHttpLink for file uploads) and graphql-ws, run by
Node's test runner from tests/clients/.

Needs Node.js ≥ 20 with npm; the packages come from tests/clients/package-lock.json
(`npm ci`, run here whenever node_modules is missing or older than the lockfile).
"""

import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import jwt
import pytest

from tests.live_server import LiveServer, serve

CLIENTS = Path(__file__).resolve().parent / "clients"
TEST_FILES = ["apollo.test.mjs", "subscription.test.mjs", "teams.test.mjs", "upload.test.mjs"]
SECRET = "client-tests-secret-that-is-long-enough-for-hs256"
ADMIN_NAME = "Client Tester"
NODE_MAJOR = 20


def mint(role: str = "admin", ttl: timedelta = timedelta(hours=1)) -> str:
    """A token as an identity provider would issue it: HS256 with sub, name, email, role, exp."""
    now = datetime.now(UTC)
    claims = {
        "sub": f"client-tests-{role}",
        "name": ADMIN_NAME if role == "admin" else "Sales Rep",
        "email": f"{role}@example.com",
        "role": role,
        "iat": now,
        "exp": now + ttl,
    }
    return jwt.encode(claims, SECRET, algorithm="HS256")


def require_tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.fail(
            f"`{name}` not found: the client tests need Node.js >= {NODE_MAJOR} with npm "
            "(e.g. `apt-get install nodejs npm`, or https://nodejs.org)",
            pytrace=False,
        )
    return path


def install_packages(npm: str) -> None:
    """`npm ci` unless node_modules was installed from the current lockfile already."""
    lockfile = CLIENTS / "package-lock.json"
    installed = CLIENTS / "node_modules" / ".package-lock.json"  # written by every npm install
    if installed.is_file() and installed.stat().st_mtime >= lockfile.stat().st_mtime:
        return
    result = subprocess.run(
        [npm, "ci", "--no-audit", "--no-fund"],
        cwd=CLIENTS,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, f"npm ci failed in {CLIENTS}:\n{result.stdout}{result.stderr}"


@pytest.fixture
def live(tmp_path: Path) -> Iterator[LiveServer]:
    # Introspection is off by default with a secret; apollo.test.mjs reads the schema.
    env = {"CRM_JWT_SECRET": SECRET, "CRM_INTROSPECTION": "true"}
    with serve(tmp_path, env=env) as server:
        yield server


def test_apollo_client_and_graphql_ws_against_a_live_server(live: LiveServer) -> None:
    node = require_tool("node")
    npm = require_tool("npm")
    version = subprocess.run([node, "--version"], capture_output=True, text=True, check=True)
    major = int(version.stdout.strip().lstrip("v").split(".")[0])
    assert major >= NODE_MAJOR, f"Node.js >= {NODE_MAJOR} needed, found {version.stdout.strip()}"
    install_packages(npm)

    env = {
        **os.environ,
        "CRM_GRAPHQL_URL": live.url,
        "CRM_ADMIN_TOKEN": mint("admin"),
        "CRM_ADMIN_NAME": ADMIN_NAME,
        "CRM_USER_TOKEN": mint("guest"),  # a role the server does not know
        "CRM_SALES_TOKEN": mint("sales"),
        "CRM_SALES_SUB": "client-tests-sales",
        # Beyond the server's 30 s leeway.
        "CRM_EXPIRED_TOKEN": mint("admin", ttl=timedelta(minutes=-5)),
        # For tokens that must expire mid-test (subscription.test.mjs mints them).
        "CRM_JWT_SECRET": SECRET,
        "NO_COLOR": "1",
    }
    started = time.monotonic()
    # --conditions=development: Apollo's development build, which warns about cache data loss
    # (apollo.test.mjs fails on any warning).
    result = subprocess.run(
        [node, "--conditions=development", "--test", "--test-reporter=spec", *TEST_FILES],
        cwd=CLIENTS,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    elapsed = time.monotonic() - started
    output = result.stdout + result.stderr
    print(output)
    print(f"node --test ({', '.join(TEST_FILES)}): {elapsed:.1f} s")
    assert result.returncode == 0, (
        f"node --test failed (exit {result.returncode}):\n{output}\n"
        "server output:\n" + "".join(live.output[-50:])
    )
