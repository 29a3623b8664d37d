"""Bearer JWT auth (docs/api.md): who may call, and who the server says did what."""

import asyncio
import base64
import hashlib
import hmac
import json
import os
import stat
import subprocess
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from starlette.applications import Starlette
from starlette.types import Message

from api.auth import TokenService
from config import ConfigError, Settings
from server import create_app
from tests.conftest import JWT_SECRET, GraphQLClient, mint, websocket_scope
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


async def test_any_role_can_ask_who_they_are(http: httpx.AsyncClient, app: Starlette) -> None:
    response = await post(http, "{ me { id role } }", f"Bearer {mint(app, role='guest')}")
    assert response.status_code == 200, response.text
    assert response.json() == {"data": {"me": {"id": "user-1", "role": "guest"}}}


async def test_an_unknown_role_cannot_list_leads(http: httpx.AsyncClient, app: Starlette) -> None:
    # Roles: admin, manager, sales, viewer (tests/test_permissions.py has them all).
    response = await post(http, LEAD_COUNT, f"Bearer {mint(app, role='guest')}")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["data"] is None
    assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN"


async def test_a_viewer_cannot_create_a_lead(
    http: httpx.AsyncClient, app: Starlette, gql: GraphQLClient
) -> None:
    response = await post(
        http,
        CREATE_LEAD,
        f"Bearer {mint(app, role='viewer')}",
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


# --- token rules (RFC 8725) ------------------------------------------------------------

# An RSA public key (not a secret): the key a server configured for RS256 would hold.
PUBLIC_KEY = """-----BEGIN PUBLIC KEY-----
MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEAn7x6qQY88aKNuDVKOgkR
a57MpoZePNEYX3iXCHIOG/GIc0XqIn/wE00D2j3Jla6lT1qs5pczeUe+nks4tf5k
F0JwHkyJuiBewqsS1VpDJh+bsfXGea/AuoFxM61UCQG1qgSAMiAxTZ366rDBHT6M
LG+AEV8UJupCX4alOlABFximBl4HNLR64aDrN0R6pyinKq03mnkn68Qfl+7uEyrJ
v33LCS2PFp12+NwF9pnxSWUFW3RPJ5Cwo7e8DydS/dN3c4G4c1Z0wQM+0S+a0M7P
xUypeHxMN6YKnL5pDWu+HD5KttHG6LwLI+v962oZTlsoOfRfm064PifoYfIS+j6U
fwIDAQAB
-----END PUBLIC KEY-----
"""


def segment(value: bytes | dict[str, Any]) -> str:
    raw = value if isinstance(value, bytes) else json.dumps(value, default=_timestamp).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _timestamp(moment: datetime) -> int:
    return int(moment.timestamp())


def forge(header: dict[str, Any], payload: dict[str, Any], key: bytes | None = None) -> str:
    """A token built by hand: HMAC-SHA256 signed with `key`, else with an empty signature."""
    signing_input = f"{segment(header)}.{segment(payload)}"
    if key is None:
        return f"{signing_input}."
    signature = hmac.new(key, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{segment(signature)}"


async def test_forge_makes_tokens_the_server_accepts(http: httpx.AsyncClient) -> None:
    # The control for the forged tokens below: right secret and algorithm, accepted.
    token = forge({"alg": "HS256", "typ": "JWT"}, claims(), JWT_SECRET.encode())
    response = await post(http, ME, f"Bearer {token}")
    assert response.status_code == 200, response.text


async def test_unsigned_token_with_an_hs256_header_is_401(http: httpx.AsyncClient) -> None:
    token = forge({"alg": "HS256", "typ": "JWT"}, claims())  # `header.payload.`
    assert_unauthenticated(await post(http, ME, f"Bearer {token}"))


@pytest.mark.parametrize("alg", ["none", "None", "NONE"])
async def test_alg_none_in_any_case_is_401(http: httpx.AsyncClient, alg: str) -> None:
    token = forge({"alg": alg, "typ": "JWT"}, claims())
    assert_unauthenticated(await post(http, ME, f"Bearer {token}"))


async def test_token_whose_claims_changed_after_signing_is_401(http: httpx.AsyncClient) -> None:
    header, _, signature = sign(role="sales").split(".")
    tampered = f"{header}.{segment(claims(role='admin'))}.{signature}"
    assert_unauthenticated(await post(http, ME, f"Bearer {tampered}"))


async def test_rs256_token_is_401_when_hs256_is_configured(http: httpx.AsyncClient) -> None:
    # What an RS256 token looks like (PyJWT here has no RSA): the header alone must refuse it.
    token = f"{segment({'alg': 'RS256', 'typ': 'JWT'})}.{segment(claims())}.{segment(b'x' * 256)}"
    assert_unauthenticated(await post(http, ME, f"Bearer {token}"))


@pytest.mark.parametrize(
    ("seconds_ago", "status"), [(10, 200), (45, 401)], ids=["within-leeway", "beyond-leeway"]
)
async def test_expiry_leeway_is_30_seconds(
    http: httpx.AsyncClient, seconds_ago: int, status: int
) -> None:
    token = sign(exp=datetime.now(UTC) - timedelta(seconds=seconds_ago))
    response = await post(http, ME, f"Bearer {token}")
    assert response.status_code == status, response.text


@pytest.mark.parametrize(
    ("seconds_ahead", "status"), [(10, 200), (300, 401)], ids=["within-leeway", "future"]
)
async def test_token_not_valid_before_nbf_is_401(
    http: httpx.AsyncClient, seconds_ahead: int, status: int
) -> None:
    token = sign(nbf=datetime.now(UTC) + timedelta(seconds=seconds_ahead))
    response = await post(http, ME, f"Bearer {token}")
    assert response.status_code == status, response.text
    if status == 401:
        assert "not yet valid" in response.json()["errors"][0]["message"]


async def test_token_for_an_audience_is_401_when_none_is_configured(
    http: httpx.AsyncClient,
) -> None:
    # Meant for another API of the same issuer: not for this one (RFC 8725 §3.9).
    assert_unauthenticated(await post(http, ME, f"Bearer {sign(aud='another-api')}"))


@pytest.fixture
def rs256_app(settings: Settings) -> Starlette:
    """An app verifying RS256 with PUBLIC_KEY (no lifespan: `me` needs no database)."""
    return create_app(
        settings.model_copy(update={"jwt_secret": None, "jwt_public_key": PUBLIC_KEY})
    )


async def test_hs256_token_signed_with_the_public_key_is_401_under_rs256(
    rs256_app: Starlette,
) -> None:
    # The classic confusion: the public key, which anyone has, used as an HMAC secret.
    token = forge({"alg": "HS256", "typ": "JWT"}, claims(), PUBLIC_KEY.encode())
    transport = httpx.ASGITransport(app=rs256_app)
    async with httpx.AsyncClient(transport=transport, base_url="http://crm.test") as client:
        assert_unauthenticated(await post(client, ME, f"Bearer {token}"))
        # The same forgery with the HS256 secret of the test app is refused too: RS256 only.
        other = forge({"alg": "HS256", "typ": "JWT"}, claims(), JWT_SECRET.encode())
        assert_unauthenticated(await post(client, ME, f"Bearer {other}"))


async def test_rs256_token_signed_with_the_private_key_passes(settings: Settings) -> None:
    rsa = pytest.importorskip("cryptography.hazmat.primitives.asymmetric.rsa")
    serialization = pytest.importorskip("cryptography.hazmat.primitives.serialization")
    private_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    public_pem = (
        private_key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    rs256 = create_app(settings.model_copy(update={"jwt_public_key": public_pem}))
    transport = httpx.ASGITransport(app=rs256)
    async with httpx.AsyncClient(transport=transport, base_url="http://crm.test") as client:
        good = jwt.encode(claims(), private_key, algorithm="RS256")
        response = await post(client, ME, f"Bearer {good}")
        assert response.status_code == 200, response.text
        confused = forge({"alg": "HS256", "typ": "JWT"}, claims(), public_pem.encode())
        assert_unauthenticated(await post(client, ME, f"Bearer {confused}"))


# --- tokens in the URL -----------------------------------------------------------------


@pytest.mark.parametrize(
    "parameter", ["access_token", "token", "Authorization", "JWT", "Access_Token", "id_token"]
)
async def test_token_in_the_query_string_is_refused_even_beside_a_valid_header(
    http: httpx.AsyncClient, app: Starlette, parameter: str
) -> None:
    token = mint(app)
    response = await http.post(
        f"/graphql?{parameter}={token}",
        json={"query": ME},
        headers={"authorization": f"Bearer {token}"},
    )
    assert response.status_code == 400, response.text
    error = response.json()["errors"][0]
    assert error["extensions"]["code"] == "BAD_REQUEST"
    assert "Authorization: Bearer <token>" in error["message"]
    assert parameter in error["message"]
    assert 'error="invalid_request"' in response.headers["www-authenticate"]


async def test_token_in_a_get_query_string_is_refused(
    http: httpx.AsyncClient, app: Starlette
) -> None:
    params = {"query": ME, "access_token": mint(app)}
    response = await http.get("/graphql", params=params)
    assert response.status_code == 400, response.text
    # Other parameters are fine: the same GET with the token in the header works.
    response = await http.get(
        "/graphql", params={"query": ME}, headers={"authorization": f"Bearer {mint(app)}"}
    )
    assert response.status_code == 200, response.text


async def websocket_handshake(app: Starlette, query_string: str) -> Message:
    """The app's first answer to a graphql-transport-ws handshake on /graphql."""
    scope = websocket_scope(query_string)
    incoming: list[Message] = [
        {"type": "websocket.connect"},
        {"type": "websocket.disconnect", "code": 1000},
    ]
    sent: list[Message] = []

    async def receive() -> Message:
        return incoming.pop(0)

    async def send(message: Message) -> None:
        sent.append(message)

    await asyncio.wait_for(app(scope, receive, send), timeout=10)
    return sent[0]


async def test_websocket_with_a_token_in_the_query_string_is_refused(app: Starlette) -> None:
    accepted = await websocket_handshake(app, "")
    assert accepted["type"] == "websocket.accept", accepted
    refused = await websocket_handshake(app, f"access_token={mint(app)}")
    assert refused["type"] == "websocket.close", refused  # before accepting: HTTP 403
    assert refused["code"] == 1008
    assert "Authorization" in refused["reason"]


# --- production secret -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("secret", "length"),
    [("", 0), ("too-short", 9), ("x" * 31, 31), ("é" * 15, 30)],
    ids=["empty", "short", "31-bytes", "15-chars-30-bytes"],
)
def test_secret_under_32_bytes_refuses_to_start(
    settings: Settings, secret: str, length: int
) -> None:
    expected = f"CRM_JWT_SECRET is {length} bytes; it must be at least 32 bytes"
    with pytest.raises(ConfigError, match=expected):
        create_app(settings.model_copy(update={"jwt_secret": secret}))


def test_secret_of_32_bytes_is_enough(settings: Settings) -> None:
    # 16 characters, 32 bytes in UTF-8: bytes are what count.
    assert create_app(settings.model_copy(update={"jwt_secret": "é" * 16}))


@pytest.mark.parametrize("command", ["serve", "token"])
def test_crm_refuses_a_short_secret_with_a_clear_message(tmp_path: Path, command: str) -> None:
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("CRM_", "MONGODB_URI"))},
        "CRM_JWT_SECRET": "too-short",
        "CRM_DATA_DIR": str(tmp_path),
        "CRM_PORT": "0",
    }
    # Were the secret accepted, `serve` would run until the timeout fails the test.
    result = subprocess.run(
        [CRM, command], cwd=PROJECT_DIR, env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 1, result.stdout + result.stderr
    assert result.stderr.startswith(
        f"crm {command}: CRM_JWT_SECRET is 9 bytes; it must be at least 32 bytes"
    ), result.stderr
    assert "Traceback" not in result.stderr
