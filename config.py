"""Runtime configuration, read from the environment and an optional `.env` file."""

from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict


class ConfigError(ValueError):
    """A configuration the server refuses to start with; `crm` prints the message and exits."""


@dataclass(frozen=True)
class ImportLimits:
    """What one import file may hold (README "Import and export"); `Settings.import_limits`."""

    max_rows: int = 1_000_000
    max_columns: int = 200
    max_cell_chars: int = 32_767  # a spreadsheet cell's own limit
    max_xlsx_uncompressed_bytes: int = 1024 * 1024 * 1024
    max_xlsx_ratio: int = 200
    """An XLSX part that unpacks to more than this many times its packed size is a zip bomb."""
    batch_size: int = 500
    lease_seconds: float = 30.0


@dataclass(frozen=True)
class Limits:
    """What one request may ask for (README "Limits and hardening"); `Settings.limits`."""

    max_query_depth: int = 10
    max_aliases: int = 30
    max_tokens: int = 2000
    max_batch: int = 10
    max_body_bytes: int = 1024 * 1024
    introspection: bool = True
    max_upload_bytes: int = 64 * 1024 * 1024
    """A multipart `/graphql` request (a file upload): its own, far larger limit."""


class Settings(BaseSettings):
    """Every knob the server has; README "Configuration" names them."""

    model_config = SettingsConfigDict(env_file=".env", extra="ignore", populate_by_name=True)

    mongodb_uri: str | None = Field(default=None, alias="MONGODB_URI")
    db_name: str = Field(default="crm", alias="CRM_DB_NAME")
    data_dir: Path = Field(default=Path(".crm-data"), alias="CRM_DATA_DIR")
    host: str = Field(default="127.0.0.1", alias="CRM_HOST")
    port: int = Field(default=8000, alias="CRM_PORT")
    jwt_secret: str | None = Field(default=None, alias="CRM_JWT_SECRET")
    jwt_public_key: str | None = Field(default=None, alias="CRM_JWT_PUBLIC_KEY")
    jwt_issuer: str | None = Field(default=None, alias="CRM_JWT_ISSUER")
    jwt_audience: str | None = Field(default=None, alias="CRM_JWT_AUDIENCE")
    cors_origins: Annotated[list[str], NoDecode] = Field(
        default_factory=list, alias="CRM_CORS_ORIGINS"
    )
    # A stopped database must surface as SERVICE_UNAVAILABLE quickly, not after PyMongo's 30 s.
    db_timeout_ms: int = Field(default=3000, alias="CRM_DB_TIMEOUT_MS")
    # `crm serve` logs one JSON object per line (or plain text), at this level and above.
    log_format: Literal["json", "text"] = Field(default="json", alias="CRM_LOG_FORMAT")
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"] = Field(
        default="INFO", alias="CRM_LOG_LEVEL"
    )
    # `GET /metrics` (Prometheus, unauthenticated: keep it on an internal network).
    metrics: bool = Field(default=True, alias="CRM_METRICS")
    # Request limits, checked before anything runs (see Limits).
    max_query_depth: int = Field(default=Limits.max_query_depth, ge=1, alias="CRM_MAX_QUERY_DEPTH")
    max_aliases: int = Field(default=Limits.max_aliases, ge=0, alias="CRM_MAX_ALIASES")
    max_tokens: int = Field(default=Limits.max_tokens, ge=1, alias="CRM_MAX_TOKENS")
    # Operations in one batched (JSON array) request; 0 turns batching off.
    max_batch: int = Field(default=Limits.max_batch, ge=0, alias="CRM_MAX_BATCH")
    max_body_bytes: int = Field(default=Limits.max_body_bytes, ge=1, alias="CRM_MAX_BODY_BYTES")
    # A multipart /graphql request (a file upload, GraphQL multipart request spec).
    max_upload_bytes: int = Field(
        default=Limits.max_upload_bytes, ge=1, alias="CRM_MAX_UPLOAD_BYTES"
    )
    import_max_rows: int = Field(default=ImportLimits.max_rows, ge=1, alias="CRM_IMPORT_MAX_ROWS")
    import_max_cell_chars: int = Field(
        default=ImportLimits.max_cell_chars, ge=1, alias="CRM_IMPORT_MAX_CELL_CHARS"
    )
    import_batch_size: int = Field(
        default=ImportLimits.batch_size, ge=1, le=10_000, alias="CRM_IMPORT_BATCH_SIZE"
    )
    # Unset: on in dev mode, off otherwise.
    introspection: bool | None = Field(default=None, alias="CRM_INTROSPECTION")
    # Requests (WebSocket operations, batched operations) per minute per principal (user or
    # API key), as a token bucket in each instance (api/rate_limit.py); 0 turns it off.
    rate_limit_per_minute: int = Field(default=600, ge=0, alias="CRM_RATE_LIMIT_PER_MINUTE")
    # `GET /debug/stats` (command count, command time, CPU time) for bench/run.py; off = 404.
    bench: bool = Field(default=False, alias="CRM_BENCH")
    # Count the driver's commands (`Database.commands`) for tests; CRM_BENCH turns it on too.
    # Off, no command listener is registered at all: production pays nothing for it.
    count_commands: bool = Field(default=False, alias="CRM_COUNT_COMMANDS")

    @field_validator("log_format", mode="before")
    @classmethod
    def lower_format(cls, value: object) -> object:
        """`CRM_LOG_FORMAT=JSON` works too."""
        return value.strip().lower() if isinstance(value, str) else value

    @field_validator("log_level", mode="before")
    @classmethod
    def upper_level(cls, value: object) -> object:
        """`CRM_LOG_LEVEL=debug` works too."""
        return value.strip().upper() if isinstance(value, str) else value

    @field_validator("introspection", mode="before")
    @classmethod
    def empty_is_unset(cls, value: object) -> object:
        """`CRM_INTROSPECTION=` (empty) means the default, like leaving it out."""
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("cors_origins", mode="before")
    @classmethod
    def split_origins(cls, value: object) -> object:
        """`CRM_CORS_ORIGINS=https://a.example,https://b.example` is a comma-separated list."""
        if isinstance(value, str):
            return [origin.strip() for origin in value.split(",") if origin.strip()]
        return value

    @property
    def dev_mode(self) -> bool:
        """No signing key configured: the server makes its own and prints a token."""
        return not (self.jwt_secret or self.jwt_public_key)

    @property
    def limits(self) -> Limits:
        return Limits(
            max_query_depth=self.max_query_depth,
            max_aliases=self.max_aliases,
            max_tokens=self.max_tokens,
            max_batch=self.max_batch,
            max_body_bytes=self.max_body_bytes,
            introspection=self.dev_mode if self.introspection is None else self.introspection,
            max_upload_bytes=self.max_upload_bytes,
        )

    @property
    def import_limits(self) -> ImportLimits:
        return ImportLimits(
            max_rows=self.import_max_rows,
            max_cell_chars=self.import_max_cell_chars,
            batch_size=self.import_batch_size,
        )
