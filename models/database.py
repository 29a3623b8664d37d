"""Connecting to MongoDB: the configured one, or an embedded wire-compatible server."""

import asyncio
import fcntl
import logging
import os
import sqlite3
import threading
from collections import deque
from collections.abc import Coroutine
from contextvars import ContextVar
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, ClassVar

from beanie import init_beanie
from mongoeco.engines.sqlite import SQLiteEngine
from pymongo import AsyncMongoClient, monitoring

from config import Settings
from models import DOCUMENT_MODELS
from models.embedded_engine import CrmProxyServer, CrmSQLiteEngine, check_engine_version
from models.indexes import ensure_indexes

log = logging.getLogger(__name__)


class DataDirInUse(RuntimeError):
    """Another process runs the embedded database of this data dir."""


class EmbeddedMongo:
    """A MongoDB-wire-compatible server (mongoeco on SQLite) on a loopback port.

    It runs on its own plain-asyncio event loop in a background thread: the app's loop (uvloop
    under uvicorn) never waits on the engine's work, and mongoeco's socket teardown needs
    asyncio APIs that uvloop lacks (`Server.abort_clients`).
    """

    def __init__(
        self,
        data_dir: Path,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        engine: type[SQLiteEngine] = CrmSQLiteEngine,  # bench/engine_ops.py compares the stock one
    ) -> None:
        check_engine_version()
        data_dir.mkdir(parents=True, exist_ok=True)
        self.path = data_dir / "crm.sqlite3"
        self.lock_path = data_dir / "crm.lock"
        self._lock: IO[str] | None = None
        self._loop = asyncio.new_event_loop()
        self._thread: threading.Thread | None = None
        self._server = CrmProxyServer(engine=engine(str(self.path)), host=host, port=port)

    async def start(self) -> str:
        """Start listening; returns the `mongodb://` URI to connect to."""
        self._take_lock()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name="embedded-mongodb", daemon=True
        )
        self._thread.start()
        address = await self._on_own_loop(self._server.start())
        log.info("embedded MongoDB-compatible server on %s (data in %s)", address.uri, self.path)
        return str(address.uri)

    async def stop(self) -> None:
        try:
            await self._on_own_loop(self._server.close())
        except* sqlite3.OperationalError as group:
            # A write the closing server cut short can still hold SQLite's lock when mongoeco
            # drops its change consumers; those are not durable, and WAL keeps the file whole.
            log.warning("embedded database stopped with: %s", group.exceptions)
        finally:
            if self._thread is not None:
                self._loop.call_soon_threadsafe(self._loop.stop)
                await asyncio.to_thread(self._thread.join)
                self._thread = None
            if self._lock is not None:
                self._lock.close()  # closing the file releases the lock
                self._lock = None

    def cpu_seconds(self) -> float | None:
        """CPU time used so far by the engine's threads (its loop, mongoeco's SQLite workers).

        From /proc (Linux only, else None), in clock ticks; threads that ended are not counted.
        """
        total = 0
        for thread in threading.enumerate():
            if thread.name == "embedded-mongodb" or thread.name.startswith("mongoeco"):
                try:
                    stat = Path(f"/proc/self/task/{thread.native_id}/stat").read_text()
                except OSError:
                    if not Path("/proc/self/task").is_dir():
                        return None
                    continue  # the thread just ended
                fields = stat.rsplit(")", 1)[1].split()  # after "pid (name)": state is [0]
                total += int(fields[11]) + int(fields[12])  # utime + stime
        return total / os.sysconf("SC_CLK_TCK")

    async def _on_own_loop[T](self, work: Coroutine[Any, Any, T]) -> T:
        return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(work, self._loop))

    def _take_lock(self) -> None:
        """One process per data dir: two engines on one SQLite file would corrupt each other."""
        lock = self.lock_path.open("a+")
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            lock.close()
            raise DataDirInUse(
                f"The embedded database in {self.path.parent} is in use by another process "
                "(a running `crm serve`?). Stop it, or point both at one MONGODB_URI."
            ) from None
        self._lock = lock


# How many of the latest command names a CommandCounter keeps (for a test's message).
RECENT_COMMANDS = 64


# Set in tasks that work in the background (import jobs): their commands are nobody's
# request, so the counters leave them out.
background_work: ContextVar[bool] = ContextVar("background_work", default=False)


@dataclass
class CommandCounter(monitoring.CommandListener):
    """Counts the commands the driver sends: how tests and benchmarks see round trips.

    Fixed size, however long the process runs: two totals and the names of the latest
    RECENT_COMMANDS commands. `Database` registers it only when counting is on.
    """

    count: int = 0
    names: deque[str] = field(default_factory=lambda: deque(maxlen=RECENT_COMMANDS))
    """The latest commands' names, oldest first (older ones are dropped)."""
    seconds: float = 0.0
    """Total duration of the finished commands as the driver saw them (send to reply read)."""

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        if not background_work.get():
            self.count += 1
            self.names.append(event.command_name)

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        if not background_work.get():
            self.seconds += event.duration_micros / 1e6

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        if not background_work.get():
            self.seconds += event.duration_micros / 1e6

    def reset(self) -> None:
        self.count = 0
        self.names.clear()
        self.seconds = 0.0


@dataclass(frozen=True)
class Capabilities:
    """What the connected deployment offers the domain code (`Database.capabilities`)."""

    transactions: bool
    """Multi-document transactions usable under concurrency: replica sets and sharded
    clusters. Not a standalone; not the embedded engine either, though it has transactions:
    it answers `hello` as a standalone, and while one session's transaction is open every
    other session's command fails (mongoeco 4.11, measured) instead of waiting."""
    change_streams: bool
    """`watch()` on a collection: replica sets and sharded clusters (not a standalone, not the
    embedded engine). Without them, live events reach the instance that wrote them only."""


class Database:
    """The app's MongoDB connection; starts the embedded server when no URI is configured."""

    _bound: ClassVar["Database | None"] = None

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.embedded: EmbeddedMongo | None = None
        # Counting is for benchmarks and tests: off, no listener exists and the driver
        # publishes no command events at all (`commands` then stays at zero).
        self.counting = settings.bench or settings.count_commands
        self.commands = CommandCounter()
        self.client: AsyncMongoClient[dict[str, object]] | None = None
        self._capabilities: Capabilities | None = None

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
            event_listeners=[self.commands] if self.counting else [],
        )
        await self.bind(create_indexes=True)

    async def bind(self, *, create_indexes: bool = False) -> None:
        """Point the document models at this database (Beanie binds them process-wide)."""
        assert self.client is not None
        await init_beanie(
            database=self.client[self.settings.db_name],
            document_models=DOCUMENT_MODELS,
            skip_indexes=True,
        )
        if create_indexes:  # one by one, keeping indexes the database has under other names
            await ensure_indexes(DOCUMENT_MODELS)
        Database._bound = self

    @classmethod
    def bound(cls) -> "Database":
        """The database the document models are bound to (process-wide, like Beanie's)."""
        if cls._bound is None:
            raise RuntimeError("no Database is bound: connect() one first")
        return cls._bound

    async def capabilities(self) -> Capabilities:
        """Asked once (`hello`) per database object."""
        if self._capabilities is None:
            assert self.client is not None
            hello = await self.client.admin.command("hello")
            replicated = "setName" in hello or hello.get("msg") == "isdbgrid"
            self._capabilities = Capabilities(transactions=replicated, change_streams=replicated)
        return self._capabilities

    async def ping(self) -> None:
        """Raises when the database cannot be reached."""
        assert self.client is not None
        await self.client.admin.command("ping")

    async def close(self) -> None:
        if self.client is not None:
            await self.client.close()
        if self.embedded is not None:
            await self.embedded.stop()
