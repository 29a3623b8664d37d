"""Bearer JWTs (docs/api.md): verifying the caller, and minting tokens for scripts."""

import os
import secrets
from datetime import UTC, datetime, timedelta
from functools import cached_property

import jwt

from config import ConfigError, Settings
from services import api_keys
from services.errors import Unauthenticated
from services.viewer import ADMIN_ROLE, LEEWAY_SECONDS, Viewer

# An HS256 key at least as long as the hash (RFC 7518 §3.2).
MIN_SECRET_BYTES = 32


def dev_secret(settings: Settings) -> str:
    """Dev mode's signing secret: made once, kept in the data dir so tokens survive restarts."""
    path = settings.data_dir / "dev-jwt-secret"
    if not path.exists():
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        # Created owner-only from the start: the secret is never readable by others.
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w") as secret_file:
            secret_file.write(secrets.token_urlsafe(48))
    return path.read_text().strip()


def check_secret(secret: str | None) -> None:
    """A configured HS256 secret must be long enough to not be guessed (ConfigError if not)."""
    if secret is None:
        return
    length = len(secret.encode())
    if length < MIN_SECRET_BYTES:
        raise ConfigError(
            f"CRM_JWT_SECRET is {length} bytes; it must be at least {MIN_SECRET_BYTES} bytes."
            " Generate one with: python -c 'import secrets; print(secrets.token_urlsafe(48))'"
            " (or leave CRM_JWT_SECRET unset for dev mode)"
        )


def check_public_key(pem: str) -> None:
    """RS256 needs a key the `cryptography` package can load (ConfigError if not)."""
    try:
        jwt.algorithms.RSAAlgorithm(jwt.algorithms.RSAAlgorithm.SHA256).prepare_key(pem)
    except (jwt.InvalidKeyError, ValueError, TypeError) as error:
        raise ConfigError(f"CRM_JWT_PUBLIC_KEY is not a PEM RSA public key: {error}") from error


class TokenService:
    """Verifies (and, with a shared secret, mints) tokens with one pinned algorithm.

    Raises ConfigError for keys it will not work with, so the server refuses to start.
    """

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.algorithm = "RS256" if settings.jwt_public_key else "HS256"
        check_secret(settings.jwt_secret)
        if settings.jwt_public_key:
            check_public_key(settings.jwt_public_key)

    @cached_property
    def signing_key(self) -> str | None:
        """The HS256 secret (None with RS256); dev mode's is made on first use, not at import."""
        if self.settings.jwt_public_key:
            return None
        return self.settings.jwt_secret or dev_secret(self.settings)

    @cached_property
    def verify_key(self) -> str:
        return self.settings.jwt_public_key or str(self.signing_key)

    async def authenticate(self, authorization: str | None) -> Viewer:
        """The caller of an `Authorization` header value, a JWT or an API key (`crm_…`): the
        one check every door (GraphQL over HTTP and WebSocket, REST) makes. Unauthenticated
        when it is not valid (an unknown, revoked or expired key included)."""
        token = bearer_token(authorization)
        if api_keys.is_api_key(token):
            return await api_keys.authenticate(token)
        return self.verify(authorization)

    def verify(self, authorization: str | None) -> Viewer:
        """The caller of an `Authorization` header with a JWT; Unauthenticated when it is not
        valid. (API keys need the database: `authenticate`.)"""
        token = bearer_token(authorization)
        try:
            claims = jwt.decode(
                token,
                self.verify_key,
                algorithms=[self.algorithm],
                issuer=self.settings.jwt_issuer,
                audience=self.settings.jwt_audience,
                leeway=LEEWAY_SECONDS,
                options={"require": ["exp", "sub"]},
            )
        except jwt.ExpiredSignatureError as error:
            raise Unauthenticated("Token has expired") from error
        except jwt.InvalidTokenError as error:
            raise Unauthenticated(f"Invalid token: {error}") from error
        return Viewer(
            id=str(claims["sub"]),
            name=_optional_str(claims.get("name")),
            email=_optional_str(claims.get("email")),
            role=str(claims.get("role") or ""),
            expires_at=datetime.fromtimestamp(claims["exp"], UTC),
        )

    def mint(
        self,
        *,
        subject: str,
        name: str | None = None,
        email: str | None = None,
        role: str = ADMIN_ROLE,
        ttl: timedelta = timedelta(hours=12),
    ) -> str:
        if self.signing_key is None:
            raise RuntimeError("Tokens are signed by your identity provider when RS256 is used")
        now = datetime.now(UTC)
        claims: dict[str, object] = {"sub": subject, "role": role, "iat": now, "exp": now + ttl}
        claims.update({key: value for key, value in (("name", name), ("email", email)) if value})
        if self.settings.jwt_issuer:
            claims["iss"] = self.settings.jwt_issuer
        if self.settings.jwt_audience:
            claims["aud"] = self.settings.jwt_audience
        return jwt.encode(claims, self.signing_key, algorithm=self.algorithm)


def bearer_token(authorization: str | None) -> str:
    """The token of an `Authorization: Bearer <token>` header value."""
    if not authorization:
        raise Unauthenticated("Missing Authorization header: send 'Bearer <token>'")
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthenticated("Authorization header must be 'Bearer <token>'")
    return token.strip()


def _optional_str(value: object) -> str | None:
    return None if value is None else str(value)
