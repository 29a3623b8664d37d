"""Bearer JWT auth (DESIGN.md §5): who may call, and who the server says did what."""

import asyncio
import base64
import json
import os
import stat
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from starlette.applications import Starlette

from config import Settings
from resolvers.auth import TokenService
from server import create_app
from tests.conftest import JWT_SECRET, GraphQLClient, mint
from tests.documents import CREATE_LEAD
from tests.live_server import CRM

ME = "{ me { id name email role } }"
LEAD_COUNT = "{ leads { totalCount } }"
PROJECT_DIR = Path(__file__).resolve().parent.parent

ISSUER = "https://id.example"
AUDIENCE = "crm-api"


def claims(**overrides: Any) -> dict[str, Any]:
    """Valid admin claims, expiring in an hour; a value of None drops the claim."""
    now = datetime.now(UTC)
    values = {
        "sub": "user-1",
        "name": "Shariq Ansari",
        "email": "admin@company.com",
        "role": "admin",
        "iat": now,
        "exp": now + timedelta(hours=1),
        **overrides,
    }
    return {name: value for name, value in values.items() if value is not None}


def sign(algorithm: str = "HS256", secret: str = JWT_SECRET, **overrides: Any) -> str:
    return jwt.encode(claims(**overrides), secret, algorithm=algorithm)


def unsigned_token() -> str:
    """An `alg: none` token, built by hand since PyJWT refuses to make one that verifies."""

    def part(value: dict[str, Any]) -> str:
        raw = json.dumps(value, default=lambda moment: int(moment.timestamp())).encode()
        return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()

    return f"{part({'alg': 'none', 'typ': 'JWT'})}.{part(claims())}."


async def post(
    http: httpx.AsyncClient, query: str, authorization: str | None = None, **body: Any
) -> httpx.Response:
    headers = {"authorization": authorization} if authorization is not None else {}
    return await http.post("/graphql", json={"query": query, **body}, headers=headers)


def assert_unauthenticated(response: httpx.Response) -> None:
    assert response.status_code == 401, response.text
    assert response.json()["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"


async def lead_count(gql: GraphQLClient) -> int:
    data = await gql(LEAD_COUNT)
    count: int = data["leads"]["totalCount"]
    return count


# --- without a valid token -------------------------------------------------------------


async def test_no_authorization_header_is_401_with_bearer_challenge(
    http: httpx.AsyncClient,
) -> None:
    response = await post(http, ME)
    assert_unauthenticated(response)
    assert response.headers["www-authenticate"] == "Bearer"


async def test_mutation_without_token_creates_no_lead(
    http: httpx.AsyncClient, gql: GraphQLClient
) -> None:
    response = await post(http, CREATE_LEAD, variables={"input": {"firstName": "Nobody"}})
    assert_unauthenticated(response)
    assert await lead_count(gql) == 0


@pytest.mark.parametrize("authorization", ["Token x", "Bearer", "Bearer "])
async def test_malformed_authorization_header_is_401(
    http: httpx.AsyncClient, authorization: str
) -> None:
    assert_unauthenticated(await post(http, ME, authorization))


async def test_garbage_token_is_401(http: httpx.AsyncClient) -> None:
    assert_unauthenticated(await post(http, ME, "Bearer not.a-jwt.at-all"))


async def test_token_signed_with_another_secret_is_401(http: httpx.AsyncClient) -> None:
    token = sign(secret="another-secret-that-is-also-long-enough!!")
    assert_unauthenticated(await post(http, ME, f"Bearer {token}"))


async def test_expired_token_is_401(http: httpx.AsyncClient) -> None:
    # Past the 30 s leeway the server allows for clock skew.
    token = sign(exp=datetime.now(UTC) - timedelta(minutes=2))
    assert_unauthenticated(await post(http, ME, f"Bearer {token}"))


async def test_token_without_exp_is_401(http: httpx.AsyncClient) -> None:
    assert_unauthenticated(await post(http, ME, f"Bearer {sign(exp=None)}"))


async def test_token_without_sub_is_401(http: httpx.AsyncClient) -> None:
    assert_unauthenticated(await post(http, ME, f"Bearer {sign(sub=None)}"))


async def test_unsigned_alg_none_token_is_401(http: httpx.AsyncClient) -> None:
    assert_unauthenticated(await post(http, ME, f"Bearer {unsigned_token()}"))


@pytest.mark.filterwarnings("ignore::jwt.warnings.InsecureKeyLengthWarning")
async def test_hs512_token_with_the_right_secret_is_401(http: httpx.AsyncClient) -> None:
    # The algorithm is pinned to HS256: the token's own header does not get to choose.
    assert_unauthenticated(await post(http, ME, f"Bearer {sign(algorithm='HS512')}"))


# --- a valid token ---------------------------------------------------------------------


async def test_me_returns_the_token_claims(http: httpx.AsyncClient, app: Starlette) -> None:
    token = mint(app, sub="u-7", name="Grace Hopper", email="grace@example.com", role="admin")
    response = await post(http, ME, f"Bearer {token}")
    assert response.status_code == 200, response.text
    assert response.json() == {
        "data": {
            "me": {
                "id": "u-7",
                "name": "Grace Hopper",
                "email": "grace@example.com",
                "role": "admin",
            }
        }
    }


async def test_non_admin_can_ask_who_they_are(http: httpx.AsyncClient, app: Starlette) -> None:
    response = await post(http, "{ me { id role } }", f"Bearer {mint(app, role='sales')}")
    assert response.status_code == 200, response.text
    assert response.json() == {"data": {"me": {"id": "user-1", "role": "sales"}}}


async def test_non_admin_cannot_list_leads(http: httpx.AsyncClient, app: Starlette) -> None:
    response = await post(http, LEAD_COUNT, f"Bearer {mint(app, role='sales')}")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["data"] is None
    assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN"


async def test_non_admin_cannot_create_a_lead(
    http: httpx.AsyncClient, app: Starlette, gql: GraphQLClient
) -> None:
    response = await post(
        http,
        CREATE_LEAD,
        f"Bearer {mint(app, role='sales')}",
        variables={"input": {"firstName": "Sneaky"}},
    )
    assert response.status_code == 200, response.text
    assert response.json()["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    assert await lead_count(gql) == 0


async def test_who_did_it_fields_come_from_the_token(
    http: httpx.AsyncClient, app: Starlette
) -> None:
    ada = GraphQLClient(http, mint(app, sub="u-42", name="Ada Lovelace"))
    data = await ada(CREATE_LEAD, {"input": {"firstName": "Charles"}})
    lead = data["createLead"]["lead"]
    assert lead["createdBy"] == "u-42"
    assert lead["leadOwner"] == "Ada Lovelace"
    assert lead["activities"][0]["by"] == "Ada Lovelace"


async def test_created_by_cannot_be_given_in_input(gql: GraphQLClient) -> None:
    errors = await gql.errors(CREATE_LEAD, {"input": {"firstName": "Eve", "createdBy": "u-1"}})
    assert errors[0]["extensions"]["code"] == "BAD_USER_INPUT"
    assert await lead_count(gql) == 0


# --- issuer and audience ---------------------------------------------------------------


@pytest.fixture
async def strict_http(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    """A second app, served like the first, that also checks the token's issuer and audience."""
    strict = create_app(
        settings.model_copy(update={"jwt_issuer": ISSUER, "jwt_audience": AUDIENCE})
    )
    transport = httpx.ASGITransport(app=strict)
    async with (
        strict.router.lifespan_context(strict),
        httpx.AsyncClient(transport=transport, base_url="http://crm.test") as client,
    ):
        yield client


async def test_token_with_configured_issuer_and_audience_passes(
    strict_http: httpx.AsyncClient,
) -> None:
    token = sign(iss=ISSUER, aud=AUDIENCE)
    response = await post(strict_http, ME, f"Bearer {token}")
    assert response.status_code == 200, response.text
    assert response.json()["data"]["me"]["id"] == "user-1"


@pytest.mark.parametrize(
    "overrides",
    [
        {"iss": "https://evil.example", "aud": AUDIENCE},
        {"aud": AUDIENCE},
        {"iss": ISSUER, "aud": "another-api"},
        {"iss": ISSUER},
    ],
    ids=["wrong-iss", "missing-iss", "wrong-aud", "missing-aud"],
)
async def test_token_with_wrong_or_missing_issuer_or_audience_is_401(
    strict_http: httpx.AsyncClient, overrides: dict[str, str]
) -> None:
    assert_unauthenticated(await post(strict_http, ME, f"Bearer {sign(**overrides)}"))


# --- minting tokens --------------------------------------------------------------------


def dev_settings(data_dir: Path) -> Settings:
    return Settings(
        _env_file=None,
        CRM_JWT_SECRET=None,
        CRM_JWT_PUBLIC_KEY=None,
        CRM_DATA_DIR=data_dir,
    )


async def test_dev_mode_secret_is_private_and_survives_restarts(tmp_path: Path) -> None:
    settings = dev_settings(tmp_path / "data")
    assert settings.dev_mode
    first = TokenService(settings)
    token = first.mint(subject="dev-admin", name="Dev Admin")
    assert first.verify(f"Bearer {token}").id == "dev-admin"

    secret_files = list(settings.data_dir.iterdir())
    assert secret_files, "the dev secret is kept in the data dir"
    for path in secret_files:
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path

    restarted = TokenService(dev_settings(tmp_path / "data"))
    assert restarted.verify(f"Bearer {token}").id == "dev-admin"


async def test_token_command_mints_a_token_the_server_accepts(http: httpx.AsyncClient) -> None:
    env = {**os.environ, "CRM_JWT_SECRET": JWT_SECRET}
    process = await asyncio.create_subprocess_exec(
        *(CRM, "token", "--sub", "s1", "--name", "Script"),
        *("--role", "admin"),
        cwd=PROJECT_DIR,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    stdout, stderr = await process.communicate()
    assert process.returncode == 0, stderr.decode()
    token = stdout.decode().strip()

    response = await post(http, ME, f"Bearer {token}")
    assert response.status_code == 200, response.text
    assert response.json()["data"]["me"] == {
        "id": "s1",
        "name": "Script",
        "email": None,
        "role": "admin",
    }
