"""Connecting to MongoDB: the configured one, or an embedded wire-compatible server."""

import logging
from dataclasses import dataclass, field
from pathlib import Path

from beanie import init_beanie
from mongoeco.engines.sqlite import SQLiteEngine
from mongoeco.wire.proxy import AsyncMongoEcoProxyServer
from pymongo import AsyncMongoClient, monitoring

from config import Settings
from models import DOCUMENT_MODELS

log = logging.getLogger(__name__)


class EmbeddedMongo:
    """A MongoDB-wire-compatible server (mongoeco on SQLite) on a loopback port."""

    def __init__(self, data_dir: Path, host: str = "127.0.0.1", port: int = 0) -> None:
        data_dir.mkdir(parents=True, exist_ok=True)
        self.path = data_dir / "crm.sqlite3"
        self._server = AsyncMongoEcoProxyServer(
            engine=SQLiteEngine(str(self.path)), host=host, port=port
        )

    async def start(self) -> str:
        """Start listening; returns the `mongodb://` URI to connect to."""
        address = await self._server.start()
        log.info("embedded MongoDB-compatible server on %s (data in %s)", address.uri, self.path)
        return address.uri

    async def stop(self) -> None:
        await self._server.close()


@dataclass
class CommandCounter(monitoring.CommandListener):
    """Counts the commands the driver sends: how tests and benchmarks see round trips."""

    count: int = 0
    names: list[str] = field(default_factory=list)

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        self.count += 1
        self.names.append(event.command_name)

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        """Only starts are counted."""

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        """Only starts are counted."""

    def reset(self) -> None:
        self.count = 0
        self.names.clear()


class Database:
    """The app's MongoDB connection; starts the embedded server when no URI is configured."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.embedded: EmbeddedMongo | None = None
        self.commands = CommandCounter()
        self.client: AsyncMongoClient[dict[str, object]] | None = None

    async def connect(self) -> None:
        uri = self.settings.mongodb_uri
        if uri is None:
            self.embedded = EmbeddedMongo(self.settings.data_dir)
            uri = await self.embedded.start()
        timeout = self.settings.db_timeout_ms
        self.client = AsyncMongoClient(
            uri,
            tz_aware=True,
            serverSelectionTimeoutMS=timeout,
            connectTimeoutMS=timeout,
            event_listeners=[self.commands],
        )
        await self.bind(create_indexes=True)

    async def bind(self, *, create_indexes: bool = False) -> None:
        """Point the document models at this database (Beanie binds them process-wide)."""
        assert self.client is not None
        await init_beanie(
            database=self.client[self.settings.db_name],
            document_models=DOCUMENT_MODELS,
            skip_indexes=not create_indexes,
        )

    async def ping(self) -> None:
        """Raises when the database cannot be reached."""
        assert self.client is not None
        await self.client.admin.command("ping")

    async def close(self) -> None:
        if self.client is not None:
            await self.client.close()
        if self.embedded is not None:
            await self.embedded.stop()
