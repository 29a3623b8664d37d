"""Runtime configuration, read from the environment and an optional `.env` file."""

from pathlib import Path
from typing import Annotated

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict


class Settings(BaseSettings):
    """Every knob the server has; DESIGN.md §6 names them."""

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
